"""Shared helpers of the benchmarks: timing, interleaving, machine facts, JSON results.

Every benchmark compares implementations side by side in one process: each
repetition times every variant once, in a rotated order, so that load drift on
a shared machine hits all of them alike; results are medians of repetitions,
and ratios between variants are the numbers to read (absolute times are
context only).

`run_all.py` starts each benchmark module in its own process with the
environment of `TF_ENV` (quiet TensorFlow logs, tf_keras as Keras).
"""

import argparse
import cProfile
import json
import linecache
import os
import platform
import pstats
import statistics
import time

# The environment every benchmark process gets (set by run_all.py; also what `make test` uses).
TF_ENV = {'TF_CPP_MIN_LOG_LEVEL': '2', 'TF_USE_LEGACY_KERAS': '1'}


def parse_args(description):
  """The command line every benchmark module takes: --quick and --out."""
  parser = argparse.ArgumentParser(description=description)
  parser.add_argument('--quick', action='store_true', help='smoke run: fewer repetitions and smaller inputs')
  parser.add_argument('--out', help='write the results to this JSON file (default: print them)')
  return parser.parse_args()


def write_results(results, out):
  """Writes `results` as JSON to `out`, or prints them when `out` is None."""
  text = json.dumps(results, indent=1, sort_keys=True)
  if out:
    with open(out, 'w', encoding='utf-8') as f:
      f.write(text)
  else:
    print(text)


def write_markdown(lines, out):
  """Writes a Markdown report (one string per line) to `out` and prints it."""
  text = '\n'.join(lines) + '\n'
  with open(out, 'w', encoding='utf-8') as f:
    f.write(text)
  print(text)


def quiet_logs():
  """Silences absl INFO logs (ltp_tfmot logs every round) and TensorFlow's Python warnings."""
  from absl import logging  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.WARNING)
  tf.get_logger().setLevel('ERROR')


def time_once(fn, setup=None):
  """Seconds one call of `fn()` takes; `setup()` runs first, outside the timed region."""
  if setup is not None:
    setup()
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def interleaved(variants, reps, reps_for=None):
  """Times several variants side by side, `reps` times each, in a rotated order.

  Args:
    variants: A dict from name to `(fn, setup)`; `setup` (or None) runs before
      each timed call of `fn`, outside the timed region.
    reps: Repetitions per variant.
    reps_for: Optional dict from name to a smaller number of repetitions for
      slow variants (they are timed in the first repetitions only).

  Returns:
    A dict from name to the list of times in seconds, in repetition order
    (so `paired_ratio` can pair the times of one repetition).
  """
  names = list(variants)
  times = {name: [] for name in names}
  for rep in range(reps):
    order = names[rep % len(names):] + names[:rep % len(names)]
    for name in order:
      if reps_for and rep >= reps_for.get(name, reps):
        continue
      fn, setup = variants[name]
      times[name].append(time_once(fn, setup))
  return times


def median(values):
  return statistics.median(values)


def paired_ratio(numerators, denominators):
  """Median over repetitions of numerator / denominator, each pair timed in the same repetition.

  On a shared machine whose load comes and goes, the two times of one
  repetition (adjacent in time) see similar load, so their ratio is steadier
  than the ratio of the two medians.
  """
  return median([a / b for a, b in zip(numerators, denominators, strict=True)])


def summary(values):
  """Median, min, max and count of a list of times."""
  return {'median': median(values), 'min': min(values), 'max': max(values), 'n': len(values)}


def profile_call(fn, package='ltp_tfmot', top=12):
  """Runs `fn()` under cProfile; returns the `top` functions of `package` by cumulative time.

  Returns:
    A dict: `total_s`, the whole call's seconds, and `functions`, a list of
    dicts with the function ('module.py:line name'), its source line (which
    tells comprehensions apart), number of calls, and cumulative and own
    seconds, largest cumulative time first.
  """
  profiler = cProfile.Profile()
  start = time.perf_counter()
  profiler.runcall(fn)
  total = time.perf_counter() - start
  stats = pstats.Stats(profiler).stats
  rows = []
  for (path, line, name), (_, ncalls, tottime, cumtime, _) in stats.items():
    parts = path.replace(os.sep, '/').split('/')
    if package in parts[:-1]:
      rows.append({'function': f'{parts[-1]}:{line} {name}', 'source': linecache.getline(path, line).strip(),
                   'calls': ncalls, 'cumulative_s': cumtime, 'own_s': tottime})
  rows.sort(key=lambda row: -row['cumulative_s'])
  return {'total_s': total, 'functions': rows[:top]}


def machine_info():
  """Facts about this machine and the library versions, for the results header."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_model_optimization as tfmot  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top
  cpu = 'unknown'
  try:
    with open('/proc/cpuinfo', encoding='utf-8') as f:
      for line in f:
        if line.startswith('model name'):
          cpu = line.split(':', 1)[1].strip()
          break
  except OSError:
    pass
  try:
    memory_gib = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30
  except (ValueError, OSError):
    memory_gib = None
  return {
      'nproc': os.cpu_count(),
      'cpu': cpu,
      'memory_gib': memory_gib,
      'python': platform.python_version(),
      'tensorflow': tf.__version__,
      'tf_keras': tf_keras.__version__,
      'tfmot': tfmot.__version__,
      'numpy': np.__version__,
      'platform': platform.platform(),
  }


def load_average():
  """The 1-minute load average (the machine is shared: high load means noisy times)."""
  try:
    return os.getloadavg()[0]
  except OSError:
    return None


if __name__ == '__main__':
  print(json.dumps(machine_info()))
