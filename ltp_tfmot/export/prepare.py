"""The Keras side of an export: the plain model to convert, the outputs to check against, its zeros by layer.

Every export target starts from the same plain model and checks its file against the same Keras outputs, so
this is shared by all of them (`ltp_tfmot.export.tflite` is one): `strip` re-applies a wrapped model's masks and
strips its wrappers, `frozen_layers` names the layers whose pruned weights are not zeros ('freeze' tickets),
`sample_inputs` and `keras_outputs` give the inputs a converted file is run on and the outputs it must match, and
`keras_sparsity` counts the zeros of each layer's weights, which `match_layers` and `layer_namer` use to name the
Keras layer of each weight found in a converted file.
"""

import copy
import dataclasses

import numpy as np
from tensorflow_model_optimization.python.core.quantization.keras import quantize_layer
from tensorflow_model_optimization.python.core.quantization.keras import quantize_wrapper
from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper
import tf_keras as keras

from ltp_tfmot.keras2 import model_layers
from ltp_tfmot.keras2 import prune as prune_lib
from ltp_tfmot.keras2 import wrapped_model
from ltp_tfmot.keras2 import wrapper as wrapper_lib

SAMPLE_COUNT = 8
_ITEM_BYTES = {'float32': 4, 'float16': 2, 'int8': 1, 'uint8': 1, 'int16': 2, 'int32': 4, 'int64': 8, 'float64': 8}


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


def frozen_note(frozen, sparse_tensors):
  """Why an export of a 'freeze' ticket has the dense size.

  Args:
    frozen: The names of the frozen layers (`frozen_layers`).
    sparse_tensors: The weights the file stores sparse.

  Returns:
    A note for the report.
  """
  stored = 'no weight is stored sparse' if not sparse_tensors else 'their weights are stored dense'
  return (f"layers {list(frozen)} were pruned with mask_0_action='freeze': their pruned weights keep their "
          f'rewind-point values instead of 0, so they are not zeros and {stored}; the file has the dense size. '
          "For a sparse file, train the ticket with mask_0_action='zero' (the default)")


def input_arrays(model, data, what):
  """A list of arrays, one per model input, from an array, a list or a dict.

  Args:
    model: A tf_keras model with symbolic inputs.
    data: An array (one input), a list of arrays in input order, or a dict by input name.
    what: The argument's name, for the errors.

  Returns:
    A list of arrays of the inputs' dtypes, with the same number (>= 1) of samples each.

  Raises:
    ValueError: for missing inputs, another number of arrays, wrong shapes or unequal sample counts.
  """
  names = list(model.input_names)
  if isinstance(data, dict):
    missing = sorted(set(names) - set(data))
    if missing:
      raise ValueError(f'{what} has no entry for model inputs {missing}; inputs: {names}')
    data = [data[name] for name in names]
  elif not isinstance(data, (list, tuple)):
    data = [data]
  if len(data) != len(names):
    raise ValueError(f'{what} has {len(data)} arrays; the model has {len(names)} inputs {names}')
  arrays = []
  for tensor, value, name in zip(model.inputs, data, names, strict=True):
    array = np.asarray(value, dtype=tensor.dtype.as_numpy_dtype)
    expected = tuple(tensor.shape[1:])
    if array.ndim != len(expected) + 1 or any(
        e is not None and e != a for e, a in zip(expected, array.shape[1:], strict=True)):
      raise ValueError(f'{what} for input {name!r} has shape {array.shape}; the model expects (n, *{expected})')
    arrays.append(array)
  if len({len(a) for a in arrays}) > 1 or not len(arrays[0]):
    raise ValueError(f'{what} must have the same number (>= 1) of samples for every input, '
                     f'got {[len(a) for a in arrays]}')
  return arrays


def sample_inputs(model, samples, representative_data):
  """The inputs a converted file and the Keras model are compared on.

  Args:
    model: A tf_keras model with symbolic inputs.
    samples: The caller's sample inputs (as for `input_arrays`), or None.
    representative_data: Calibration data (arrays as for `input_arrays`, or a
      callable returning an iterable of lists of input batches), or None.

  Returns:
    ({input name: array}, None): `samples`, else the first `SAMPLE_COUNT`
    representative samples, else `SAMPLE_COUNT` seeded standard normal samples;
    or (None, note) when none can be made (inputs of unknown shape or non-float type).

  Raises:
    ValueError: as `input_arrays`, for bad samples or representative data.
  """
  names = list(model.input_names)
  if samples is not None:
    arrays = input_arrays(model, samples, 'sample_inputs')
  elif callable(representative_data):
    batches = []
    for batch in representative_data():
      batches.append(batch if isinstance(batch, (list, tuple)) else [batch])
      if len(batches) == SAMPLE_COUNT:
        break
    arrays = input_arrays(model, [np.concatenate(parts) for parts in zip(*batches, strict=True)],
                          'representative_data')
  elif representative_data is not None:
    arrays = [a[:SAMPLE_COUNT] for a in input_arrays(model, representative_data, 'representative_data')]
  else:
    shapes = [tuple(tensor.shape[1:]) for tensor in model.inputs]
    if any(None in shape for shape in shapes) or any(not t.dtype.is_floating for t in model.inputs):
      return None, 'outputs not compared: pass sample_inputs for inputs of unknown shape or non-float type'
    rng = np.random.RandomState(0)
    arrays = [rng.randn(SAMPLE_COUNT, *shape).astype(t.dtype.as_numpy_dtype)
              for shape, t in zip(shapes, model.inputs, strict=True)]
  return dict(zip(names, arrays, strict=True)), None


