"""Benchmark 4: peak extra resident memory of the mask step at 12M weights.

Each case runs in a fresh process (`--case NAME`): it builds the 12M-weight
MLP of benchmark 1 (or just its arrays, for the NumPy floor and the older
package), reads VmRSS, resets the kernel's high-water mark (`echo 5 >
/proc/self/clear_refs`; where that is not allowed, a thread samples VmRSS
every millisecond instead), runs one mask step and reads VmHWM. The peak
extra memory is VmHWM - VmRSS before, compared with the bytes of the prunable
weights (float32).

Freed memory must leave the process for RSS to show the live working set:
TensorFlow's default CPU allocator with oneDNN keeps a pool (after a first
call, a second one shows no RSS growth at all), and glibc keeps freed blocks
below its dynamic mmap threshold. So the cases run with `LIVE_MEMORY_ENV`
(TensorFlow's system allocator, every block of 64 KiB or more mmapped and
returned on free); one extra case shows the first call's RSS growth with the
default allocator, as users see it.

Cases: ours on the first call (XLA compilation included) and on a later call
(steady state, the goal), global and layer scope; the NumPy floor; the older
package's global pruning.
"""

import gc
import json
import os
import subprocess
import sys
import threading
import time

from benchmarks import bench_masks
from benchmarks import common

# Makes RSS follow the live memory: TensorFlow allocates with malloc, and glibc returns big blocks when freed.
LIVE_MEMORY_ENV = {'TF_ONEDNN_USE_SYSTEM_ALLOCATOR': 'true', 'MALLOC_MMAP_THRESHOLD_': '65536'}
DEFAULT_ALLOCATOR_CASE = 'ours, global, large_final'
CASES = {
    'ours, global, large_final': ('ours', 'global', 'large_final'),
    'ours, global, magnitude_increase': ('ours', 'global', 'magnitude_increase'),
    'ours, layer, large_final': ('ours', 'layer', 'large_final'),
    'numpy floor, global, large_final': ('numpy', 'global', 'large_final'),
    'older package, global, large_final': ('older', 'global', 'large_final'),
}


def _status_kib(field):
  with open('/proc/self/status', encoding='utf-8') as f:
    for line in f:
      if line.startswith(field + ':'):
        return int(line.split()[1])
  raise RuntimeError(f'no {field} in /proc/self/status')


class PeakRss:
  """Peak resident memory (bytes) of a block of code, above the resident memory before it."""

  def __enter__(self):
    gc.collect()
    self.before = _status_kib('VmRSS') * 1024
    self.sampler = None
    try:
      with open('/proc/self/clear_refs', 'w', encoding='utf-8') as f:
        f.write('5')  # resets VmHWM to the current VmRSS
      self.method = 'VmHWM'
    except OSError:
      self.method = 'VmRSS sampled every 1 ms'
      self.peak = self.before
      self.running = True
      self.sampler = threading.Thread(target=self._sample, daemon=True)
      self.sampler.start()
    return self

  def _sample(self):
    while self.running:
      self.peak = max(self.peak, _status_kib('VmRSS') * 1024)
      time.sleep(0.001)

  def __exit__(self, *exc):
    if self.sampler is None:
      self.peak = _status_kib('VmHWM') * 1024
    else:
      self.running = False
      self.sampler.join()
    self.extra = self.peak - self.before
    return False


def run_case(name, width):
  """Measures one case in this process; returns a dict of results."""
  kind, scope, criterion = CASES[name]
  initial, final = bench_masks.make_weights(width)
  weight_bytes = sum(w.nbytes for w in final)
  result = {'case': name, 'weights': sum(w.size for w in final), 'weight_bytes': weight_bytes}
  if kind == 'ours':
    common.quiet_logs()
    ours = bench_masks.Ours(width, scope, criterion, initial, final)
    del initial, final
    ours.reset()
    with PeakRss() as first:
      ours.run()
    ours.reset()
    ours.run()  # a second warm-up call: every allocation pattern has been seen once
    ours.reset()
    with PeakRss() as later:
      ours.run()
    result.update(first_call_extra=first.extra, extra=later.extra, rss_before=later.before, method=later.method)
  else:
    if kind == 'numpy':
      run, setup = bench_masks.numpy_floor(scope, criterion, initial, final), None
    else:
      run, setup, _ = bench_masks.older_package(scope, initial, final)
    if setup is not None:
      setup()
    with PeakRss() as peak:
      run()
    result.update(extra=peak.extra, rss_before=peak.before, method=peak.method)
  result['extra_over_weights'] = result['extra'] / weight_bytes
  return result


def main():
  if '--case' in sys.argv:
    index = sys.argv.index('--case')
    name, width = sys.argv[index + 1], int(sys.argv[index + 2])
    print('RESULT ' + json.dumps(run_case(name, width)), flush=True)
    return
  args = common.parse_args(__doc__.splitlines()[0])
  width = bench_masks.WIDTHS['1M' if args.quick else '12M']
  runs = [(name, LIVE_MEMORY_ENV) for name, (kind, _, _) in CASES.items()
          if kind != 'older' or bench_masks.older_package_available()]
  runs.append((DEFAULT_ALLOCATOR_CASE, {}))
  results = []
  for name, extra_env in runs:
    env = dict(os.environ, **common.TF_ENV)
    for key in LIVE_MEMORY_ENV:
      env.pop(key, None)
    env.update(extra_env)
    process = subprocess.run([sys.executable, '-m', 'benchmarks.bench_memory', '--case', name, str(width)],
                             capture_output=True, text=True, env=env, check=False)
    lines = [line for line in process.stdout.splitlines() if line.startswith('RESULT ')]
    if process.returncode or not lines:
      raise RuntimeError(f'memory case {name!r} failed:\n{process.stdout}\n{process.stderr}')
    result = json.loads(lines[-1][len('RESULT '):])
    result['allocator'] = 'live memory' if extra_env else 'default'
    results.append(result)
    print(f"{name} ({result['allocator']}): extra {result['extra'] / 2**20:.1f} MiB = "
          f"{result['extra_over_weights']:.2f}x the weights", flush=True)
  common.write_results({'memory': results, 'live_memory_env': LIVE_MEMORY_ENV}, args.out)


if __name__ == '__main__':
  main()
