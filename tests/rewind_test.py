"""Tests for the rewind point: the mask actions, unwrapped layers (BatchNormalization, ...) and the optimizer."""

import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from tests import fixtures

BATCH = 8  # 64 examples: 8 steps an epoch


def _normalized_mlp(schedule=None, **kwargs):
  """A wrapped 8-16-4 MLP with a BatchNormalization and a LayerNormalization between its two Dense layers."""
  init = lambda offset: keras.initializers.GlorotUniform(seed=offset)
  model = keras.Sequential([
      keras.layers.Dense(16, input_shape=(8,), kernel_initializer=init(0), name='hidden'),
      keras.layers.BatchNormalization(name='bn'),
      keras.layers.ReLU(name='relu'),
      keras.layers.LayerNormalization(name='ln'),
      keras.layers.Dense(4, kernel_initializer=init(1), name='output'),
  ])
  model = ltp_tfmot.prune_lottery_ticket(model, schedule or ltp_tfmot.LotteryTicketSchedule(0.2), **kwargs)
  model.build((None, 8))
  return model


def _normalization_values(model):
  """{variable name: value} of the BatchNormalization and LayerNormalization layers."""
  return {weight.name: weight.numpy() for name in ('bn', 'ln') for weight in model.get_layer(name).weights}


def _train_on_batches(model, steps):
  x, y = fixtures.classification_data()
  for step in range(steps):
    start = step * BATCH % len(x)
    model.train_on_batch(x[start:start + BATCH], y[start:start + BATCH])


class _TestCase(tf.test.TestCase, parameterized.TestCase):

  def assertValuesEqual(self, expected, actual):
    self.assertEqual(sorted(expected), sorted(actual))
    for name, value in expected.items():
      self.assertAllEqual(value, actual[name], msg=name)


class SnapshotTest(_TestCase):

  def test_take_snapshot_records_the_weights_and_step_and_starts_counting_steps(self):
    model = fixtures.wrapped_mlp()
    self.assertFalse(any(w.has_snapshot for w in model.layers))
    ltp_tfmot.take_snapshot(model, step=3)
    for w in model.layers:
      self.assertTrue(w.has_snapshot)
      self.assertEqual(int(w.snapshot_step.numpy()), 3)
      self.assertEqual(int(w.step_offset.numpy()), 0)
      for snapshot, weight in zip(w.snapshots, w.layer.weights, strict=True):
        self.assertAllEqual(snapshot, weight)

  def test_rewind_without_snapshot_raises_before_changing_anything(self):
    model = fixtures.wrapped_mlp()
    state = [v.numpy().copy() for v in model.weights]
    with self.assertRaisesRegex(ValueError, r"layers \['hidden1', 'hidden2', 'output'\] have no rewind snapshot yet"):
      ltp_tfmot.rewind_weights(model)
    for want, got in zip(state, model.weights, strict=True):
      self.assertAllEqual(want, got)


