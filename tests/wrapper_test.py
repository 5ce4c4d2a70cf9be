"""Tests for the lottery-ticket layer wrapper (ltp_tfmot.keras2.wrapper): its calls, its weights' names, its checks."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot.keras2 import wrapper
from tests import fixtures


class _DropoutDense(keras.layers.Dense):
  """A Dense layer with dropout on its outputs: it behaves differently in training."""

  def __init__(self, units, **kwargs):
    super().__init__(units, **kwargs)
    self.dropout = keras.layers.Dropout(0.5, seed=0)

  def call(self, inputs, training=None):
    return self.dropout(super().call(inputs), training=training)

  def get_prunable_weights(self):
    return [self.kernel]


def _steps(model):
  return [int(w.pruning_step.numpy()) for w in ltp_tfmot.lottery_wrappers(model)]


class PruneLotteryTicketCallTest(tf.test.TestCase, parameterized.TestCase):

  def _trained(self, steps):
    model = fixtures.compile_for_training(
        ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), ltp_tfmot.LotteryTicketSchedule(rate=0.5)))
    x, y = fixtures.classification_data(n=16 * steps)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])
    return model, x, y

  def test_fit_counts_one_step_per_batch(self):
    model, x, y = self._trained(steps=5)
    self.assertEqual(_steps(model), [5, 5, 5])
    model.fit(x[:48], y[:48], batch_size=16, epochs=1, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])
    self.assertEqual(_steps(model), [8, 8, 8])

  def test_inference_leaves_the_step_and_weights_unchanged(self):
    model, x, y = self._trained(steps=3)
    before = [w.numpy() for w in model.weights]
    model.predict(x, verbose=0)
    model.evaluate(x, y, verbose=0)
    model(x, training=False)
    model(x)
    self.assertEqual(_steps(model), [3, 3, 3])
    for want, got in zip(before, model.weights, strict=True):
      self.assertAllEqual(want, got)

  def test_training_tensor_checks_the_step_count_only_in_training_calls(self):
    model = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), ltp_tfmot.LotteryTicketSchedule(rate=0.5))
    x, _ = fixtures.classification_data(n=4)
    call = tf.function(lambda training: model(x, training=training),
                       input_signature=[tf.TensorSpec([], tf.bool)])
    call(tf.constant(False))
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, 'UpdateLotteryStep'):
      call(tf.constant(True))
    ltp_tfmot.take_snapshot(model)
    call(tf.constant(True))
    self.assertEqual(_steps(model), [0, 0, 0])  # a call is not a step: the optimizer's steps are

  def test_every_call_applies_the_masks(self):
    model, x, _ = self._trained(steps=1)
    ltp_tfmot.take_snapshot(model)
    ltp_tfmot.compute_next_masks(model)
    wrapper = model.layers[0]
    mask = wrapper.pruning_vars[0][1].numpy()
    kernel = wrapper.layer.kernel.numpy()
    self.assertGreater(np.count_nonzero(kernel[mask == 0]), 0)
    model(x, training=False)
    self.assertAllEqual(wrapper.layer.kernel.numpy(), kernel * mask)

  @parameterized.named_parameters(('inference', False), ('training', True))
  def test_training_flag_reaches_the_wrapped_layer(self, training):
    wrapper = ltp_tfmot.prune_lottery_ticket(_DropoutDense(8, kernel_initializer=keras.initializers.Ones()))
    wrapper.build((None, 4))
    ltp_tfmot.take_snapshot(wrapper)
    outputs = wrapper(tf.ones((2, 4)), training=training).numpy()
    if training:
      self.assertAllInSet(outputs, [0.0, 8.0])
      self.assertIn(0.0, outputs)
    else:
      self.assertAllEqual(outputs, np.full((2, 8), 4.0))


class WeightNamesTest(tf.test.TestCase, parameterized.TestCase):

  def _built(self, layer, input_shape):
    layer.build(input_shape)
    return layer

  def test_weight_paths_follow_the_sublayers_and_suffixes_are_their_shortest_unique_tails(self):
    lstm = self._built(keras.layers.LSTM(2), (None, 4, 3))
    self.assertEqual(wrapper.weight_paths(lstm), ('lstm_cell/kernel', 'lstm_cell/recurrent_kernel', 'lstm_cell/bias'))
    self.assertEqual(wrapper.variable_suffixes(lstm), ('kernel', 'recurrent_kernel', 'bias'))
    inputs = keras.Input((3, 4))
    attention = keras.layers.MultiHeadAttention(2, 3)
    attention(inputs, inputs)
    self.assertEqual(wrapper.weight_paths(attention)[:2], ('query/kernel', 'query/bias'))
    self.assertEqual(wrapper.variable_suffixes(attention)[:2], ('query_kernel', 'query_bias'))

  def test_a_dense_layer_keeps_the_plain_names(self):
    dense = self._built(keras.layers.Dense(2), (None, 3))
    self.assertEqual(wrapper.weight_paths(dense), ('kernel', 'bias'))
    self.assertEqual(wrapper.variable_suffixes(dense), ('kernel', 'bias'))


class UnitGranularityTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ('transposed_convolution', lambda: keras.layers.Conv2DTranspose(2, 2, name='up'), 'Conv2DTranspose'),
      ('separable_convolution', lambda: keras.layers.SeparableConv2D(2, 2, name='up'), 'SeparableConv2D'),
      ('recurrent', lambda: keras.layers.LSTM(2, name='up'), 'LSTM'),
  )
  def test_a_layer_without_units_is_refused_naming_the_fix(self, make_layer, kind):
    with self.assertRaisesWithLiteralMatch(
        ValueError, "granularity='unit' prunes the units of Dense, Conv1D/2D/3D and DepthwiseConv2D layers; "
        f"layer 'up' is a {kind}: wrap it with granularity='weight'"):
      ltp_tfmot.PruneLotteryTicket(make_layer(), granularity='unit')

  def test_a_layer_with_units_is_wrapped_with_its_group(self):
    w = ltp_tfmot.PruneLotteryTicket(keras.layers.Conv2D(2, 1), granularity='unit', unit_group='stem')
    self.assertEqual((w.granularity, w.unit_group), ('unit', 'stem'))


if __name__ == '__main__':
  tf.test.main()
