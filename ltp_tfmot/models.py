"""Reference networks of Frankle & Carbin (2019) and open_lth's CIFAR ResNets and VGGs, as tf_keras models."""

import tf_keras as keras


def lenet_300_100(input_dim=784, num_classes=10, seed=None):
  """LeNet-300-100: two ReLU hidden layers of 300 and 100 units, Glorot-normal init.

  The output layer is named 'output', so `layer_rates={'output': rate / 2}`
  prunes it at half rate, as in the paper.

  Args:
    input_dim: Size of the flattened input.
    num_classes: Number of output logits.
    seed: Seed of the Glorot-normal initializers (None: unseeded).

  Returns:
    An uncompiled `tf_keras.Sequential` model producing logits.
  """
  def init(offset):
    return keras.initializers.GlorotNormal(seed=None if seed is None else seed + offset)

  return keras.Sequential([
      keras.layers.Dense(300, activation='relu', kernel_initializer=init(0), input_shape=(input_dim,),
                         name='hidden_300'),
      keras.layers.Dense(100, activation='relu', kernel_initializer=init(1), name='hidden_100'),
      keras.layers.Dense(num_classes, kernel_initializer=init(2), name='output'),
  ], name='lenet_300_100')


def _conv_net(name, filters, input_shape, num_classes, seed):
  """Frankle & Carbin's Conv-2/4/6: 3x3 conv pairs, max-pooling after each pair, FC 256-256-out."""
  counter = iter(range(len(filters) + 3))

  def init():
    offset = next(counter)
    return keras.initializers.GlorotNormal(seed=None if seed is None else seed + offset)

  layers = [keras.layers.InputLayer(input_shape=tuple(input_shape), name='input')]
  for i, width in enumerate(filters):
    layers.append(keras.layers.Conv2D(width, 3, padding='same', activation='relu', kernel_initializer=init(),
                                      name=f'conv{i + 1}'))
    if i % 2 == 1:
      layers.append(keras.layers.MaxPooling2D(2, name=f'pool{i // 2 + 1}'))
  layers += [
      keras.layers.Flatten(name='flatten'),
      keras.layers.Dense(256, activation='relu', kernel_initializer=init(), name='fc1'),
      keras.layers.Dense(256, activation='relu', kernel_initializer=init(), name='fc2'),
      keras.layers.Dense(num_classes, kernel_initializer=init(), name='output'),
  ]
  return keras.Sequential(layers, name=name)


def conv2(input_shape=(32, 32, 3), num_classes=10, seed=None):
  """Conv-2: conv 64-64, max-pool, FC 256-256-10; 3x3 'same' convs, ReLU, Glorot-normal init.

  Layers are named conv1, conv2, fc1, fc2 and output. The paper prunes the
  convolutions at 10% per round, the dense layers at 20% and the output at
  10%: `layer_rates={'conv1': 0.1, 'conv2': 0.1, 'output': 0.1}` with rate 0.2.

  Args:
    input_shape: Shape of one image, (height, width, channels).
    num_classes: Number of output logits.
    seed: Seed of the Glorot-normal initializers (None: unseeded).

  Returns:
    An uncompiled `tf_keras.Sequential` model producing logits.
  """
  return _conv_net('conv2', [64, 64], input_shape, num_classes, seed)


def conv4(input_shape=(32, 32, 3), num_classes=10, seed=None):
  """Conv-4: conv 64-64, pool, 128-128, pool, FC 256-256-10 (see `conv2`; convs conv1..conv4)."""
  return _conv_net('conv4', [64, 64, 128, 128], input_shape, num_classes, seed)


def conv6(input_shape=(32, 32, 3), num_classes=10, seed=None):
  """Conv-6: conv 64-64, pool, 128-128, pool, 256-256, pool, FC 256-256-10 (see `conv2`).

  The paper prunes its convolutions (conv1..conv6) at 15% per round.
  """
  return _conv_net('conv6', [64, 64, 128, 128, 256, 256], input_shape, num_classes, seed)


class _Initializers:
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


def _batchnorm(init, name):
  # PyTorch's defaults (momentum 0.1 of the new batch, eps 1e-5), which open_lth trains with.
  return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, gamma_initializer=init.batchnorm_scale(),
                                         name=name)


def _conv(x, filters, kernel_size, strides, init, name, use_bias=False):
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


def _output(x, num_classes, init):
  fan_in = int(x.shape[-1])
  return keras.layers.Dense(num_classes, kernel_initializer=init.kernel(), bias_initializer=init.bias(fan_in),
                            name='output')(x)


