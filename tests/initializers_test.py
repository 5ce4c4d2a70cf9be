"""Tests for the layers' initializers: where mask_1_action='reinit' draws each weight's fresh values from."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot.keras2 import initializers
from tests import fixtures


class _Scaled(keras.layers.Layer):
  """A layer with a weight that no `<name>_initializer` attribute describes."""

  def build(self, input_shape):
    self.scale = self.add_weight('scale', shape=(), initializer='ones')

  def call(self, inputs):
    return inputs * self.scale


class InitializerForTest(tf.test.TestCase):

  def test_a_dense_layer_gives_its_kernel_and_bias_initializers(self):
    layer = keras.layers.Dense(3)
    layer.build((None, 2))
    self.assertIs(initializers.initializer_for(layer, layer.kernel), layer.kernel_initializer)
    self.assertIs(initializers.initializer_for(layer, layer.bias), layer.bias_initializer)

  def test_a_kind_of_kernel_is_drawn_from_the_initializer_of_its_kind(self):
    depthwise = keras.layers.DepthwiseConv2D(2)
    depthwise.build((None, 3, 3, 2))
    self.assertIs(initializers.initializer_for(depthwise, depthwise.depthwise_kernel),
                  depthwise.depthwise_initializer)

  def test_a_weight_of_a_sublayer_is_drawn_from_the_sublayer_initializer(self):
    lstm = keras.layers.LSTM(3)
    lstm.build((None, 3, 2))
    self.assertIs(initializers.initializer_for(lstm, lstm.cell.recurrent_kernel), lstm.cell.recurrent_initializer)

  def test_an_lstm_bias_under_unit_forget_bias_starts_the_forget_gate_at_one(self):
    lstm = keras.layers.LSTM(2)
    lstm.build((None, 3, 2))
    initializer = initializers.initializer_for(lstm, lstm.cell.bias)
    self.assertAllEqual(initializer((8,), tf.float32), [0, 0, 1, 1, 0, 0, 0, 0])

  def test_a_weight_without_an_initializer_attribute_raises(self):
    layer = _Scaled(name='scaled')
    layer.build((None, 2))
    with self.assertRaisesRegex(ValueError, r"mask_1_action='reinit' needs layer 'scaled' to have an attribute "
                                r"scale_initializer to draw fresh values of '.*scale:0' from"):
      initializers.initializer_for(layer, layer.scale)


class FreshValueTest(tf.test.TestCase):

  def test_one_seed_draws_the_same_values_and_another_seed_others(self):
    layer = keras.layers.Dense(4)
    layer.build((None, 3))
    first = initializers.fresh_value(layer, layer.kernel, seed=5)
    self.assertEqual(first.shape, layer.kernel.shape)
    self.assertEqual(first.dtype, layer.kernel.dtype)
    self.assertLessEqual(np.abs(first.numpy()).max(), np.sqrt(6 / (3 + 4)))  # the Glorot-uniform bound
    self.assertAllEqual(first, initializers.fresh_value(layer, layer.kernel, seed=5))
    self.assertNotAllEqual(first, initializers.fresh_value(layer, layer.kernel, seed=6))

  def test_an_initializer_without_a_seed_draws_its_values(self):
    layer = keras.layers.Dense(4, bias_initializer=keras.initializers.Constant(0.5))
    layer.build((None, 3))
    self.assertAllEqual(initializers.fresh_value(layer, layer.bias, seed=5), np.full(4, 0.5))


class ReinitTest(tf.test.TestCase, parameterized.TestCase):
  """A round with mask_1_action='reinit' draws the survivors of every prunable layer type afresh."""

  @parameterized.named_parameters((layer, layer) for layer in fixtures.LAYER_MODELS)
  def test_reinit_draws_every_wrapped_layer_type_from_its_initializers(self, layer):
    build, _ = fixtures.LAYER_MODELS[layer]
    model = ltp_tfmot.prune_lottery_ticket(build(), ltp_tfmot.LotteryTicketSchedule(0.5), mask_1_action='reinit')
    ltp_tfmot.take_snapshot(model)
    ltp_tfmot.run_lottery_round(model)
    for w in ltp_tfmot.lottery_wrappers(model):
      for (weight, mask, _), snapshot in zip(w.pruning_vars, w.prunable_snapshots, strict=True):
        kept = mask.numpy() > 0
        self.assertAllEqual(weight.numpy()[~kept], np.zeros(int((~kept).sum())))
        self.assertFalse(np.any(np.isclose(weight.numpy()[kept], snapshot.numpy()[kept])))

  def test_reinit_of_an_lstm_starts_the_forget_gate_bias_at_one_as_keras_does(self):
    inputs = keras.Input((3, 2))
    model = ltp_tfmot.prune_lottery_ticket(keras.Model(inputs, keras.layers.LSTM(3)(inputs)),
                                           ltp_tfmot.LotteryTicketSchedule(0.5), mask_1_action='reinit')
    ltp_tfmot.take_snapshot(model)
    fixtures.perturb(model)
    ltp_tfmot.run_lottery_round(model)
    self.assertAllEqual(model.layers[1].layer.cell.bias, [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])


if __name__ == '__main__':
  tf.test.main()
