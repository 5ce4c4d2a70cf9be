"""TFLite export of pruned models, keeping the zeros as TFLite sparse tensors.

`export_tflite` re-applies the masks, strips the wrappers, converts with
TFLite's sparsity optimisation (`tf.lite.Optimize.EXPERIMENTAL_SPARSITY`, plus
`DEFAULT` when quantizing), checks that the flatbuffer loads and matches the
Keras model with the `ai-edge-litert` interpreter, and only then writes it
(atomically: a temporary file in the target directory, loaded once more, then
`os.replace`). It returns an `ExportReport`.

What the sparse format buys: the weights are stored compressed (values plus
indices), so a 90%-sparse model is several times smaller than the dense file.
For unstructured sparsity TFLite inserts a DENSIFY op in front of each sparse
weight, so the model runs the dense kernels (no speed-up); only block sparsity
that a kernel consumes directly (e.g. 1x4 blocks for float FULLY_CONNECTED)
runs sparse. The report lists which weights are stored sparse and whether the
op consuming them runs sparse or after a DENSIFY.

int8 (and dynamic-range) models with sparse weights fail to load with TFLite's
default delegate (XNNPACK); they run with the interpreter's
`OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES`. `export_tflite` detects
this, records the resolver the file needs in `ExportReport.op_resolver`, and
with `require_default_delegates=True` refuses such a model instead.
"""

import collections
import dataclasses
import gzip
import os

from absl import logging
import numpy as np
import tensorflow as tf
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper
import tf_keras as keras

from ltp_tfmot import files
from ltp_tfmot import prune as prune_lib
from ltp_tfmot import wrapper as wrapper_lib

QUANTIZATIONS = (None, 'float16', 'dynamic', 'int8')
DEFAULT_RESOLVER = 'AUTO'
NO_DEFAULT_DELEGATES = 'BUILTIN_WITHOUT_DEFAULT_DELEGATES'
SAMPLE_COUNT = 8
CALIBRATION_LIMIT = 200
# Ops that only change the encoding of a weight between its storage and the op using it.
_PASS_THROUGH_OPS = ('DENSIFY', 'DEQUANTIZE')
_QUANTIZATION_WORDS = {
    None: 'float32',
    'float16': 'float16 weights',
    'dynamic': 'int8 weights, dynamic-range kernels',
    'int8': 'int8 weights and activations',
}
_ITEM_BYTES = {'float32': 4, 'float16': 2, 'int8': 1, 'uint8': 1, 'int16': 2, 'int32': 4, 'int64': 8, 'float64': 8}


class ExportError(RuntimeError):
  """The converted model does not load or run; nothing was written."""


@dataclasses.dataclass(frozen=True)
class SparseTensor:
  """A weight tensor stored in TFLite's sparse format.

  Attributes:
    name: The TFLite tensor name.
    layer: The Keras layer whose weight it stores, where it could be matched
      (by name, else by size and number of stored values), else None.
    shape: The dense shape in TFLite's layout (e.g. [out, in] for a Dense kernel).
    dtype: The stored element type ('float32', 'float16', 'int8', ...).
    bytes: Bytes of stored values (the index arrays come on top).
    ops: The ops that use the weight, e.g. ('FULLY_CONNECTED',).
    densified: True if a DENSIFY op expands the weight before those ops run
      (dense kernels, no speed-up); False if they consume the sparse tensor.
  """
  name: str
  layer: str | None
  shape: tuple[int, ...]
  dtype: str
  bytes: int
  ops: tuple[str, ...]
  densified: bool


