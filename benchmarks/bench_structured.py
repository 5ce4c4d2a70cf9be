"""Which lottery tickets run faster in TFLite: dense, unstructured, block and structured (shrunk), float32 and int8.

For LeNet-300-100, Conv-4 (on 28x28x1 digits) and ResNet-20 (on the digits zero-padded to 32x32), in one run:

1. train the dense model on MNIST (the embedded 5,000-digit subset: 4,000 training, 1,000 test images) for the
   model's epochs;
2. from the same initialisation and trained weights, find four tickets by `--rounds` rounds of iterative
   magnitude pruning with rewinding to the initial weights (each round prunes, rewinds and retrains for the
   same epochs as the dense model, so that every accuracy is after one training of equal length):
   unstructured, block (4, 1) and block (16, 1) (1x4 and 1x16 blocks in TFLite's [out, in] layout: the blocks
   of TFLite's float and int8 sparse FULLY_CONNECTED kernels), every prunable layer ending at 90% sparsity; and
   a structured one (`granularity='unit'`, every hidden layer, or residual group, keeping the model's
   `units_left` of its units, scored by the L1 norm of their weights), which `ltp_tfmot.shrink` turns into a
   smaller dense model; every training phase runs Adam with its last epoch at a tenth of the rate;
3. export each as float32 (`ltp_tfmot.export_tflite`, sparse for the weight tickets) and as int8: the model
   made quantization-aware with `ltp_tfmot.quantize_ticket` (tfmot's pruning-preserving scheme, so the zeros
   stay), fine-tuned `--qat-steps` steps, and exported (int8 weights and activations, sparse for the tickets);
4. measure file sizes, TFLite test accuracy (under the op resolver each file's report names), and batch-1 invoke
   latency with the ai-edge-litert interpreter (one thread) under the default op resolver (XNNPACK) and
   BUILTIN_WITHOUT_DEFAULT_DELEGATES, wherever the file passes its export check: all files of a model are timed
   in interleaved repetitions (`ltp_tfmot.export.latency.interleaved_invoke_times`), and "/ dense" is the median of
   the per-repetition ratios to the dense file of the same precision under the same resolver;
5. check the goal: the shrunk float32 ticket within 1 point of dense TFLite accuracy, at or below 0.5x the dense
   float32 latency under the default resolver.

Run (about 50 minutes on 2 busy cores; writes benchmarks/structured_results.md):
  PYTHONPATH=. .venv/bin/python benchmarks/bench_structured.py
Smoke run (one epoch per phase, few steps and repetitions; writes the report only with --out):
  PYTHONPATH=. .venv/bin/python benchmarks/bench_structured.py --quick
"""

import argparse
import collections
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
import tf_keras as keras  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks import tflite_sparsity as tflite_bench  # noqa: E402
import ltp_tfmot  # noqa: E402
from ltp_tfmot import datasets  # noqa: E402
from ltp_tfmot import models  # noqa: E402
from ltp_tfmot.export import latency  # noqa: E402

SPARSITY = 0.9
QAT_LEARNING_RATE = 1e-4
# The learning rate of each training phase's last epoch, relative to the base rate.
FINAL_EPOCH_RATE = 0.1
RESOLVERS = ('AUTO', 'BUILTIN_WITHOUT_DEFAULT_DELEGATES')
PRECISIONS = ('float32', 'int8')
# variant: (words, prune_lottery_ticket arguments, fraction of weights (or units) kept)
VARIANTS = {
    'dense': ('dense', None, None),
    'unstructured': ('unstructured ticket', {}, 1 - SPARSITY),
    'block4': ('block (4, 1) ticket', {'block_size': (4, 1)}, 1 - SPARSITY),
    'block16': ('block (16, 1) ticket', {'block_size': (16, 1)}, 1 - SPARSITY),
    'shrunk': ('structured ticket, shrunk', {'granularity': 'unit'}, None),  # the model's units_left
}
DEFAULT_OUT = os.path.join(ROOT, 'benchmarks', 'structured_results.md')
# The goal for the shrunk tickets: within this many points of dense test accuracy, at or below this
# fraction of the dense float32 latency under the default op resolver.
GOAL_POINTS = 1.0
GOAL_RATIO = 0.5
# First hidden widths of the LeNet-shaped MLPs (784-w-w/3-10) whose latency the width table compares.
WIDTHS = (300, 150, 144, 128, 120, 112, 100, 96, 75)
Model = collections.namedtuple('Model', ['title', 'build', 'image_size', 'epochs', 'units_left', 'variants'])
# epochs: of every training phase (the dense training and each round's); units_left: of each hidden layer (or
# residual group), for the structured ticket.
MODELS = {
    # 128 of the first layer's 300 units: XNNPACK runs some widths much slower than others (the width table).
    'lenet_300_100': Model('LeNet-300-100', lambda seed: models.lenet_300_100(seed=seed), None, 10, 128 / 300,
                           tuple(VARIANTS)),
    'conv4': Model('Conv-4', lambda seed: models.conv4((28, 28, 1), 10, seed), 28, 3, 40 / 64, tuple(VARIANTS)),
    # On the digits zero-padded to 32x32, the CIFAR image size it was designed for. Its one Dense layer is the
    # 64-input output layer, where 1x16 blocks would tell nothing the convolutions' block (4, 1) row does not.
    'resnet20': Model('ResNet-20', lambda seed: models.resnet20((32, 32, 1), 10, seed), 32, 3, 0.5,
                      ('dense', 'unstructured', 'block4', 'shrunk')),
}


