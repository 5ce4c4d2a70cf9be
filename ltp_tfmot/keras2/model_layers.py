"""Walking a model's layers: the one place that knows how nested models are flattened."""

import tf_keras as keras


def flat_layers(model):
  """The layers of a model in order, each nested model replaced by its own layers (recursively).

  Args:
    model: A tf_keras model, a layer (returned as the only layer), or a list
      or tuple of them.

  Returns:
    A list of layers, none of them a `keras.Model`.
  """
  if isinstance(model, (list, tuple)):
    return [layer for item in model for layer in flat_layers(item)]
  if isinstance(model, keras.Model):
    return [layer for child in model.layers for layer in flat_layers(child)]
  return [model]
