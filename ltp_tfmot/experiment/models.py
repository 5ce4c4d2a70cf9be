"""The models the runner and the command line know by name.

A builder takes `(input_shape, num_classes, seed)` and returns an uncompiled
tf_keras model that outputs logits. Pass your own builder with the same
signature to the runner as `model_fn`.

The registry names its builders in `ltp_tfmot.models` and imports them on the
first build, so that the command line lists the models (and checks
`--model`) without loading TensorFlow.
"""

import collections
import importlib

from ltp_tfmot import validation

ModelSpec = collections.namedtuple('ModelSpec', ['build', 'flat_input', 'description'])

# Depths of `ltp_tfmot.models`' CIFAR ResNets, and the conv layers of each VGG plan there (models_test checks both).
RESNET_DEPTHS = (20, 32, 44, 56, 110)
VGG_CONVS = {11: 8, 13: 10, 16: 13, 19: 16}


class _Builder:
  """`ltp_tfmot.models.<name>(input_shape, num_classes, seed)`, imported when first called."""

  def __init__(self, name):
    self.name = name

  def __call__(self, input_shape, num_classes, seed):
    models_lib = importlib.import_module('ltp_tfmot.models')
    if self.name == 'lenet_300_100':  # a vector input: its size, not its shape
      size = 1
      for dim in input_shape:
        size *= int(dim)
      return models_lib.lenet_300_100(input_dim=size, num_classes=num_classes, seed=seed)
    return getattr(models_lib, self.name)(input_shape, num_classes, seed)

  def __repr__(self):
    return f'ltp_tfmot.models.{self.name}'


_SPECS = {
    'lenet_300_100': ModelSpec(_Builder('lenet_300_100'), True,
                               'LeNet-300-100 (Frankle & Carbin): FC 300-100-10 on flattened images'),
    'conv2': ModelSpec(_Builder('conv2'), False, 'Conv-2: conv 64-64, pool, FC 256-256-10'),
    'conv4': ModelSpec(_Builder('conv4'), False, 'Conv-4: conv 64-64-128-128 with pooling, FC 256-256-10'),
    'conv6': ModelSpec(_Builder('conv6'), False, 'Conv-6: conv 64-64-128-128-256-256 with pooling, FC 256-256-10'),
}
_SPECS.update({
    f'resnet{depth}': ModelSpec(_Builder(f'resnet{depth}'), False,
                                f'ResNet-{depth} for CIFAR (He et al. 2016, as open_lth): {(depth - 2) // 6} blocks '
                                'per stage of 16-32-64 filters, BatchNorm')
    for depth in RESNET_DEPTHS
})
_SPECS.update({
    f'vgg{depth}': ModelSpec(_Builder(f'vgg{depth}'), False,
                             f'VGG-{depth} for CIFAR (as open_lth): {convs} 3x3 convs with BatchNorm, 4 max-pools, '
                             'global pool, one Dense')
    for depth, convs in VGG_CONVS.items()
})


_REGISTRY = validation.Registry('model', 'or pass model_fn= with a name of your own')
for _name, _spec in _SPECS.items():
  _REGISTRY.register(_name, _spec)
# The registry read as a dict from name to `ModelSpec` (read-only).
MODELS = _REGISTRY.as_mapping()


def model_names():
  """Names of the registered models."""
  return _REGISTRY.names()


def get_model_spec(name):
  """The `ModelSpec` of a registered model.

  Raises:
    ValueError: for an unknown name.
  """
  return _REGISTRY.get(name)
