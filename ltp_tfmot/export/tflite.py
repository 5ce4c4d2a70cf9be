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

Models of both Kerases are exported: tf_keras ones and Keras 3 ones, on the
TensorFlow backend and on JAX (whose model the converter takes through
jax2tf, in the same process: the file then holds a few extra shape ops for the
dynamic batch size). This module converts, checks, writes and loads; the rest
of the package holds what it uses: `prepare` and `prepare_keras3` the Keras 2
and Keras 3 sides (the checked and stripped model, its zeros by layer:
`keras_side` picks one), `reference` what both share (sample inputs, the
outputs to match, the layer of a converted weight), `interpreter` the op
resolvers and running a file, `flatbuffer` reading and editing the file,
`kernels` the kernel of each op, `latency` the timing and `report` the
`ExportReport`.

Converter defects handled here (ai-edge-litert 2.3, TF 2.21):
- float16 block-sparse weights are fed to DEQUANTIZE without a DENSIFY, which
  reads the compressed values as a dense array (NaN outputs); a DENSIFY op is
  inserted in front of each such DEQUANTIZE, as the converter does for
  unstructured float16 weights.
- int8 and dynamic-range files with sparse weights fail to load with XNNPACK,
  or (1x16 blocks, dynamic range) load and give wrong outputs; the gate picks
  'BUILTIN_WITHOUT_DEFAULT_DELEGATES' for them (`require_default_delegates=True`
  refuses them instead).
- tf_keras recurrent layers (LSTM, GRU, SimpleRNN) do not convert with a
  dynamic batch size (TensorList ops); they are converted unrolled over their
  time steps.
