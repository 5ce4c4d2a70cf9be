"""The Keras 2 side of an export: the tf_keras model checked, the plain model to convert, its zeros by layer.

Every export target starts from the same plain model and checks its file against the same Keras outputs, so
this is shared by all of them (`ltp_tfmot.export.tflite` is one): `check_model` refuses what cannot be exported,
`strip` re-applies a wrapped model's masks and strips its wrappers, `model_to_convert` unrolls recurrent layers,
`frozen_layers` names the layers whose pruned weights are not zeros ('freeze' tickets), and `keras_sparsity`
counts the zeros of each layer's weights. `ltp_tfmot.export.prepare_keras3` is the same for Keras 3 models; what
does not depend on the Keras (sample inputs, the outputs to match, naming the layer of a converted weight) is
`ltp_tfmot.export.reference`'s.
"""

import copy

from tensorflow_model_optimization.python.core.quantization.keras import quantize_layer
from tensorflow_model_optimization.python.core.quantization.keras import quantize_wrapper
from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper
import tf_keras as keras

from ltp_tfmot.export import reference as reference_lib
from ltp_tfmot.keras2 import model_layers
from ltp_tfmot.keras2 import prune as prune_lib
from ltp_tfmot.keras2 import wrapped_model
from ltp_tfmot.keras2 import wrapper as wrapper_lib


def check_model(model):
  """Raises unless the model is a built tf_keras model with symbolic inputs (not a subclassed one).

  Args:
    model: What was given to export.

  Raises:
    TypeError: for a Keras 3 object given to this side.
    ValueError: for no tf_keras Model, an unbuilt one, or one without symbolic inputs.
  """
  wrapper_lib.check_tf_keras(model, 'model')
  if not isinstance(model, keras.Model):
    raise ValueError(f'model must be a tf_keras Model, got {type(model).__name__}')
  reference_lib.check_symbolic(model)


def is_quantization_aware(model):
  """Whether tfmot's quantize_model (or a prune/cluster-preserving scheme) made the model.

  Args:
    model: A tf_keras model.

  Returns:
    True if it has tfmot QuantizeWrapper or QuantizeLayer layers.
  """
  return any(isinstance(layer, (quantize_wrapper.QuantizeWrapper, quantize_layer.QuantizeLayer))
             for layer in model_layers.flat_layers(model))


def strip(model):
  """The plain model to convert: a wrapped model's masks re-applied and its wrappers stripped.

  Args:
    model: A tf_keras model, wrapped for lottery pruning or not. A wrapped
      model's weights are masked in place (`ltp_tfmot.strip_pruning`).

  Returns:
    The stripped model, or `model` itself if it has no pruning wrapper.
  """
  wrapped = any(isinstance(layer, pruning_wrapper.PruneLowMagnitude) for layer in model_layers.flat_layers(model))
  return prune_lib.strip_pruning(model) if wrapped else model


def frozen_layers(model):
  """The layers pruned with mask_0_action='freeze', whose pruned weights keep their values instead of 0.

  Args:
    model: A tf_keras model, wrapped or not.

  Returns:
    A tuple of layer names (empty for a plain model).
  """
  return tuple(w.layer.name for w in wrapped_model.lottery_wrappers(model) if w.mask_0_action == 'freeze')


