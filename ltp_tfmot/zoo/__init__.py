"""The reference networks, as tf_keras models, each with its paper's training and pruning set-up.

One module per family holds its builders and its presets: `lenet`
(LeNet-300-100), `conv` (Conv-2/4/6), `resnet` (CIFAR ResNets) and `vgg`
(CIFAR VGGs). `preset` holds the `Preset` they declare, `network` the
`ModelSpec` and the lazy tf_keras they build with, `open_lth` the layers and
initialisation the ResNets and VGGs share, and `registry` finds every network
and preset by name without loading TensorFlow.

This package is also `ltp_tfmot.models`: its builders are attributes here
(`ltp_tfmot.models.resnet20(seed=0)`), imported on first use as in
`ltp_tfmot` itself.
"""

import importlib

# Public name -> family module that defines it.
_EXPORTS = {
    'lenet_300_100': 'lenet',
    'conv2': 'conv',
    'conv4': 'conv',
    'conv6': 'conv',
    'cifar_resnet': 'resnet',
    'RESNET_DEPTHS': 'resnet',
    'resnet20': 'resnet',
    'resnet32': 'resnet',
    'resnet44': 'resnet',
    'resnet56': 'resnet',
    'resnet110': 'resnet',
    'cifar_vgg': 'vgg',
    'VGG_PLANS': 'vgg',
    'vgg11': 'vgg',
    'vgg13': 'vgg',
    'vgg16': 'vgg',
    'vgg19': 'vgg',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
  if name not in _EXPORTS:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  value = getattr(importlib.import_module(f'{__name__}.{_EXPORTS[name]}'), name)
  globals()[name] = value
  return value


def __dir__():
  return sorted(set(globals()) | set(__all__))
