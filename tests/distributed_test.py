"""Tests that a lottery round under MirroredStrategy matches a single-device run."""

import functools

import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from tests import fixtures


def setUpModule():
  fixtures.split_cpu_in_two()


@functools.cache
def _mirrored_strategy():
  """One MirroredStrategy over two CPUs for the whole module, or None without two logical CPUs.

  A second MirroredStrategy in one process restarts the collective instance keys that the first one's
  all-reduces still hold, and its first all-reduce then fails with a shape mismatch.
  """
  devices = tf.config.list_logical_devices('CPU')
  return tf.distribute.MirroredStrategy([d.name for d in devices[:2]]) if len(devices) >= 2 else None


def _round(strategy):
  with strategy.scope():
    schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=4, rounds=1)
    model = fixtures.compile_for_training(
        ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), schedule, scope='global', criterion='large_final'),
        learning_rate=0.05)
  x, y = fixtures.classification_data(n=64)
  model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])
  return model


class MirroredStrategyTest(tf.test.TestCase):

  def test_round_under_mirrored_strategy_matches_single_device(self):
    mirrored_strategy = _mirrored_strategy()
    if mirrored_strategy is None:
      self.skipTest('needs two logical CPU devices; run this file on its own (bazel does)')
    single = _round(tf.distribute.get_strategy())
    mirrored = _round(mirrored_strategy)
    self.assertEqual(mirrored_strategy.num_replicas_in_sync, 2)
    for want, got in zip(fixtures.masks_of(single).values(), fixtures.masks_of(mirrored).values(), strict=True):
      self.assertAllEqual(want, got)
    for want_layer, got_layer in zip(single.layers, mirrored.layers, strict=True):
      for want, got in zip(want_layer.layer.weights, got_layer.layer.weights, strict=True):
        self.assertAllClose(want, got, rtol=1e-5, atol=1e-6)
        # Every replica holds the same copy.
        copies = [v.numpy() for v in got.values]
        for copy in copies[1:]:
          self.assertAllEqual(copies[0], copy)
    self.assertEqual(ltp_tfmot.weights_remaining(mirrored), 0.5)

  def test_round_under_mirrored_strategy_rewinds_batchnorm_on_every_replica(self):
    mirrored_strategy = _mirrored_strategy()
    if mirrored_strategy is None:
      self.skipTest('needs two logical CPU devices; run this file on its own (bazel does)')
    with mirrored_strategy.scope():
      schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=4, rounds=1)
      model = keras.Sequential([
          keras.layers.Dense(16, input_shape=(8,), kernel_initializer=keras.initializers.GlorotUniform(0)),
          keras.layers.BatchNormalization(name='bn'),
          keras.layers.Dense(4, kernel_initializer=keras.initializers.GlorotUniform(1)),
      ])
      model = fixtures.compile_for_training(ltp_tfmot.prune_lottery_ticket(model, schedule))
    x, y = fixtures.classification_data(n=64)
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0,
              callbacks=[ltp_tfmot.UpdateLotteryStep()])  # the round ends at the last step
    for weight in model.get_layer('bn').weights:
      initial = 1.0 if 'gamma' in weight.name or 'variance' in weight.name else 0.0  # Keras's defaults
      for copy in weight.values:
        self.assertAllEqual(copy, tf.fill(copy.shape, initial), msg=weight.name)


if __name__ == '__main__':
  tf.test.main()
