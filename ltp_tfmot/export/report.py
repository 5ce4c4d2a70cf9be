"""The report of an export: what the written file is, how it was checked, which kernels run it, how fast.

`ExportReport` is what `ltp_tfmot.export_tflite` returns, and `to_markdown` its text. It holds records made where
their facts are found: a `ResolverCheck` (defined here) per op resolver from the output check of
`ltp_tfmot.export.tflite`, the `SparseTensor`s read from the file (`ltp_tfmot.export.flatbuffer`), an `OpKernel` per
weighted op (`ltp_tfmot.export.kernels`) and, when timed, a `Latency` per resolver (`ltp_tfmot.export.latency`).
"""

import collections
import dataclasses

from ltp_tfmot.export import flatbuffer as flatbuffer_lib
from ltp_tfmot.export import kernels as kernels_lib
from ltp_tfmot.export import latency as latency_lib

_QUANTIZATION_WORDS = {
    None: 'float32',
    'float16': 'float16 weights',
    'dynamic': 'int8 weights, dynamic-range kernels',
    'int8': 'int8 weights and activations',
}


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
      Both are None if the interpreter could not tell (see `ltp_tfmot.export.kernels.op_placement`).
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
    """What happened under this resolver, in words.

    Args:
      tolerance: The absolute tolerance the largest difference was held to.

    Returns:
      One phrase: why it did not load, or its largest difference against the tolerance and the verdict.
    """
    if self.error is not None:
      return f'does not load: {self.error}'
    if self.max_abs_diff is None:
      return 'runs, finite outputs (not compared)' if self.passed else 'runs, outputs not finite'
    verdict = 'passed' if self.passed else 'wrong outputs'
    return f'max \\|TFLite - Keras\\| {self.max_abs_diff:.3g} (tolerance {tolerance:.3g}): {verdict}'


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
  sparse_tensors: tuple[flatbuffer_lib.SparseTensor, ...]
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
  latency: tuple[latency_lib.Latency, ...] | None = None

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