def _prunable_weights(layer):
  """The weights the lottery wrapper prunes in a plain (unwrapped) layer; [] if it prunes none.

  A stripped layer that was wrapped keeps the `get_prunable_weights` the
  wrapper gave it; otherwise tfmot's registry is asked on a shallow copy, so
  the model's own layer is not modified.
  """
  if isinstance(layer, quantize_wrapper.QuantizeWrapper):
    # The wrapper replaces its layer's weight attributes by quantized tensors when it traces: take the
    # variables of the layer's prunable weights by attribute name (tfmot's registry, or the depthwise kernel).
    inner = layer.layer
    if isinstance(inner, keras.layers.DepthwiseConv2D):
      names = {'depthwise_kernel'}
    elif inner.__class__ in prune_registry.PruneRegistry._LAYERS_WEIGHTS_MAP:  # pylint: disable=protected-access
      names = set(prune_registry.PruneRegistry._weight_names(inner))  # pylint: disable=protected-access
    else:
      names = set()
    # 'quant_dense/kernel:0' -> 'kernel'
    return [w for w in layer.weights if w.name.split('/')[-1].split(':')[0] in names]
  if isinstance(layer, keras.layers.DepthwiseConv2D) and not hasattr(layer, 'get_prunable_weights'):
    return [layer.depthwise_kernel]
  if hasattr(layer, 'get_prunable_weights'):
    return list(layer.get_prunable_weights())
  if not wrapper_lib.is_prunable(layer):
    return []
  probe = copy.copy(layer)
  prune_registry.PruneRegistry.make_prunable(probe)
  return list(probe.get_prunable_weights())


def keras_sparsity(model):
  """The zeros of each layer's weights, and the size and non-zeros of each weight of rank >= 2.

  Args:
    model: A plain tf_keras model.

  Returns:
    As `ltp_tfmot.export.reference.weight_zeros`, for the model's layers.
  """
  return reference_lib.weight_zeros(model_layers.flat_layers(model), _prunable_weights, lambda weight: weight.numpy())


def _rnn_layers(model):
  recurrent = (keras.layers.RNN, keras.layers.Bidirectional)
  return [layer for layer in model_layers.flat_layers(model) if isinstance(layer, recurrent)]


def model_to_convert(model):
  """(the model to convert, note): recurrent layers unrolled over their time steps, else the model itself.

  The converter lowers a tf_keras recurrent layer to a TensorList loop whose
  element shape holds the batch size; with a dynamic batch size that fails
  ("requires element_shape to be static"). Unrolled, the layer is plain
  FULLY_CONNECTED and element-wise ops, which every resolver runs.
  """
  recurrent = _rnn_layers(model)
  if not recurrent:
    return model, None
  unknown = [layer.name for layer in recurrent if layer.input_shape[1] is None]
  if unknown:
    raise ValueError(
        f'recurrent layers {unknown} have an unknown number of time steps. TFLite cannot convert a tf_keras '
        'LSTM/GRU/SimpleRNN with a dynamic batch size as a loop (its TensorList ops need a static element shape), '
        'so export_tflite converts recurrent layers unrolled over their time steps, which must then be known: '
        'build the model with a fixed sequence length (e.g. keras.Input((timesteps, features))), copy the weights '
        "into it with set_weights, and export that model. (The converter's SELECT_TF_OPS fallback would give a "
        'file that needs the Flex delegate, which ai-edge-litert does not have.)')

  def unrolled(layer):
    config = layer.get_config()
    if isinstance(layer, keras.layers.RNN):
      config['unroll'] = True
    elif isinstance(layer, keras.layers.Bidirectional):
      for key in ('layer', 'backward_layer'):
        if key in config:
          config[key]['config']['unroll'] = True
    return layer.__class__.from_config(config)

  try:
    clone = keras.models.clone_model(model, clone_function=unrolled)
    clone.set_weights(model.get_weights())
  except (TypeError, ValueError) as e:
    raise ValueError(f'recurrent layers {[layer.name for layer in recurrent]} are converted unrolled, which needs a '
                     f'copy of the model from its config, and that failed ({e}): export a model built from '
                     'registered (serializable) layers, with its recurrent layers at the top level') from e
  if len(_rnn_layers(clone)) != len(recurrent) or not all(
      getattr(getattr(layer, 'forward_layer', layer), 'unroll', False) for layer in _rnn_layers(clone)):
    raise ValueError(f'recurrent layers {[layer.name for layer in recurrent]} inside nested models cannot be '
                     'unrolled for conversion: export a model with its recurrent layers at the top level')
  steps = sorted({int(layer.input_shape[1]) for layer in recurrent})
  return clone, (f'recurrent layers {[layer.name for layer in recurrent]} converted unrolled over {steps} time steps '
                 '(a TensorList loop does not convert with a dynamic batch size)')
