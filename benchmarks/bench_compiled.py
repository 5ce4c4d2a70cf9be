"""Time per level of the runner: Keras' step-by-step loop against the compiled path (XLA, several steps per execution).

Usage, from the repository root:

  PYTHONPATH=. .venv/bin/python benchmarks/bench_compiled.py             # LeNet-300-100 and Conv-4
  PYTHONPATH=. .venv/bin/python benchmarks/bench_compiled.py --quick     # one repetition, fewer steps

Every variant trains the same runs (embedded MNIST, 4,000 training digits,
levels 0 and 1, each model with its preset recipe and the iterations per
level of STEPS) in this one process, the
variants interleaved repetition by repetition. A level's time is its
`wall_time_s` (training, the validation curve every 100 iterations and the
test evaluations); level 0 of each run includes building the model and
compiling its step, level 1 does not. It writes
benchmarks/compiled_results.md, which run_all.py appends to BENCHMARKS.md.
"""

import argparse
import datetime
import os
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from benchmarks import common  # noqa: E402
from ltp_tfmot import experiment  # noqa: E402

VARIANTS = (
    ('step by step (jit_compile=False, steps_per_execution=1)', False, 1),
    ('steps_per_execution=50 only', False, 50),
    ('compiled (jit_compile=True, steps_per_execution=50; the default then)', True, 50),
)
# Iterations per level: Conv-4's step costs about 100x LeNet-300-100's on CPUs.
STEPS = {'lenet_300_100': 400, 'conv4': 60}
MODELS = tuple(STEPS)


def _time_levels(model, jit_compile, steps_per_execution, steps, run_dir):
  config = experiment.RunConfig.for_model(
      model, data={'name': 'mnist', 'source': 'embedded'},
      training={'training_steps': steps, 'jit_compile': jit_compile, 'steps_per_execution': steps_per_execution},
      pruning={'levels': 1})
  results = experiment.run_experiment(config, run_dir=run_dir, tensorboard=False, log=lambda line: None)
  return [r['wall_time_s'] for r in results], [r['test_accuracy'] for r in results]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--repetitions', type=int, default=3)
  parser.add_argument('--quick', action='store_true')
  parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'compiled_results.md'))
  args = parser.parse_args()
  repetitions = 1 if args.quick else args.repetitions
  steps = {model: max(10, n // 4) for model, n in STEPS.items()} if args.quick else STEPS

  times = {(m, v[0]): ([], []) for m in MODELS for v in VARIANTS}
  accuracy = {}
  with tempfile.TemporaryDirectory() as tmp:
    for rep in range(repetitions):
      order = VARIANTS[rep % len(VARIANTS):] + VARIANTS[:rep % len(VARIANTS)]
      for model in MODELS:
        for name, jit_compile, spe in order:
          run_dir = os.path.join(tmp, f'{model}_{rep}_{jit_compile}_{spe}')
          (level0, level1), accs = _time_levels(model, jit_compile, spe, steps[model], run_dir)
          times[model, name][0].append(level0)
          times[model, name][1].append(level1)
          accuracy[model, name] = accs
          print(f'{model} {name}: level 0 {level0:.2f} s, level 1 {level1:.2f} s', flush=True)

  lines = [
      '# Compiled training path',
      '',
      'Written by `benchmarks/bench_compiled.py`. Command: `PYTHONPATH=. .venv/bin/python benchmarks/bench_compiled.py'
      f'{" --quick" if args.quick else ""}`',
      '',
      f'- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {repetitions} interleaved '
      f'repetitions in one process; iterations per level: '
      f'{", ".join(f"{m} {n}" for m, n in steps.items())} (batch 60, embedded MNIST); `nproc` = '
      f'{os.cpu_count()}; load average {os.getloadavg()[0]:.1f} at the end (shared cores: read the ratios)',
      '- level 0 includes building the model and compiling its step; level 1 (pruned, rewound, retrained in the '
      'same model) does not',
      '',
      '| model | training path | level 0 median (s) | level 1 median (s) | level 1 / step by step | '
      'test acc. level 0, 1 (last repetition) |',
      '|---|---|---:|---:|---:|---|',
  ]
  for model in MODELS:
    reference = times[model, VARIANTS[0][0]][1]
    for name, _, _ in VARIANTS:
      level0, level1 = times[model, name]
      ratio = common.paired_ratio(level1, reference)
      accs = ', '.join(f'{100 * a:.2f}%' for a in accuracy[model, name])
      lines.append(f'| {model} | {name} | {statistics.median(level0):.2f} | {statistics.median(level1):.2f} | '
                   f'{ratio:.2f}x | {accs} |')
  common.write_markdown(lines, args.out)


if __name__ == '__main__':
  main()
