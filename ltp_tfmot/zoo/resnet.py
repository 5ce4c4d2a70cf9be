"""He et al.'s (2016) CIFAR ResNets as open_lth builds them, and open_lth's set-up for them."""

from ltp_tfmot.zoo import network
from ltp_tfmot.zoo import open_lth
from ltp_tfmot.zoo import preset

# The public names, which `ltp_tfmot.models` (the zoo package) serves too; MODELS and PRESETS are the registry's.
__all__ = ['cifar_resnet', 'RESNET_DEPTHS', 'resnet20', 'resnet32', 'resnet44', 'resnet56', 'resnet110']

keras = network.keras

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
  shape = open_lth.check_image_shape(input_shape, f'resnet{depth}', 4)
  init = open_lth.Initializers(seed)
  inputs = keras.Input(shape, name='input')
  x = open_lth.conv(inputs, int(base), 3, 1, init, 'conv0')
  x = keras.layers.ReLU(name='relu0')(open_lth.batchnorm(init, 'bn0')(x))
  for stage, filters in enumerate((int(base), int(base) * 2, int(base) * 4), start=1):
    for block in range(1, (depth - 2) // 6 + 1):
      name = f'stage{stage}_block{block}'
      strides = 2 if stage > 1 and block == 1 else 1
      out = open_lth.conv(x, filters, 3, strides, init, name + '_conv1')
      out = keras.layers.ReLU(name=name + '_relu1')(open_lth.batchnorm(init, name + '_bn1')(out))
      out = open_lth.batchnorm(init, name + '_bn2')(open_lth.conv(out, filters, 3, 1, init, name + '_conv2'))
      shortcut = x
      if strides > 1 or int(x.shape[-1]) != filters:
        shortcut_bn = open_lth.batchnorm(init, name + '_shortcut_bn')  # before the conv: the seeds' order
        shortcut = shortcut_bn(open_lth.conv(x, filters, 1, strides, init, name + '_shortcut_conv'))
      x = keras.layers.ReLU(name=name + '_relu2')(keras.layers.Add(name=name + '_add')([out, shortcut]))
  x = keras.layers.GlobalAveragePooling2D(name='pool')(x)
  model_name = f'resnet{depth}' + ('' if width == 1 else f'_w{width}')
  return keras.Model(inputs, open_lth.output(x, num_classes, init), name=model_name)


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


MODELS = {
    f'resnet{depth}': network.ModelSpec(builder, False,
                                        f'ResNet-{depth} for CIFAR (He et al. 2016, as open_lth): {(depth - 2) // 6} '
                                        'blocks per stage of 16-32-64 filters, BatchNorm')
    for depth, builder in zip(RESNET_DEPTHS, (resnet20, resnet32, resnet44, resnet56, resnet110), strict=True)
}

# open_lth trains every depth of a family with the family's defaults (its registry only swaps the model name).
PRESETS = {f'resnet{depth}': preset.open_lth_cifar(f'resnet{depth}', 'cifar_resnet', True, '2000it')
           for depth in RESNET_DEPTHS}
