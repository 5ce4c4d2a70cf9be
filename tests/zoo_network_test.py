"""Tests for what the zoo's family modules build with: the lazy tf_keras and `ModelSpec`."""

import json

import tensorflow as tf
import tf_keras as keras

from ltp_tfmot.zoo import network


class NetworkTest(tf.test.TestCase):

  def test_lazy_module_resolves_attributes_of_the_module(self):
    self.assertIs(network.LazyModule('json').dumps, json.dumps)
    self.assertIs(network.keras.layers.Dense, keras.layers.Dense)
    self.assertEqual(repr(network.keras), "LazyModule('tf_keras')")

  def test_model_spec_fields(self):
    self.assertEqual(network.ModelSpec._fields, ('build', 'flat_input', 'description'))


if __name__ == '__main__':
  tf.test.main()
