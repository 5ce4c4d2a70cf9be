"""How fast one training step can be on this machine: TensorFlow threads, and two trainings at once.

Usage, from the repository root:

  PYTHONPATH=. .venv/bin/python benchmarks/bench_threads.py            # 5 repetitions
  PYTHONPATH=. .venv/bin/python benchmarks/bench_threads.py --quick    # 1 repetition, 2 epochs

Each measurement is a fresh process that trains LeNet-300-100 (batch 60, Adam 1.2e-3) on the embedded MNIST
digits with the runner's compiled path at its fastest (XLA, one execution per epoch, no callbacks) and prints
its milliseconds per step, the compilation epoch left out. Variants, interleaved repetition by repetition:
TensorFlow at 2 threads (what a serial run uses on 2 cores), at 1 thread (what each job of `--workers=2`
uses), and two 1-thread processes at the same time. From those come two bounds of this machine: the fastest
the demo's 30,000 steps can train (alone or two at once), and the best wall-time ratio of 2 parallel jobs
against a serial run, (step time of two at once) / (2 x step time at 2 threads). It writes
benchmarks/threads_results.md, which run_all.py appends to BENCHMARKS.md.
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

from benchmarks import common  # noqa: E402

# 13 levels and 12 reinit controls of 1,200 steps (20 epochs of 60 batches): examples/lottery_experiment.py.
DEMO_STEPS = 25 * 1200
VARIANTS = ('2 threads', '1 thread', 'two 1-thread processes at once')


def child(threads, epochs):
  """Trains in this process at `threads` TensorFlow threads; prints {"ms_per_step": ...}."""
  for name, value in {'TF_CPP_MIN_LOG_LEVEL': '2', 'TF_USE_LEGACY_KERAS': '1'}.items():
    os.environ.setdefault(name, value)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.threading.set_intra_op_parallelism_threads(threads)
  tf.config.threading.set_inter_op_parallelism_threads(threads)
  import tf_keras as keras  # pylint: disable=g-import-not-at-top

  from ltp_tfmot import datasets  # pylint: disable=g-import-not-at-top
  from ltp_tfmot import models  # pylint: disable=g-import-not-at-top
  data = datasets.load_mnist(source='embedded')
  steps = len(data.x_train) // 60
  x, y = data.x_train[:steps * 60], data.y_train[:steps * 60]
  model = models.lenet_300_100(seed=0)
  model.compile(keras.optimizers.Adam(1.2e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                jit_compile=True, steps_per_execution=steps)
  model.fit(x, y, batch_size=60, epochs=1, verbose=0)  # compiles
  start = time.perf_counter()
  model.fit(x, y, batch_size=60, epochs=epochs, verbose=0)
  print(json.dumps({'ms_per_step': 1e3 * (time.perf_counter() - start) / (epochs * steps)}))


def _start(threads, epochs):
  argv = [sys.executable, os.path.abspath(__file__), '--child', str(threads), '--epochs', str(epochs)]
  return subprocess.Popen(argv, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _result(process):
  out, err = process.communicate()
  if process.returncode:
    raise SystemExit(f'a measuring process failed:\n{err[-3000:]}')
  return json.loads(out.strip().splitlines()[-1])['ms_per_step']


def measure(variant, epochs):
  """Milliseconds per step of `variant` (the mean of the two processes for the concurrent one)."""
  if variant == VARIANTS[2]:
    pair = [_start(1, epochs), _start(1, epochs)]
    return statistics.mean(_result(p) for p in pair)
  return _result(_start(2 if variant == VARIANTS[0] else 1, epochs))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true', help='1 repetition of 2 epochs')
  parser.add_argument('--repetitions', type=int, default=5)
  parser.add_argument('--epochs', type=int, default=10, help='timed epochs of 60 steps per measurement')
  parser.add_argument('--child', type=int, help=argparse.SUPPRESS)
  parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'threads_results.md'))
  args = parser.parse_args()
  if args.child is not None:
    child(args.child, args.epochs)
    return
  if args.quick:
    args.repetitions, args.epochs = 1, 2
  common.quiet_logs()
  start = time.time()
  samples = {variant: [] for variant in VARIANTS}
  for repetition in range(args.repetitions):
    for variant in VARIANTS:
      samples[variant].append(measure(variant, args.epochs))
    print(f'repetition {repetition + 1}/{args.repetitions}: '
          + ', '.join(f'{v} {samples[v][-1]:.2f} ms' for v in VARIANTS), flush=True)
  serial = samples[VARIANTS[0]]
  ratios = {v: [a / b for a, b in zip(samples[v], serial, strict=True)] for v in VARIANTS}
  parallel_bound = [pair / (2 * two) for pair, two in zip(samples[VARIANTS[2]], serial, strict=True)]
  # Steps per unit of time however the trainings run: alone, or two at once (each at its own step time).
  fastest = min(min(samples[VARIANTS[0]]), min(samples[VARIANTS[1]]), min(samples[VARIANTS[2]]) / 2)
  command = 'PYTHONPATH=. .venv/bin/python benchmarks/bench_threads.py' + (' --quick' if args.quick else '')
  lines = [
      '# One training step: TensorFlow threads, and two trainings at once',
      '',
      f'Command: `{command}`',
      '',
      f'- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {time.time() - start:.0f} s in '
      f'all; `nproc` = {os.cpu_count()}, load average {common.load_average():.1f} at the end (shared cores)',
      '- each measurement: a fresh process training LeNet-300-100 (batch 60, Adam) on the embedded MNIST digits, '
      f'XLA, one execution per epoch, no callbacks; {args.epochs} timed epochs after the compiling one; '
      f'{args.repetitions} repetitions, the variants interleaved; "/ 2 threads" = median of the per-repetition '
      'ratios',
      '',
      '| variant | ms per step, median | min - max | / 2 threads |',
      '|---|---:|---:|---:|',
  ]
  for variant in VARIANTS:
    values = samples[variant]
    lines.append(f'| {variant} | {statistics.median(values):.2f} | {min(values):.2f} - {max(values):.2f} | '
                 f'{statistics.median(ratios[variant]):.2f}x |')
  lines += [
      '',
      f'- The demo (`make demo`: {DEMO_STEPS:,} training steps) needs at least {DEMO_STEPS * fastest / 1e3:.0f} s of '
      f'training at the best throughput measured here ({fastest:.2f} ms a step, one training alone or two at '
      'once), before start-up, evaluation and rounds.',
      '- Two parallel 1-thread jobs against one 2-thread serial run: at best '
      f'{statistics.median(parallel_bound):.2f}x the serial wall time (median of (two at once) / (2 x 2 threads); '
      f'range {min(parallel_bound):.2f} - {max(parallel_bound):.2f}x), before Ray\'s start and the workers\' '
      'start-up.',
  ]
  common.write_markdown(lines, args.out)


if __name__ == '__main__':
  main()
