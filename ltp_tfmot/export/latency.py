"""Timing TFLite interpreters against each other: interleaved blocks of back-to-back invokes."""

import collections
import time

WARMUP_INVOKES = 20


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
