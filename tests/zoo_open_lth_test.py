"""Tests for open_lth's conventions the ResNets and VGGs share: padding, seeding, initialisation, shape checks."""

import numpy as np
import tensorflow as tf
import tf_keras as keras

from ltp_tfmot.zoo import open_lth
from ltp_tfmot.zoo import resnet
from ltp_tfmot.zoo import vgg


class OpenLthTest(tf.test.TestCase):

  def test_strided_conv_and_shortcut_sample_the_same_pixels(self):
    # PyTorch pads a strided 3x3 conv by one on every side, so output pixel i is centred on input pixel 2i, the
    # pixel the 1x1 stride-2 shortcut reads; Keras' 'same' would centre it on 2i + 1.
    model = resnet.resnet20(input_shape=(8, 8, 3), seed=0)
    probe = keras.Model(model.input, model.get_layer('stage2_block1_conv1').output)
    conv = model.get_layer('stage2_block1_conv1')
    kernel = np.zeros(conv.kernel.shape, np.float32)
    kernel[1, 1, 0, 0] = 1.0  # the centre tap only: output = the input pixel under the centre
    conv.kernel.assign(kernel)
    stem = keras.Model(model.input, model.get_layer('stage1_block3_relu2').output)
    x = np.random.RandomState(0).randn(1, 8, 8, 3).astype(np.float32)
    self.assertAllClose(probe(x)[0, :, :, 0], stem(x)[0, ::2, ::2, 0])

  def test_same_seed_same_weights_other_seed_other_weights(self):
    first, again, other = (resnet.resnet20(input_shape=(8, 8, 3), seed=s) for s in (3, 3, 4))
    for a, b in zip(first.weights, again.weights, strict=True):
      self.assertAllEqual(a, b)
    self.assertNotAllClose(first.get_layer('conv0').kernel, other.get_layer('conv0').kernel)
    # Each tensor has its own seed: two same-shape kernels of one model differ.
    self.assertNotAllClose(first.get_layer('stage1_block1_conv1').kernel, first.get_layer('stage1_block1_conv2').kernel)

  def test_initialisation_is_kaiming_normal_with_uniform_batchnorm_scales(self):
    model = vgg.vgg16(seed=0)
    kernel = model.get_layer('conv13').kernel.numpy()  # 3 * 3 * 512 fan-in, 2.4M draws
    self.assertAllClose(kernel.std(), np.sqrt(2.0 / (9 * 512)), rtol=0.01)
    gamma = model.get_layer('bn13').gamma.numpy()
    self.assertTrue(np.all((gamma >= 0) & (gamma < 1)))
    self.assertAllEqual(model.get_layer('bn13').beta, np.zeros(512))

  def test_image_shape_check_names_the_network(self):
    self.assertEqual(open_lth.check_image_shape([8, 8, 3], 'net', 4), (8, 8, 3))
    with self.assertRaisesRegex(ValueError, r'net needs input_shape \(height, width, channels\)'):
      open_lth.check_image_shape((8, 8), 'net', 4)
    with self.assertRaisesRegex(ValueError, 'net needs images of at least 4x4 pixels'):
      open_lth.check_image_shape((2, 8, 3), 'net', 4)


if __name__ == '__main__':
  tf.test.main()