@dataclasses.dataclass(frozen=True)
class ExportReport:
  """What `export_tflite` wrote and how it checked it.

  Attributes:
    path: The written file.
    quantization: None, 'float16', 'dynamic' or 'int8'.
    sparse: Whether the sparsity optimisation was used for the file.
    file_bytes: Size of the written file.
    dense_bytes: Size of the same conversion without the sparsity optimisation.
    sparse_bytes: Size with the sparsity optimisation (= file_bytes), or None
      when `sparse=False`.
    gzip_bytes: Size of the written file after gzip (level 9).
    dense_gzip_bytes: Size of the dense conversion after gzip.
    layer_sparsity: Fraction of zeros in each Keras layer's kernels (weights
      of rank >= 2) as exported, by layer name.
    sparse_tensors: The weights stored sparse (`SparseTensor`s).
    op_counts: Number of ops of each type in the file, e.g. {'DENSIFY': 3}.
    op_resolver: The interpreter op resolver the file needs: 'AUTO' (the
      default, with XNNPACK) or 'BUILTIN_WITHOUT_DEFAULT_DELEGATES'.
    max_abs_diff: Largest |TFLite - Keras| over all outputs on the sample
      inputs, or None when no samples could be made.
    max_abs_output: Largest |Keras output| on those samples (for scale).
    sample_count: Number of samples compared.
    notes: Things worth knowing (a resolver fallback, skipped checks).
  """
  path: str
  quantization: str | None
  sparse: bool
  file_bytes: int
  dense_bytes: int
  sparse_bytes: int | None
  gzip_bytes: int
  dense_gzip_bytes: int
  layer_sparsity: dict[str, float]
  sparse_tensors: tuple[SparseTensor, ...]
  op_counts: dict[str, int]
  op_resolver: str
  max_abs_diff: float | None
  max_abs_output: float | None
  sample_count: int
  notes: tuple[str, ...] = ()

  @property
  def size_ratio(self):
    """file_bytes / dense_bytes."""
    return self.file_bytes / self.dense_bytes

  @property
  def densify_ops(self):
    """Number of DENSIFY ops in the file."""
    return self.op_counts.get('DENSIFY', 0)

  @property
  def sparse_ops(self):
    """Names of the ops that consume a sparse weight directly (run sparse)."""
    return tuple(op for t in self.sparse_tensors if not t.densified for op in t.ops)

  @property
  def densified_ops(self):
    """Names of the ops whose sparse weight is expanded by a DENSIFY first."""
    return tuple(op for t in self.sparse_tensors if t.densified for op in t.ops)

  def to_markdown(self):
    """A summary table and a per-layer table, as Markdown."""
    quant = _QUANTIZATION_WORDS[self.quantization]
    if self.max_abs_diff is None:
      diff = 'not checked (no sample inputs)'
    else:
      diff = (f'{self.max_abs_diff:.3g} on {self.sample_count} samples '
              f'(largest \\|Keras output\\| {self.max_abs_output:.3g})')
    lines = [
        '| export | |',
        '|---|---|',
        f'| file | `{self.path}` |',
        f'| weights | {quant}, {"sparse" if self.sparse else "dense"} format |',
        f'| size | {self.file_bytes:,} B ({self.size_ratio:.1%} of the dense {self.dense_bytes:,} B) |',
        f'| gzip | {self.gzip_bytes:,} B (dense: {self.dense_gzip_bytes:,} B) |',
        f'| DENSIFY ops | {self.densify_ops} |',
        f'| op resolver | {self.op_resolver} |',
        f'| max \\|TFLite - Keras\\| | {diff} |',
    ]
    lines.extend(f'| note | {note} |' for note in self.notes)
    lines += ['', '| layer | Keras sparsity | TFLite tensor | stored | runs |', '|---|---:|---|---|---|']
    by_layer = collections.defaultdict(list)
    for tensor in self.sparse_tensors:
      by_layer[tensor.layer].append(tensor)
    for name, sparsity in self.layer_sparsity.items():
      tensors = by_layer.pop(name, [])
      if not tensors:
        lines.append(f'| {name} | {sparsity:.1%} | | dense | dense |')
      for t in tensors:
        lines.append(f'| {name} | {sparsity:.1%} | {_tensor_cell(t)} | sparse, {t.bytes:,} B | {_runs_cell(t)} |')
    for t in by_layer.get(None, []):
      lines.append(f'| ? | | {_tensor_cell(t)} | sparse, {t.bytes:,} B | {_runs_cell(t)} |')
    return '\n'.join(lines) + '\n'


def _tensor_cell(tensor):
  return f'`{tensor.name}` {list(tensor.shape)} {tensor.dtype}'


def _runs_cell(tensor):
  ops = ', '.join(tensor.ops) or 'no op'
  return f'{ops} after DENSIFY' if tensor.densified else f'{ops} on sparse weights'


