"""Where a layer's weights draw fresh values from: its own initializers.

`mask_1_action='reinit'` (the random-reinitialisation control) starts the
weights of each round from fresh draws of the initializers the layer was built
with (`kernel_initializer`, an LSTM cell's `recurrent_initializer`, a
BatchNormalization's `gamma_initializer`, ...), seeded per weight and round so
that two builds of one architecture draw the same values. This module finds a
weight's initializer in its layer and draws from it.
"""

import tensorflow as tf
import tf_keras as keras


def _owner(layer, weight):
  """The innermost layer (the layer itself or one of its sublayers) that holds `weight`."""
  holders = [sub for sub in [layer, *layer.submodules]
             if isinstance(sub, keras.layers.Layer) and any(w is weight for w in sub.weights)]
  # Fewest weights, and among equals the deepest (an LSTM and its cell hold the same three): submodules come
  # after their parents.
  return min(reversed(holders), key=lambda sub: len(sub.weights))


class _UnitForgetBias(keras.initializers.Initializer):
  """An LSTM cell's bias initializer under `unit_forget_bias`: the forget gate's biases start at 1, as in Keras."""

  def __init__(self, bias_initializer, units, seed=None):
    self.bias_initializer = keras.initializers.get(bias_initializer)
    self.units = units
    self.seed = seed

  def __call__(self, shape, dtype=None, **kwargs):
    del shape  # the cell's four gates
    initializer = self.bias_initializer
    config = initializer.get_config()
    if self.seed is not None and 'seed' in config:
      initializer = initializer.__class__.from_config(dict(config, seed=self.seed))
    return tf.concat([initializer((self.units,), dtype, **kwargs), tf.ones((self.units,), dtype),
                      initializer((self.units * 2,), dtype, **kwargs)], axis=0)

  def get_config(self):
    return {'bias_initializer': keras.initializers.serialize(self.bias_initializer), 'units': self.units,
            'seed': self.seed}


def initializer_for(layer, weight):
  """The layer's initializer for one of its weights, e.g. `kernel_initializer`.

  It is looked up on the innermost sublayer holding the weight (an LSTM's cell, an attention projection), as
  `<name>_initializer` or, for a `<kind>_kernel`, `<kind>_initializer` (`recurrent_initializer`,
  `depthwise_initializer`, `pointwise_initializer`). An LSTM bias under `unit_forget_bias` starts its forget
  gate at 1, as Keras's does.

  Args:
    layer: A Keras layer.
    weight: One of its weights.

  Returns:
    The initializer (an object, a name or a config, as the layer keeps it).

  Raises:
    ValueError: if no such initializer attribute exists.
  """
  owner = _owner(layer, weight)
  name = weight.name.rsplit(':', 1)[0].rsplit('/', 1)[-1]
  if name == 'bias' and isinstance(owner, keras.layers.LSTMCell) and owner.unit_forget_bias:
    return _UnitForgetBias(owner.bias_initializer, owner.units)
  candidates = [name + '_initializer']
  if name.endswith('_kernel'):
    candidates.append(name[:-len('_kernel')] + '_initializer')
  for candidate in candidates:
    initializer = getattr(owner, candidate, None)
    if initializer is not None:
      return initializer
  raise ValueError(f"mask_1_action='reinit' needs layer {owner.name!r} to have an attribute "
                   f'{" or ".join(candidates)} to draw fresh values of {weight.name!r} from')


def fresh_value(layer, weight, seed):
  """Draws new values of one of a layer's weights from its initializer (see `initializer_for`).

  Args:
    layer: A Keras layer.
    weight: One of its weights.
    seed: The seed of the draw, for initializers that take one.

  Returns:
    A tensor shaped and typed like `weight`.

  Raises:
    ValueError: if the layer has no initializer for the weight.
  """
  initializer = keras.initializers.get(initializer_for(layer, weight))
  config = initializer.get_config()
  if 'seed' in config:
    initializer = initializer.__class__.from_config(dict(config, seed=seed))
  return tf.cast(initializer(weight.shape, dtype=weight.dtype.base_dtype), weight.dtype)
