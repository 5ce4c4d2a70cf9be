"""The networks and presets of the zoo by name, for the runner and the command line.

Each family module (`lenet`, `conv`, `resnet`, `vgg`) declares `MODELS`
(name -> `network.ModelSpec`) and `PRESETS` (name -> `preset.Preset`); this
module registers those of every family in `FAMILIES`, so a new network of a
family needs only its family module, and a new family one line here. The
family modules import tf_keras on a builder's first call, so the command line
lists the models (and checks `--model`) without loading TensorFlow. Pass your
own builder with a `ModelSpec.build` signature to the runner as `model_fn`.
"""

from ltp_tfmot import validation
from ltp_tfmot.zoo import conv
from ltp_tfmot.zoo import lenet
from ltp_tfmot.zoo import resnet
from ltp_tfmot.zoo import vgg

# The family modules whose networks and presets are registered, in the order they are listed.
FAMILIES = (lenet, conv, resnet, vgg)

_MODELS = validation.Registry('model', 'or pass model_fn= with a name of your own')
_PRESETS = validation.Registry('preset', 'for another model, give every setting yourself (RunConfig(model=..., '
                               'data=..., training=..., pruning=...))')
for _family in FAMILIES:
  for _name, _spec in _family.MODELS.items():
    _MODELS.register(_name, _spec)
  for _name, _preset in _family.PRESETS.items():
    _PRESETS.register(_name, _preset)
# The registries read as dicts from model name to `ModelSpec` and to `Preset` (read-only).
MODELS = _MODELS.as_mapping()
PRESETS = _PRESETS.as_mapping()


def model_names():
  """Names of the registered models."""
  return _MODELS.names()


def get_model_spec(name):
  """The `ModelSpec` of a registered model.

  Args:
    name: A name of `model_names()`.

  Returns:
    The `network.ModelSpec`.

  Raises:
    ValueError: for an unknown name.
  """
  return _MODELS.get(name)


def preset_names():
  """Names of the models with a preset."""
  return _PRESETS.names()


def get_preset(model):
  """The `Preset` of a registered model.

  Args:
    model: A name of `preset_names()`.

  Returns:
    The `preset.Preset`.

  Raises:
    ValueError: for a model without one.
  """
  return _PRESETS.get(model)
