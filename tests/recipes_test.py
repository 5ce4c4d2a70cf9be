"""Tests for the training recipes: durations, the learning-rate schedule, and the optimizers' weight decay."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

from ltp_tfmot.experiment import recipes
from tests import fixtures


def setUpModule():
  fixtures.split_cpu_in_two()


class DurationTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(('160ep', 391, 62560), ('30000it', None, 30000), ('2ep100it', 50, 200), (' 7IT ', None, 7),
                            (0, None, 0), (12, 5, 12))
  def test_parses_epochs_and_iterations(self, text, steps_per_epoch, expected):
    self.assertEqual(recipes.parse_duration(text, steps_per_epoch=steps_per_epoch), expected)

  @parameterized.parameters('160', 'ep', '1.5ep', '160 epochs', '-3it', '', '100it2ep', None, 1.5, True)
  def test_bad_duration_names_the_accepted_forms(self, text):
    with self.assertRaisesRegex(ValueError, r"training_steps must be written as epochs and/or iterations, e\.g\. "
                                            r"'160ep'"):
      recipes.parse_duration(text, steps_per_epoch=10, name='training_steps')

  def test_epochs_need_steps_per_epoch(self):
    with self.assertRaisesRegex(ValueError, r"'160ep' is in epochs, which needs steps_per_epoch"):
      recipes.parse_duration('160ep')
    with self.assertRaisesRegex(ValueError, 'must be >= 0 iterations'):
      recipes.parse_duration(-1)

  def test_milestones_from_a_string_or_a_list_must_increase(self):
    self.assertEqual(recipes.parse_milestones('80ep,120ep', steps_per_epoch=391), (31280, 46920))
    self.assertEqual(recipes.parse_milestones(['10it', 20]), (10, 20))
    self.assertEqual(recipes.parse_milestones(''), ())
    with self.assertRaisesRegex(ValueError, r'milestones must increase, got \[.120ep., .80ep.\]'):
      recipes.parse_milestones('120ep,80ep', steps_per_epoch=391)


class ScheduleTest(tf.test.TestCase):

  def _rates(self, schedule, steps):
    return [float(schedule(tf.constant(step, tf.int64))) for step in steps]

  def test_warmup_ramps_linearly_from_zero(self):
    schedule = recipes.WarmupDecaySchedule(0.1, warmup_steps=100)
    self.assertAllClose(self._rates(schedule, [0, 1, 50, 99, 100, 5000]), [0.0, 0.001, 0.05, 0.099, 0.1, 0.1])

  def test_step_drops_at_each_milestone(self):
    schedule, iterations = recipes.make_schedule(0.1, '160ep', steps_per_epoch=391, lr_decay='step',
                                                 milestones='80ep,120ep', gamma=0.1)
    self.assertEqual(iterations, 62560)
    self.assertAllClose(self._rates(schedule, [0, 31279, 31280, 46919, 46920, 62559]),
                        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])

  def test_milestones_past_the_end_never_act(self):
    schedule, iterations = recipes.make_schedule(0.1, '10it', lr_decay='step', milestones='80ep,120ep',
                                                 steps_per_epoch=391)
    self.assertEqual(iterations, 10)
    self.assertAllClose(self._rates(schedule, [0, 9]), [0.1, 0.1])

  def test_warmup_and_drops_multiply(self):
    schedule = recipes.WarmupDecaySchedule(0.2, warmup_steps=10, decay='step', milestones=(5,), gamma=0.5)
    self.assertAllClose(self._rates(schedule, [4, 5, 10]), [0.08, 0.05, 0.1])

  def test_cosine_decays_to_zero_and_past_the_end_keeps_the_last_iterations_rate(self):
    schedule, _ = recipes.make_schedule(0.1, '1000it', lr_decay='cosine')
    last = 0.05 * (1 + np.cos(np.pi * 999 / 1000))
    self.assertAllClose(self._rates(schedule, [0, 500, 999, 1000, 1200]), [0.1, 0.05, last, last, last], atol=1e-9)
    self.assertAllClose(self._rates(recipes.WarmupDecaySchedule(0.1, decay='cosine', decay_steps=1000), [1000, 1200]),
                        [0.0, 0.0], atol=1e-7)
    self.assertAllClose(self._rates(schedule, [250]), [0.05 * (1 + np.cos(np.pi / 4))])

  def test_schedule_follows_the_optimizer_iteration_count(self):
    # A rewind to iteration k sets `iterations` to k: the schedule continues from k, not from 0.
    schedule = recipes.WarmupDecaySchedule(0.1, decay='step', milestones=(10,), gamma=0.1)
    optimizer = recipes.L2SGD(schedule)
    variable = tf.Variable([1.0])
    optimizer.apply_gradients([(tf.constant([1.0]), variable)])
    self.assertAllClose(variable, [0.9])
    optimizer.iterations.assign(10)
    optimizer.apply_gradients([(tf.constant([1.0]), variable)])
    self.assertAllClose(variable, [0.89])
    self.assertEqual(int(optimizer.iterations), 11)

  def test_schedule_round_trips_through_its_config(self):
    schedule = recipes.WarmupDecaySchedule(0.1, warmup_steps=5, decay='step', milestones=(10, 20), gamma=0.2)
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    self.assertIsInstance(restored, recipes.WarmupDecaySchedule)
    self.assertEqual(restored.get_config(), schedule.get_config())
    self.assertAllClose(self._rates(restored, [3, 15, 25]), self._rates(schedule, [3, 15, 25]))

  def test_bad_schedule_settings_name_the_problem(self):
    with self.assertRaisesRegex(ValueError, "milestones go with decay='step'"):
      recipes.WarmupDecaySchedule(0.1, milestones=(10,))
    with self.assertRaisesRegex(ValueError, "milestones go with decay='step'"):
      recipes.WarmupDecaySchedule(0.1, decay='step')
    with self.assertRaisesRegex(ValueError, r'gamma must be a number in \(0, 1\]'):
      recipes.WarmupDecaySchedule(0.1, decay='step', milestones=(10,), gamma=2)
    with self.assertRaisesRegex(ValueError, 'learning_rate must be a number > 0'):
      recipes.WarmupDecaySchedule(0.0)
    with self.assertRaisesRegex(ValueError, 'decay must be one of'):
      recipes.WarmupDecaySchedule(0.1, decay='linear')
    with self.assertRaisesRegex(ValueError, 'warmup_steps .* is longer than training'):
      recipes.make_schedule(0.1, '1ep', steps_per_epoch=10, warmup_steps='11it')


class OptimizerTest(tf.test.TestCase):

  def _step(self, optimizer, variable, gradients):
    for gradient in gradients:
      optimizer.apply_gradients([(tf.constant(gradient), variable)])
    return variable.numpy()

  def test_sgd_weight_decay_is_added_to_the_gradient(self):
    w0, g = np.array([1.0, -2.0], np.float32), np.array([0.5, 0.25], np.float32)
    variable = tf.Variable(w0)
    after = self._step(recipes.make_optimizer('sgd', 0.1, weight_decay=0.01), variable, [g])
    self.assertAllClose(after, w0 - 0.1 * (g + 0.01 * w0))  # [0.949, -2.023]

  def test_sgd_momentum_is_pytorchs_buffer_of_decayed_gradients(self):
    w0, g = np.array([1.0, -2.0], np.float32), np.array([0.5, 0.25], np.float32)
    variable = tf.Variable(w0)
    after = self._step(recipes.make_optimizer('sgd', 0.1, momentum=0.9, weight_decay=0.01), variable, [g, g])
    buffer1 = g + 0.01 * w0
    w1 = w0 - 0.1 * buffer1
    buffer2 = 0.9 * buffer1 + (g + 0.01 * w1)
    self.assertAllClose(after, w1 - 0.1 * buffer2)

  def test_a_learning_rate_drop_scales_the_whole_momentum_buffer(self):
    schedule = recipes.WarmupDecaySchedule(1.0, decay='step', milestones=(1,), gamma=0.1)
    variable = tf.Variable([0.0])
    after = self._step(recipes.L2SGD(schedule, momentum=0.5), variable, [[1.0], [1.0]])
    self.assertAllClose(after, [-1.0 - 0.1 * 1.5])  # Keras' SGD would give -1.0 - (0.5 * 1.0 + 0.1)

  def test_nesterov_adds_the_momentum_look_ahead(self):
    variable = tf.Variable([0.0])
    after = self._step(recipes.make_optimizer('sgd', 0.1, momentum=0.9, nesterov=True), variable, [[1.0], [1.0]])
    first = -0.1 * (1.0 + 0.9 * 1.0)
    self.assertAllClose(after, [first - 0.1 * (1.0 + 0.9 * 1.9)])

  def test_adam_weight_decay_enters_the_moments(self):
    w0, g = np.array([3.0], np.float32), np.array([0.0], np.float32)
    variable = tf.Variable(w0)
    after = self._step(recipes.make_optimizer('adam', 0.01, weight_decay=0.1), variable, [g])
    self.assertAllClose(after, w0 - 0.01, atol=1e-6)  # the first Adam step moves by lr * sign(g + 0.1 * w)

  def test_excluded_variables_get_no_decay(self):
    optimizer = recipes.L2SGD(0.1, l2=0.5)
    kernel, bias = tf.Variable([1.0], name='kernel'), tf.Variable([1.0], name='bias')
    optimizer.exclude_from_weight_decay(var_names=['bias'])
    optimizer.apply_gradients([(tf.constant([0.0]), kernel), (tf.constant([0.0]), bias)])
    self.assertAllClose([kernel.numpy()[0], bias.numpy()[0]], [0.95, 1.0])

  def test_optimizers_round_trip_through_their_config(self):
    schedule = recipes.WarmupDecaySchedule(0.1, warmup_steps=3)
    for optimizer in (recipes.L2SGD(schedule, momentum=0.9, nesterov=True, l2=1e-4), recipes.L2Adam(1e-3, l2=0.1)):
      restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
      self.assertIsInstance(restored, type(optimizer))
      self.assertEqual(restored.l2, optimizer.l2)
      self.assertNotIn('weight_decay', restored.get_config())
    self.assertIsInstance(restored, recipes.L2Adam)

  def test_bad_optimizer_settings_name_the_problem(self):
    with self.assertRaisesRegex(ValueError, "momentum and nesterov apply to optimizer 'sgd' only"):
      recipes.make_optimizer('adam', 0.1, momentum=0.9)
    with self.assertRaisesRegex(ValueError, 'optimizer must be one of'):
      recipes.make_optimizer('rmsprop', 0.1)
    with self.assertRaisesRegex(ValueError, 'nesterov=True needs momentum > 0'):
      recipes.make_optimizer('sgd', 0.1, nesterov=True)
    with self.assertRaisesRegex(ValueError, r'weight decay \(l2\) must be a number >= 0'):
      recipes.make_optimizer('sgd', 0.1, weight_decay=-1.0)
    with self.assertRaisesRegex(ValueError, 'coupled weight decay as l2='):
      recipes.L2SGD(0.1, weight_decay=0.1)

  def test_model_trains_with_a_recipe_under_fit(self):
    model = keras.Sequential([keras.layers.Dense(3, input_shape=(4,), name='output')])
    settings = type('Settings', (), dict(optimizer='sgd', learning_rate=0.1, training_steps='2ep', momentum=0.9,
                                         weight_decay=1e-4, milestones='1ep', gamma=0.1))()
    training = recipes.build_training(settings, steps_per_epoch=2)
    self.assertEqual(training.iterations, 4)
    self.assertEqual(training.schedule.milestones, (2,))
    model.compile(optimizer=training.optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.ones((8, 4), np.float32), np.zeros(8, np.int64)
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    self.assertLess(history.history['loss'][1], history.history['loss'][0])
    self.assertEqual(int(model.optimizer.iterations), 4)

  def test_weight_decay_is_applied_once_under_a_mirrored_strategy(self):
    # The L2 term is added after the replicas' gradients are summed, so two replicas decay as one device does.
    x, y = np.random.RandomState(0).randn(8, 4).astype(np.float32), np.arange(8) % 3

    def trained(strategy):
      with strategy.scope():
        model = keras.Sequential([keras.layers.Dense(3, input_shape=(4,), kernel_initializer='ones', name='output')])
        model.compile(optimizer=recipes.make_optimizer('sgd', 0.1, momentum=0.9, weight_decay=0.05),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
      model.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False)
      return model.get_layer('output').kernel.numpy()

    cpus = tf.config.list_logical_devices('CPU')
    self.assertLen(cpus, 2)
    fixtures.assert_close_to_scale(self, trained(tf.distribute.MirroredStrategy([d.name for d in cpus])),
                                   trained(tf.distribute.get_strategy()))


if __name__ == '__main__':
  tf.test.main()
