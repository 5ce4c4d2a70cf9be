"""Tests for the CIFAR VGGs (structure, bad arguments) and open_lth's set-up for them."""

import tensorflow as tf
import tf_keras as keras

from ltp_tfmot.zoo import vgg


class VggTest(tf.test.TestCase):

  def test_vgg16_has_13_convs_with_bias_and_4_pools(self):
    model = vgg.vgg16(input_shape=(16, 16, 3), seed=0)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    self.assertEqual([c.name for c in convs], [f'conv{i}' for i in range(1, 14)])
    self.assertTrue(all(c.use_bias for c in convs))
    self.assertLen([layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)], 4)

  def test_bad_arguments_name_the_problem(self):
    with self.assertRaisesRegex(ValueError, r'vgg11 needs images of at least 16x16'):
      vgg.vgg11(input_shape=(8, 8, 3))
    with self.assertRaisesRegex(ValueError, r'a CIFAR VGG has depth \[11, 13, 16, 19\]'):
      vgg.cifar_vgg(12)

  def test_every_plan_is_registered_with_a_preset(self):
    self.assertEqual(vgg.VGG_CONVS, {11: 8, 13: 10, 16: 13, 19: 16})
    self.assertEqual(list(vgg.MODELS), [f'vgg{depth}' for depth in vgg.VGG_PLANS])
    self.assertEqual(list(vgg.PRESETS), list(vgg.MODELS))

  def test_vgg_keeps_its_output_layer_unpruned(self):
    preset = vgg.PRESETS['vgg16']
    self.assertEqual(preset.pruning['layer_rates'], {'output': 0.0})
    self.assertEqual(preset.training['milestones'], ('80ep', '120ep'))


if __name__ == '__main__':
  tf.test.main()
