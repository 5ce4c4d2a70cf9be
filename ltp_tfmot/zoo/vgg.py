"""VGG-11/13/16/19 for CIFAR-10 as open_lth builds them, and open_lth's set-up for them."""

from ltp_tfmot.zoo import network
from ltp_tfmot.zoo import open_lth
from ltp_tfmot.zoo import preset

# The public names, which `ltp_tfmot.models` (the zoo package) serves too; MODELS and PRESETS are the registry's.
__all__ = ['cifar_vgg', 'VGG_CONVS', 'VGG_PLANS', 'vgg11', 'vgg13', 'vgg16', 'vgg19']

keras = network.keras

# Filters of each conv, 'M' a 2x2 max-pool: open_lth's cifar_vgg plans (Simonyan & Zisserman's A, B, D, E).
VGG_PLANS = {
    11: (64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512),
    13: (64, 64, 'M', 128, 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512),
    16: (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512),
    19: (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512),
}


# The 3x3 convs of each plan.
VGG_CONVS = {depth: sum(spec != 'M' for spec in plan) for depth, plan in VGG_PLANS.items()}


def cifar_vgg(depth, input_shape=(32, 32, 3), num_classes=10, seed=None):
  """VGG-11/13/16/19 for CIFAR-10, as open_lth builds it (`cifar_vgg_<depth>`).

  3x3 convs (with bias) each followed by BatchNorm and ReLU, four 2x2
  max-pools between the stages, then global average pooling (open_lth's 2x2
  average pool of the 2x2 map left of a 32x32 image) and one Dense layer named
  'output'. Initialisation as open_lth's defaults (see `open_lth.Initializers`).

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
  shape = open_lth.check_image_shape(input_shape, f'vgg{depth}', 16)
  init = open_lth.Initializers(seed)
  inputs = x = keras.Input(shape, name='input')
  convs = pools = 0
  for spec in VGG_PLANS[depth]:
    if spec == 'M':
      pools += 1
      x = keras.layers.MaxPooling2D(2, name=f'pool{pools}')(x)
    else:
      convs += 1
      x = open_lth.conv(x, spec, 3, 1, init, f'conv{convs}', use_bias=True)
      x = keras.layers.ReLU(name=f'relu{convs}')(open_lth.batchnorm(init, f'bn{convs}')(x))
  x = keras.layers.GlobalAveragePooling2D(name='global_pool')(x)
  return keras.Model(inputs, open_lth.output(x, num_classes, init), name=f'vgg{depth}')


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


MODELS = {
    f'vgg{depth}': network.ModelSpec(builder, False,
                                     f'VGG-{depth} for CIFAR (as open_lth): {VGG_CONVS[depth]} 3x3 convs '
                                     'with BatchNorm, 4 max-pools, global pool, one Dense')
    for depth, builder in zip(VGG_PLANS, (vgg11, vgg13, vgg16, vgg19), strict=True)
}

# As the ResNets': open_lth's family defaults for every depth; it leaves the output layer unpruned.
PRESETS = {f'vgg{depth}': preset.open_lth_cifar(f'vgg{depth}', 'cifar_vgg', False, '1000it') for depth in VGG_PLANS}