def keras_outputs(model, samples):
  """The Keras model's outputs on the samples, as the converted file's are compared with them.

  Args:
    model: A plain tf_keras model.
    samples: {input name: array}.

  Returns:
    {output name: float64 array}.
  """
  outputs = model([samples[name] for name in model.input_names] if len(samples) > 1 else
                  next(iter(samples.values())), training=False)
  if isinstance(outputs, dict):
    return {name: np.asarray(value, np.float64) for name, value in outputs.items()}
  outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
  return {name: np.asarray(value, np.float64) for name, value in zip(model.output_names, outputs, strict=True)}


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


def _zero_fraction(values):
  size = sum(v.size for v in values)
  return sum(int(np.sum(v == 0)) for v in values) / size if size else 0.0


def keras_sparsity(model):
  """The zeros of each layer's weights, and the size and non-zeros of each weight of rank >= 2.

  Args:
    model: A plain tf_keras model.

  Returns:
    ({layer: zero fraction of its prunable weights}, {layer: zero fraction of
    its weights of rank >= 2}, [(layer, size, non-zeros) per weight of rank >= 2]).
  """
  prunable_sparsity, weight_sparsity, weights = {}, {}, []
  for layer in model_layers.flat_layers(model):
    prunable = [w.numpy() for w in _prunable_weights(layer)]
    if prunable:
      prunable_sparsity[layer.name] = _zero_fraction(prunable)
    values = [w.numpy() for w in layer.weights if len(w.shape) >= 2]
    if values:
      weight_sparsity[layer.name] = _zero_fraction(values)
      weights.extend((layer.name, v.size, int(np.count_nonzero(v))) for v in values)
  return prunable_sparsity, weight_sparsity, weights


def _layers_named_in(tensor_name, layer_names):
  """The layer names that are a part of a converted tensor's name ('a/b;c' has the parts a, b and c)."""
  return layer_names & set(tensor_name.replace(';', '/').split('/'))


def match_layers(sparse_tensors, weights):
  """Names the Keras layer of each sparse tensor: by name, else by size and stored values, else by size.

  Args:
    sparse_tensors: `ltp_tfmot.export.flatbuffer.SparseTensor`s of a converted file.
    weights: [(layer, size, non-zeros)] of the Keras model (`keras_sparsity`).

  Returns:
    The tensors, with `layer` set where one layer matches.
  """
  layer_names = {name for name, _, _ in weights}
  free = list(weights)
  layers = {}
  for i, t in enumerate(sparse_tensors):
    hits = _layers_named_in(t.name, layer_names)
    if len(hits) == 1:
      layers[i] = hits.pop()
      same = [k for k in free if k[0] == layers[i] and k[1] == int(np.prod(t.shape))]
      if same:
        free.remove(same[0])
  for i, t in enumerate(sparse_tensors):
    if i in layers:
      continue
    size = int(np.prod(t.shape))
    values = t.bytes // _ITEM_BYTES.get(t.dtype, 1)
    candidates = [k for k in free if k[1] == size and k[2] == values] or [k for k in free if k[1] == size]
    if len(candidates) == 1:
      layers[i] = candidates[0][0]
      free.remove(candidates[0])
  return [dataclasses.replace(t, layer=layers.get(i)) for i, t in enumerate(sparse_tensors)]


def layer_namer(sparse_tensors, layer_names):
  """A function naming the Keras layer of a converted weight tensor.

  Args:
    sparse_tensors: Sparse tensors with their layers matched (`match_layers`).
    layer_names: The Keras model's layer names.

  Returns:
    A callable, TFLite weight tensor name -> the layer of the sparse tensor of
    that name, else the one layer named in it, else None.
  """
  matched = {t.name: t.layer for t in sparse_tensors}
  names = set(layer_names)

  def layer_of(tensor_name):
    if tensor_name in matched:
      return matched[tensor_name]
    hits = _layers_named_in(tensor_name, names)
    return hits.pop() if len(hits) == 1 else None

  return layer_of
