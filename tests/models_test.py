"""Tests for the reference networks: structure, parameter counts, training, and two lottery levels."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot import models as models_lib
from ltp_tfmot.experiment import models as experiment_models

# Trainable parameters for 10 classes: what open_lth's PyTorch modules hold (BatchNorm scales and offsets, not the
# moving statistics, which Keras counts as non-trainable weights).
TRAINABLE_PARAMETERS = {
    'resnet20': 272474, 'resnet32': 466906, 'resnet44': 661338, 'resnet56': 855770, 'resnet110': 1730714,
    'vgg11': 9231114, 'vgg13': 9416010, 'vgg16': 14728266, 'vgg19': 20040522,
}


def _trainable_count(model):
  return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def _images(n, size, seed=0):
  rng = np.random.RandomState(seed)
  return rng.randn(n, size, size, 3).astype(np.float32), rng.randint(0, 10, n).astype(np.int64)


def _wrapped_names(model):
  return sorted(w.layer.name for w in ltp_tfmot.lottery_wrappers(model))


class RegistryTest(tf.test.TestCase):

  def test_registry_names_every_network_of_the_models_module(self):
    self.assertEqual(experiment_models.RESNET_DEPTHS, models_lib.RESNET_DEPTHS)
    self.assertEqual(experiment_models.VGG_CONVS,
                     {depth: sum(s != 'M' for s in plan) for depth, plan in models_lib.VGG_PLANS.items()})
    for name in experiment_models.model_names():
      self.assertTrue(callable(getattr(models_lib, name)), name)

  def test_lenet_builder_flattens_the_input_shape(self):
    model = experiment_models.get_model_spec('lenet_300_100').build((28, 28, 1), 10, 0)
    self.assertEqual(model.input_shape, (None, 784))


class ParameterCountTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(*[(name, name) for name in TRAINABLE_PARAMETERS])
  def test_registered_network_has_the_reference_parameter_count(self, name):
    model = experiment_models.get_model_spec(name).build((32, 32, 3), 10, 0)
    self.assertEqual(_trainable_count(model), TRAINABLE_PARAMETERS[name])
    self.assertEqual(model.output_shape, (None, 10))
    self.assertIn(name, experiment_models.model_names())

  def test_resnet20_keras_count_adds_the_batchnorm_moving_statistics(self):
    model = models_lib.resnet20(seed=0)
    batchnorm_channels = sum(int(layer.gamma.shape[0]) for layer in model.layers
                             if isinstance(layer, keras.layers.BatchNormalization))
    self.assertEqual(model.count_params(), 272474 + 2 * batchnorm_channels)

  def test_resnet_width_multiplies_every_stage(self):
    model = models_lib.resnet20(seed=0, width=2)
    self.assertEqual(model.get_layer('conv0').filters, 32)
    self.assertEqual(model.get_layer('stage3_block3_conv2').filters, 128)
    self.assertEqual(model.get_layer('output').kernel.shape, (128, 10))


class StructureTest(tf.test.TestCase):

  def test_resnet20_has_19_convs_2_projection_shortcuts_and_no_conv_bias(self):
    model = models_lib.resnet20(input_shape=(8, 8, 3), seed=0)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    self.assertLen(convs, 21)
    self.assertEqual(sorted(c.name for c in convs if 'shortcut' in c.name),
                     ['stage2_block1_shortcut_conv', 'stage3_block1_shortcut_conv'])
    self.assertFalse(any(c.use_bias for c in convs))
    self.assertEqual(model.get_layer('stage3_block3_relu2').output.shape[1:], (2, 2, 64))

  def test_strided_conv_and_shortcut_sample_the_same_pixels(self):
    # PyTorch pads a strided 3x3 conv by one on every side, so output pixel i is centred on input pixel 2i, the
    # pixel the 1x1 stride-2 shortcut reads; Keras' 'same' would centre it on 2i + 1.
    model = models_lib.resnet20(input_shape=(8, 8, 3), seed=0)
    probe = keras.Model(model.input, model.get_layer('stage2_block1_conv1').output)
    conv = model.get_layer('stage2_block1_conv1')
    kernel = np.zeros(conv.kernel.shape, np.float32)
    kernel[1, 1, 0, 0] = 1.0  # the centre tap only: output = the input pixel under the centre
    conv.kernel.assign(kernel)
    stem = keras.Model(model.input, model.get_layer('stage1_block3_relu2').output)
    x, _ = _images(1, 8)
    self.assertAllClose(probe(x)[0, :, :, 0], stem(x)[0, ::2, ::2, 0])

  def test_vgg16_has_13_convs_with_bias_and_4_pools(self):
    model = models_lib.vgg16(input_shape=(16, 16, 3), seed=0)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    self.assertEqual([c.name for c in convs], [f'conv{i}' for i in range(1, 14)])
    self.assertTrue(all(c.use_bias for c in convs))
    self.assertLen([layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)], 4)

  def test_same_seed_same_weights_other_seed_other_weights(self):
    first, again, other = (models_lib.resnet20(input_shape=(8, 8, 3), seed=s) for s in (3, 3, 4))
    for a, b in zip(first.weights, again.weights, strict=True):
      self.assertAllEqual(a, b)
    self.assertNotAllClose(first.get_layer('conv0').kernel, other.get_layer('conv0').kernel)
    # Each tensor has its own seed: two same-shape kernels of one model differ.
    self.assertNotAllClose(first.get_layer('stage1_block1_conv1').kernel, first.get_layer('stage1_block1_conv2').kernel)

  def test_initialisation_is_kaiming_normal_with_uniform_batchnorm_scales(self):
    model = models_lib.vgg16(seed=0)
    kernel = model.get_layer('conv13').kernel.numpy()  # 3 * 3 * 512 fan-in, 2.4M draws
    self.assertAllClose(kernel.std(), np.sqrt(2.0 / (9 * 512)), rtol=0.01)
    gamma = model.get_layer('bn13').gamma.numpy()
    self.assertTrue(np.all((gamma >= 0) & (gamma < 1)))
    self.assertAllEqual(model.get_layer('bn13').beta, np.zeros(512))

  def test_bad_arguments_name_the_problem(self):
    with self.assertRaisesRegex(ValueError, r'depth 6n \+ 2'):
      models_lib.cifar_resnet(21)
    with self.assertRaisesRegex(ValueError, 'width must be a number > 0'):
      models_lib.resnet20(width=0.01)
    with self.assertRaisesRegex(ValueError, r'vgg11 needs images of at least 16x16'):
      models_lib.vgg11(input_shape=(8, 8, 3))
    with self.assertRaisesRegex(ValueError, r'a CIFAR VGG has depth \[11, 13, 16, 19\]'):
      models_lib.cifar_vgg(12)


class LotteryLevelsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(('resnet20', 'resnet20', 8), ('vgg11', 'vgg11', 16))
  def test_trains_and_runs_two_lottery_levels(self, name, size):
    model = experiment_models.get_model_spec(name).build((size, size, 3), 10, 0)
    prunable = ltp_tfmot.prunable_layer_names(model)
    convs = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    self.assertEqual(sorted(prunable), sorted(convs + ['output']))
    model = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(0.2), scope='global',
                                           layer_rates={'output': 0.1})
    self.assertEqual(_wrapped_names(model), sorted(prunable))
    self.assertTrue(all(isinstance(layer, keras.layers.BatchNormalization)
                        for layer in model.layers if 'bn' in layer.name))
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _images(4, size)
    ltp_tfmot.take_snapshot(model)
    losses = []
    for _ in range(2):
      history = model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])
      losses.append(history.history['loss'][0])
      ltp_tfmot.run_lottery_round(model)
    self.assertTrue(np.all(np.isfinite(losses)))
    sparsity = ltp_tfmot.layer_sparsity(model)
    self.assertAllClose(sparsity['output'], 1 - 0.9**2, atol=0.01)
    self.assertAllClose(ltp_tfmot.weights_remaining(model), 0.64, atol=0.01)


if __name__ == '__main__':
  tf.test.main()
