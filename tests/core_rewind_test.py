"""Tests for what survivors and pruned weights start from at a rewind (`ltp_tfmot.core.rewind`)."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from ltp_tfmot.core import rewind


class SurvivorValuesTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.snapshot = tf.constant([[1.0, -2.0, 3.0, -4.0]])
    self.mask = tf.constant([[1.0, 1.0, 0.0, 1.0]])

  def test_rewind_starts_from_the_snapshot(self):
    self.assertAllEqual(rewind.survivor_values('rewind', self.snapshot, self.mask, seed=0), self.snapshot)

  def test_reinit_starts_from_the_fresh_draw(self):
    fresh = tf.fill([1, 4], 7.0)
    self.assertAllEqual(rewind.survivor_values('reinit', self.snapshot, self.mask, 0, fresh), fresh)

  def test_signed_constant_is_the_sign_times_the_snapshot_std(self):
    values = rewind.survivor_values('signed_constant', self.snapshot, self.mask, seed=0)
    self.assertAllClose(values, np.sign(self.snapshot) * np.std(self.snapshot.numpy()))

  def test_reshuffle_permutes_the_kept_values_among_the_kept_positions(self):
    values = rewind.survivor_values('reshuffle', self.snapshot, self.mask, seed=3).numpy()
    self.assertEqual(values[0, 2], 0.0)
    self.assertCountEqual(values[0, [0, 1, 3]], [1.0, -2.0, -4.0])
    again = rewind.survivor_values('reshuffle', self.snapshot, self.mask, seed=3)
    self.assertAllEqual(values, again)


class StartValuesTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(('zero', 'zero', [1.0, -2.0, 0.0, -4.0]),
                                  ('freeze', 'freeze', [1.0, -2.0, 30.0, -4.0]))
  def test_pruned_weights_are_zero_or_their_snapshot(self, action, expected):
    kept = tf.constant([[1.0, -2.0, 99.0, -4.0]])
    snapshot = tf.constant([[10.0, 20.0, 30.0, 40.0]])
    values = rewind.start_values(kept, snapshot, tf.constant([[1.0, 1.0, 0.0, 1.0]]), action, False, tf.float32)
    self.assertAllEqual(values, [expected])

  def test_dynamic_weight_rescaling_multiplies_survivors_by_all_over_kept(self):
    kept = tf.ones([1, 4])
    values = rewind.start_values(kept, kept, tf.constant([[1.0, 0.0, 0.0, 1.0]]), 'zero', True, tf.float32)
    self.assertAllEqual(values, [[2.0, 0.0, 0.0, 2.0]])


if __name__ == '__main__':
  tf.test.main()
