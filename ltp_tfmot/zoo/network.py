"""What a family module of the zoo builds with: `ModelSpec`, and tf_keras imported on first use.

The registry imports every family module to list the networks and presets,
and the command line lists them (and checks `--model`) without loading
TensorFlow; so a family module reaches tf_keras through `keras` here, which
imports it when a builder first runs.
"""

import collections
import importlib

# A registered network: `build(input_shape, num_classes, seed)` returns an uncompiled tf_keras model that outputs
# logits; `flat_input` says it takes images flattened to vectors.
ModelSpec = collections.namedtuple('ModelSpec', ['build', 'flat_input', 'description'])


class LazyModule:
  """A module imported on its first attribute access (and not before, so not at the importer's import)."""

  def __init__(self, name):
    self.name = name

  def __getattr__(self, attribute):
    return getattr(importlib.import_module(self.name), attribute)

  def __repr__(self):
    return f'LazyModule({self.name!r})'


# `keras.layers.Dense(...)` in a builder imports tf_keras on its first call.
keras = LazyModule('tf_keras')