def _check_image_shape(input_shape, name, minimum):
  shape = tuple(input_shape)
  if len(shape) != 3 or any(not isinstance(s, int) or s < 1 for s in shape):
    raise ValueError(f'{name} needs input_shape (height, width, channels) of positive integers, got {input_shape!r}')
  if min(shape[:2]) < minimum:
    raise ValueError(f'{name} needs images of at least {minimum}x{minimum} pixels (its pooling halves them), '
                     f'got input_shape {shape}')
  return shape


RESNET_DEPTHS = (20, 32, 44, 56, 110)


def cifar_resnet(depth, input_shape=(32, 32, 3), num_classes=10, seed=None, width=1):
  """He et al.'s (2016) ResNet for CIFAR-10, as open_lth builds it (`cifar_resnet_<depth>`).

  A 3x3 conv and BatchNorm, then three stages of (depth - 2) / 6 basic blocks
  (two 3x3 convs with BatchNorm, ReLU after the first and after the residual
  sum) with 16, 32 and 64 filters times `width`; the first block of stages 2
  and 3 halves the image with stride 2 and takes a 1x1-conv + BatchNorm
  projection shortcut. Global average pooling and a Dense layer named
  'output'. Convs have no bias. Initialisation as open_lth's defaults:
  Kaiming-normal kernels, BatchNorm scales uniform in [0, 1).

  Layers are named 'conv0'/'bn0' (the stem), 'stage{s}_block{b}_conv1',
  '..._bn1', '..._conv2', '..._bn2', '..._shortcut_conv', '..._shortcut_bn'
  and 'output': the pattern '*conv*' names every conv. ResNet-20 at width 1
  has 272,474 trainable parameters for 10 classes (the count of Frankle &
  Carbin and open_lth; Keras adds 1,568 BatchNorm moving statistics).

  Args:
    depth: 6n + 2 layers (20, 32, 44, 56, 110, ...).
    input_shape: Shape of one image, (height, width, channels).
    num_classes: Number of output logits.
    seed: Seed of the initializers (None: unseeded).
    width: Filter multiplier (open_lth's `cifar_resnet_<depth>_<16 * width>`);
      16 * width must be a whole number.

  Returns:
    An uncompiled functional `tf_keras.Model` producing logits.

  Raises:
    ValueError: for a depth that is not 6n + 2, a bad width or input shape.

  Example:

  ```python
  model = ltp_tfmot.models.cifar_resnet(20, seed=0)
  model = ltp_tfmot.prune_lottery_ticket(model, scope='global')
  ```
  """
  if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
    raise ValueError(f'a CIFAR ResNet has depth 6n + 2 with n >= 1 (20, 32, 44, 56, 110), got {depth!r}')
  base = 16 * width if isinstance(width, (int, float)) and not isinstance(width, bool) else None
  if base is None or base < 1 or base != int(base):
    raise ValueError(f'width must be a number > 0 with 16 * width a whole number of filters, got {width!r}')
  shape = _check_image_shape(input_shape, f'resnet{depth}', 4)
  init = _Initializers(seed)
  inputs = keras.Input(shape, name='input')
  x = _conv(inputs, int(base), 3, 1, init, 'conv0')
  x = keras.layers.ReLU(name='relu0')(_batchnorm(init, 'bn0')(x))
  for stage, filters in enumerate((int(base), int(base) * 2, int(base) * 4), start=1):
    for block in range(1, (depth - 2) // 6 + 1):
      name = f'stage{stage}_block{block}'
      strides = 2 if stage > 1 and block == 1 else 1
      out = _conv(x, filters, 3, strides, init, name + '_conv1')
      out = keras.layers.ReLU(name=name + '_relu1')(_batchnorm(init, name + '_bn1')(out))
      out = _batchnorm(init, name + '_bn2')(_conv(out, filters, 3, 1, init, name + '_conv2'))
      shortcut = x
      if strides > 1 or int(x.shape[-1]) != filters:
        shortcut = _batchnorm(init, name + '_shortcut_bn')(_conv(x, filters, 1, strides, init, name + '_shortcut_conv'))
      x = keras.layers.ReLU(name=name + '_relu2')(keras.layers.Add(name=name + '_add')([out, shortcut]))
  x = keras.layers.GlobalAveragePooling2D(name='pool')(x)
  model_name = f'resnet{depth}' + ('' if width == 1 else f'_w{width}')
  return keras.Model(inputs, _output(x, num_classes, init), name=model_name)


def resnet20(input_shape=(32, 32, 3), num_classes=10, seed=None, width=1):
  """ResNet-20 for CIFAR (3 blocks per stage); see `cifar_resnet`."""
  return cifar_resnet(20, input_shape, num_classes, seed, width)


def resnet32(input_shape=(32, 32, 3), num_classes=10, seed=None, width=1):
  """ResNet-32 for CIFAR (5 blocks per stage); see `cifar_resnet`."""
  return cifar_resnet(32, input_shape, num_classes, seed, width)


def resnet44(input_shape=(32, 32, 3), num_classes=10, seed=None, width=1):
  """ResNet-44 for CIFAR (7 blocks per stage); see `cifar_resnet`."""
  return cifar_resnet(44, input_shape, num_classes, seed, width)


def resnet56(input_shape=(32, 32, 3), num_classes=10, seed=None, width=1):
  """ResNet-56 for CIFAR (9 blocks per stage); see `cifar_resnet`."""
  return cifar_resnet(56, input_shape, num_classes, seed, width)


def resnet110(input_shape=(32, 32, 3), num_classes=10, seed=None, width=1):
  """ResNet-110 for CIFAR (18 blocks per stage); see `cifar_resnet`."""
  return cifar_resnet(110, input_shape, num_classes, seed, width)


# Filters of each conv, 'M' a 2x2 max-pool: open_lth's cifar_vgg plans (Simonyan & Zisserman's A, B, D, E).
VGG_PLANS = {
    11: (64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512),
    13: (64, 64, 'M', 128, 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512),
    16: (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512),
    19: (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512),
}


def cifar_vgg(depth, input_shape=(32, 32, 3), num_classes=10, seed=None):
  """VGG-11/13/16/19 for CIFAR-10, as open_lth builds it (`cifar_vgg_<depth>`).

  3x3 convs (with bias) each followed by BatchNorm and ReLU, four 2x2
  max-pools between the stages, then global average pooling (open_lth's 2x2
  average pool of the 2x2 map left of a 32x32 image) and one Dense layer named
  'output'. Initialisation as open_lth's defaults (see `cifar_resnet`).

  Layers are named conv1..convN, bn1..bnN, pool1..pool4 and 'output'; open_lth
  leaves the output layer unpruned: `layer_rates={'output': 0.0}`.

  Args:
    depth: 11, 13, 16 or 19.
    input_shape: Shape of one image, (height, width, channels); at least
      16x16 (four pools).
    num_classes: Number of output logits.
    seed: Seed of the initializers (None: unseeded).

  Returns:
    An uncompiled functional `tf_keras.Model` producing logits.

  Raises:
    ValueError: for another depth or a bad input shape.
  """
  if depth not in VGG_PLANS:
    raise ValueError(f'a CIFAR VGG has depth {sorted(VGG_PLANS)}, got {depth!r}')
  shape = _check_image_shape(input_shape, f'vgg{depth}', 16)
  init = _Initializers(seed)
  inputs = x = keras.Input(shape, name='input')
  convs = pools = 0
  for spec in VGG_PLANS[depth]:
    if spec == 'M':
      pools += 1
      x = keras.layers.MaxPooling2D(2, name=f'pool{pools}')(x)
    else:
      convs += 1
      x = _conv(x, spec, 3, 1, init, f'conv{convs}', use_bias=True)
      x = keras.layers.ReLU(name=f'relu{convs}')(_batchnorm(init, f'bn{convs}')(x))
  x = keras.layers.GlobalAveragePooling2D(name='global_pool')(x)
  return keras.Model(inputs, _output(x, num_classes, init), name=f'vgg{depth}')


def vgg11(input_shape=(32, 32, 3), num_classes=10, seed=None):
  """VGG-11 for CIFAR (8 convs); see `cifar_vgg`."""
  return cifar_vgg(11, input_shape, num_classes, seed)


def vgg13(input_shape=(32, 32, 3), num_classes=10, seed=None):
  """VGG-13 for CIFAR (10 convs); see `cifar_vgg`."""
  return cifar_vgg(13, input_shape, num_classes, seed)


def vgg16(input_shape=(32, 32, 3), num_classes=10, seed=None):
  """VGG-16 for CIFAR (13 convs); see `cifar_vgg`."""
  return cifar_vgg(16, input_shape, num_classes, seed)


def vgg19(input_shape=(32, 32, 3), num_classes=10, seed=None):
  """VGG-19 for CIFAR (16 convs); see `cifar_vgg`."""
  return cifar_vgg(19, input_shape, num_classes, seed)
