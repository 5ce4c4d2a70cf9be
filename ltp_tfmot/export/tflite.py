"""TFLite export of pruned models, keeping the zeros as TFLite sparse tensors.

`export_tflite` re-applies the masks, strips the wrappers, converts with
TFLite's sparsity optimisation (`tf.lite.Optimize.EXPERIMENTAL_SPARSITY`, plus
`DEFAULT` when quantizing), runs the flatbuffer with the `ai-edge-litert`
interpreter under each op resolver and compares its outputs with the Keras
model's, and only writes a file that passed (atomically: a temporary file in
the target directory, loaded once more, then `os.replace`). It returns an
`ExportReport`.

The output check is a gate, not a statistic. Under each resolver ('AUTO', the
default with the XNNPACK delegate, and 'BUILTIN_WITHOUT_DEFAULT_DELEGATES')
the file passes if it loads, every output is finite and the largest
|TFLite - Keras| is at most `TOLERANCES[quantization]` times the largest
|Keras output| on the same samples. The file is written for the first
resolver that passes, that resolver is recorded in the file (metadata entry
`ltp_tfmot.op_resolver`, which `load_tflite` reads) and in
`ExportReport.op_resolver`; if the sparse conversion passes under no resolver,
the dense conversion is checked and written instead (with a note); if neither
passes, nothing is written and `ExportError` says why.

What the sparse format buys: the weights are stored compressed (values plus
indices), so a 90%-sparse model is several times smaller than the dense file.
For unstructured sparsity TFLite inserts a DENSIFY op in front of each sparse
weight, so the model runs the dense kernels (no speed-up); only block sparsity
that a kernel consumes directly (e.g. 1x4 blocks for float FULLY_CONNECTED)
runs sparse. The report lists which weights are stored sparse, whether the op
consuming them runs sparse or after a DENSIFY, and which ops the XNNPACK
delegate takes; `ExportReport.kernels` names the kernel of every weighted op
under each resolver (the rules of `ltp_tfmot.export.kernels`, confirmed against the
interpreter), and `measure_latency=True` times the file against the dense
conversion (`ExportReport.latency`).

Converter defects handled here (ai-edge-litert 2.3, TF 2.21):
- float16 block-sparse weights are fed to DEQUANTIZE without a DENSIFY, which
  reads the compressed values as a dense array (NaN outputs); a DENSIFY op is
  inserted in front of each such DEQUANTIZE, as the converter does for
  unstructured float16 weights.
- int8 and dynamic-range files with sparse weights fail to load with XNNPACK,
  or (1x16 blocks, dynamic range) load and give wrong outputs; the gate picks
  'BUILTIN_WITHOUT_DEFAULT_DELEGATES' for them (`require_default_delegates=True`
  refuses them instead).
- Recurrent layers (LSTM, GRU, SimpleRNN) do not convert with a dynamic batch
  size (TensorList ops); they are converted unrolled over their time steps.
"""

import collections
import copy
import dataclasses
import gzip
import numbers
import os
import statistics

from absl import logging
import numpy as np
import tensorflow as tf
from tensorflow_model_optimization.python.core.quantization.keras import quantize_layer
from tensorflow_model_optimization.python.core.quantization.keras import quantize_wrapper
from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper
import tf_keras as keras

from ltp_tfmot import errors
from ltp_tfmot import files
from ltp_tfmot.export import kernels as kernels_lib
from ltp_tfmot.export import latency as latency_lib
from ltp_tfmot.keras2 import model_layers
from ltp_tfmot.keras2 import prune as prune_lib
from ltp_tfmot.keras2 import wrapped_model
from ltp_tfmot.keras2 import wrapper as wrapper_lib

QUANTIZATIONS = (None, 'float16', 'dynamic', 'int8')
DEFAULT_RESOLVER = 'AUTO'
NO_DEFAULT_DELEGATES = 'BUILTIN_WITHOUT_DEFAULT_DELEGATES'
RESOLVERS = (DEFAULT_RESOLVER, NO_DEFAULT_DELEGATES)
# Largest allowed |TFLite - Keras| over the largest |Keras output| on the compared samples. They are
# bounds for a correct conversion of a small to mid-sized model, several times the errors measured
# (float32 1e-7, float16 2e-4, dynamic 7e-3, int8 1e-2 of the output scale); a wrong file is off by
# the order of the outputs themselves, or NaN.
TOLERANCES = {None: 1e-4, 'float16': 1e-2, 'dynamic': 5e-2, 'int8': 1e-1}
RESOLVER_METADATA = 'ltp_tfmot.op_resolver'
SAMPLE_COUNT = 8
LATENCY_RUNS = 20
# One timed block of back-to-back invokes; long enough to average out the Python call overhead.
LATENCY_BLOCK_SECONDS = 0.02
CALIBRATION_LIMIT = 200
# Ops that only change the encoding of a weight between its storage and the op using it.
_PASS_THROUGH_OPS = ('DENSIFY', 'DEQUANTIZE')
_QUANTIZED = ('dynamic', 'int8')
_QUANTIZATION_WORDS = {
    None: 'float32',
    'float16': 'float16 weights',
    'dynamic': 'int8 weights, dynamic-range kernels',
    'int8': 'int8 weights and activations',
}
_ITEM_BYTES = {'float32': 4, 'float16': 2, 'int8': 1, 'uint8': 1, 'int16': 2, 'int32': 4, 'int64': 8, 'float64': 8}


ExportError = errors.ExportError


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
class ResolverCheck:
  """How a flatbuffer did under one interpreter op resolver.

  Attributes:
    resolver: 'AUTO' or 'BUILTIN_WITHOUT_DEFAULT_DELEGATES'.
    passed: Loaded, ran, finite outputs within the tolerance.
    error: Why it did not load or run, else None.
    max_abs_diff: Largest |TFLite - Keras| (NaN if an output is not finite),
      or None when it did not run or no samples could be compared.
    xnnpack_ops: {op name: count} of the ops the XNNPACK delegate took.
    builtin_ops: {op name: count} of the ops left to TFLite's built-in kernels.
      Both are None if the interpreter could not tell (see `_op_placement`).
    delegated: Indices of the ops the XNNPACK delegate took (None as above).
  """
  resolver: str
  passed: bool
  error: str | None = None
  max_abs_diff: float | None = None
  xnnpack_ops: dict[str, int] | None = None
  builtin_ops: dict[str, int] | None = None
  delegated: frozenset[int] | None = None

  def describe(self, tolerance):
    if self.error is not None:
      return f'does not load: {self.error}'
    if self.max_abs_diff is None:
      return 'runs, finite outputs (not compared)' if self.passed else 'runs, outputs not finite'
    verdict = 'passed' if self.passed else 'wrong outputs'
    return f'max \\|TFLite - Keras\\| {self.max_abs_diff:.3g} (tolerance {tolerance:.3g}): {verdict}'