"""

import gzip
import importlib
import numbers
import os

from absl import logging
import numpy as np
import tensorflow as tf

from ltp_tfmot import errors
from ltp_tfmot import files
from ltp_tfmot.export import flatbuffer as flatbuffer_lib
from ltp_tfmot.export import interpreter as interpreter_lib
from ltp_tfmot.export import kernels as kernels_lib
from ltp_tfmot.export import latency as latency_lib
from ltp_tfmot.export import reference as reference_lib
from ltp_tfmot.export import report as report_lib

QUANTIZATIONS = (None, 'float16', 'dynamic', 'int8')
# Largest allowed |TFLite - Keras| over the largest |Keras output| on the compared samples. They are
# bounds for a correct conversion of a small to mid-sized model, several times the errors measured
# (float32 1e-7, float16 2e-4, dynamic 7e-3, int8 1e-2 of the output scale); a wrong file is off by
# the order of the outputs themselves, or NaN.
TOLERANCES = {None: 1e-4, 'float16': 1e-2, 'dynamic': 5e-2, 'int8': 1e-1}
CALIBRATION_LIMIT = 200
_QUANTIZED = ('dynamic', 'int8')


ExportError = errors.ExportError


def export_tflite(model,
                  path,
                  quantization=None,
                  representative_data=None,
                  sparse=True,
                  sample_inputs=None,
                  require_default_delegates=False,
                  tolerance=None,
                  measure_latency=False,
                  latency_runs=latency_lib.LATENCY_RUNS):
  """Writes a pruned model as a TFLite flatbuffer with sparse weights.

  A wrapped model gets its masks re-applied (pruned weights exactly 0, or
  frozen) and its wrappers stripped first (`ltp_tfmot.strip_pruning`; the
  wrapped model's weights are masked in place); a plain model is
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
    model: A built Sequential or functional model, wrapped or not: tf_keras,
      or Keras 3 on the TensorFlow or JAX backend (no quantization-aware
      training there).
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
  side = keras_side(model)
  qat = _check_arguments(side, model, path, quantization, representative_data)
  relative_tolerance = _check_tolerance(tolerance, quantization if not qat else 'int8')
  if isinstance(latency_runs, bool) or not isinstance(latency_runs, numbers.Integral) or latency_runs < 1:
    raise ValueError(f'latency_runs must be an int >= 1 (interleaved timing repetitions), got {latency_runs!r}')
  path = os.fspath(path)
  # Inputs are checked on the model as given, before stripping masks its weights in place.
  representative = _representative_fn(model, representative_data)
  samples, sample_note = reference_lib.sample_inputs(model, sample_inputs, representative_data)
  notes = [sample_note] if sample_note else []
  frozen = side.frozen_layers(model)
  stripped = side.strip(model)
  if qat:
    if quantization is None:
      notes.append('quantization-aware trained model (tfmot QuantizeWrapper layers): exported as int8 weights and '
                   'activations from its trained ranges, as it was trained to run (a float conversion keeps '
                   'QUANTIZE/DEQUANTIZE pairs around float kernels)')
    quantization = 'int8'
  converted, rnn_note = side.model_to_convert(stripped)
  if rnn_note:
    notes.append(rnn_note)

  expected = None if samples is None else reference_lib.keras_outputs(stripped, samples)
  max_abs_output = None if expected is None else max(
      float(np.max(np.abs(want))) if want.size else 0.0 for want in expected.values())
  # An all-zero output scale still lets exact conversions pass.
  absolute_tolerance = relative_tolerance * max(max_abs_output or 0.0, np.finfo(np.float32).tiny)

  convert = lambda sparse_format: _convert(converted, quantization, representative, sparse_format, qat)
  dense = convert(False)
  check = lambda flatbuffer: _check_resolvers(flatbuffer, samples, expected, absolute_tolerance)
  sparse_flatbuffer = None
  if sparse:
    sparse_flatbuffer, densified = flatbuffer_lib.densify_sparse_dequantize_inputs(convert(True))
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
               flatbuffer_lib.partial_blocks_hint(sparse_flatbuffer))
    logging.warning('%s', message)
    notes.append(message)
    flatbuffer, checks, written_sparse = dense, dense_checks, False
  elif not any(c.passed for c in checks):
    raise ExportError('the converted model does not pass its check, so nothing was written: ' +
                      _describe_checks(checks, absolute_tolerance))
  elif sparse and len(sparse_flatbuffer) >= len(dense):
    _, tensors = flatbuffer_lib.inspect_flatbuffer(sparse_flatbuffer)
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
  if resolver != interpreter_lib.DEFAULT_RESOLVER:
    what = f'{quantization or "float32"} model' + (' with sparse weights' if written_sparse else '')
    message = (f'the {what} fails with the default delegate (XNNPACK: '
               f'{checks[0].describe(absolute_tolerance)}); it passes with OpResolverType.{resolver}')
    if require_default_delegates:
      raise ValueError(f'{message}. Refused (require_default_delegates=True): export with sparse=False or '
                       'another quantization, or load it with that resolver')
    message += ', which the file records and load_tflite uses'
    logging.warning('%s.', message)
    notes.append(message)

  stamped = flatbuffer_lib.stamp_resolver(flatbuffer, resolver)
  restamped = _check(stamped, resolver, samples, expected, absolute_tolerance)
  if not restamped.passed:
    raise ExportError(f'the model with its resolver entry does not pass its check, so nothing was written: '
                      f'{restamped.describe(absolute_tolerance)}')
  op_counts, sparse_tensors = flatbuffer_lib.inspect_flatbuffer(stamped)
  latency = None
  if measure_latency:
    latency, latency_note = latency_lib.measure_latency(stamped, dense, checks, samples, int(latency_runs),
                                                        written_sparse)
    if latency_note:
      notes.append(latency_note)
  if quantization in _QUANTIZED and sparse_tensors:
    slower = latency_lib.slower_than_dense_note(passed, dense, latency)
    if slower:
      notes.append(slower)
  layer_sparsity, weight_sparsity, keras_weights = side.keras_sparsity(stripped)
  if frozen:
    notes.append(reference_lib.frozen_note(frozen, sparse_tensors))
  sparse_tensors = reference_lib.match_layers(sparse_tensors, keras_weights)
  op_kernels = kernels_lib.op_kernels(stamped, {c.resolver: (c.passed, c.delegated, c.error) for c in checks},
                                      reference_lib.layer_namer(sparse_tensors, [name for name, _, _ in keras_weights]))
  _write_verified(stamped, path, resolver)
  report = report_lib.ExportReport(
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
  resolvers = interpreter_lib.RESOLVERS
  if op_resolver not in (None, *resolvers):
    raise ValueError(f'op_resolver must be one of {[None, *resolvers]}, got {op_resolver!r}')
  if isinstance(path_or_content, (bytes, bytearray)):
    content = bytes(path_or_content)
  else:
    with tf.io.gfile.GFile(os.fspath(path_or_content), 'rb') as f:
      content = f.read()
  recorded = flatbuffer_lib.recorded_resolver(content)
  if recorded not in resolvers:  # no record (a file from elsewhere), or one this version does not know
    recorded = None
  if op_resolver == interpreter_lib.DEFAULT_RESOLVER and recorded == interpreter_lib.NO_DEFAULT_DELEGATES:
    logging.warning('the model failed its export check with the default delegate (XNNPACK) and passed with %s; '
                    'loading it with %s as asked', interpreter_lib.NO_DEFAULT_DELEGATES, op_resolver)
  if op_resolver is not None:
    resolvers = (op_resolver,)
  elif recorded is not None:
    resolvers = (recorded,)
  error = None
  for resolver in resolvers:
    try:
      return interpreter_lib.allocated_interpreter(content, resolver)
    except (RuntimeError, ValueError) as e:
      error = e
  raise error


def keras_side(model):
  """The module that prepares a model of its Keras for export: `prepare` (tf_keras) or `prepare_keras3` (Keras 3).

  Each is imported on first use, so exporting a Keras 3 model never imports tf_keras or tfmot.
  """
  keras3 = any(cls.__module__.split('.')[0] == 'keras' for cls in type(model).__mro__)
  return importlib.import_module(f'ltp_tfmot.export.{"prepare_keras3" if keras3 else "prepare"}')


def _check_arguments(side, model, path, quantization, representative_data):
  """Validates the model and the settings before anything is converted; returns whether it is quantization-aware."""
  interpreter_lib.litert()  # the check every export ends with needs it: say so before minutes of conversion
  side.check_model(model)
  files.check_path(path)
  qat = side.is_quantization_aware(model)
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
  return qat


def _check_tolerance(tolerance, quantization):
  if tolerance is None:
    return TOLERANCES[quantization]
  if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or not 0 < tolerance < np.inf:
    raise ValueError(f'tolerance must be a number > 0 (relative to the largest |Keras output|), got {tolerance!r}')
  return float(tolerance)


def _representative_fn(model, data):
  if data is None or callable(data):
    return data
  arrays = reference_lib.input_arrays(model, data, 'representative_data')

  def generate():
    for i in range(min(len(arrays[0]), CALIBRATION_LIMIT)):
      yield [a[i:i + 1] for a in arrays]

  return generate


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
    interpreter = interpreter_lib.allocated_interpreter(flatbuffer, resolver)
    outputs = interpreter_lib.run(interpreter, samples)
  except (RuntimeError, ValueError) as e:
    return report_lib.ResolverCheck(resolver, passed=False, error=str(e).strip().replace('\n', ' '))
  delegated = kernels_lib.delegated_nodes(interpreter)
  xnnpack_ops, builtin_ops = kernels_lib.op_placement(interpreter, delegated)
  placement = dict(xnnpack_ops=xnnpack_ops, builtin_ops=builtin_ops,
                   delegated=None if delegated is None else frozenset(delegated))
  if expected is None:
    finite = all(np.all(np.isfinite(np.asarray(v, np.float64))) for v in outputs.values())
    return report_lib.ResolverCheck(resolver, passed=finite, **placement)
  diff = _max_abs_diff(outputs, expected)
  return report_lib.ResolverCheck(resolver, passed=bool(diff <= tolerance), max_abs_diff=diff, **placement)


def _check_resolvers(flatbuffer, samples, expected, tolerance):
  return tuple(_check(flatbuffer, resolver, samples, expected, tolerance) for resolver in interpreter_lib.RESOLVERS)


def _describe_checks(checks, tolerance):
  return '; '.join(f'{c.resolver}: {c.describe(tolerance)}' for c in checks)


def _write_verified(flatbuffer, path, resolver):
  """Writes to a temporary file, loads it, then renames it to `path`; on failure nothing is left."""

  def loads_back(temp):
    try:  # the interpreter reads local paths only
      interpreter_lib.allocated_interpreter(temp if files.is_local(temp) else files.read_bytes(temp), resolver)
    except (RuntimeError, ValueError) as e:
      raise ExportError(f'the written model does not load back: {e}') from e

  try:
    files.atomic_write(path, flatbuffer, verify=loads_back)
  except OSError as error:  # a disk that filled up or a folder made read-only since the check before converting
    failure = errors.StorageError(f'could not write {path}: {error.strerror or error}, so nothing was written: free '
                                  'some space or choose a folder you can write to')
    failure.errno = error.errno
    raise failure from error
