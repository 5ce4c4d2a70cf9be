"""Tests for lottery-ticket training under mixed-precision policies (float32 variables, 16-bit compute)."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from tests import fixtures


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


if __name__ == '__main__':
  tf.test.main()