def units(model):
  """Output units of each Dense and Conv layer, as 'a-b-c', with runs of n equal widths written 'a x n'."""
  widths = [layer.get_config().get('units', layer.get_config().get('filters')) for layer in model.layers
            if 'units' in layer.get_config() or 'filters' in layer.get_config()]
  runs = []
  for width in widths:
    if runs and runs[-1][0] == width:
      runs[-1][1] += 1
    else:
      runs.append([width, 1])
  return '-'.join(str(w) if n == 1 else f'{w}x{n}' for w, n in runs)


def load_digits(image_size):
  """The embedded MNIST subset: flat 784-vectors (image_size None), or 28x28x1 images zero-padded to image_size."""
  data = datasets.load_mnist(source='embedded', flatten=image_size is None)
  if image_size is None or image_size == 28:
    return data
  pad = (image_size - 28) // 2
  widths = ((0, 0), (pad, image_size - 28 - pad), (pad, image_size - 28 - pad), (0, 0))
  return data._replace(x_train=np.pad(data.x_train, widths), x_test=np.pad(data.x_test, widths))


def find_ticket(build, seed, initial, trained, data, rounds, epochs, prune_args, kept):
  """Iterative pruning with rewinding from the dense run, to `kept` of the weights (or units); the wrapped ticket."""
  rate = 1.0 - kept ** (1.0 / rounds)
  model = ltp_tfmot.prune_lottery_ticket(build(seed), ltp_tfmot.LotteryTicketSchedule(rate=rate), **prune_args)
  tflite_bench.compile_model(model)
  model.build((None,) + data.x_train.shape[1:])
  tflite_bench.set_wrapped_weights(model, initial)
  ltp_tfmot.take_snapshot(model)  # the rewind point: the dense model's initial weights
  tflite_bench.set_wrapped_weights(model, trained)  # round 1 prunes the trained dense weights
  for _ in range(rounds):
    ltp_tfmot.run_lottery_round(model)
    train(model, data, epochs, lottery=True)
  return model


def train(model, data, epochs, lottery):
  """One training phase: Adam at the base rate, then (of more than one epoch) the last epoch at a tenth of it.

  So the weights a phase ends with are not those of one noisy step at the full rate, which BatchNorm networks
  show most.
  """
  drop = keras.callbacks.LearningRateScheduler(
      lambda epoch, _: tflite_bench.LEARNING_RATE * (FINAL_EPOCH_RATE if epoch == epochs - 1 > 0 else 1.0))
  callbacks = [drop] + ([ltp_tfmot.UpdateLotteryStep()] if lottery else [])
  model.fit(data.x_train, data.y_train, batch_size=tflite_bench.BATCH_SIZE, epochs=epochs, verbose=0,
            callbacks=callbacks)


def quantization_aware(model, data, steps):
  """`ltp_tfmot.quantize_ticket(model)` fine-tuned for `steps` batches; also {kernel: zeros kept} for the check."""
  qat = ltp_tfmot.quantize_ticket(model)
  zeros_before = zero_counts(qat)
  qat.compile(optimizer=keras.optimizers.Adam(QAT_LEARNING_RATE),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=['accuracy'])
  n = steps * tflite_bench.BATCH_SIZE
  qat.fit(data.x_train[:n], data.y_train[:n], batch_size=tflite_bench.BATCH_SIZE, epochs=1, verbose=0)
  if zero_counts(qat) != zeros_before:
    raise AssertionError(f'quantization-aware training changed the zeros: {zeros_before} -> {zero_counts(qat)}')
  return qat


