"""Tests for lottery-ticket training under mixed-precision policies (float32 variables, 16-bit compute)."""

import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot import experiment
from ltp_tfmot.experiment import storage
from tests import fixtures
from tests import parallel_driver


class _AfterRound(keras.callbacks.Callback):
  """The weights of every wrapper right after the batch that ends the first round (list it after UpdateLotteryStep)."""

  def __init__(self):
    super().__init__()
    self.weights = None

  def on_train_batch_end(self, batch, logs=None):
    wrappers = ltp_tfmot.lottery_wrappers(self.model)
    if self.weights is None and int(wrappers[0].rounds_done.numpy()) == 1:
      self.weights = [[weight.numpy() for weight in w.layer.weights] for w in wrappers]


class MixedPrecisionTest(tf.test.TestCase, parameterized.TestCase):

  def tearDown(self):
    keras.mixed_precision.set_global_policy('float32')
    super().tearDown()

  @parameterized.parameters('mixed_float16', 'mixed_bfloat16')
  def test_round_masks_exactly_and_rewinds_to_the_float32_snapshot(self, policy):
    keras.mixed_precision.set_global_policy(policy)
    schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=3, rounds=1)
    model = fixtures.compile_for_training(ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), schedule))
    model.build((None, 8))
    initial = [[weight.numpy() for weight in w.layer.weights] for w in model.layers]
    after_round = _AfterRound()
    x, y = fixtures.classification_data(n=6 * 16)
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0,
              callbacks=[ltp_tfmot.UpdateLotteryStep(), after_round])

    self.assertEqual([int(np.count_nonzero(m)) for m in fixtures.masks_of(model).values()], [64, 96, 24])
    for w, want, rewound in zip(model.layers, initial, after_round.weights, strict=True):
      mask = w.pruning_vars[0][1].numpy()
      self.assertEqual(w.layer.compute_dtype, policy.split('_')[1])
      for snapshot, initial_value in zip(w.snapshots, want, strict=True):
        self.assertEqual(snapshot.dtype, tf.float32)
        self.assertAllEqual(snapshot, initial_value)
      self.assertAllEqual(rewound[0], want[0] * mask)  # bit-exact float32 rewind
      self.assertAllEqual(rewound[1], want[1])
      kernel = w.layer.kernel.numpy()
      self.assertEqual(kernel.dtype, np.float32)
      self.assertAllEqual(kernel[mask == 0], np.zeros(int((mask == 0).sum())))  # never revived
      self.assertNotAllClose(kernel[mask == 1], rewound[0][mask == 1])  # trained on after the round
    self.assertTrue(np.isfinite(model.evaluate(x, y, verbose=0)[0]))


def _config(precision, levels):
  return experiment.RunConfig(
      model='mlp', data=experiment.DataConfig(name='toy'),
      training=experiment.TrainingConfig(learning_rate=0.01, batch_size=16, epochs=1, eval_every=3,
                                         precision=precision),
      pruning=experiment.PruningConfig(rate=0.5, layer_rates={}, levels=levels))


class RunnerPrecisionTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters('mixed_float16', 'mixed_bfloat16')
  def test_runner_trains_in_16_bit_with_exact_float32_masks_and_resumes_exactly(self, policy):
    whole_dir, resumed_dir = (tempfile.mkdtemp(dir=self.get_temp_dir()) for _ in range(2))
    whole = parallel_driver.make(whole_dir, _config(policy, levels=2)).run()
    parallel_driver.make(resumed_dir, _config(policy, levels=1)).run()
    resumed = parallel_driver.make(resumed_dir, _config(policy, levels=2)).run()  # level 2 rebuilt from files

    self.assertEqual(keras.mixed_precision.global_policy().name, 'float32')  # the run's policy is not left set
    self.assertEqual([r['weights_alive'] for r in whole], [368, 184, 92])
    for level in range(3):
      for got, want in zip(storage.load_masks(resumed_dir, 0, level)['masks'],
                           storage.load_masks(whole_dir, 0, level)['masks'], strict=True):
        self.assertEqual(want.dtype, np.float32)
        self.assertAllEqual(got, want)
    for key in ('test_loss', 'test_accuracy', 'supermask_loss', 'curve'):
      self.assertEqual(resumed[2][key], whole[2][key], key)
    model, _ = experiment.load_trained_model(whole_dir, model_fn=parallel_driver.model_fn, data=parallel_driver.DATA)
    wrapper = ltp_tfmot.lottery_wrappers(model)[0]
    self.assertEqual(wrapper.layer.compute_dtype, policy.split('_')[1])
    self.assertEqual(wrapper.layer.kernel.dtype, tf.float32)
    self.assertEqual(model.output.dtype, tf.float32)

  def test_each_level_starts_with_a_fresh_dynamic_loss_scale(self):
    factory = experiment.RunFactory(_config('mixed_float16', levels=1), model_fn=parallel_driver.model_fn,
                                    data=parallel_driver.DATA)
    factory.load_data()
    model = factory.wrap(factory.build_model(0), 0)
    factory.compile(model)
    optimizer = model.optimizer
    self.assertIsInstance(optimizer, keras.mixed_precision.LossScaleOptimizer)
    x, y = parallel_driver.DATA[0][:16], parallel_driver.DATA[1][:16]
    with tf.GradientTape() as tape:
      loss = optimizer.get_scaled_loss(tf.reduce_mean(
          keras.losses.sparse_categorical_crossentropy(y, model(x), from_logits=True)))
    grads = tape.gradient(loss, model.trainable_variables)
    grads[0] = grads[0] * np.inf  # an overflow: the dynamic scale halves, the good-step count restarts
    optimizer.apply_gradients(zip(optimizer.get_unscaled_gradients(grads), model.trainable_variables, strict=True))
    self.assertEqual(float(optimizer.loss_scale), optimizer.initial_scale / 2)
    optimizer.dynamic_counter.assign(7)

    factory.reset_loss_scale(model)
    self.assertEqual(float(optimizer.loss_scale), optimizer.initial_scale)
    self.assertEqual(int(optimizer.dynamic_counter), 0)

  def test_unknown_precision_is_refused(self):
    with self.assertRaisesRegex(ValueError, r"training\.precision must be one of \['float32', 'mixed_float16', "
                                r"'mixed_bfloat16'\], got 'float16'"):
      experiment.TrainingConfig(precision='float16')


if __name__ == '__main__':
  tf.test.main()