@dataclasses.dataclass(frozen=True)
class Latency:
  """Batch-1 latency of the exported file against the dense conversion, under one op resolver.

  Attributes:
    resolver: The op resolver the files were run with.
    file_ms: Median milliseconds per invoke of the exported file, or None if
      it fails under this resolver.
    dense_ms: Median milliseconds per invoke of the dense conversion (same
      quantization, no sparsity), or None if it does not load here or the
      exported file is the dense conversion (then timed alone).
    ratio: Median over the repetitions of file time / dense time (paired: all
      are timed in each repetition), or None if either is missing. It is not
      file_ms / dense_ms: on a loaded machine the two differ, and the
      quartiles show by how much the repetitions vary.
    runs: Number of interleaved repetitions.
    file_quartiles_ms: (first, third) quartile of the file's milliseconds
      per invoke over the repetitions, or None where file_ms is.
    dense_quartiles_ms: The same for the dense conversion.
    ratio_quartiles: The same for the paired ratios.
  """
  resolver: str
  file_ms: float | None
  dense_ms: float | None
  ratio: float | None
  runs: int
  file_quartiles_ms: tuple[float, float] | None = None
  dense_quartiles_ms: tuple[float, float] | None = None
  ratio_quartiles: tuple[float, float] | None = None


@dataclasses.dataclass(frozen=True)
class ExportReport:
  """What `export_tflite` wrote and how it checked it.

  Attributes:
    path: The written file.
    quantization: None, 'float16', 'dynamic' or 'int8': what the file holds
      ('int8' for a quantization-aware trained model).
    sparse: Whether the written file is the sparse conversion (False when
      `sparse=False` or the dense file was written instead; see `notes`).
    file_bytes: Size of the written file.
    dense_bytes: Size of the same conversion without the sparsity
      optimisation, as converted (the written file adds a record of its op
      resolver, a few dozen bytes, also when it is this conversion).
    sparse_bytes: Size of the sparse conversion (= file_bytes when it was
      written), or None when `sparse=False`. The written file holds the
      conversion plus a record of its op resolver (a few dozen bytes).
    gzip_bytes: Size of the written file after gzip (level 9).
    dense_gzip_bytes: Size of the dense conversion after gzip.
    layer_sparsity: Fraction of each layer's prunable weights that are zero in
      the exported model, by layer name: the weights the lottery wrapper prunes
      (tfmot's registry, `get_prunable_weights`, DepthwiseConv2D's depthwise
      kernel), as in `ltp_tfmot.layer_sparsity`, which counts the masks (the
      two differ only for 'freeze' tickets, whose pruned weights are not zero).
    weight_sparsity: Fraction of zeros in all of each layer's weights of rank
      >= 2 (e.g. SeparableConv2D's depthwise kernel too), by layer name.
    sparse_tensors: The weights stored sparse (`SparseTensor`s).
    op_counts: Number of ops of each type in the file, e.g. {'DENSIFY': 3}.
    op_resolver: The interpreter op resolver the file was checked with and
      needs: 'AUTO' (the default, with XNNPACK) or
      'BUILTIN_WITHOUT_DEFAULT_DELEGATES'; also stored in the file.
    checks: The `ResolverCheck` of the written file under each resolver.
    xnnpack_ops: {op: count} XNNPACK takes under `op_resolver` ({} without it).
    builtin_ops: {op: count} run by built-in kernels under `op_resolver`.
    max_abs_diff: Largest |TFLite - Keras| under `op_resolver` on the sample
      inputs, or None when no samples could be made.
    max_abs_output: Largest |Keras output| on those samples (for scale).
    relative_tolerance: The tolerance of the check, relative to `max_abs_output`.
    sample_count: Number of samples compared.
    qat: Whether the model is quantization-aware trained (tfmot QuantizeWrapper
      layers).
    frozen_layers: Layers pruned with mask_0_action='freeze' (stored dense).
    notes: Things worth knowing (a resolver choice, a fallback to the dense
      file, a slower sparse file, skipped checks).
    kernels: The `ltp_tfmot.export.kernels.OpKernel` of every FULLY_CONNECTED,
      CONV_2D and DEPTHWISE_CONV_2D op under each resolver: the kernel that
      runs it (XNNPACK, TFLite's built-in sparse FULLY_CONNECTED, or a dense
      kernel after DENSIFY), whether the interpreter confirmed it ('runs'),
      only the rules say so ('expected') or the file fails there ('fails'),
      why, and why XNNPACK's own sparse inference does (not) take it.
    latency: With `measure_latency=True`, a `Latency` per resolver the file
      passed under (the written file against the dense conversion); else None.
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
  weight_sparsity: dict[str, float]
  sparse_tensors: tuple[SparseTensor, ...]
  op_counts: dict[str, int]
  op_resolver: str
  checks: tuple[ResolverCheck, ...]
  xnnpack_ops: dict[str, int] | None
  builtin_ops: dict[str, int] | None
  max_abs_diff: float | None
  max_abs_output: float | None
  relative_tolerance: float
  sample_count: int
  qat: bool = False
  frozen_layers: tuple[str, ...] = ()
  notes: tuple[str, ...] = ()
  kernels: tuple[kernels_lib.OpKernel, ...] = ()
  latency: tuple[Latency, ...] | None = None

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

  def kernels_under(self, resolver=None):
    """The `OpKernel`s under one resolver (default: `op_resolver`, the one the file records)."""
    resolver = resolver or self.op_resolver
    return tuple(k for k in self.kernels if k.resolver == resolver)

  def to_markdown(self):
    """A summary table and a per-layer table, as Markdown."""
    quant = _QUANTIZATION_WORDS[self.quantization] + (' (quantization-aware trained)' if self.qat else '')
    if self.sparse_tensors:
      layout = 'sparse format'
    elif self.sparse:
      layout = 'dense format (no weight stored sparse)'
    else:
      layout = 'dense format'
    tolerance = self.relative_tolerance * (self.max_abs_output or 0.0)
    if self.max_abs_diff is None:
      diff = 'not compared (no sample inputs)'
    else:
      diff = (f'{self.max_abs_diff:.3g} on {self.sample_count} samples (tolerance {tolerance:.3g} = '
              f'{self.relative_tolerance:g} x largest \\|Keras output\\| {self.max_abs_output:.3g})')
    lines = [
        '| export | |',
        '|---|---|',
        f'| file | `{self.path}` |',
        f'| weights | {quant}, {layout} |',
        f'| size | {self._size_cell()} |',
        f'| gzip | {self.gzip_bytes:,} B' + (f' (dense: {self.dense_gzip_bytes:,} B) |' if self.sparse else ' |'),
        f'| DENSIFY ops | {self.densify_ops} |',
        f'| op resolver | {self.op_resolver} |',
        f'| XNNPACK takes | {_op_cell(self.xnnpack_ops)} |',
        f'| built-in kernels run | {_op_cell(self.builtin_ops)} |',
        f'| max \\|TFLite - Keras\\| | {diff} |',
    ]
    lines.extend(f'| check {c.resolver} | {c.describe(tolerance)} |' for c in self.checks)
    lines.extend(f'| note | {note} |' for note in self.notes)
    lines += ['', '| layer | sparsity (prunable weights) | TFLite tensor | stored | runs |', '|---|---:|---|---|---|']
    by_layer = collections.defaultdict(list)
    for tensor in self.sparse_tensors:
      by_layer[tensor.layer].append(tensor)
    for name in dict.fromkeys([*self.layer_sparsity, *self.weight_sparsity]):
      sparsity = self._sparsity_cell(name)
      tensors = by_layer.pop(name, [])
      if not tensors:
        lines.append(f'| {name} | {sparsity} | | dense | dense |')
      for t in tensors:
        lines.append(f'| {name} | {sparsity} | {_tensor_cell(t)} | sparse, {t.bytes:,} B | {_runs_cell(t)} |')
    for t in by_layer.get(None, []):
      lines.append(f'| ? | | {_tensor_cell(t)} | sparse, {t.bytes:,} B | {_runs_cell(t)} |')
    lines += self._kernel_lines() + self._latency_lines()
    return '\n'.join(lines) + '\n'

  def _kernel_lines(self):
    if not self.kernels:
      return []
    resolvers = list(dict.fromkeys(k.resolver for k in self.kernels))
    lines = ['', '| op | layer | weights | ' + ' | '.join(resolvers) + ' | XNNPACK sparse inference |',
             '|---|---|---|' + '---|' * len(resolvers) + '---|']
    by_op = collections.defaultdict(dict)
    for k in self.kernels:
      by_op[k.index][k.resolver] = k
    for index, row in sorted(by_op.items()):
      first = next(iter(row.values()))
      weights = f'{first.compute}, {_layout_words(first.layout)}' + (', DENSIFY' if first.densified else '')
      cells = ' | '.join(f'{row[r].kernel} ({row[r].status})' if r in row else '' for r in resolvers)
      xnnpack_sparse = next((k.xnnpack_sparse for k in row.values() if k.xnnpack_sparse), '')
      lines.append(f'| {index}: {first.op} | {first.layer or "?"} | {weights} | {cells} | {xnnpack_sparse} |')
    return lines

  def _size_cell(self):
    if self.sparse:
      return f'{self.file_bytes:,} B ({self.size_ratio:.1%} of the dense {self.dense_bytes:,} B)'
    return (f'{self.file_bytes:,} B (the dense conversion, {self.dense_bytes:,} B, and a record of its op resolver, '
            f'{self.file_bytes - self.dense_bytes:,} B)')

  def _latency_lines(self):
    if not self.latency:
      return []
    runs = self.latency[0].runs
    lines = ['', f'| latency (batch 1, 1 thread; median and quartiles of {runs} runs) | this file | dense file | '
             'this / dense (paired per run) |', '|---|---:|---:|---:|']
    ms = lambda value, quartiles: ('fails' if value is None else
                                   f'{value:.4f} ms ({quartiles[0]:.4f}-{quartiles[1]:.4f})')
    for t in self.latency:
      dense = ms(t.dense_ms, t.dense_quartiles_ms) if self.sparse else 'is this file'
      ratio = '' if t.ratio is None else f'{t.ratio:.2f}x ({t.ratio_quartiles[0]:.2f}-{t.ratio_quartiles[1]:.2f}x)'
      lines.append(f'| {t.resolver} | {ms(t.file_ms, t.file_quartiles_ms)} | {dense} | {ratio} |')
    return lines

  def _sparsity_cell(self, name):
    prunable, every = self.layer_sparsity.get(name), self.weight_sparsity.get(name)
    if prunable is None:
      return f'not prunable (all weights of rank >= 2: {every:.1%})'
    if every is None or round(every, 3) == round(prunable, 3):
      return f'{prunable:.1%}'
    return f'{prunable:.1%} (all weights of rank >= 2: {every:.1%})'


def _layout_words(layout):
  if layout == 'dense':
    return 'dense'
  return 'sparse (random)' if layout == 'random' else f'sparse {layout} blocks'


def _tensor_cell(tensor):
  return f'`{tensor.name}` {list(tensor.shape)} {tensor.dtype}'


def _runs_cell(tensor):
  ops = ', '.join(tensor.ops) or 'no op'
  return f'{ops} after DENSIFY' if tensor.densified else f'{ops} on sparse weights'


def _op_cell(counts):
  if counts is None:
    return 'unknown (the interpreter does not list its nodes)'
  return ', '.join(f'{name} x{n}' for name, n in sorted(counts.items())) or 'none'


def export_tflite(model,
                  path,
                  quantization=None,
                  representative_data=None,
                  sparse=True,
                  sample_inputs=None,
                  require_default_delegates=False,
                  tolerance=None,
                  measure_latency=False,
                  latency_runs=LATENCY_RUNS):
  """Writes a pruned model as a TFLite flatbuffer with sparse weights.

  A wrapped model gets its masks re-applied (pruned weights exactly 0, or
  frozen) and its wrappers stripped first (`ltp_tfmot.strip_pruning`; the
  wrapped model's weights are masked in place); a plain tf_keras model is
  converted as it is. A quantization-aware trained model (tfmot
  `quantize_model`, also prune-preserving) is converted to what it was trained
  for: int8 weights and activations from its trained ranges, with
  `quantization=None` or 'int8'. Recurrent layers are converted unrolled.

  The flatbuffer is run with the `ai-edge-litert` interpreter under both op
  resolvers and compared with Keras (see the module docstring): only a file
  that passes is written, for the first resolver that passed. If the sparse
  conversion passes under neither, or is not smaller than the dense one and
  runs no op sparse, the dense conversion is written instead (if it passes)
  and a note says why.

  Speed: the report names the kernel of every weighted op under each
  resolver (`ExportReport.kernels`, from TFLite's and XNNPACK's selection
  rules in `ltp_tfmot.export.kernels`, confirmed against where the interpreter put
  each op) and, with `measure_latency=True`, times the written file against
  the dense conversion on this machine (`ExportReport.latency`). It lists the
  ops XNNPACK takes under the chosen resolver.
  A quantized sparse file whose resolver leaves more ops to the built-in
  kernels than the dense file under XNNPACK gets a note that it will run
  slower than the dense one; this is a rule from measurements (int8 sparse
  ran 3-4x slower than int8 dense on a 784-1024-1024-10 MLP), not a timing of
  the file.

  Args:
    model: A built tf_keras model, wrapped or not.
    path: Where to write the `.tflite` file; its directory must exist.
    quantization: None (float32), 'float16' (float16 weights), 'dynamic'
      (int8 weights, dynamic-range kernels) or 'int8' (int8 weights and
      activations; inputs and outputs stay float32). A quantization-aware
      trained model takes None or 'int8' (both give its int8 file).
    representative_data: Calibration data, needed for 'int8' (except for a
      quantization-aware trained model): an array (or a list of arrays, one
      per model input) of samples along axis 0 (the first 200 are used), or a
      TFLite `representative_dataset` callable returning an iterable of lists
      of input arrays.
    sparse: Use TFLite's sparse weight format (False: a plain conversion).
    sample_inputs: Inputs (an array, a list of arrays per model input, or a
      dict by input name) on which TFLite and Keras outputs are compared.
      Default: the first 8 representative samples, else 8 seeded standard
      normal samples.
    require_default_delegates: Refuse (ValueError) a model that passes only
      without TFLite's default delegates (XNNPACK), as int8 and dynamic-range
      models with sparse weights do. Default: write it and record
      `op_resolver='BUILTIN_WITHOUT_DEFAULT_DELEGATES'`.
    tolerance: The largest allowed |TFLite - Keras| relative to the largest
      |Keras output|; default `TOLERANCES[quantization]`.
    measure_latency: Time the written file and the dense conversion under
      each resolver the file passed under: batch 1 (the first sample input),
      one thread, `latency_runs` interleaved repetitions of ~20 ms blocks of
      back-to-back invokes; median times and the median per-repetition ratio.
    latency_runs: Repetitions for `measure_latency` (an int >= 1).

  Returns:
    An `ExportReport`.

  Raises:
    TypeError: for a Keras 3 model.
    ValueError: for an unbuilt model, an unknown quantization,
      'int8' without representative data (or data with another
      quantization), 'float16' or 'dynamic' for a quantization-aware trained
      model, recurrent layers with an unknown number of time steps, bad sample
      inputs or tolerance, bad latency_runs, a missing directory, or (with
      `require_default_delegates`) a model needing another op resolver.
    ExportError: if the converter fails, or no conversion loads, runs and
      matches Keras under any resolver.

  Example:

  ```python
  report = ltp_tfmot.export_tflite(model, 'ticket.tflite', quantization='int8', representative_data=x_train)
  print(report.to_markdown())
  interpreter = ltp_tfmot.load_tflite('ticket.tflite')  # with the resolver the file was checked with
  ```
  """
  qat = is_quantization_aware(model) if isinstance(model, keras.Model) else False
  _check_arguments(model, path, quantization, representative_data, qat)
  relative_tolerance = _check_tolerance(tolerance, quantization if not qat else 'int8')
  if isinstance(latency_runs, bool) or not isinstance(latency_runs, numbers.Integral) or latency_runs < 1:
    raise ValueError(f'latency_runs must be an int >= 1 (interleaved timing repetitions), got {latency_runs!r}')
  path = os.fspath(path)
  # Inputs are checked on the model as given, before stripping masks its weights in place.
  representative = _representative_fn(model, representative_data)
  samples, sample_note = _sample_inputs(model, sample_inputs, representative_data)
  notes = [sample_note] if sample_note else []
  frozen = tuple(w.layer.name for w in wrapped_model.lottery_wrappers(model) if w.mask_0_action == 'freeze')
  stripped = prune_lib.strip_pruning(model) if _has_pruning_wrapper(model) else model
  if qat:
    if quantization is None:
      notes.append('quantization-aware trained model (tfmot QuantizeWrapper layers): exported as int8 weights and '
                   'activations from its trained ranges, as it was trained to run (a float conversion keeps '
                   'QUANTIZE/DEQUANTIZE pairs around float kernels)')
    quantization = 'int8'
  converted, rnn_note = _model_to_convert(stripped)
  if rnn_note:
    notes.append(rnn_note)

  expected = None if samples is None else _keras_outputs(stripped, samples)
  max_abs_output = None if expected is None else max(
      float(np.max(np.abs(want))) if want.size else 0.0 for want in expected.values())
  # An all-zero output scale still lets exact conversions pass.
  absolute_tolerance = relative_tolerance * max(max_abs_output or 0.0, np.finfo(np.float32).tiny)

  convert = lambda sparse_format: _convert(converted, quantization, representative, sparse_format, qat)
  dense = convert(False)
  check = lambda flatbuffer: _check_resolvers(flatbuffer, samples, expected, absolute_tolerance)
  sparse_flatbuffer = None
  if sparse:
    sparse_flatbuffer, densified = _densify_sparse_dequantize_inputs(convert(True))
    if densified:
      notes.append(f'{densified} sparse weight(s) fed to DEQUANTIZE without a DENSIFY (block-sparse float16, which '
                   'the interpreter would read as dense: NaN outputs) got a DENSIFY op: stored sparse, run dense')
  flatbuffer, checks = (sparse_flatbuffer, check(sparse_flatbuffer)) if sparse else (dense, check(dense))
  written_sparse = bool(sparse)
  if sparse and not any(c.passed for c in checks):
    dense_checks = check(dense)
    if not any(c.passed for c in dense_checks):
      raise ExportError('no conversion loads and matches the Keras model, so nothing was written: sparse: ' +
                        _describe_checks(checks, absolute_tolerance) + '; dense: ' +
                        _describe_checks(dense_checks, absolute_tolerance))
    message = ('the sparse conversion fails the check under every resolver (' +
               _describe_checks(checks, absolute_tolerance) + '): the dense file was written instead' +
               _partial_blocks_hint(sparse_flatbuffer))
    logging.warning('%s', message)
    notes.append(message)
    flatbuffer, checks, written_sparse = dense, dense_checks, False
  elif not any(c.passed for c in checks):
    raise ExportError('the converted model does not pass its check, so nothing was written: ' +
                      _describe_checks(checks, absolute_tolerance))
  elif sparse and len(sparse_flatbuffer) >= len(dense):
    _, tensors = inspect_flatbuffer(sparse_flatbuffer)
    dense_checks = check(dense) if all(t.densified for t in tensors) else ()
    if any(c.passed for c in dense_checks):
      notes.append(f'the sparse format ({len(sparse_flatbuffer):,} B) is not smaller than the dense one '
                   f'({len(dense):,} B) and runs no op sparse: the dense file was written instead')
      flatbuffer, checks, written_sparse = dense, dense_checks, False
    else:
      notes.append(f'the sparse file ({len(sparse_flatbuffer):,} B) is larger than the dense one ({len(dense):,} B); '
                   'export with sparse=False for the dense one')

  passed = next(c for c in checks if c.passed)
  resolver = passed.resolver
  if resolver != DEFAULT_RESOLVER:
    what = f'{quantization or "float32"} model' + (' with sparse weights' if written_sparse else '')
    message = (f'the {what} fails with the default delegate (XNNPACK: '
               f'{checks[0].describe(absolute_tolerance)}); it passes with OpResolverType.{resolver}')
    if require_default_delegates:
      raise ValueError(f'{message}. Refused (require_default_delegates=True): export with sparse=False or '
                       'another quantization, or load it with that resolver')
    message += ', which the file records and load_tflite uses'
    logging.warning('%s.', message)
    notes.append(message)

  stamped = _stamp_resolver(flatbuffer, resolver)
  restamped = _check(stamped, resolver, samples, expected, absolute_tolerance)
  if not restamped.passed:
    raise ExportError(f'the model with its resolver entry does not pass its check, so nothing was written: '
                      f'{restamped.describe(absolute_tolerance)}')
  op_counts, sparse_tensors = inspect_flatbuffer(stamped)
  latency = None
  if measure_latency:
    latency, latency_note = _measure_latency(stamped, dense, checks, samples, int(latency_runs), written_sparse)
    if latency_note:
      notes.append(latency_note)
  if quantization in _QUANTIZED and sparse_tensors:
    slower = _slower_than_dense_note(passed, dense, latency)
    if slower:
      notes.append(slower)
  layer_sparsity, weight_sparsity, kernels = _keras_sparsity(stripped)
  if frozen:
    notes.append(_frozen_note(frozen, sparse_tensors))
  sparse_tensors = _match_layers(sparse_tensors, kernels)
  op_kernels = kernels_lib.op_kernels(stamped, {c.resolver: (c.passed, c.delegated, c.error) for c in checks},
                                      _layer_namer(sparse_tensors, [name for name, _, _ in kernels]))
  _write_verified(stamped, path, resolver)
  report = ExportReport(
      path=path,
      quantization=quantization,
      sparse=written_sparse,
      file_bytes=len(stamped),
      dense_bytes=len(dense),
      sparse_bytes=(len(stamped) if written_sparse else len(sparse_flatbuffer)) if sparse else None,
      gzip_bytes=len(gzip.compress(stamped, 9)),
      dense_gzip_bytes=len(gzip.compress(dense, 9)),
      layer_sparsity=layer_sparsity,
      weight_sparsity=weight_sparsity,
      sparse_tensors=tuple(sparse_tensors),
      op_counts=op_counts,
      op_resolver=resolver,
      checks=tuple(checks),
      xnnpack_ops=passed.xnnpack_ops,
      builtin_ops=passed.builtin_ops,
      max_abs_diff=passed.max_abs_diff,
      max_abs_output=max_abs_output,
      relative_tolerance=relative_tolerance,
      sample_count=0 if samples is None else len(next(iter(samples.values()))),
      qat=qat,
      frozen_layers=frozen,
      notes=tuple(notes),
      kernels=op_kernels,
      latency=latency,
  )
  logging.info('Wrote %s: %d bytes (%.1f%% of dense), max |TFLite - Keras| %s under %s.', path, report.file_bytes,
               100 * report.size_ratio, report.max_abs_diff, resolver)
  return report


def load_tflite(path_or_content, op_resolver=None):
  """An allocated `ai_edge_litert` interpreter for an exported model.

  Args:
    path_or_content: A `.tflite` path or the flatbuffer bytes.
    op_resolver: 'AUTO', 'BUILTIN_WITHOUT_DEFAULT_DELEGATES', or None: the
      resolver `export_tflite` checked the file with (recorded in the file);
      for a file without that record, 'AUTO', falling back to the other if the
      default delegate fails to load it.

  Returns:
    An `ai_edge_litert.interpreter.Interpreter` with tensors allocated.

  Raises:
    ValueError: for an unknown op_resolver.
    RuntimeError: if the model does not load with the resolver(s) tried.
  """
  if op_resolver not in (None, *RESOLVERS):
    raise ValueError(f'op_resolver must be one of {[None, *RESOLVERS]}, got {op_resolver!r}')
  if isinstance(path_or_content, (bytes, bytearray)):
    content = bytes(path_or_content)
  else:
    with tf.io.gfile.GFile(os.fspath(path_or_content), 'rb') as f:
      content = f.read()
  recorded = _recorded_resolver(content)
  if op_resolver == DEFAULT_RESOLVER and recorded == NO_DEFAULT_DELEGATES:
    logging.warning('the model failed its export check with the default delegate (XNNPACK) and passed with %s; '
                    'loading it with %s as asked', NO_DEFAULT_DELEGATES, op_resolver)
  if op_resolver is not None:
    resolvers = (op_resolver,)
  else:
    resolvers = (recorded,) if recorded is not None else RESOLVERS
  error = None
  for resolver in resolvers:
    try:
      return _interpreter(content, resolver)
    except (RuntimeError, ValueError) as e:
      error = e
  raise error


def _check_arguments(model, path, quantization, representative_data, qat):
  """Validates the model and the settings before anything is converted."""
  _litert()  # the check every export ends with needs it: say so before minutes of conversion
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
  if qat and quantization not in (None, 'int8'):
    raise ValueError(f'model {model.name!r} is quantization-aware trained (tfmot QuantizeWrapper layers): it converts '
                     f"to int8 weights and activations from its trained ranges; quantization={quantization!r} "
                     "would discard them: pass quantization=None or 'int8'")
  if quantization == 'int8' and representative_data is None and not qat:
    raise ValueError("quantization='int8' needs representative_data (calibration samples of the model inputs)")
  if quantization != 'int8' and representative_data is not None:
    raise ValueError(f"representative_data is only used with quantization='int8', got quantization={quantization!r}")
  files.check_directory_of(path)


def _check_tolerance(tolerance, quantization):
  if tolerance is None:
    return TOLERANCES[quantization]
  if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or not 0 < tolerance < np.inf:
    raise ValueError(f'tolerance must be a number > 0 (relative to the largest |Keras output|), got {tolerance!r}')
  return float(tolerance)


def _has_pruning_wrapper(model):
  return any(isinstance(layer, pruning_wrapper.PruneLowMagnitude) for layer in model_layers.flat_layers(model))


def is_quantization_aware(model):
  """Whether tfmot's quantize_model (or a prune/cluster-preserving scheme) made the model.

  Args:
    model: A tf_keras model.

  Returns:
    True if it has tfmot QuantizeWrapper or QuantizeLayer layers.
  """
  return any(isinstance(layer, (quantize_wrapper.QuantizeWrapper, quantize_layer.QuantizeLayer))
             for layer in model_layers.flat_layers(model))


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
    arrays = _input_arrays(model, [np.concatenate(parts) for parts in zip(*batches, strict=True)],
                           'representative_data')
  elif representative_data is not None:
    arrays = [a[:SAMPLE_COUNT] for a in _input_arrays(model, representative_data, 'representative_data')]
  else:
    shapes = [tuple(tensor.shape[1:]) for tensor in model.inputs]
    if any(None in shape for shape in shapes) or any(not t.dtype.is_floating for t in model.inputs):
      return None, 'outputs not compared: pass sample_inputs for inputs of unknown shape or non-float type'
    rng = np.random.RandomState(0)
    arrays = [rng.randn(SAMPLE_COUNT, *shape).astype(t.dtype.as_numpy_dtype)
              for shape, t in zip(shapes, model.inputs, strict=True)]
  return dict(zip(names, arrays, strict=True)), None




def _rnn_layers(model):
  recurrent = (keras.layers.RNN, keras.layers.Bidirectional)
  return [layer for layer in model_layers.flat_layers(model) if isinstance(layer, recurrent)]


def _model_to_convert(model):
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


def _convert(model, quantization, representative, sparse, qat=False):
  converter = tf.lite.TFLiteConverter.from_keras_model(model)
  optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY] if sparse else []
  if quantization is not None:
    optimizations.append(tf.lite.Optimize.DEFAULT)
  converter.optimizations = optimizations
  if quantization == 'float16':
    converter.target_spec.supported_types = [tf.float16]
  elif quantization == 'int8' and representative is not None:
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
  try:
    return converter.convert()
  except Exception as e:  # pylint: disable=broad-except
    # The converter raises its own error classes with MLIR traces of hundreds of lines.
    first = next((line for line in str(e).splitlines() if 'error:' in line), str(e).splitlines()[0] if str(e) else '')
    raise ExportError(f'the TFLite converter failed ({type(e).__name__}: {first.split("error:")[-1].strip()[:300]}); '
                      f'nothing was written. Converter settings: quantization={quantization!r}, sparse={sparse}, '
                      f'quantization-aware={qat}') from e


def _litert():
  try:
    from ai_edge_litert import interpreter  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise errors.MissingDependencyError('export_tflite checks every file it writes with the ai-edge-litert '
                                        'interpreter, which is not installed (ltp_tfmot depends on it where a wheel '
                                        'exists: Linux and macOS): pip install ai-edge-litert') from e
  return interpreter


def _interpreter(path_or_content, resolver, num_threads=None):
  litert = _litert()
  kind = getattr(litert.OpResolverType, resolver)
  if isinstance(path_or_content, (bytes, bytearray)):
    interpreter = litert.Interpreter(model_content=bytes(path_or_content), experimental_op_resolver_type=kind,
                                     num_threads=num_threads)
  else:
    interpreter = litert.Interpreter(model_path=os.fspath(path_or_content), experimental_op_resolver_type=kind,
                                     num_threads=num_threads)
  interpreter.allocate_tensors()
  return interpreter


def _run(interpreter, samples):
  """{output name: array}: the model run on the samples by signature, or once on zeros (by output index)."""
  if samples is None:
    for detail in interpreter.get_input_details():
      interpreter.set_tensor(detail['index'], np.zeros(detail['shape'], detail['dtype']))
    interpreter.invoke()
    return {str(d['index']): interpreter.get_tensor(d['index']) for d in interpreter.get_output_details()}
  runner = interpreter.get_signature_runner()
  input_details = runner.get_input_details()
  names = list(input_details)
  if set(names) != set(samples):
    if len(names) != len(samples):
      raise ValueError(f'the TFLite model has inputs {names}, the Keras model {list(samples)}')
    samples = dict(zip(names, samples.values(), strict=True))
  return runner(**{name: np.asarray(value, input_details[name]['dtype']) for name, value in samples.items()})


def _max_abs_diff(outputs, expected):
  """Largest |TFLite - Keras| over the outputs (NaN if a TFLite output is not finite)."""
  if set(expected) != set(outputs) and len(expected) == len(outputs):
    outputs = dict(zip(expected, outputs.values(), strict=True))
  diffs = []
  for name, want in expected.items():
    got = np.asarray(outputs[name], np.float64)
    if not np.all(np.isfinite(got)):
      return float('nan')
    diffs.append(float(np.max(np.abs(got - want))) if want.size else 0.0)
  return max(diffs)


def _check(flatbuffer, resolver, samples, expected, tolerance):
  """The `ResolverCheck` of a flatbuffer under one resolver."""
  try:
    interpreter = _interpreter(flatbuffer, resolver)
    outputs = _run(interpreter, samples)
  except (RuntimeError, ValueError) as e:
    return ResolverCheck(resolver, passed=False, error=str(e).strip().replace('\n', ' '))
  delegated = kernels_lib.delegated_nodes(interpreter)
  xnnpack_ops, builtin_ops = _op_placement(interpreter, delegated)
  placement = dict(xnnpack_ops=xnnpack_ops, builtin_ops=builtin_ops,
                   delegated=None if delegated is None else frozenset(delegated))
  if expected is None:
    finite = all(np.all(np.isfinite(np.asarray(v, np.float64))) for v in outputs.values())
    return ResolverCheck(resolver, passed=finite, **placement)
  diff = _max_abs_diff(outputs, expected)
  return ResolverCheck(resolver, passed=bool(diff <= tolerance), max_abs_diff=diff, **placement)


def _check_resolvers(flatbuffer, samples, expected, tolerance):
  return tuple(_check(flatbuffer, resolver, samples, expected, tolerance) for resolver in RESOLVERS)


def _describe_checks(checks, tolerance):
  return '; '.join(f'{c.resolver}: {c.describe(tolerance)}' for c in checks)


def _op_placement(interpreter, delegated=None):
  """({op: count} taken by a delegate, {op: count} left to built-in kernels), or (None, None).

  `delegated`: the op indices a delegate took (`ltp_tfmot.export.kernels.delegated_nodes`), found if not given.
  """
  if delegated is None:
    delegated = kernels_lib.delegated_nodes(interpreter)
  if delegated is None:
    return None, None
  ops = [node for node in interpreter._get_ops_details() if node['op_name'] != 'DELEGATE']  # pylint: disable=protected-access
  taken = collections.Counter(node['op_name'] for node in ops if node['index'] in delegated)
  left = collections.Counter(node['op_name'] for node in ops if node['index'] not in delegated)
  return dict(taken), dict(left)


def _batch_of_one(samples, interpreter):
  """Sets every input of an interpreter to one sample (the first of `samples`, else zeros) and allocates."""
  runner_inputs = interpreter.get_signature_runner().get_input_details() if samples is not None else None
  if runner_inputs is not None and set(runner_inputs) != set(samples) and len(runner_inputs) == len(samples):
    samples = dict(zip(runner_inputs, samples.values(), strict=True))
  values = []
  for detail in interpreter.get_input_details():
    if runner_inputs is not None:
      name = next(n for n, d in runner_inputs.items() if d['index'] == detail['index'])
      value = np.asarray(samples[name][:1], detail['dtype'])
    else:
      value = np.zeros([1, *detail['shape'][1:]], detail['dtype'])
    interpreter.resize_tensor_input(detail['index'], value.shape)
    values.append((detail['index'], value))
  interpreter.allocate_tensors()
  for index, value in values:
    interpreter.set_tensor(index, value)


def _measure_latency(flatbuffer, dense, checks, samples, runs, written_sparse):
  """((`Latency` per resolver), note or None): the file (where it passes) and the dense file (where it loads).

  A written file that is the dense conversion (a shrunk model's, for one) is timed alone.
  """
  interpreters, failed = {}, []
  for check in checks:
    contents = ([('dense', dense)] if written_sparse else []) + ([('file', flatbuffer)] if check.passed else [])
    if not check.passed:
      failed.append(check.resolver)
    for kind, content in contents:
      try:
        interpreter = _interpreter(content, check.resolver, num_threads=1)
      except (RuntimeError, ValueError):
        continue
      _batch_of_one(samples, interpreter)
      interpreters[kind, check.resolver] = interpreter
  logging.info('Timing the exported file against the dense conversion: %d runs of %d interpreters.', runs,
               len(interpreters))
  times = latency_lib.interleaved_invoke_times(interpreters, runs, LATENCY_BLOCK_SECONDS)
  ms = {key: [t / 1e3 for t in values] for key, values in times.items()}
  results = []
  for check in checks:
    file_ms, dense_ms = ms.get(('file', check.resolver)), ms.get(('dense', check.resolver))
    if file_ms is None and dense_ms is None:
      continue
    ratios = [f / d for f, d in zip(file_ms, dense_ms, strict=True)] if file_ms and dense_ms else None
    results.append(Latency(check.resolver, _median(file_ms), _median(dense_ms), _median(ratios), runs,
                           _quartiles(file_ms), _quartiles(dense_ms), _quartiles(ratios)))
  note = (f'latency of this file not measured under {", ".join(failed)} (it fails there; the dense file is timed '
          'where it loads)') if failed else None
  return tuple(results), note


def _median(values):
  return None if values is None else statistics.median(values)


def _quartiles(values):
  """(first, third) quartile of a list of numbers, or None for None."""
  if values is None:
    return None
  if len(values) == 1:
    return values[0], values[0]
  first, _, third = statistics.quantiles(values, n=4, method='inclusive')
  return first, third


def _layer_namer(sparse_tensors, layer_names):
  """TFLite weight tensor name -> Keras layer name: the match of a sparse tensor, else a layer named in it."""
  matched = {t.name: t.layer for t in sparse_tensors}
  names = set(layer_names)

  def layer_of(tensor_name):
    if tensor_name in matched:
      return matched[tensor_name]
    hits = names & set(tensor_name.replace(';', '/').split('/'))
    return hits.pop() if len(hits) == 1 else None

  return layer_of


def _slower_than_dense_note(passed, dense, latency):
  """A note when a quantized sparse file is slower than the dense file under XNNPACK: measured, else by rule.

  The rule: the file leaves ops to built-in kernels that XNNPACK runs in the dense file.
  """
  dense_default = next((t.dense_ms for t in latency or () if t.resolver == DEFAULT_RESOLVER), None)
  timed = [t for t in latency or () if t.file_ms is not None]
  if dense_default is not None and timed:
    best = min(timed, key=lambda t: t.file_ms)
    if best.file_ms <= dense_default:
      return None
    return (f'slower than the dense file: measured {best.file_ms:.4g} ms per invoke at best ({best.resolver}) '
            f'against {dense_default:.4g} ms for the dense file with XNNPACK (AUTO): export with sparse=False for '
            'speed, keep this file for size')
  try:
    dense_xnnpack, _ = _op_placement(_interpreter(dense, DEFAULT_RESOLVER))
  except (RuntimeError, ValueError):
    return None
  if dense_xnnpack is None or passed.xnnpack_ops is None:
    return None
  sparse_count, dense_count = sum(passed.xnnpack_ops.values()), sum(dense_xnnpack.values())
  if sparse_count >= dense_count:
    return None
  return (f'slower than the dense file: XNNPACK takes {sparse_count} op(s) of this sparse quantized file under '
          f'{passed.resolver} and {dense_count} of the dense one, and the built-in sparse int8 kernels ran 1.1-1.5x '
          '(1x16 blocks) and 4.5-6x (densified) the time of dense int8 under XNNPACK where measured (a rule, not a '
          'timing of this file; measure_latency=True times it): export with sparse=False for speed, keep this file '
          'for size')


def _frozen_note(frozen, sparse_tensors):
  stored = 'no weight is stored sparse' if not sparse_tensors else 'their weights are stored dense'
  return (f"layers {list(frozen)} were pruned with mask_0_action='freeze': their pruned weights keep their "
          f'rewind-point values instead of 0, so they are not zeros and {stored}; the file has the dense size. '
          "For a sparse file, train the ticket with mask_0_action='zero' (the default)")


def _densify_sparse_dequantize_inputs(flatbuffer):
  """(flatbuffer, count): a DENSIFY op inserted between each sparse weight and a DEQUANTIZE reading it.

  The converter leaves block-sparse float16 weights (blocks a kernel could
  consume) feeding DEQUANTIZE directly; DEQUANTIZE has no sparse input and
  reads the compressed values as a dense array. Unstructured float16 weights
  get DENSIFY -> DEQUANTIZE from the converter; this gives blocks the same.
  """
  schema, utils = kernels_lib.tflite_schema(), kernels_lib.flatbuffer_tools()
  model = utils.read_model_from_bytearray(bytearray(flatbuffer))
  codes = [utils.get_builtin_code_from_operator_code(code) for code in model.operatorCodes]
  densify_code, count = None, 0
  for graph in model.subgraphs:
    operators = []
    for op in graph.operators:
      source = graph.tensors[op.inputs[0]] if op.inputs else None
      if codes[op.opcodeIndex] == schema.BuiltinOperator.DEQUANTIZE and source is not None and source.sparsity:
        if densify_code is None:
          code = schema.OperatorCodeT()
          code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.DENSIFY
          code.version = 1
          model.operatorCodes.append(code)
          densify_code = len(model.operatorCodes) - 1
        dense = schema.TensorT()
        dense.shape, dense.type, dense.buffer = list(source.shape), source.type, 0
        dense.name = (source.name.decode() if isinstance(source.name, bytes) else source.name) + '/densified'
        graph.tensors.append(dense)
        densify = schema.OperatorT()
        densify.opcodeIndex, densify.inputs, densify.outputs = densify_code, [op.inputs[0]], [len(graph.tensors) - 1]
        operators.append(densify)
        op.inputs[0] = len(graph.tensors) - 1
        count += 1
      operators.append(op)
    graph.operators = operators
  if not count:
    return flatbuffer, 0
  return bytes(utils.convert_object_to_bytearray(model)), count


def _partial_blocks_hint(flatbuffer):
  """Why a sparse conversion may be wrong: FULLY_CONNECTED weights whose blocks do not tile their input dimension."""
  model = kernels_lib.flatbuffer_tools().read_model_from_bytearray(bytearray(flatbuffer))
  partial = []
  for graph in model.subgraphs:
    for tensor in graph.tensors:
      layout = kernels_lib.weight_layout(tensor)
      if 'x' in layout and len(tensor.shape) == 2 and tensor.shape[1] % int(layout.split('x')[1]):
        partial.append(f'{kernels_lib.tensor_name(tensor)} {list(tensor.shape)} in {layout} blocks')
  if not partial:
    return ''
  # Seen here: such files compute wrong outputs under every resolver, with or without a DENSIFY in front.
  return (f'. The converter stored {partial} in blocks that do not tile the input dimension (the second), which '
          'computes wrong outputs: give those layers a multiple of the block width (4 float, 16 int8) of inputs')


def _stamp_resolver(flatbuffer, resolver):
  """The flatbuffer with a metadata entry naming the op resolver it was checked with."""
  schema, utils = kernels_lib.tflite_schema(), kernels_lib.flatbuffer_tools()
  model = utils.read_model_from_bytearray(bytearray(flatbuffer))
  model.metadata = [m for m in (model.metadata or []) if _metadata_name(m) != RESOLVER_METADATA]
  buffer = schema.BufferT()
  buffer.data = np.frombuffer(resolver.encode(), np.uint8)
  model.buffers.append(buffer)
  entry = schema.MetadataT()
  entry.name, entry.buffer = RESOLVER_METADATA, len(model.buffers) - 1
  model.metadata.append(entry)
  return bytes(utils.convert_object_to_bytearray(model))


def _metadata_name(entry):
  return entry.name.decode() if isinstance(entry.name, bytes) else entry.name


def _recorded_resolver(content):
  """The op resolver `export_tflite` recorded in a flatbuffer, or None."""
  try:
    model = kernels_lib.tflite_schema().Model.GetRootAs(content, 0)
    for i in range(model.MetadataLength()):
      entry = model.Metadata(i)
      if entry.Name() and entry.Name().decode() == RESOLVER_METADATA:
        value = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode()
        return value if value in RESOLVERS else None
  except (AttributeError, IndexError, TypeError, UnicodeDecodeError, ValueError):
    return None
  return None


def _keras_outputs(model, samples):
  """{output name: float64 array} of the Keras model on the samples."""
  outputs = model([samples[name] for name in model.input_names] if len(samples) > 1 else
                  next(iter(samples.values())), training=False)
  if isinstance(outputs, dict):
    return {name: np.asarray(value, np.float64) for name, value in outputs.items()}
  outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
  return {name: np.asarray(value, np.float64) for name, value in zip(model.output_names, outputs, strict=True)}


def _write_verified(flatbuffer, path, resolver):
  """Writes to a temporary file, loads it, then renames it to `path`; on failure nothing is left."""

  def loads_back(temp):
    try:
      _interpreter(temp if files.is_local(temp) else files.read_bytes(temp), resolver)  # it reads local paths only
    except (RuntimeError, ValueError) as e:
      raise ExportError(f'the written model does not load back: {e}') from e

  try:
    files.atomic_write(path, flatbuffer, verify=loads_back)
  except OSError as error:  # a disk that filled up or a folder made read-only since the check before converting
    failure = errors.StorageError(f'could not write {path}: {error.strerror or error}, so nothing was written: free '
                                  'some space or choose a folder you can write to')
    failure.errno = error.errno
    raise failure from error


def inspect_flatbuffer(flatbuffer):
  """Op counts and sparse weight tensors of a TFLite flatbuffer.

  Args:
    flatbuffer: The model bytes.

  Returns:
    ({op name: count}, [SparseTensor with layer=None]).
  """
  schema = kernels_lib.tflite_schema()
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


def _keras_sparsity(model):
  """({layer: zero fraction of its prunable weights}, {layer: of its rank >= 2 weights}, [(layer, size, nonzeros)])."""
  prunable_sparsity, weight_sparsity, kernels = {}, {}, []
  for layer in model_layers.flat_layers(model):
    prunable = [w.numpy() for w in _prunable_weights(layer)]
    if prunable:
      prunable_sparsity[layer.name] = _zero_fraction(prunable)
    values = [w.numpy() for w in layer.weights if len(w.shape) >= 2]
    if values:
      weight_sparsity[layer.name] = _zero_fraction(values)
      kernels.extend((layer.name, v.size, int(np.count_nonzero(v))) for v in values)
  return prunable_sparsity, weight_sparsity, kernels


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
