"""The Keras 3 side of an export: the model checked, the plain model to convert, its zeros by layer.

The Keras 3 counterpart of `ltp_tfmot.export.prepare`, with the same functions, which `ltp_tfmot.export.tflite`
calls for a Keras 3 model (`import keras`, TensorFlow or JAX backend): `check_model` refuses what cannot be
exported, `strip` applies a wrapped model's masks and strips its wrappers (`ltp_tfmot.keras3.prune`),
`model_to_convert` gives the model to the converter as it is (TensorFlow's converter takes a Keras 3 model of
either backend, through jax2tf on JAX), `frozen_layers` names the 'freeze' layers and `keras_sparsity` counts the
zeros of each layer's weights. It imports neither tf_keras nor tfmot, so an export leaves `tf.keras` as it is.
"""

import keras

from ltp_tfmot.export import reference as reference_lib
from ltp_tfmot.keras3 import prune as prune_lib
from ltp_tfmot.keras3 import wrapped_model
from ltp_tfmot.keras3 import wrapper as wrapper_lib


def check_model(model):
  """Raises unless the model is a built Keras 3 model with symbolic inputs (not a subclassed one).

  Args:
    model: What was given to export.

  Raises:
    ValueError: for no Keras 3 Model, an unbuilt one, or one without symbolic inputs.
  """
  if not isinstance(model, keras.Model):
    raise ValueError(f'model must be a Keras 3 Model, got {type(model).__name__}')
  reference_lib.check_symbolic(model)


def is_quantization_aware(model):
  """False: quantization-aware training is tfmot's, which wraps tf_keras models only."""
  del model  # a Keras 3 model never is
  return False


def strip(model):
  """The plain model to convert: a wrapped model's masks applied and its wrappers stripped.

  Args:
    model: A Keras 3 model, wrapped for lottery pruning or not. A wrapped
      model's weights are masked in place (`ltp_tfmot.strip_pruning`).

  Returns:
    The stripped model, or `model` itself if it has no lottery wrapper.
  """
  return prune_lib.strip_pruning(model) if wrapped_model.lottery_wrappers(model) else model


def model_to_convert(model):
  """(the model to convert, note): the model itself, with no note; the converter takes Keras 3 models as they are."""
  return model, None


def frozen_layers(model):
  """The layers pruned with mask_0_action='freeze', whose pruned weights keep their values instead of 0.

  Args:
    model: A Keras 3 model, wrapped or not.

  Returns:
    A tuple of layer names (empty for a plain model).
  """
  return tuple(w.layer.name for w in wrapped_model.lottery_wrappers(model) if w.mask_0_action == 'freeze')


def _layers(model):
  """The layers of a model, nested models expanded, in order."""
  for layer in model.layers:
    if isinstance(layer, keras.Model):
      yield from _layers(layer)
    else:
      yield layer


def keras_sparsity(model):
  """The zeros of each layer's weights, and the size and non-zeros of each weight of rank >= 2.

  Args:
    model: A plain Keras 3 model.

  Returns:
    As `ltp_tfmot.export.reference.weight_zeros`, for the model's layers; the prunable weights are those a
    Keras 3 lottery wrapper prunes (`ltp_tfmot.keras3.wrapper.pruned_weights_of`).
  """
  return reference_lib.weight_zeros(_layers(model), wrapper_lib.pruned_weights_of, wrapped_model.value)
