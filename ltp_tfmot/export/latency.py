"""Timing an exported TFLite file against its dense conversion: interleaved blocks of back-to-back invokes.

`interleaved_invoke_times` times any interpreters against each other (the benchmarks use it too);
`measure_latency` times an exported file and the dense conversion under each op resolver, for
`export_tflite(measure_latency=True)`, and gives a `Latency` per resolver; `slower_than_dense_note` says when a
quantized sparse file runs slower than the dense one, from those timings or else by a rule from measurements.
"""

import collections
import dataclasses
import statistics
import time

from absl import logging
import numpy as np

from ltp_tfmot.export import interpreter as interpreter_lib
from ltp_tfmot.export import kernels as kernels_lib

WARMUP_INVOKES = 20
LATENCY_RUNS = 20
# One timed block of back-to-back invokes; long enough to average out the Python call overhead.
LATENCY_BLOCK_SECONDS = 0.02


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


def interleaved_invoke_times(interpreters, repetitions, block_seconds):
  """Microseconds per invoke of each interpreter, one sample per repetition, timed interleaved.

  Every interpreter is timed in every repetition, in an order rotated by one
  each repetition, as one block of back-to-back `invoke()` calls on the input
  already set, lasting about `block_seconds` (the count per block is fixed
  after a warm-up, so the blocks of a repetition see the same load of a shared
  machine). Compare two models by the median of their per-repetition ratios.

  Args:
    interpreters: {key: allocated interpreter whose inputs are set}, e.g. with
      keys (variant, op resolver).
    repetitions: Number of interleaved repetitions (>= 1).
    block_seconds: Length of one timed block (> 0).

  Returns:
    {key: list of `repetitions` microseconds per invoke}.

  Raises:
    ValueError: for no interpreters, repetitions < 1 or block_seconds <= 0.

  Example:

  ```python
  times = ltp_tfmot.export.latency.interleaved_invoke_times({'sparse': a, 'dense': b}, 20, 0.02)
  ratio = statistics.median(s / d for s, d in zip(times['sparse'], times['dense']))
  ```
  """
  if not interpreters:
    raise ValueError('interpreters is empty: pass {key: interpreter with its inputs set}')
  if isinstance(repetitions, bool) or not isinstance(repetitions, int) or repetitions < 1:
    raise ValueError(f'repetitions must be an int >= 1, got {repetitions!r}')
  if not block_seconds > 0:
    raise ValueError(f'block_seconds must be > 0, got {block_seconds!r}')
  keys = list(interpreters)
  counts = {}
  for key in keys:
    invoke = interpreters[key].invoke
    for _ in range(WARMUP_INVOKES):  # the first invokes allocate, densify and pack weights
      invoke()
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < block_seconds / 4:
      invoke()
      n += 1
    counts[key] = max(10, int(block_seconds / ((time.perf_counter() - start) / n)))
  samples = collections.defaultdict(list)
  for rep in range(repetitions):
    shift = rep % len(keys)
    for key in keys[shift:] + keys[:shift]:
      invoke, n = interpreters[key].invoke, counts[key]
      start = time.perf_counter()
      for _ in range(n):
        invoke()
      samples[key].append((time.perf_counter() - start) / n * 1e6)
  return dict(samples)


def measure_latency(flatbuffer, dense, checks, samples, runs, written_sparse):
  """Times an exported file against the dense conversion under each op resolver it was checked under.

  The file is timed where it passed its check, the dense conversion where it
  loads; a written file that is the dense conversion (a shrunk model's, for
  one) is timed alone. Batch 1 (the first sample, else zeros), one thread.

  Args:
    flatbuffer: The exported file's bytes.
    dense: The dense conversion's bytes.
    checks: The file's `ResolverCheck`s (`ltp_tfmot.export.report`), one per resolver.
    samples: {input name: array} of sample inputs, or None.
    runs: Number of interleaved repetitions (>= 1).
    written_sparse: Whether the file is the sparse conversion (else it is `dense`).

  Returns:
    ((`Latency` per resolver where anything was timed), a note naming the resolvers the file fails under, or None).
  """
  interpreters, failed = {}, []
  for check in checks:
    contents = ([('dense', dense)] if written_sparse else []) + ([('file', flatbuffer)] if check.passed else [])
    if not check.passed:
      failed.append(check.resolver)
    for kind, content in contents:
      try:
        interpreter = interpreter_lib.allocated_interpreter(content, check.resolver, num_threads=1)
      except (RuntimeError, ValueError):
        continue
      _batch_of_one(samples, interpreter)
      interpreters[kind, check.resolver] = interpreter
  logging.info('Timing the exported file against the dense conversion: %d runs of %d interpreters.', runs,
               len(interpreters))
  times = interleaved_invoke_times(interpreters, runs, LATENCY_BLOCK_SECONDS)
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


def slower_than_dense_note(passed, dense, latency):
  """A note when a quantized sparse file is slower than the dense file under XNNPACK: measured, else by rule.

  The rule: the file leaves ops to built-in kernels that XNNPACK runs in the dense file.

  Args:
    passed: The file's `ResolverCheck` under the resolver it records.
    dense: The dense conversion's bytes.
    latency: The file's `Latency`s (`measure_latency`), or None if it was not timed.

  Returns:
    The note, or None if the file is not slower (or it cannot be told).
  """
  dense_default = next((t.dense_ms for t in latency or () if t.resolver == interpreter_lib.DEFAULT_RESOLVER), None)
  timed = [t for t in latency or () if t.file_ms is not None]
  if dense_default is not None and timed:
    best = min(timed, key=lambda t: t.file_ms)
    if best.file_ms <= dense_default:
      return None
    return (f'slower than the dense file: measured {best.file_ms:.4g} ms per invoke at best ({best.resolver}) '
            f'against {dense_default:.4g} ms for the dense file with XNNPACK (AUTO): export with sparse=False for '
            'speed, keep this file for size')
  try:
    dense_xnnpack, _ = kernels_lib.op_placement(
        interpreter_lib.allocated_interpreter(dense, interpreter_lib.DEFAULT_RESOLVER))
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
