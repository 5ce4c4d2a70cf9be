"""Tests that a lottery round under MirroredStrategy matches a single-device run."""

import tensorflow as tf

import ltp_tfmot
from tests import fixtures


def setUpModule():
  fixtures.split_cpu_in_two()


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
    devices = tf.config.list_logical_devices('CPU')
    if len(devices) < 2:
      self.skipTest('needs two logical CPU devices; run this file on its own (bazel does)')
    single = _round(tf.distribute.get_strategy())
    mirrored_strategy = tf.distribute.MirroredStrategy([d.name for d in devices[:2]])
    mirrored = _round(mirrored_strategy)
    self.assertEqual(mirrored_strategy.num_replicas_in_sync, 2)
    for want, got in zip(fixtures.masks_of(single).values(), fixtures.masks_of(mirrored).values()):
      self.assertAllEqual(want, got)
    for want_layer, got_layer in zip(single.layers, mirrored.layers):
      for want, got in zip(want_layer.layer.weights, got_layer.layer.weights):
        self.assertAllClose(want, got, rtol=1e-5, atol=1e-6)
        # Every replica holds the same copy.
        copies = [v.numpy() for v in got.values]
        for copy in copies[1:]:
          self.assertAllEqual(copies[0], copy)
    self.assertEqual(ltp_tfmot.weights_remaining(mirrored), 0.5)


if __name__ == '__main__':
  tf.test.main()
