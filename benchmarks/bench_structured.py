"""What structured (unit) lottery tickets buy in TFLite: a smaller dense model, its size, latency and accuracy.

For LeNet-300-100 and Conv-4 (on 28x28x1 digits), in one run:

1. train the dense model on MNIST (the embedded 5,000-digit subset: 4,000 training, 1,000 test images);
2. find a structured lottery ticket from the same initialisation and trained weights:
   `prune_lottery_ticket(..., granularity='unit')`, `--rounds` rounds of iterative magnitude pruning (units
   scored by the L1 norm of their weights, layer scope) with rewinding to the initial weights, at
   `rate = 1 - UNITS_LEFT ** (1 / rounds)`, so every hidden layer keeps 25% of its units (the output layer
   keeps all); each round prunes, rewinds and retrains for `--epochs` epochs;
3. `ltp_tfmot.shrink` the ticket into a smaller plain model, and export it and the dense model with
   `ltp_tfmot.export_tflite(..., sparse=False)` (float32);
4. measure file sizes, TFLite test accuracy, and batch-1 invoke latency with the ai-edge-litert interpreter
   (one thread) under the default op resolver (XNNPACK) and BUILTIN_WITHOUT_DEFAULT_DELEGATES: dense and
   shrunk are timed in interleaved repetitions (blocks of back-to-back invokes), and the speed-up is the median
   of the per-repetition ratios.

Run (about 15 minutes on 2 busy cores; writes benchmarks/structured_results.md):
  PYTHONPATH=. .venv/bin/python benchmarks/bench_structured.py
Smoke run (one epoch per phase, few repetitions; writes the report only with --out):
  PYTHONPATH=. .venv/bin/python benchmarks/bench_structured.py --quick
"""

import argparse
import datetime
import os
import shlex
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)
for _name, _value in {'TF_CPP_MIN_LOG_LEVEL': '2', 'TF_USE_LEGACY_KERAS': '1'}.items():
  os.environ.setdefault(_name, _value)

import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks import tflite_sparsity as tflite_bench  # noqa: E402
import ltp_tfmot  # noqa: E402
from ltp_tfmot import datasets  # noqa: E402
from ltp_tfmot import models  # noqa: E402

UNITS_LEFT = 0.25
RESOLVERS = ('AUTO', 'BUILTIN_WITHOUT_DEFAULT_DELEGATES')
VARIANTS = ('dense', 'shrunk')
DEFAULT_OUT = os.path.join(ROOT, 'benchmarks', 'structured_results.md')
# name: (title, builder, flat input, epochs per training phase)
MODELS = {
    'lenet_300_100': ('LeNet-300-100', lambda seed: models.lenet_300_100(seed=seed), True, 10),
    'conv4': ('Conv-4', lambda seed: models.conv4((28, 28, 1), 10, seed), False, 2),
}


def units(model):
  """Output units of each Dense and Conv layer, as 'a-b-c'."""
  widths = [layer.get_config().get('units', layer.get_config().get('filters')) for layer in model.layers
            if 'units' in layer.get_config() or 'filters' in layer.get_config()]
  return '-'.join(str(w) for w in widths)


def structured_ticket(build, seed, initial, trained, data, rounds, epochs):
  """Iterative unit pruning with rewinding from the dense run; returns the wrapped ticket."""
  rate = 1.0 - UNITS_LEFT ** (1.0 / rounds)
  model = ltp_tfmot.prune_lottery_ticket(build(seed), ltp_tfmot.LotteryTicketSchedule(rate=rate), granularity='unit')
  tflite_bench.compile_model(model)
  model.build((None,) + data.x_train.shape[1:])
  tflite_bench.set_wrapped_weights(model, initial)
  ltp_tfmot.take_snapshot(model)  # the rewind point: the dense model's initial weights
  tflite_bench.set_wrapped_weights(model, trained)  # round 1 prunes the trained dense units
  for _ in range(rounds):
    ltp_tfmot.run_lottery_round(model)
    tflite_bench.train(model, data, epochs, lottery=True)
  return model


def time_interleaved(paths, image, reps, block_seconds):
  """{(variant, resolver): per-repetition us per invoke}, all pairs timed in every repetition, order rotated."""
  configs = [(variant, resolver) for resolver in RESOLVERS for variant in VARIANTS]
  return tflite_bench.interleaved_invoke_times(paths, configs, image, reps, block_seconds)


