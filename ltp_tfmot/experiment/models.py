"""The models the runner and the command line know by name.

A builder takes `(input_shape, num_classes, seed)` and returns an uncompiled
tf_keras model that outputs logits. Pass your own builder with the same
signature to the runner as `model_fn`.
"""

import collections

import numpy as np

from ltp_tfmot import models as models_lib

ModelSpec = collections.namedtuple('ModelSpec', ['build', 'flat_input', 'description'])


def _lenet(input_shape, num_classes, seed):
  return models_lib.lenet_300_100(input_dim=int(np.prod(input_shape)), num_classes=num_classes, seed=seed)


MODELS = {
    'lenet_300_100': ModelSpec(_lenet, True, 'LeNet-300-100 (Frankle & Carbin): FC 300-100-10 on flattened images'),
    'conv2': ModelSpec(models_lib.conv2, False, 'Conv-2: conv 64-64, pool, FC 256-256-10'),
    'conv4': ModelSpec(models_lib.conv4, False, 'Conv-4: conv 64-64-128-128 with pooling, FC 256-256-10'),
    'conv6': ModelSpec(models_lib.conv6, False, 'Conv-6: conv 64-64-128-128-256-256 with pooling, FC 256-256-10'),
}
MODELS.update({
    f'resnet{depth}': ModelSpec(getattr(models_lib, f'resnet{depth}'), False,
                                f'ResNet-{depth} for CIFAR (He et al. 2016, as open_lth): {(depth - 2) // 6} blocks '
                                'per stage of 16-32-64 filters, BatchNorm')
    for depth in models_lib.RESNET_DEPTHS
})
MODELS.update({
    f'vgg{depth}': ModelSpec(getattr(models_lib, f'vgg{depth}'), False,
                             f'VGG-{depth} for CIFAR (as open_lth): {sum(s != "M" for s in plan)} 3x3 convs with '
                             'BatchNorm, 4 max-pools, global pool, one Dense')
    for depth, plan in models_lib.VGG_PLANS.items()
})


def model_names():
  """Names of the registered models."""
  return sorted(MODELS)


def get_model_spec(name):
  """The `ModelSpec` of a registered model.

  Raises:
    ValueError: for an unknown name.
  """
  if name not in MODELS:
    raise ValueError(f'model must be one of {model_names()} (or pass model_fn= with a name of your own), '
                     f'got {name!r}')
  return MODELS[name]