def export_tflite(model,
                  path,
                  quantization=None,
                  representative_data=None,
                  sparse=True,
                  sample_inputs=None,
                  require_default_delegates=False):
  """Writes a pruned model as a TFLite flatbuffer with sparse weights.

  A wrapped model gets its masks re-applied (pruned weights exactly 0, or
  frozen) and its wrappers stripped first (`ltp_tfmot.strip_pruning`; the
  wrapped model's weights are masked in place); a plain tf_keras model is
  converted as it is. The flatbuffer is loaded and run with the `ai-edge-litert`
  interpreter on sample inputs before anything is written; if it does not load,
  nothing is written.

  Args:
    model: A built tf_keras model, wrapped or not.
    path: Where to write the `.tflite` file; its directory must exist.
    quantization: None (float32), 'float16' (float16 weights), 'dynamic'
      (int8 weights, dynamic-range kernels) or 'int8' (int8 weights and
      activations; inputs and outputs stay float32).
    representative_data: Calibration data, needed for 'int8' only: an array
      (or a list of arrays, one per model input) of samples along axis 0 (the
      first 200 are used), or a TFLite `representative_dataset` callable
      returning an iterable of lists of input arrays.
    sparse: Use TFLite's sparse weight format (False: a plain conversion).
    sample_inputs: Inputs (an array, a list of arrays per model input, or a
      dict by input name) on which TFLite and Keras outputs are compared.
      Default: the first 8 representative samples, else 8 seeded standard
      normal samples.
    require_default_delegates: Refuse (ValueError) a model that loads only
      without TFLite's default delegates (XNNPACK), as int8 and dynamic-range
      models with sparse weights do. Default: write it and report
      `op_resolver='BUILTIN_WITHOUT_DEFAULT_DELEGATES'`.

  Returns:
    An `ExportReport`.

  Raises:
    ValueError: for a Keras 3 or unbuilt model, an unknown quantization,
      'int8' without representative data (or data with another
      quantization), bad sample inputs, a missing directory, or (with
      `require_default_delegates`) a model needing another op resolver.
    ExportError: if the converted model does not load and run.

  Example:

  ```python
  report = ltp_tfmot.export_tflite(model, 'ticket.tflite', quantization='int8', representative_data=x_train)
  print(report.to_markdown())
  ```
  """
  _check_arguments(model, path, quantization, representative_data)
  path = os.fspath(path)
  # Inputs are checked on the model as given, before stripping masks its weights in place.
  representative = _representative_fn(model, representative_data)
  samples, sample_note = _sample_inputs(model, sample_inputs, representative_data)
  notes = [sample_note] if sample_note else []
  stripped = prune_lib.strip_pruning(model) if _has_pruning_wrapper(model) else model

  dense = _convert(stripped, quantization, representative, sparse=False)
  flatbuffer = _convert(stripped, quantization, representative, sparse=True) if sparse else dense
  resolver, outputs, failures = _load_and_run(flatbuffer, samples)
  if resolver is None:
    raise ExportError('the converted model does not load, so nothing was written: ' +
                      '; '.join(f'{k}: {v}' for k, v in failures.items()))
  if resolver != DEFAULT_RESOLVER:
    what = f'{quantization or "float32"} model' + (' with sparse weights' if sparse else '')
    message = (f'the {what} fails to load with the default delegate (XNNPACK: {failures[DEFAULT_RESOLVER]}); '
               f'it runs with OpResolverType.{resolver}')
    if require_default_delegates:
      raise ValueError(f'{message}. Refused (require_default_delegates=True): export with sparse=False or '
                       'another quantization, or load it with that resolver')
    logging.warning('%s; recorded in the report (op_resolver).', message)
    notes.append(message)

  max_abs_diff = max_abs_output = None
  if samples is not None:
    expected = _keras_outputs(stripped, samples)
    if set(expected) != set(outputs) and len(expected) == len(outputs):
      outputs = dict(zip(expected, outputs.values()))
    max_abs_diff = max(float(np.max(np.abs(outputs[name].astype(np.float64) - want))) if want.size else 0.0
                       for name, want in expected.items())
    max_abs_output = max(float(np.max(np.abs(want))) if want.size else 0.0 for want in expected.values())

  op_counts, sparse_tensors = inspect_flatbuffer(flatbuffer)
  layer_sparsity, kernels = _keras_sparsity(stripped)
  sparse_tensors = _match_layers(sparse_tensors, kernels)
  _write_verified(flatbuffer, path, resolver)
  report = ExportReport(
      path=path,
      quantization=quantization,
      sparse=bool(sparse),
      file_bytes=len(flatbuffer),
      dense_bytes=len(dense),
      sparse_bytes=len(flatbuffer) if sparse else None,
      gzip_bytes=len(gzip.compress(flatbuffer, 9)),
      dense_gzip_bytes=len(gzip.compress(dense, 9)),
      layer_sparsity=layer_sparsity,
      sparse_tensors=tuple(sparse_tensors),
      op_counts=op_counts,
      op_resolver=resolver,
      max_abs_diff=max_abs_diff,
      max_abs_output=max_abs_output,
      sample_count=0 if samples is None else len(next(iter(samples.values()))),
      notes=tuple(notes),
  )
  logging.info('Wrote %s: %d bytes (%.1f%% of dense), max |TFLite - Keras| %s.', path, report.file_bytes,
               100 * report.size_ratio, max_abs_diff)
  return report