def zero_counts(model):
  return {w.name: int(np.sum(w.numpy() == 0)) for w in model.weights if w.name.endswith('kernel:0')}


def kernel_words(report, sparse):
  """How the weighted ops run under the file's op resolver, from `ExportReport.kernels`."""
  counts = collections.Counter(k.kernel for k in report.kernels_under())
  words = '; '.join(f'{kernel} x{n}' for kernel, n in counts.items())
  if sparse and not report.sparse:
    words += ' (dense file: the sparse conversion failed its check)'
  return words


def run_model(name, args, export_dir):
  spec = MODELS[name]
  title, build = spec.title, spec.build
  epochs = 1 if args.quick else spec.epochs
  data = load_digits(spec.image_size)
  x_test, y_test = data.x_test[:args.test_images], data.y_test[:args.test_images]
  start = time.time()
  keras.utils.set_random_seed(args.seed)
  dense = tflite_bench.compile_model(build(args.seed))
  initial = tflite_bench.layer_weights(dense)
  # As in the papers, the dense model and every ticket train the same length: one phase of `epochs`.
  train(dense, data, epochs, lottery=False)
  trained = tflite_bench.layer_weights(dense)
  float_models = {'dense': dense}
  for variant in spec.variants:
    _, prune_args, kept = VARIANTS[variant]
    if prune_args is None:
      continue
    keras.utils.set_random_seed(args.seed + 1)  # the same data order for every ticket
    kept = spec.units_left if kept is None else kept
    ticket = find_ticket(build, args.seed, initial, trained, data, args.rounds, epochs, prune_args, kept)
    float_models[variant] = ltp_tfmot.shrink(ticket) if variant == 'shrunk' else ltp_tfmot.strip_pruning(ticket)
  print(f'{title}: trained in {time.time() - start:.0f} s', flush=True)

  rows, paths = {}, {}
  for variant, model in float_models.items():
    sparse = variant not in ('dense', 'shrunk')
    keras.utils.set_random_seed(args.seed + 2)
    for precision, exported in (('float32', model), ('int8', quantization_aware(model, data, args.qat_steps))):
      path = os.path.join(export_dir, f'{name}_{variant}_{precision}.tflite')
      row = {'sparse': sparse, 'units': units(model), 'sparsity': tflite_bench.kernel_sparsity(model),
             'keras_accuracy': tflite_bench.keras_accuracy(exported, x_test, y_test)}
      try:
        report = ltp_tfmot.export_tflite(exported, path, sparse=sparse, sample_inputs=x_test[:64])
      except ltp_tfmot.ExportError as error:  # a file that computes other outputs than the model: a result too
        row.update(report=None, refused=str(error), tflite_accuracy=None, passes=[])
      else:
        paths[variant, precision] = path
        row.update(report=report, tflite_accuracy=tflite_bench.tflite_accuracy(ltp_tfmot.load_tflite(path), x_test,
                                                                               y_test),
                   passes=[c.resolver for c in report.checks if c.passed])
      rows[variant, precision] = row
  configs = [(key, resolver) for key, row in rows.items() for resolver in RESOLVERS if resolver in row['passes']]
  interpreters = {}
  for key, resolver in configs:
    interpreter = tflite_bench.make_interpreter(paths[key], resolver)  # one thread
    interpreter.set_tensor(interpreter.get_input_details()[0]['index'], x_test[:1])
    interpreters[key, resolver] = interpreter
  samples = latency.interleaved_invoke_times(interpreters, args.repetitions, args.block_seconds)
  for (key, resolver), values in samples.items():
    dense_key = (('dense', key[1]), resolver)
    rows[key][resolver] = statistics.median(values)
    if dense_key in samples:
      rows[key][resolver + '_ratio'] = statistics.median(
          v / d for v, d in zip(values, samples[dense_key], strict=True))
  print(f'{title}: {time.time() - start:.0f} s in all', flush=True)
  return spec, epochs, rows


