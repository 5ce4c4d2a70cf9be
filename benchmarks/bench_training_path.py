"""Milliseconds per training step of the runner's default path against each forced one (XLA on, XLA off).

Usage, from the repository root:

  PYTHONPATH=. .venv/bin/python benchmarks/bench_training_path.py            # 1 and 2 threads, 5 repetitions
  PYTHONPATH=. .venv/bin/python benchmarks/bench_training_path.py --quick    # 2 threads, 1 repetition, fewer steps

For each TensorFlow thread count a fresh process builds, for LeNet-300-100,
Conv-4 and ResNet-20 with their preset recipes (optimizer, batch size) on
random inputs of their dataset's shape, one model per path, compiled as the
runner compiles (`RunFactory.compile`, 50 steps per execution): the default
(`jit_compile=None`: the runner's choice), `--jit_compile` and
`--nojit_compile`. Each model's first `fit` (tracing, XLA compilation) is
timed apart; then the paths train STEPS steps each, interleaved in a rotated
order per repetition, and the median of the repetitions is the step time.
"/ faster forced" is the median per-repetition ratio of the default's time
to the faster forced path's. It writes benchmarks/training_path_results.md,
which run_all.py appends to BENCHMARKS.md.
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

MODELS = ('lenet_300_100', 'conv4', 'resnet20')
# Timed steps per repetition: about the same seconds for each model on a CPU.
STEPS = {'lenet_300_100': 2000, 'conv4': 10, 'resnet20': 6}
PATHS = (('default', None), ('--jit_compile', True), ('--nojit_compile', False))


def child(threads, repetitions, steps):
  """Times every model and path at `threads` TensorFlow threads; prints one JSON line of the results."""
  from ltp_tfmot.experiment import parallel  # pylint: disable=g-import-not-at-top
  parallel.limit_threads(threads)
  import numpy as np  # pylint: disable=g-import-not-at-top

  from ltp_tfmot.experiment import config as config_lib  # pylint: disable=g-import-not-at-top
  from ltp_tfmot.experiment import factory as factory_lib  # pylint: disable=g-import-not-at-top
  from ltp_tfmot.keras2 import callbacks  # pylint: disable=g-import-not-at-top
  common.quiet_logs()
  results = {}
  for model_name in MODELS:
    shape = (28, 28, 1) if model_name == 'lenet_300_100' else (32, 32, 3)
    rng = np.random.RandomState(0)
    examples = 1280
    data = (rng.normal(size=(examples,) + shape).astype(np.float32), rng.randint(0, 10, examples),
            rng.normal(size=(100,) + shape).astype(np.float32), rng.randint(0, 10, 100))
    runs = {}
    for label, jit in PATHS:
      config = config_lib.RunConfig.for_model(model_name, data={'name': 'random'},
                                              training={'jit_compile': jit, 'training_steps': '1000it'},
                                              pruning={'rewind_step': 0})
      factory = factory_lib.RunFactory(config, data=data)
      factory.load_data()
      model = factory.wrap(factory.build_model(0), 0)
      factory.compile(model)
      dataset = factory.train_dataset(0, 0).repeat()
      start = time.perf_counter()
      model.fit(dataset, epochs=1, steps_per_epoch=steps[model_name], verbose=0,
                callbacks=[callbacks.UpdateLotteryStep()])
      runs[label] = (model, dataset, factory.jit_compile())
      results[model_name, label] = {'first_fit_s': time.perf_counter() - start, 'jit_compile': factory.jit_compile(),
                                    'reason': factory.jit_compile_reason, 'ms': []}
    for rep in range(repetitions):
      order = PATHS[rep % len(PATHS):] + PATHS[:rep % len(PATHS)]
      for label, _ in order:
        model, dataset, _ = runs[label]
        start = time.perf_counter()
        model.fit(dataset, epochs=1, steps_per_epoch=steps[model_name], verbose=0,
                callbacks=[callbacks.UpdateLotteryStep()])
        results[model_name, label]['ms'].append(1000 * (time.perf_counter() - start) / steps[model_name])
    del runs
  print(json.dumps({f'{m}|{p}': v for (m, p), v in results.items()}))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true')
  parser.add_argument('--repetitions', type=int, default=5)
  parser.add_argument('--threads', default='1,2', help='TensorFlow thread counts, one process each')
  parser.add_argument('--child', type=int, help=argparse.SUPPRESS)
  parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'training_path_results.md'))
  args = parser.parse_args()
  repetitions = 1 if args.quick else args.repetitions
  steps = {m: max(2, n // 4) for m, n in STEPS.items()} if args.quick else STEPS
  if args.child is not None:
    child(args.child, repetitions, steps)
    return
  thread_counts = [2] if args.quick else [int(t) for t in args.threads.split(',')]
  env = dict(os.environ, **common.TF_ENV)
  began = time.time()
  tables = {}
  for threads in thread_counts:
    command = [sys.executable, os.path.abspath(__file__), f'--child={threads}', f'--repetitions={repetitions}']
    command += ['--quick'] if args.quick else []
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    tables[threads] = {tuple(k.split('|')): v for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}

  from ltp_tfmot.experiment import training_path  # pylint: disable=g-import-not-at-top
  cpu = training_path.cpu_model()
  flags = ' --quick' if args.quick else ''
  lines = [
      '# Default training path',
      '',
      f'Command: `PYTHONPATH=. .venv/bin/python benchmarks/bench_training_path.py{flags}`',
      '',
      f'- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {time.time() - began:.0f} s in '
      f'all; CPU {cpu}, `nproc` = {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} at the end (shared cores: '
      'read the ratios); no GPU',
      f'- each model with its preset recipe (optimizer, batch size) on random inputs of its dataset\'s shape, '
      f'compiled as the runner does (50 steps per execution); timed steps per repetition: '
      f'{", ".join(f"{m} {n}" for m, n in steps.items())}; {repetitions} repetition(s), paths interleaved; '
      '"first fit" is the first call, tracing and XLA compilation included',
      '',
      '| threads | model | path | XLA | ms per step, median | min - max | / faster forced | first fit (s) |',
      '|---:|---|---|---|---:|---:|---:|---:|',
  ]
  worst, picked, cases = 0.0, 0, 0
  for threads, table in tables.items():
    for model in MODELS:
      forced = {label: table[model, label]['ms'] for label, jit in PATHS if jit is not None}
      faster = min(forced, key=lambda label: statistics.median(forced[label]))
      cases += 1
      picked += table[model, 'default']['jit_compile'] == table[model, faster]['jit_compile']
      for label, _ in PATHS:
        row = table[model, label]
        ratio = common.paired_ratio(row['ms'], forced[faster])
        if label == 'default':
          worst = max(worst, ratio)
        lines.append(f'| {threads} | {model} | {label} | {"on" if row["jit_compile"] else "off"} | '
                     f'{statistics.median(row["ms"]):.1f} | {min(row["ms"]):.1f} - {max(row["ms"]):.1f} | '
                     f'{ratio:.2f}x | {row["first_fit_s"]:.1f} |')
  lines += ['', f'- the default picks the faster forced path (by median) in {picked} of {cases} cases; it then runs '
            f'the same computation as that path, so its ratio to it (at most {worst:.2f}x here) is the timing noise '
            'of the shared cores']
  common.write_markdown(lines, args.out)


if __name__ == '__main__':
  main()
