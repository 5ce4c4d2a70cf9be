"""Tests for applying the masks: `LotteryPruning`, the wrappers' masking of their weights."""

import numpy as np
import tensorflow as tf
import tf_keras as keras
from tf_keras.src.mixed_precision import autocast_variable

import ltp_tfmot
from ltp_tfmot.keras2 import masking

_WEIGHT = [[1.0, -2.0], [3.0, -4.0]]
_MASK = [[1.0, 0.0], [0.0, 1.0]]
_SNAPSHOT = [[10.0, 20.0], [30.0, 40.0]]


def _pruning(freeze):
  """A `LotteryPruning` of one 2x2 weight (half of it pruned), and that weight."""
  weight = tf.Variable(_WEIGHT)
  mask = tf.Variable(_MASK)
  pruning = masking.LotteryPruning(
      snapshots=[tf.Variable(_SNAPSHOT)], freeze=freeze, training_step_fn=lambda: tf.constant(0, tf.int64),
      pruning_vars=[(weight, mask, tf.Variable(0.0))], pruning_schedule=ltp_tfmot.LotteryTicketSchedule(0.2),
      block_size=(1, 1), block_pooling_type='AVG')
  return pruning, weight


class LotteryPruningTest(tf.test.TestCase):

  def test_zero_gives_pruned_weights_the_value_zero_without_assigning_it(self):
    pruning, weight = _pruning(freeze=False)
    [(value, variable)] = pruning.masked_values()
    self.assertIs(variable, weight)
    self.assertAllEqual(value, [[1.0, 0.0], [0.0, -4.0]])
    self.assertAllEqual(weight, _WEIGHT)

  def test_freeze_holds_pruned_weights_at_their_snapshot(self):
    pruning, _ = _pruning(freeze=True)
    [(value, _)] = pruning.masked_values()
    self.assertAllEqual(value, [[1.0, 20.0], [30.0, -4.0]])

  def test_the_mask_op_assigns_the_masked_values(self):
    pruning, weight = _pruning(freeze=False)
    pruning.weight_mask_op()
    self.assertAllEqual(weight, [[1.0, 0.0], [0.0, -4.0]])

  def test_a_mixed_precision_wrapper_masks_its_float32_weights_in_float32(self):
    keras.mixed_precision.set_global_policy('mixed_float16')
    try:
      model = ltp_tfmot.prune_lottery_ticket(keras.Sequential([keras.layers.Dense(3, input_shape=(4,))]))
      model.build((None, 4))
    finally:
      keras.mixed_precision.set_global_policy('float32')
    wrapper = model.layers[0]
    kernel = wrapper.layer.kernel
    kernel.assign(np.full((4, 3), 1.0 + 2.0**-20, np.float32))  # not a float16 value
    with autocast_variable.enable_auto_cast_variables(tf.float16):  # as the wrapper's call reads its variables
      [(value, variable)] = wrapper.pruning_obj.masked_values()
    self.assertIs(variable, kernel)
    self.assertEqual(value.dtype, tf.float32)
    self.assertAllEqual(value, np.full((4, 3), 1.0 + 2.0**-20, np.float32))


if __name__ == '__main__':
  tf.test.main()