class MaskActionTest(_TestCase):
  """What the wrapped layers start the next round from: the mask-1 and mask-0 actions."""

  def test_survivors_equal_snapshot_and_pruned_are_zero_after_rewind(self):
    model = fixtures.wrapped_mlp()
    ltp_tfmot.take_snapshot(model)
    snapshot = [w.numpy() for layer in model.layers for w in layer.layer.weights]
    fixtures.perturb(model)
    ltp_tfmot.run_lottery_round(model)
    for layer in model.layers:
      mask = layer.pruning_vars[0][1].numpy()
      self.assertAllEqual(layer.layer.kernel.numpy(), snapshot.pop(0) * mask)
      self.assertAllEqual(layer.layer.bias.numpy(), snapshot.pop(0))

  def test_freeze_holds_pruned_weights_at_snapshot(self):
    model = fixtures.wrapped_mlp(mask_0_action='freeze')
    ltp_tfmot.take_snapshot(model)
    initial = model.layers[0].layer.kernel.numpy()
    fixtures.perturb(model)
    ltp_tfmot.run_lottery_round(model)
    self.assertAllEqual(model.layers[0].layer.kernel.numpy(), initial)
    fixtures.perturb(model, seed=5)
    ltp_tfmot.apply_masks(model)
    mask = model.layers[0].pruning_vars[0][1].numpy()
    self.assertAllEqual(model.layers[0].layer.kernel.numpy()[mask == 0], initial[mask == 0])
    self.assertNotAllClose(model.layers[0].layer.kernel.numpy()[mask == 1], initial[mask == 1])

  def test_reinit_draws_fresh_values_from_the_initializer(self):
    model = fixtures.wrapped_mlp(mask_1_action='reinit')
    ltp_tfmot.take_snapshot(model)
    initial = model.layers[0].layer.kernel.numpy()
    ltp_tfmot.run_lottery_round(model)
    kernel, mask = model.layers[0].layer.kernel.numpy(), model.layers[0].pruning_vars[0][1].numpy()
    self.assertAllEqual(kernel[mask == 0], np.zeros(int((mask == 0).sum())))
    self.assertFalse(np.any(np.isclose(kernel[mask == 1], initial[mask == 1])))
    limit = np.sqrt(6 / (8 + 16))  # Glorot-uniform bound of the 8x16 kernel
    self.assertLessEqual(np.abs(kernel).max(), limit)

  def test_reshuffle_permutes_kept_snapshot_values(self):
    model = fixtures.wrapped_mlp(mask_1_action='reshuffle')
    ltp_tfmot.take_snapshot(model)
    initial = model.layers[0].layer.kernel.numpy()
    fixtures.perturb(model)
    ltp_tfmot.run_lottery_round(model)
    kernel, mask = model.layers[0].layer.kernel.numpy(), model.layers[0].pruning_vars[0][1].numpy()
    self.assertAllEqual(np.sort(kernel[mask == 1]), np.sort(initial[mask == 1]))
    self.assertNotAllEqual(kernel[mask == 1], initial[mask == 1])

  def test_signed_constant_uses_sign_and_layer_std(self):
    model = fixtures.wrapped_mlp(mask_1_action='signed_constant')
    ltp_tfmot.take_snapshot(model)
    initial = model.layers[0].layer.kernel.numpy()
    ltp_tfmot.run_lottery_round(model)
    kernel, mask = model.layers[0].layer.kernel.numpy(), model.layers[0].pruning_vars[0][1].numpy()
    self.assertAllClose(kernel, np.sign(initial) * initial.std() * mask)

  def test_dynamic_weight_rescaling_scales_survivors_by_density(self):
    model = fixtures.wrapped_mlp(dynamic_weight_rescaling=True, schedule=ltp_tfmot.LotteryTicketSchedule(0.75))
    ltp_tfmot.take_snapshot(model)
    initial = model.layers[0].layer.kernel.numpy()
    ltp_tfmot.run_lottery_round(model)
    mask = model.layers[0].pruning_vars[0][1].numpy()
    self.assertAllClose(model.layers[0].layer.kernel.numpy(), initial * mask * 4.0)

  def test_rewinding_then_masking_is_idempotent(self):
    model = fixtures.wrapped_mlp()
    ltp_tfmot.take_snapshot(model)
    fixtures.perturb(model)
    ltp_tfmot.run_lottery_round(model)
    once = [w.numpy() for w in model.weights]
    ltp_tfmot.rewind_weights(model)
    ltp_tfmot.apply_masks(model)
    for before, after in zip(once, model.weights, strict=True):
      self.assertAllEqual(before, after)