def width_latencies(args, export_dir):
  """{(first width, resolver): (median us, median ratio to 300 units)} of untrained 784-w-w/3-10 MLPs."""
  x = np.random.default_rng(args.seed).standard_normal((64, 784)).astype(np.float32)
  interpreters = {}
  for width in WIDTHS:
    mlp = keras.Sequential([keras.layers.Dense(width, 'relu', input_shape=(784,)),
                            keras.layers.Dense(round(width / 3), 'relu'), keras.layers.Dense(10)])
    path = os.path.join(export_dir, f'width_{width}.tflite')
    ltp_tfmot.export_tflite(mlp, path, sample_inputs=x)
    for resolver in RESOLVERS:
      interpreter = tflite_bench.make_interpreter(path, resolver)
      interpreter.set_tensor(interpreter.get_input_details()[0]['index'], x[:1])
      interpreters[width, resolver] = interpreter
  samples = latency.interleaved_invoke_times(interpreters, args.repetitions, args.block_seconds)
  return {(width, resolver): (statistics.median(values), statistics.median(
      v / d for v, d in zip(values, samples[WIDTHS[0], resolver], strict=True)))
          for (width, resolver), values in samples.items()}


def goal_line(spec, rows):
  """Whether the shrunk float32 ticket is within GOAL_POINTS of dense accuracy at <= GOAL_RATIO dense latency."""
  dense, shrunk = rows['dense', 'float32'], rows['shrunk', 'float32']
  if dense['tflite_accuracy'] is None or shrunk['tflite_accuracy'] is None:
    refused = dense.get('refused') or shrunk['refused']
    return f'- **{spec.title}: goal missed**: a float32 export was refused ({refused})'
  points = 100 * (shrunk['tflite_accuracy'] - dense['tflite_accuracy'])
  ratio = shrunk.get(RESOLVERS[0] + '_ratio')
  accuracy_met, latency_met = points >= -GOAL_POINTS, ratio is not None and ratio <= GOAL_RATIO
  verdict = 'met' if accuracy_met and latency_met else 'missed'
  misses = ([] if accuracy_met else [f'accuracy by {-points - GOAL_POINTS:.1f} points']) + (
      [] if latency_met else ['latency: the file fails under AUTO' if ratio is None
                              else f'latency by {ratio - GOAL_RATIO:.2f}x'])
  return (f'- **{spec.title}: goal {verdict}**{" (" + ", ".join(misses) + ")" if misses else ""}. Shrunk to '
          f'{shrunk["units"]} ({spec.units_left:.0%} of each hidden layer\'s units): TFLite test accuracy '
          f'{100 * shrunk["tflite_accuracy"]:.1f}% against dense {100 * dense["tflite_accuracy"]:.1f}% '
          f'({points:+.1f} points; goal >= -{GOAL_POINTS:g}), float32 latency under AUTO '
          + ('n/a' if ratio is None else f'{ratio:.2f}x') + f' dense (goal <= {GOAL_RATIO:g}x).')