def load_tflite(path_or_content, op_resolver=None):
  """An allocated `ai_edge_litert` interpreter for an exported model.

  Args:
    path_or_content: A `.tflite` path or the flatbuffer bytes.
    op_resolver: 'AUTO', 'BUILTIN_WITHOUT_DEFAULT_DELEGATES' (e.g. from
      `ExportReport.op_resolver`), or None: try 'AUTO' and fall back to the
      other if the default delegate fails.

  Returns:
    An `ai_edge_litert.interpreter.Interpreter` with tensors allocated.
  """
  if op_resolver not in (None, DEFAULT_RESOLVER, NO_DEFAULT_DELEGATES):
    raise ValueError(f'op_resolver must be one of {[None, DEFAULT_RESOLVER, NO_DEFAULT_DELEGATES]}, '
                     f'got {op_resolver!r}')
  resolvers = (DEFAULT_RESOLVER, NO_DEFAULT_DELEGATES) if op_resolver is None else (op_resolver,)
  error = None
  for resolver in resolvers:
    try:
      return _interpreter(path_or_content, resolver)
    except (RuntimeError, ValueError) as e:
      error = e
  raise error


def _check_arguments(model, path, quantization, representative_data):
  """Validates the model and the settings before anything is converted."""
  wrapper_lib.check_tf_keras(model, 'model')
  files.check_path(path)
  if not isinstance(model, keras.Model):
    raise ValueError(f'model must be a tf_keras Model, got {type(model).__name__}')
  if not model.built:
    raise ValueError(f'model {model.name!r} is not built: call it on data (or model.build) before exporting')
  if not getattr(model, 'inputs', None):
    raise ValueError(f'model {model.name!r} has no symbolic inputs (a subclassed model?): export a Sequential or '
                     'functional model')
  if quantization not in QUANTIZATIONS:
    raise ValueError(f'quantization must be one of {list(QUANTIZATIONS)}, got {quantization!r}')
  if quantization == 'int8' and representative_data is None:
    raise ValueError("quantization='int8' needs representative_data (calibration samples of the model inputs)")
  if quantization != 'int8' and representative_data is not None:
    raise ValueError(f"representative_data is only used with quantization='int8', got quantization={quantization!r}")
  files.check_directory_of(path)


def _has_pruning_wrapper(model):
  for layer in model.layers:
    if isinstance(layer, pruning_wrapper.PruneLowMagnitude):
      return True
    if isinstance(layer, keras.Model) and _has_pruning_wrapper(layer):
      return True
  return False


def _input_arrays(model, data, what):
  """A list of arrays, one per model input, from an array, a list or a dict."""
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
  for tensor, value, name in zip(model.inputs, data, names):
    array = np.asarray(value, dtype=tensor.dtype.as_numpy_dtype)
    expected = tuple(tensor.shape[1:])
    if array.ndim != len(expected) + 1 or any(e is not None and e != a for e, a in zip(expected, array.shape[1:])):
      raise ValueError(f'{what} for input {name!r} has shape {array.shape}; the model expects (n, *{expected})')
    arrays.append(array)
  if len({len(a) for a in arrays}) > 1 or not len(arrays[0]):
    raise ValueError(f'{what} must have the same number (>= 1) of samples for every input, '
                     f'got {[len(a) for a in arrays]}')
  return arrays


def _representative_fn(model, data):
  if data is None or callable(data):
    return data
  arrays = _input_arrays(model, data, 'representative_data')

  def generate():
    for i in range(min(len(arrays[0]), CALIBRATION_LIMIT)):
      yield [a[i:i + 1] for a in arrays]

  return generate


