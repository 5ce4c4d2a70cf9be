"""open_lth's conventions for its CIFAR networks, shared by the zoo's ResNets and VGGs.

The initialisation (one seed per tensor, Kaiming-normal kernels, PyTorch's
biases, uniform BatchNorm scales), BatchNorm with PyTorch's settings, convs
with PyTorch's symmetric padding, the Dense 'output' layer and the input
shape check: what makes a ResNet or VGG here match open_lth's PyTorch one.
"""

from ltp_tfmot.zoo import network

keras = network.keras


class Initializers:
  """open_lth's initialisation, one seed per tensor: seed, seed + 1, ... in the order they are asked for.

  Kernels are Kaiming-normal (PyTorch's `kaiming_normal_`: untruncated,
  std sqrt(2 / fan_in)), biases uniform in +-1 / sqrt(fan_in) (PyTorch's
  default), BatchNorm scales uniform in [0, 1) and offsets 0 (open_lth's
  'uniform' BatchNorm init).
  """

  def __init__(self, seed):
    self._seed = seed
    self._offset = 0

  def _next_seed(self):
    seed = None if self._seed is None else self._seed + self._offset
    self._offset += 1
    return seed

  def kernel(self):
    return keras.initializers.VarianceScaling(2.0, 'fan_in', 'untruncated_normal', seed=self._next_seed())

  def bias(self, fan_in):
    bound = 1.0 / fan_in**0.5
    return keras.initializers.RandomUniform(-bound, bound, seed=self._next_seed())

  def batchnorm_scale(self):
    return keras.initializers.RandomUniform(0.0, 1.0, seed=self._next_seed())


def batchnorm(init, name):
  """A BatchNormalization layer as open_lth's: its scale from `init`, PyTorch's momentum and epsilon."""
  # PyTorch's defaults (momentum 0.1 of the new batch, eps 1e-5), which open_lth trains with.
  return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, gamma_initializer=init.batchnorm_scale(),
                                         name=name)


def conv(x, filters, kernel_size, strides, init, name, use_bias=False):
  """A conv with PyTorch's symmetric padding (kernel_size // 2 on every side), also when strided.

  Keras' 'same' pads a strided 3x3 conv on the bottom and right only, which
  would shift the main path one pixel against the 1x1 projection shortcut.
  """
  padding = kernel_size // 2
  if strides > 1 and padding:
    x = keras.layers.ZeroPadding2D(padding, name=name + '_pad')(x)
  fan_in = int(x.shape[-1]) * kernel_size * kernel_size
  return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding='valid' if strides > 1 else 'same',
                             use_bias=use_bias, kernel_initializer=init.kernel(),
                             bias_initializer=init.bias(fan_in) if use_bias else 'zeros', name=name)(x)


def output(x, num_classes, init):
  """The Dense layer named 'output' on `x`, with open_lth's kernel and bias initialisation."""
  fan_in = int(x.shape[-1])
  return keras.layers.Dense(num_classes, kernel_initializer=init.kernel(), bias_initializer=init.bias(fan_in),
                            name='output')(x)


def check_image_shape(input_shape, name, minimum):
  """`input_shape` as a tuple (height, width, channels).

  Raises:
    ValueError: for another shape, or images smaller than `minimum` pixels (`name` says whose).
  """
  shape = tuple(input_shape)
  if len(shape) != 3 or any(not isinstance(s, int) or s < 1 for s in shape):
    raise ValueError(f'{name} needs input_shape (height, width, channels) of positive integers, got {input_shape!r}')
  if min(shape[:2]) < minimum:
    raise ValueError(f'{name} needs images of at least {minimum}x{minimum} pixels (its pooling halves them), '
                     f'got input_shape {shape}')
  return shape
