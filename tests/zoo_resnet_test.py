"""Tests for the CIFAR ResNets (structure, width, bad arguments) and open_lth's set-up for them."""

import tensorflow as tf
import tf_keras as keras

from ltp_tfmot import settings
from ltp_tfmot.experiment import recipes
from ltp_tfmot.zoo import resnet


class ResnetTest(tf.test.TestCase):

  def test_resnet20_keras_count_adds_the_batchnorm_moving_statistics(self):
    model = resnet.resnet20(seed=0)
    batchnorm_channels = sum(int(layer.gamma.shape[0]) for layer in model.layers
                             if isinstance(layer, keras.layers.BatchNormalization))
    self.assertEqual(model.count_params(), 272474 + 2 * batchnorm_channels)

  def test_resnet_width_multiplies_every_stage(self):
    model = resnet.resnet20(seed=0, width=2)
    self.assertEqual(model.get_layer('conv0').filters, 32)
    self.assertEqual(model.get_layer('stage3_block3_conv2').filters, 128)
    self.assertEqual(model.get_layer('output').kernel.shape, (128, 10))

  def test_resnet20_has_19_convs_2_projection_shortcuts_and_no_conv_bias(self):
    model = resnet.resnet20(input_shape=(8, 8, 3), seed=0)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    self.assertLen(convs, 21)
    self.assertEqual(sorted(c.name for c in convs if 'shortcut' in c.name),
                     ['stage2_block1_shortcut_conv', 'stage3_block1_shortcut_conv'])
    self.assertFalse(any(c.use_bias for c in convs))
    self.assertEqual(model.get_layer('stage3_block3_relu2').output.shape[1:], (2, 2, 64))

  def test_bad_arguments_name_the_problem(self):
    with self.assertRaisesRegex(ValueError, r'depth 6n \+ 2'):
      resnet.cifar_resnet(21)
    with self.assertRaisesRegex(ValueError, 'width must be a number > 0'):
      resnet.resnet20(width=0.01)

  def test_every_depth_is_registered_with_a_preset(self):
    self.assertEqual(list(resnet.MODELS), [f'resnet{depth}' for depth in resnet.RESNET_DEPTHS])
    self.assertEqual(list(resnet.PRESETS), list(resnet.MODELS))

  def test_resnet20_is_open_lths_recipe(self):
    preset = resnet.PRESETS['resnet20']
    training = recipes.build_training(settings.TrainingConfig(**preset.training), steps_per_epoch=391)
    self.assertEqual(training.iterations, 62560)
    self.assertEqual(training.schedule.milestones, (31280, 46920))
    self.assertIsInstance(training.optimizer, recipes.L2SGD)
    self.assertEqual((training.optimizer.momentum, training.optimizer.l2), (0.9, 1e-4))
    self.assertEqual((preset.pruning['scope'], preset.pruning['rate'], preset.pruning['layer_rates'],
                      preset.training['augment']), ('global', 0.2, {}, True))
    self.assertEqual(settings.TrainingConfig(**preset.training).warmup_steps, 0)


if __name__ == '__main__':
  tf.test.main()
