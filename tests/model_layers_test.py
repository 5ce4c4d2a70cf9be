"""Tests for walking a model's layers (ltp_tfmot.keras2.model_layers): nested models flattened in order."""

import tensorflow as tf
import tf_keras as keras

from ltp_tfmot.keras2 import model_layers
from tests import fixtures


class FlatLayersTest(tf.test.TestCase):

  def test_a_nested_model_is_replaced_by_its_layers_in_order(self):
    inputs = keras.Input((8,), name='x')
    outer = keras.Model(inputs, keras.layers.Dense(2, name='head')(fixtures.mlp(name='inner')(inputs)))
    self.assertEqual([layer.name for layer in model_layers.flat_layers(outer)],
                     ['x', 'hidden1', 'hidden2', 'output', 'head'])

  def test_a_layer_is_its_only_layer_and_a_list_is_flattened_item_by_item(self):
    dense = keras.layers.Dense(2, name='alone')
    self.assertEqual(model_layers.flat_layers(dense), [dense])
    layers = model_layers.flat_layers((dense, fixtures.mlp()))
    self.assertEqual([layer.name for layer in layers], ['alone', 'hidden1', 'hidden2', 'output'])
    self.assertFalse(any(isinstance(layer, keras.Model) for layer in layers))


if __name__ == '__main__':
  tf.test.main()