def _sample_inputs(model, sample_inputs, representative_data):
  """({input name: array}, note) for the output comparison; (None, note) if none can be made."""
  names = list(model.input_names)
  if sample_inputs is not None:
    arrays = _input_arrays(model, sample_inputs, 'sample_inputs')
  elif callable(representative_data):
    batches = []
    for batch in representative_data():
      batches.append(batch if isinstance(batch, (list, tuple)) else [batch])
      if len(batches) == SAMPLE_COUNT:
        break
    arrays = _input_arrays(model, [np.concatenate(parts) for parts in zip(*batches)], 'representative_data')
  elif representative_data is not None:
    arrays = [a[:SAMPLE_COUNT] for a in _input_arrays(model, representative_data, 'representative_data')]
  else:
    shapes = [tuple(tensor.shape[1:]) for tensor in model.inputs]
    if any(None in shape for shape in shapes) or any(not t.dtype.is_floating for t in model.inputs):
      return None, 'outputs not compared: pass sample_inputs for inputs of unknown shape or non-float type'
    rng = np.random.RandomState(0)
    arrays = [rng.randn(SAMPLE_COUNT, *shape).astype(t.dtype.as_numpy_dtype)
              for shape, t in zip(shapes, model.inputs)]
  return dict(zip(names, arrays)), None


def _convert(model, quantization, representative, sparse):
  converter = tf.lite.TFLiteConverter.from_keras_model(model)
  optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY] if sparse else []
  if quantization is not None:
    optimizations.append(tf.lite.Optimize.DEFAULT)
  converter.optimizations = optimizations
  if quantization == 'float16':
    converter.target_spec.supported_types = [tf.float16]
  elif quantization == 'int8':
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
  return converter.convert()


def _litert():
  try:
    from ai_edge_litert import interpreter  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError('export_tflite checks the exported model with the ai-edge-litert interpreter: '
                      'pip install ai-edge-litert') from e
  return interpreter


def _interpreter(path_or_content, resolver):
  litert = _litert()
  kind = getattr(litert.OpResolverType, resolver)
  if isinstance(path_or_content, (bytes, bytearray)):
    interpreter = litert.Interpreter(model_content=bytes(path_or_content), experimental_op_resolver_type=kind)
  else:
    interpreter = litert.Interpreter(model_path=os.fspath(path_or_content), experimental_op_resolver_type=kind)
  interpreter.allocate_tensors()
  return interpreter


def _run(interpreter, samples):
  """Invokes the model: on the samples by signature, or once on zeros."""
  if samples is None:
    for detail in interpreter.get_input_details():
      interpreter.set_tensor(detail['index'], np.zeros(detail['shape'], detail['dtype']))
    interpreter.invoke()
    return None
  runner = interpreter.get_signature_runner()
  input_details = runner.get_input_details()
  names = list(input_details)
  if set(names) != set(samples):
    if len(names) != len(samples):
      raise ValueError(f'the TFLite model has inputs {names}, the Keras model {list(samples)}')
    samples = dict(zip(names, samples.values()))
  return runner(**{name: np.asarray(value, input_details[name]['dtype']) for name, value in samples.items()})


def _load_and_run(flatbuffer, samples):
  """(resolver that works or None, outputs by name, {resolver: error} of those that failed)."""
  failures = {}
  for resolver in (DEFAULT_RESOLVER, NO_DEFAULT_DELEGATES):
    try:
      return resolver, _run(_interpreter(flatbuffer, resolver), samples), failures
    except (RuntimeError, ValueError) as e:
      failures[resolver] = str(e).strip().replace('\n', ' ')
  return None, None, failures


def _keras_outputs(model, samples):
  """{output name: float64 array} of the Keras model on the samples."""
  outputs = model([samples[name] for name in model.input_names] if len(samples) > 1 else
                  next(iter(samples.values())), training=False)
  if isinstance(outputs, dict):
    return {name: np.asarray(value, np.float64) for name, value in outputs.items()}
  outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
  return {name: np.asarray(value, np.float64) for name, value in zip(model.output_names, outputs)}