class UnwrappedLayersTest(_TestCase):

  def test_unwrapped_layer_weights_are_the_normalization_layers_weights(self):
    model = _normalized_mlp()
    names = [(layer.name, weight.name.rsplit('/', 1)[-1]) for layer, weight in ltp_tfmot.unwrapped_layer_weights(model)]
    self.assertEqual(names, [('bn', 'gamma:0'), ('bn', 'beta:0'), ('bn', 'moving_mean:0'), ('bn', 'moving_variance:0'),
                             ('ln', 'gamma:0'), ('ln', 'beta:0')])
    self.assertEqual(ltp_tfmot.unwrapped_layer_weights(ltp_tfmot.lottery_wrappers(model)), [])

  @parameterized.parameters('rewind_weights', 'run_lottery_round')
  def test_batchnorm_and_layernorm_are_rewound_with_the_kernels(self, function):
    model = fixtures.compile_for_training(_normalized_mlp())
    ltp_tfmot.take_snapshot(model)
    at_snapshot = _normalization_values(model)
    _train_on_batches(model, 3)
    trained = _normalization_values(model)
    self.assertNotAllClose(at_snapshot['bn/moving_mean:0'], trained['bn/moving_mean:0'])
    self.assertNotAllClose(at_snapshot['ln/gamma:0'], trained['ln/gamma:0'])
    getattr(ltp_tfmot, function)(model)
    self.assertValuesEqual(at_snapshot, _normalization_values(model))

  def test_rewinding_a_list_of_wrappers_leaves_the_unwrapped_layers(self):
    model = fixtures.compile_for_training(_normalized_mlp())
    ltp_tfmot.take_snapshot(model)
    _train_on_batches(model, 3)
    trained = _normalization_values(model)
    ltp_tfmot.rewind_weights(ltp_tfmot.lottery_wrappers(model))
    self.assertValuesEqual(trained, _normalization_values(model))

  def test_reinit_control_reinitialises_the_unwrapped_layers_too(self):
    model = fixtures.compile_for_training(_normalized_mlp(mask_1_action='reinit'))
    ltp_tfmot.take_snapshot(model)
    _train_on_batches(model, 3)
    ltp_tfmot.run_lottery_round(model)
    for name, value in _normalization_values(model).items():
      # Keras's default initializers: gamma and moving_variance ones, beta and moving_mean zeros.
      expected = 1.0 if 'gamma' in name or 'variance' in name else 0.0
      self.assertAllEqual(value, np.full_like(value, expected), msg=name)

  def test_reinit_without_an_initializer_on_an_unwrapped_layer_raises_before_changing_anything(self):
    model = _normalized_mlp(mask_1_action='reinit')
    del model.get_layer('ln').gamma_initializer
    ltp_tfmot.take_snapshot(model)
    masks = list(fixtures.masks_of(model).values())
    with self.assertRaisesRegex(ValueError, r"needs layer 'ln' to have an attribute gamma_initializer"):
      ltp_tfmot.run_lottery_round(model)
    for before, after in zip(masks, fixtures.masks_of(model).values(), strict=True):
      self.assertAllEqual(before, after)

  def test_late_rewind_in_fit_restores_the_unwrapped_layers_at_the_rewind_step(self):
    schedule = ltp_tfmot.LotteryTicketSchedule(0.2, round_steps=6, rounds=2)
    model = fixtures.compile_for_training(_normalized_mlp(schedule, rewind_step=2))
    probe = _Probe()
    x, y = fixtures.classification_data()
    model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0,
              callbacks=[ltp_tfmot.UpdateLotteryStep(), probe])
    self.assertEqual(sorted(probe.normalization), [2, 6, 12])
    self.assertValuesEqual(probe.normalization[2], probe.normalization[6])
    self.assertValuesEqual(probe.normalization[2], probe.normalization[12])

  @parameterized.parameters('model.keras', 'model.h5')
  def test_a_loaded_model_rewinds_the_unwrapped_layers_after_a_new_snapshot(self, filename):
    model = fixtures.compile_for_training(_normalized_mlp())
    ltp_tfmot.take_snapshot(model)
    path = os.path.join(self.get_temp_dir(), filename)
    model.save(path)
    with ltp_tfmot.prune_scope():
      loaded = keras.models.load_model(path)
    _train_on_batches(loaded, 3)
    trained = _normalization_values(loaded)
    with self.assertLogs('absl', 'WARNING') as logs:
      ltp_tfmot.rewind_weights(loaded)
    self.assertIn('call ltp_tfmot.take_snapshot(model) after loading', '\n'.join(logs.output))
    self.assertValuesEqual(trained, _normalization_values(loaded))
    self.assertAllEqual(loaded.layers[0].layer.kernel, model.layers[0].snapshots[0])  # wrappers' snapshots: saved
    ltp_tfmot.take_snapshot(loaded)
    at_snapshot = _normalization_values(loaded)
    _train_on_batches(loaded, 3)
    ltp_tfmot.rewind_weights(loaded)
    self.assertValuesEqual(at_snapshot, _normalization_values(loaded))


class _Probe(keras.callbacks.Callback):
  """Records, after `UpdateLotteryStep`, the state at the rewind step and right after each round boundary."""

  def __init__(self):
    super().__init__()
    self.normalization, self.iterations, self.learning_rates, self.slots_zero = {}, {}, {}, {}
    self._rounds = 0

  def on_train_batch_end(self, batch, logs=None):
    optimizer = self.model.optimizer
    step = ltp_tfmot.steps_done(self.model)
    self.learning_rates[step] = float(optimizer.learning_rate)  # the rate this step was taken with
    rounds = int(ltp_tfmot.lottery_wrappers(self.model)[0].rounds_done.numpy())
    if step == self.model.layers[0].rewind_step or rounds > self._rounds:
      self._rounds = rounds
      self.normalization[step] = _normalization_values(self.model)
      self.iterations[step] = int(optimizer.iterations.numpy())
      slots = [v for v in optimizer.variables if v is not optimizer.iterations]
      self.slots_zero[step] = bool(slots) and all(not np.any(v.numpy()) for v in slots)