def run_model(name, args, export_dir):
  title, build, flat, epochs = MODELS[name]
  epochs = 1 if args.quick else epochs
  data = datasets.load_mnist(source='embedded', flatten=flat)
  x_test, y_test = data.x_test, data.y_test
  start = time.time()
  dense = tflite_bench.compile_model(build(args.seed))
  initial = tflite_bench.layer_weights(dense)
  tflite_bench.train(dense, data, epochs * (args.rounds + 1), lottery=False)
  trained = tflite_bench.layer_weights(dense)
  ticket = structured_ticket(build, args.seed, initial, trained, data, args.rounds, epochs)
  small = ltp_tfmot.shrink(ticket)
  outputs_differ = float(np.max(np.abs(small.predict(x_test[:256], verbose=0)
                                       - ticket.predict(x_test[:256], verbose=0))))
  rows = {}
  for variant, model in (('dense', dense), ('shrunk', small)):
    path = os.path.join(export_dir, f'{name}_{variant}.tflite')
    report = ltp_tfmot.export_tflite(model, path, sparse=False, sample_inputs=x_test[:64])
    rows[variant] = {
        'units': units(model), 'params': model.count_params(), 'bytes': report.file_bytes,
        'keras_accuracy': tflite_bench.keras_accuracy(model, x_test, y_test),
        'tflite_accuracy': tflite_bench.tflite_accuracy(path, x_test, y_test), 'path': path,
    }
  samples = time_interleaved({v: rows[v]['path'] for v in VARIANTS}, x_test[0], args.repetitions, args.block_seconds)
  for variant in VARIANTS:
    for resolver in RESOLVERS:
      rows[variant][resolver] = statistics.median(samples[variant, resolver])
      rows[variant][resolver + '_speedup'] = statistics.median(
          d / v for d, v in zip(samples['dense', resolver], samples[variant, resolver], strict=True))
  print(f'{title}: {time.time() - start:.0f} s; shrunk outputs within {outputs_differ:.1e} of the ticket', flush=True)
  return title, epochs, rows, outputs_differ


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true', help='one epoch per phase, 5 repetitions')
  parser.add_argument('--rounds', type=int, default=2)
  parser.add_argument('--repetitions', type=int, default=30)
  parser.add_argument('--block-seconds', type=float, default=0.05)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--models', default=','.join(MODELS), help='comma-separated: ' + ', '.join(MODELS))
  parser.add_argument('--out', help=f'where to write the report (default without --quick: {DEFAULT_OUT})')
  args = parser.parse_args()
  if args.quick:
    args.repetitions = min(args.repetitions, 5)
  out = args.out or (None if args.quick else DEFAULT_OUT)
  common.quiet_logs()
  results = []
  with tempfile.TemporaryDirectory() as export_dir:
    for name in args.models.split(','):
      results.append(run_model(name, args, export_dir))

  command = 'PYTHONPATH=. .venv/bin/python benchmarks/bench_structured.py'
  if sys.argv[1:]:
    command += ' ' + shlex.join(sys.argv[1:])
  lines = [
      '# Structured tickets: dense vs shrunk, in TFLite',
      '',
      f'Command: `{command}`',
      '',
      f'- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; embedded MNIST subset (4,000 '
      f'training, 1,000 test digits); `nproc` = {os.cpu_count()}, load average {common.load_average():.1f} at the '
      'end (shared cores: read the ratios)',
      f'- ticket: `granularity=\'unit\'`, {args.rounds} rounds of iterative pruning with rewinding to the initial '
      f'weights, every hidden layer keeping {UNITS_LEFT:.0%} of its units (L1 norm of their weights, layer scope; '
      'the output layer keeps all), then `ltp_tfmot.shrink`; dense and ticket trained the same number of epochs '
      'per phase (column "epochs": the dense model trains rounds + 1 phases)',
      '- files: float32 `export_tflite(..., sparse=False)`; latency: batch 1, one thread, median over '
      f'{args.repetitions} interleaved repetitions of ~{args.block_seconds * 1e3:.0f} ms blocks of back-to-back '
      '`invoke()` (Python call overhead included); speed-up = median of the per-repetition ratios dense / shrunk',
      '',
      '| model | variant | units | parameters | file | test acc. (Keras / TFLite) | latency AUTO (us) | '
      'speed-up AUTO | latency BUILTIN (us) | speed-up BUILTIN | epochs |',
      '|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|',
  ]
  for title, epochs, rows, _ in results:
    for variant in VARIANTS:
      row = rows[variant]
      builtin = RESOLVERS[1]
      lines.append(
          f'| {title} | {variant} | {row["units"]} | {row["params"]:,} | {row["bytes"]:,} B | '
          f'{100 * row["keras_accuracy"]:.2f}% / {100 * row["tflite_accuracy"]:.2f}% | {row["AUTO"]:.1f} | '
          f'{row["AUTO_speedup"]:.2f}x | {row[builtin]:.1f} | {row[builtin + "_speedup"]:.2f}x | {epochs} |')
  lines.append('')
  lines.append('Largest |shrunk - ticket| over 256 test logits (Keras): ' + ', '.join(
      f'{title} {differ:.1e}' for title, _, _, differ in results) + '.')
  if out:
    common.write_markdown(lines, out)
  else:
    print('\n'.join(lines))


if __name__ == '__main__':
  main()
