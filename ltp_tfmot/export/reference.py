"""What a converted file is checked against and described by, for a model of either Keras.

Every export target runs its file on the same sample inputs and compares it with the Keras model's outputs, and
names the Keras layer of each weight it finds in the file; none of this depends on which Keras built the model, so
it is shared by the Keras 2 side of an export (`ltp_tfmot.export.prepare`) and the Keras 3 side
(`ltp_tfmot.export.prepare_keras3`): `sample_inputs` and `keras_outputs` give the inputs a converted file is run
on and the outputs it must match, `weight_zeros` counts the zeros of each layer's weights, which `match_layers`
and `layer_namer` use to name the Keras layer of each weight found in a converted file, and `frozen_note` says
why a 'freeze' ticket is not sparse.
"""

import dataclasses

import numpy as np

SAMPLE_COUNT = 8
_ITEM_BYTES = {'float32': 4, 'float16': 2, 'int8': 1, 'uint8': 1, 'int16': 2, 'int32': 4, 'int64': 8, 'float64': 8}


def check_symbolic(model):
  """Raises unless a Keras model (of either Keras) is built and has symbolic inputs, as a converter needs.

  Args:
    model: A Keras model.

  Raises:
    ValueError: for an unbuilt model, or one without symbolic inputs (a subclassed model).
  """
  if not model.built:
    raise ValueError(f'model {model.name!r} is not built: call it on data (or model.build) before exporting')
  if not getattr(model, 'inputs', None):
    raise ValueError(f'model {model.name!r} has no symbolic inputs (a subclassed model?): export a Sequential or '
                     'functional model')


def _input_names(model):
  """The names of a model's inputs, in order (a Keras 3 model's are its input tensors' names)."""
  names = getattr(model, 'input_names', None)
  return list(names) if names else [tensor.name for tensor in model.inputs]


def _output_names(model):
  names = getattr(model, 'output_names', None)
  return list(names) if names else [tensor.name for tensor in model.outputs]


def _numpy_dtype(tensor):
  """A symbolic tensor's dtype as NumPy's (tf_keras holds a `tf.DType`, Keras 3 a string)."""
  return np.dtype(getattr(tensor.dtype, 'as_numpy_dtype', tensor.dtype))


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
    model: A Keras model (tf_keras or Keras 3) with symbolic inputs.
    data: An array (one input), a list of arrays in input order, or a dict by input name.
    what: The argument's name, for the errors.

  Returns:
    A list of arrays of the inputs' dtypes, with the same number (>= 1) of samples each.

  Raises:
    ValueError: for missing inputs, another number of arrays, wrong shapes or unequal sample counts.
  """
  names = _input_names(model)
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
    array = np.asarray(value, dtype=_numpy_dtype(tensor))
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
    model: A Keras model (tf_keras or Keras 3) with symbolic inputs.
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
  names = _input_names(model)
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
    if any(None in shape for shape in shapes) or any(
        not np.issubdtype(_numpy_dtype(t), np.floating) for t in model.inputs):
      return None, 'outputs not compared: pass sample_inputs for inputs of unknown shape or non-float type'
    rng = np.random.RandomState(0)
    arrays = [rng.randn(SAMPLE_COUNT, *shape).astype(_numpy_dtype(t))
              for shape, t in zip(shapes, model.inputs, strict=True)]
  return dict(zip(names, arrays, strict=True)), None


def keras_outputs(model, samples):
  """The Keras model's outputs on the samples, as the converted file's are compared with them.

  Args:
    model: A plain Keras model (tf_keras or Keras 3).
    samples: {input name: array}.

  Returns:
    {output name: float64 array}.
  """
  outputs = model([samples[name] for name in _input_names(model)] if len(samples) > 1 else
                  next(iter(samples.values())), training=False)
  if isinstance(outputs, dict):
    return {name: np.asarray(value, np.float64) for name, value in outputs.items()}
  outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
  return {name: np.asarray(value, np.float64) for name, value in zip(_output_names(model), outputs, strict=True)}


def _zero_fraction(values):
  size = sum(v.size for v in values)
  return sum(int(np.sum(v == 0)) for v in values) / size if size else 0.0


def weight_zeros(layers, prunable_weights_of, read):
  """The zeros of each layer's weights, and the size and non-zeros of each weight of rank >= 2.

  Args:
    layers: The model's layers, nested models expanded.
    prunable_weights_of: `f(layer)`: the weights the lottery wrapper prunes in the layer ([] if none).
    read: `f(weight)`: its value as a NumPy array.

  Returns:
    ({layer: zero fraction of its prunable weights}, {layer: zero fraction of
    its weights of rank >= 2}, [(layer, size, non-zeros) per weight of rank >= 2]).
  """
  prunable_sparsity, weight_sparsity, weights = {}, {}, []
  for layer in layers:
    prunable = [read(w) for w in prunable_weights_of(layer)]
    if prunable:
      prunable_sparsity[layer.name] = _zero_fraction(prunable)
    values = [read(w) for w in layer.weights if len(w.shape) >= 2]
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