class OptimizerIterationsTest(_TestCase):

  @parameterized.named_parameters(
      ('piecewise', lambda: keras.optimizers.schedules.PiecewiseConstantDecay([1, 5], [0.1, 0.05, 0.01])),
      ('exponential', lambda: keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5)),
  )
  def test_late_rewind_in_fit_continues_the_learning_rate_schedule_from_the_rewind_step(self, make_schedule):
    learning_rate = make_schedule()
    schedule = ltp_tfmot.LotteryTicketSchedule(0.2, round_steps=6, rounds=2)
    model = _normalized_mlp(schedule, rewind_step=2)
    model.compile(keras.optimizers.SGD(learning_rate, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    probe = _Probe()
    x, y = fixtures.classification_data()
    model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0,
              callbacks=[ltp_tfmot.UpdateLotteryStep(), probe])
    # Right after each round boundary (steps 6 and 12) the optimizer is back at iteration 2, slots reset.
    self.assertEqual(probe.iterations, {2: 2, 6: 2, 12: 2})
    self.assertEqual(probe.slots_zero, {2: False, 6: True, 12: True})
    # The step after a boundary is taken with the schedule's rate at iteration 2, not at 0 or at 6.
    for boundary in (6, 12):
      self.assertAllClose(probe.learning_rates[boundary + 1], float(learning_rate(2)))
    self.assertAllClose(probe.learning_rates[1], float(learning_rate(0)))
    self.assertNotAllClose(float(learning_rate(2)), float(learning_rate(0)))
    self.assertEqual(ltp_tfmot.steps_done(model), 16)  # the lottery schedule still counts training steps
    self.assertEqual(int(model.optimizer.iterations.numpy()), 2 + 4)

  def test_custom_loop_round_sets_iterations_to_the_snapshot_step(self):
    model = _normalized_mlp()
    learning_rate = keras.optimizers.schedules.PiecewiseConstantDecay([2], [0.1, 0.01])
    optimizer = keras.optimizers.Adam(learning_rate)
    x, y = fixtures.classification_data()
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def train_step():
      with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
      grads = tape.gradient(loss, model.trainable_variables)
      optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))

    ltp_tfmot.take_snapshot(model)
    for _ in range(3):
      train_step()
    ltp_tfmot.take_snapshot(model, step=3)  # late rewind point
    at_snapshot = _normalization_values(model)
    for _ in range(4):
      train_step()
    ltp_tfmot.run_lottery_round(model, optimizer)
    self.assertEqual(int(optimizer.iterations.numpy()), 3)
    self.assertAllClose(float(learning_rate(optimizer.iterations)), 0.01)
    self.assertEqual(ltp_tfmot.steps_done(model, optimizer), 7)
    self.assertValuesEqual(at_snapshot, _normalization_values(model))
    for variable in optimizer.variables:
      if variable is not optimizer.iterations:
        self.assertAllEqual(variable, tf.zeros_like(variable))
    train_step()
    self.assertEqual(ltp_tfmot.steps_done(model, optimizer), 8)
    ltp_tfmot.run_lottery_round(model, optimizer, rewind_iterations=0)
    self.assertEqual(int(optimizer.iterations.numpy()), 0)
    self.assertEqual(ltp_tfmot.steps_done(model, optimizer), 8)

  def test_round_resets_the_optimizer_state(self):
    model = fixtures.compile_for_training(fixtures.wrapped_mlp())
    x, y = fixtures.classification_data()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])
    self.assertGreater(int(model.optimizer.iterations.numpy()), 0)
    ltp_tfmot.run_lottery_round(model)
    for variable in model.optimizer.variables:
      self.assertAllEqual(variable, tf.zeros_like(variable))

  def test_reset_optimizer_sets_iterations(self):
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    variable = tf.Variable([1.0, 2.0])
    optimizer.apply_gradients([(tf.constant([1.0, 1.0]), variable)])
    ltp_tfmot.reset_optimizer(optimizer, iterations=5)
    self.assertEqual(int(optimizer.iterations.numpy()), 5)
    for slot in optimizer.variables:
      if slot is not optimizer.iterations:
        self.assertAllEqual(slot, tf.zeros_like(slot))

  @parameterized.parameters((-1, ValueError), (1.5, TypeError), (True, TypeError), ('3', TypeError))
  def test_bad_iterations_are_refused_before_changing_anything(self, bad, error):
    model = fixtures.compile_for_training(_normalized_mlp())
    ltp_tfmot.take_snapshot(model)
    masks = list(fixtures.masks_of(model).values())
    with self.assertRaisesRegex(error, r'rewind_iterations must be an integer >= 0'):
      ltp_tfmot.run_lottery_round(model, rewind_iterations=bad)
    for before, after in zip(masks, fixtures.masks_of(model).values(), strict=True):
      self.assertAllEqual(before, after)
    with self.assertRaisesRegex(error, r'iterations must be an integer >= 0'):
      ltp_tfmot.reset_optimizer(model.optimizer, iterations=bad)


if __name__ == '__main__':
  tf.test.main()
