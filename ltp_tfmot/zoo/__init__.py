"""The reference networks, as tf_keras models, each with its paper's training and pruning set-up.

One module per family holds its builders and its presets: `lenet`
(LeNet-300-100), `conv` (Conv-2/4/6), `resnet` (CIFAR ResNets) and `vgg`
(CIFAR VGGs). `preset` holds the `Preset` they declare, `network` the
`ModelSpec` and the lazy tf_keras they build with, `open_lth` the layers and
initialisation the ResNets and VGGs share, and `registry` finds every network
and preset by name without loading TensorFlow.

This package is also `ltp_tfmot.models`: the public names of every family
in `registry.FAMILIES` (each module's `__all__`) are attributes here
(`ltp_tfmot.models.resnet20(seed=0)`), imported on first use as in
`ltp_tfmot` itself; so a new network touches its family module only, and a
new family adds one line to the registry.
"""

import importlib
import pkgutil


def _family_of_each_name():
  """Public name -> the family module that defines it (its `__all__`), over the registry's families."""
  registry = importlib.import_module(f'{__name__}.registry')
  return {name: family for family in registry.FAMILIES for name in family.__all__}


def __getattr__(name):
  # `from ltp_tfmot.zoo import lenet` asks for the submodule here before importing it: the import system does that
  # (asking the registry then, while it imports the families, would import a family inside its own import).
  if name in {module.name for module in pkgutil.iter_modules(__path__)}:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  families = _family_of_each_name()
  if name == '__all__':
    value = sorted(families)
  elif name in families:
    value = getattr(families[name], name)
  else:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  globals()[name] = value
  return value


def __dir__():
  return sorted(set(globals()) | set(_family_of_each_name()))