def _write_verified(flatbuffer, path, resolver):
  """Writes to a temporary file, loads it, then renames it to `path`; on failure nothing is left."""

  def loads_back(temp):
    try:
      _interpreter(temp if files.is_local(temp) else files.read_bytes(temp), resolver)  # it reads local paths only
    except (RuntimeError, ValueError) as e:
      raise ExportError(f'the written model does not load back: {e}') from e

  files.atomic_write(path, flatbuffer, verify=loads_back)


def _schema():
  try:
    from ai_edge_litert import schema_py_generated  # pylint: disable=g-import-not-at-top
  except ImportError:
    from tensorflow.lite.python import schema_py_generated  # pylint: disable=g-import-not-at-top
  return schema_py_generated


def inspect_flatbuffer(flatbuffer):
  """Op counts and sparse weight tensors of a TFLite flatbuffer.

  Args:
    flatbuffer: The model bytes.

  Returns:
    ({op name: count}, [SparseTensor with layer=None]).
  """
  schema = _schema()
  model = schema.Model.GetRootAs(flatbuffer, 0)
  op_names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith('_')}
  type_names = {code: name.lower() for name, code in vars(schema.TensorType).items() if not name.startswith('_')}
  codes = []
  for i in range(model.OperatorCodesLength()):
    code = model.OperatorCodes(i)
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    custom = code.CustomCode()
    codes.append(custom.decode() if builtin == schema.BuiltinOperator.CUSTOM and custom else op_names[builtin])
  op_counts = collections.Counter()
  sparse_tensors = []
  for s in range(model.SubgraphsLength()):
    graph = model.Subgraphs(s)
    ops, consumers = [], collections.defaultdict(list)
    for o in range(graph.OperatorsLength()):
      op = graph.Operators(o)
      ops.append((codes[op.OpcodeIndex()], list(op.OutputsAsNumpy()) if op.OutputsLength() else []))
      op_counts[ops[-1][0]] += 1
      for t in (op.InputsAsNumpy() if op.InputsLength() else []):
        if t >= 0:
          consumers[int(t)].append(o)
    for t in range(graph.TensorsLength()):
      tensor = graph.Tensors(t)
      if tensor.Sparsity() is None:
        continue
      dtype = type_names.get(tensor.Type(), str(tensor.Type()))
      data_bytes = model.Buffers(tensor.Buffer()).DataLength() if tensor.Buffer() < model.BuffersLength() else 0
      users, densified = _users(t, ops, consumers)
      sparse_tensors.append(SparseTensor(
          name=tensor.Name().decode(), layer=None, shape=tuple(int(d) for d in tensor.ShapeAsNumpy()),
          dtype=dtype, bytes=int(data_bytes), ops=tuple(users), densified=densified))
  return dict(op_counts), sparse_tensors


def _users(tensor, ops, consumers):
  """The compute ops using a tensor, looking through DENSIFY/DEQUANTIZE, and whether a DENSIFY was passed."""
  users, densified, frontier, seen = [], False, [tensor], set()
  while frontier:
    t = frontier.pop()
    for o in consumers.get(t, []):
      if o in seen:
        continue
      seen.add(o)
      name, outputs = ops[o]
      if name in _PASS_THROUGH_OPS:
        densified |= name == 'DENSIFY'
        frontier.extend(int(x) for x in outputs)
      else:
        users.append(name)
  return users, densified


def _keras_layers(model):
  for layer in model.layers:
    if isinstance(layer, keras.Model):
      yield from _keras_layers(layer)
    else:
      yield layer


def _keras_sparsity(model):
  """({layer name: fraction of zeros in its rank >= 2 weights}, [(layer name, size, nonzeros)])."""
  sparsity, kernels = {}, []
  for layer in _keras_layers(model):
    values = [w.numpy() for w in layer.weights if len(w.shape) >= 2]
    if not values:
      continue
    size = sum(v.size for v in values)
    zeros = sum(int(np.sum(v == 0)) for v in values)
    sparsity[layer.name] = zeros / size if size else 0.0
    kernels.extend((layer.name, v.size, int(np.count_nonzero(v))) for v in values)
  return sparsity, kernels


def _match_layers(sparse_tensors, kernels):
  """Names the Keras layer of each sparse tensor: by name, else by size and stored values, else by size."""
  layer_names = {name for name, _, _ in kernels}
  free = list(kernels)
  layers = {}
  for i, t in enumerate(sparse_tensors):
    hits = layer_names & set(t.name.replace(';', '/').split('/'))
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