def latency_cells(row, resolver):
  if resolver not in row:
    return 'fails | '
  ratio = row.get(resolver + '_ratio')
  return f'{row[resolver]:.1f} | ' + ('' if ratio is None else f'{ratio:.2f}x')


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true', help='one epoch per phase, 5 QAT steps, 3 repetitions')
  parser.add_argument('--rounds', type=int, default=2)
  parser.add_argument('--qat-steps', type=int, default=40, help='quantization-aware fine-tuning batches (of 60)')
  parser.add_argument('--repetitions', type=int, default=20)
  parser.add_argument('--block-seconds', type=float, default=0.03)
  parser.add_argument('--test-images', type=int, default=1000)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--models', default=','.join(MODELS), help='comma-separated: ' + ', '.join(MODELS))
  parser.add_argument('--out', help=f'where to write the report (default without --quick: {DEFAULT_OUT})')
  args = parser.parse_args()
  if args.quick:
    args.repetitions, args.qat_steps, args.test_images = min(args.repetitions, 3), min(args.qat_steps, 5), 200
  names = [n.strip() for n in args.models.split(',') if n.strip()]
  if not names or any(n not in MODELS for n in names):
    parser.error(f'--models: choose from {list(MODELS)}, got {args.models!r}')
  out = args.out or (None if args.quick else DEFAULT_OUT)
  common.quiet_logs()
  start = time.time()
  with tempfile.TemporaryDirectory() as export_dir:
    results = [run_model(name, args, export_dir) for name in names]
    widths = width_latencies(args, export_dir)

  command = 'PYTHONPATH=. .venv/bin/python benchmarks/bench_structured.py'
  if sys.argv[1:]:
    command += ' ' + shlex.join(sys.argv[1:])
  lines = [
      '# Tickets in TFLite: dense, unstructured, block and structured, float32 and int8',
      '',
      f'Command: `{command}`',
      '',
      f'- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {time.time() - start:.0f} s in '
      f'all; embedded MNIST subset (4,000 training, {args.test_images:,} test digits); `nproc` = {os.cpu_count()}, '
      f'load average {common.load_average():.1f} at the end (shared cores: read the ratios)',
      f'- tickets: {args.rounds} rounds of iterative pruning with rewinding to the initial weights from the same '
      f'trained dense model; weight tickets end at {SPARSITY:.0%} sparsity in every prunable layer, the structured '
      'one keeps ' + ', '.join(f'{spec.units_left:.0%} ({spec.title})' for spec, _, _ in results)
      + ' of each hidden layer\'s units or residual group\'s channels (L1 norm, layer scope) and is shrunk; the '
      'dense model and each round train the same epochs (column "epochs"), Adam '
      f'{tflite_bench.LEARNING_RATE:g} with the last epoch at {FINAL_EPOCH_RATE:g}x, batch '
      f'{tflite_bench.BATCH_SIZE}; ResNet-20 sees the digits zero-padded to 32x32',
      f'- int8: `ltp_tfmot.quantize_ticket` (pruning-preserving QAT), {args.qat_steps} fine-tuning steps of '
      f'batch {tflite_bench.BATCH_SIZE} (Adam {QAT_LEARNING_RATE:g}; the zero count of every kernel is checked '
      'unchanged), exported int8 weights and activations; float32: the model as trained',
      '- files: `export_tflite` (sparse format for the weight tickets, dense for the dense and shrunk models); '
      '"runs as" is `ExportReport.kernels` under the op resolver the file records (the one its accuracy is '
      f'measured with); latency: batch 1, one thread, median over {args.repetitions} interleaved repetitions of '
      f'~{args.block_seconds * 1e3:.0f} ms blocks of back-to-back `invoke()` (Python call overhead included); '
      '"/ dense" = median of the per-repetition ratios to the dense file of the same precision and resolver; '
      '"fails" = the file does not pass its export check under that resolver',
      '',
      '| model | variant | precision | units | sparsity | file | test acc. Keras / TFLite | op resolver: runs as | '
      'latency AUTO (us) | / dense AUTO | latency BUILTIN (us) | / dense BUILTIN | epochs |',
      '|---|---|---|---|---:|---:|---|---|---:|---:|---:|---:|---:|',
  ]
  for spec, epochs, rows in results:
    for (variant, precision), row in rows.items():
      report = row['report']
      head = f'| {spec.title} | {VARIANTS[variant][0]} | {precision} | {row["units"]} | {row["sparsity"]:.1%} | '
      if report is None:
        lines.append(head + f'not written | {100 * row["keras_accuracy"]:.1f}% / - | export refused: '
                     f'{row["refused"]} | fails | | fails | | {epochs} |')
        continue
      lines.append(
          head + f'{report.file_bytes:,} B | {100 * row["keras_accuracy"]:.1f}% / '
          f'{100 * row["tflite_accuracy"]:.1f}% | '
          f'{report.op_resolver}: {kernel_words(report, row["sparse"])} | {latency_cells(row, RESOLVERS[0])} | '
          f'{latency_cells(row, RESOLVERS[1])} | {epochs} |')
  lines += ['', f'Goal: a shrunk structured ticket within {GOAL_POINTS:g} point of dense TFLite test accuracy at or '
            f'below {GOAL_RATIO:g}x the dense float32 latency under the default op resolver (AUTO).', '']
  lines += [goal_line(spec, rows) for spec, _, rows in results]
  lines += ['', '### Latency by width', '',
            'Untrained float32 MLPs 784-w-w/3-10 (LeNet-300-100 and the shapes a structured ticket shrinks it to), '
            'timed as above in their own interleaved repetitions; "/ 300" = median of the per-repetition ratios to '
            'w = 300 under the same resolver. Latency does not follow the weight count: under XNNPACK on this '
            'machine some widths run far slower than wider ones, so a structured ticket\'s widths are worth '
            'choosing by measurement.', '',
            '| w | weights | latency AUTO (us) | / 300 AUTO | latency BUILTIN (us) | / 300 BUILTIN |',
            '|---:|---:|---:|---:|---:|---:|']
  for width in WIDTHS:
    cells = ' | '.join(f'{widths[width, r][0]:.1f} | {widths[width, r][1]:.2f}x' for r in RESOLVERS)
    lines.append(f'| {width} | {784 * width + width * round(width / 3) + 10 * round(width / 3):,} | {cells} |')
  if out:
    common.write_markdown(lines, out)
  else:
    print('\n'.join(lines))


if __name__ == '__main__':
  main()
