"""Wall time of a whole lottery run, serial against independent jobs in parallel (`--workers=2`, a local Ray).

Usage, from the repository root:

  PYTHONPATH=. .venv/bin/python benchmarks/bench_parallel.py               # 2 repetitions of each
  PYTHONPATH=. .venv/bin/python benchmarks/bench_parallel.py --quick       # 1 repetition, 2 levels

The run: LeNet-300-100 with its preset recipe on embedded MNIST (4,000
training digits), 2 replicates, levels 0..5, the reinit control at every
level after 0, `--epochs=20 --eval_every=30` (the demo's length): 22
trainings. Each variant is the whole `ltp-tfmot run` command in a fresh
process and a fresh run directory (start-up, Ray's start and its workers'
TensorFlow import included), the variants interleaved repetition by
repetition. It also compares the test accuracy of every training. It writes
benchmarks/parallel_results.md, which run_all.py appends to BENCHMARKS.md.
"""

import argparse
import csv
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

from benchmarks import common  # noqa: E402

VARIANTS = (('serial (--workers=1, the default)', []), ('parallel (--workers=2)', ['--workers=2']))


def _flags(levels):
  return ['--model=lenet_300_100', '--dataset_source=embedded', '--replicates=2', f'--levels={levels}',
          '--branches=reinit', '--epochs=20', '--eval_every=30', '--notensorboard']


def _run(run_dir, levels, extra):
  """Runs one whole command; returns its wall time and its {(replicate, level, branch): test accuracy}."""
  env = dict(os.environ, PYTHONPATH=ROOT)
  argv = [sys.executable, '-m', 'ltp_tfmot.cli', 'run', f'--run_dir={run_dir}'] + _flags(levels) + extra
  start = time.perf_counter()
  result = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
  elapsed = time.perf_counter() - start
  if result.returncode:
    raise SystemExit(f'{" ".join(argv[1:])} failed:\n{result.stderr[-3000:]}')
  with open(os.path.join(run_dir, 'results.csv'), encoding='utf-8') as f:
    accuracies = {(row['replicate'], row['level'], row['branch']): row['test_accuracy'] for row in csv.DictReader(f)}
  return elapsed, accuracies


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true', help='1 repetition of a 2-level run')
  parser.add_argument('--repetitions', type=int, default=2)
  parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'parallel_results.md'))
  args = parser.parse_args()
  levels, repetitions = (2, 1) if args.quick else (5, args.repetitions)

  times = {name: [] for name, _ in VARIANTS}
  accuracies = {}
  with tempfile.TemporaryDirectory() as tmp:
    for rep in range(repetitions):
      order = VARIANTS if rep % 2 == 0 else VARIANTS[::-1]
      for name, extra in order:
        elapsed, accuracies[name] = _run(os.path.join(tmp, f'{rep}_{len(extra)}'), levels, extra)
        times[name].append(elapsed)
        print(f'{name}: {elapsed:.1f} s', flush=True)
  serial = times[VARIANTS[0][0]]
  serial_acc, parallel_acc = (accuracies[name] for name, _ in VARIANTS)
  differences = [abs(float(serial_acc[job]) - float(parallel_acc[job])) for job in serial_acc]
  same_jobs = sorted(serial_acc) == sorted(parallel_acc)
  command = 'PYTHONPATH=. .venv/bin/python benchmarks/bench_parallel.py' + (' --quick' if args.quick else '')
  lines = [
      '# Independent jobs in parallel',
      '',
      f'Written by `benchmarks/bench_parallel.py`. Command: `{command}`',
      '',
      f'- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {repetitions} interleaved '
      f'repetition(s) of each whole `ltp-tfmot run {" ".join(_flags(levels))}` process; `nproc` = {os.cpu_count()}; '
      f'load average {os.getloadavg()[0]:.1f} at the end (shared cores: read the ratio)',
      f'- {len(serial_acc)} trainings per run; {sum(d == 0 for d in differences)} of them with the same test '
      f'accuracy in both variants, largest difference {100 * max(differences):.2f} points (each parallel job '
      f'runs TensorFlow with {max(1, (os.cpu_count() or 1) // 2)} thread(s), the serial run with {os.cpu_count()}: '
      'its CPU kernels split long sums over threads, so float32 rounding differs in the last bit and training '
      'drifts apart from there)',
      '',
      '| variant | wall median (s) | min - max (s) | / serial |',
      '|---|---:|---:|---:|',
  ]
  for name, values in times.items():
    lines.append(f'| {name} | {statistics.median(values):.1f} | {min(values):.1f} - {max(values):.1f} | '
                 f'{common.paired_ratio(values, serial):.2f}x |')
  common.write_markdown(lines, args.out)
  if not same_jobs:
    raise SystemExit('the parallel run did not train the same jobs as the serial one')


if __name__ == '__main__':
  main()
