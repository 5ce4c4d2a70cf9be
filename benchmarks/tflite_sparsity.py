"""What block-structured lottery tickets buy in TFLite: size, latency and accuracy at 90% sparsity.

For each model (LeNet-300-100, a wider 784-1024-1024-10 MLP, a small CNN), in one run:

1. train the dense model on MNIST (the embedded 5,000-digit subset: 4,000 training, 1,000 test images);
2. find two lottery tickets from the same initialisation and the same trained dense weights, by iterative
   magnitude pruning with rewinding to the initial weights (`--rounds` rounds at
   `rate = 1 - 0.1 ** (1 / rounds)`, so every prunable layer ends at exactly 90%; each round prunes, rewinds
   and retrains for `--epochs` epochs): one with unstructured masks, one with `block_size=(4, 1)` (1x4 blocks
   in TFLite's [out, in] layout, the blocks TFLite's float FULLY_CONNECTED kernel runs sparse; convolution
   kernels are pruned weight by weight in both);
3. strip the tickets and export all three with `ltp_tfmot.export_tflite` (the dense model with sparse=False);
4. measure TFLite test accuracy and batch-1 invoke latency with the ai-edge-litert interpreter (one thread),
   with the default op resolver (XNNPACK delegate) and with BUILTIN_WITHOUT_DEFAULT_DELEGATES; the six
   (export, resolver) pairs of a model are timed in interleaved repetitions, and the ratio to the dense model
   is the median of the per-repetition ratios under the same resolver.

It then writes a Markdown report (table, environment, and whether the goal of issue 4 is met: the block-sparse
MLP at 90% sparsity runs in at most 0.6x the dense model's time, with test accuracy within 1 point of the
unstructured ticket).

Run (about 5 minutes on 2 cores; writes benchmarks/tflite_results.md):
  PYTHONPATH=. .venv/bin/python benchmarks/tflite_sparsity.py
Smoke run (about 1 minute; prints the report, writes it only with --out):
  PYTHONPATH=. .venv/bin/python benchmarks/tflite_sparsity.py --quick
"""

import argparse
import collections
import dataclasses
import datetime
import importlib.metadata
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time

from ai_edge_litert import interpreter as litert
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot import datasets
from ltp_tfmot import models
from ltp_tfmot.export import kernels
from ltp_tfmot.export import latency

SPARSITY = 0.9
BLOCK_SIZE = (4, 1)
BATCH_SIZE = 60
LEARNING_RATE = 1.2e-3
VARIANTS = ('dense', 'unstructured', 'block')
VARIANT_WORDS = {'dense': 'dense', 'unstructured': 'unstructured ticket', 'block': 'block (4, 1) ticket'}
RESOLVERS = ('AUTO', 'BUILTIN_WITHOUT_DEFAULT_DELEGATES')
GOAL_RATIO = 0.6
GOAL_ACCURACY_POINTS = 1.0
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'tflite_results.md')


def mlp_1024(seed):
  """784-1024-1024-10, ReLU, Glorot-normal init."""
  def init(offset):
    return keras.initializers.GlorotNormal(seed=seed + offset)

  return keras.Sequential([
      keras.layers.Dense(1024, activation='relu', kernel_initializer=init(0), input_shape=(784,), name='fc1'),
      keras.layers.Dense(1024, activation='relu', kernel_initializer=init(1), name='fc2'),
      keras.layers.Dense(10, kernel_initializer=init(2), name='output'),
  ], name='mlp_1024')


def small_cnn(seed):
  """conv 32 3x3 - maxpool - conv 64 3x3 - maxpool - flatten - dense 256 - dense 10 on 28x28x1."""
  def init(offset):
    return keras.initializers.GlorotNormal(seed=seed + offset)

  return keras.Sequential([
      keras.layers.Conv2D(32, 3, activation='relu', kernel_initializer=init(0), input_shape=(28, 28, 1),
                          name='conv1'),
      keras.layers.MaxPooling2D(2, name='pool1'),
      keras.layers.Conv2D(64, 3, activation='relu', kernel_initializer=init(1), name='conv2'),
      keras.layers.MaxPooling2D(2, name='pool2'),
      keras.layers.Flatten(name='flatten'),
      keras.layers.Dense(256, activation='relu', kernel_initializer=init(2), name='fc1'),
      keras.layers.Dense(10, kernel_initializer=init(3), name='output'),
  ], name='small_cnn')


@dataclasses.dataclass(frozen=True)
class Benchmark:
  title: str
  build: object  # seed -> an uncompiled tf_keras model with named layers
  flatten: bool  # 784-vectors (MLP) or 28x28x1 images (CNN)
  is_mlp: bool


BENCHMARKS = {
    'lenet': Benchmark('LeNet-300-100', lambda seed: models.lenet_300_100(seed=seed), True, True),
    'mlp1024': Benchmark('MLP 784-1024-1024-10', mlp_1024, True, True),
    'cnn': Benchmark('CNN conv32-conv64-fc256-10', small_cnn, False, False),
}


@dataclasses.dataclass
class Row:
  """One export of one model, with what was measured on it."""
  model: str
  variant: str
  sparsity: float
  keras_accuracy: float
  report: ltp_tfmot.ExportReport
  tflite_accuracy: float = float('nan')
  latency_us: dict = dataclasses.field(default_factory=dict)  # resolver -> median us per invoke
  quartiles_us: dict = dataclasses.field(default_factory=dict)  # resolver -> (25th, 75th percentile)
  ratio: dict = dataclasses.field(default_factory=dict)  # resolver -> median per-repetition ratio to dense
  xnnpack: str = ''  # what the XNNPACK delegate took under the default resolver


def compile_model(model):
  model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=['accuracy'])
  return model


def train(model, data, epochs, lottery):
  callbacks = [ltp_tfmot.UpdateLotteryStep()] if lottery else None
  model.fit(data.x_train, data.y_train, batch_size=BATCH_SIZE, epochs=epochs, verbose=0, callbacks=callbacks)


def keras_accuracy(model, x, y):
  return float(np.mean(np.argmax(model.predict(x, batch_size=500, verbose=0), axis=1) == y))


def layer_weights(model):
  """{layer name: weights} of the layers that have weights."""
  return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def set_wrapped_weights(model, weights):
  """Sets the weights of the layers inside a wrapped model's lottery wrappers, by layer name."""
  for wrapper in ltp_tfmot.lottery_wrappers(model):
    wrapper.layer.set_weights(weights[wrapper.layer.name])


def kernel_sparsity(model):
  """Fraction of zeros over all weights of rank >= 2 (kernels)."""
  kernels = [w.numpy() for w in model.weights if len(w.shape) >= 2]
  return sum(int(np.sum(k == 0)) for k in kernels) / sum(k.size for k in kernels)


def find_ticket(bench, seed, initial, trained, data, args, block_size):
  """Iterative magnitude pruning with rewinding from the dense run; returns the stripped ticket."""
  rate = 1.0 - (1.0 - SPARSITY) ** (1.0 / args.rounds)
  model = ltp_tfmot.prune_lottery_ticket(bench.build(seed), ltp_tfmot.LotteryTicketSchedule(rate=rate),
                                         block_size=block_size)
  compile_model(model)
  model.build((None,) + data.x_train.shape[1:])
  set_wrapped_weights(model, initial)
  ltp_tfmot.take_snapshot(model)  # the rewind point: the dense model's initial weights
  set_wrapped_weights(model, trained)  # round 1 prunes the trained dense weights
  for _ in range(args.rounds):
    ltp_tfmot.run_lottery_round(model)  # prune by |w|, rewind survivors to the initial weights, reset Adam
    train(model, data, args.epochs, lottery=True)
  return ltp_tfmot.strip_pruning(model)


def make_interpreter(path, resolver):
  interpreter = litert.Interpreter(model_path=path, num_threads=1,
                                   experimental_op_resolver_type=getattr(litert.OpResolverType, resolver))
  interpreter.allocate_tensors()
  return interpreter


def tflite_accuracy(interpreter, x, y):
  """Test accuracy of a TFLite interpreter's model, one image per invoke."""
  input_index = interpreter.get_input_details()[0]['index']
  output_index = interpreter.get_output_details()[0]['index']
  correct = 0
  for image, label in zip(x, y, strict=True):
    interpreter.set_tensor(input_index, image[None])
    interpreter.invoke()
    correct += int(np.argmax(interpreter.get_tensor(output_index)) == label)
  return correct / len(y)


def xnnpack_partition(path):
  """Which ops the XNNPACK delegate takes under the default resolver, as words (`kernels.delegated_nodes`)."""
  interpreter = make_interpreter(path, 'AUTO')
  taken = kernels.delegated_nodes(interpreter)
  ops = [op for op in interpreter._get_ops_details() if op['op_name'] != 'DELEGATE']  # pylint: disable=protected-access
  left = collections.Counter(op['op_name'] for op in ops if op['index'] not in taken)
  if not taken:
    return 'none (all ops on the built-in kernels)'
  if not left:
    return f'all {len(ops)} ops'
  return f'{len(taken)} of {len(ops)} ops; built-in kernels run ' + ', '.join(
      f'{name} x{count}' for name, count in sorted(left.items()))


def batch_one_interpreters(paths, configs, image):
  """{(variant, resolver): allocated one-thread interpreter of paths[variant] with `image` as its batch-1 input}."""
  interpreters = {}
  for config in configs:
    interpreter = make_interpreter(paths[config[0]], config[1])
    interpreter.set_tensor(interpreter.get_input_details()[0]['index'], image[None])
    interpreters[config] = interpreter
  return interpreters


def time_exports(paths, image, reps, block_seconds):
  """Per (variant, resolver): median us per invoke, its quartiles, and the median per-repetition ratio to dense.

  Timed by `ltp_tfmot.export.latency.interleaved_invoke_times`.
  """
  configs = [(variant, resolver) for resolver in RESOLVERS for variant in VARIANTS]
  samples = latency.interleaved_invoke_times(batch_one_interpreters(paths, configs, image), reps, block_seconds)
  medians = {config: statistics.median(values) for config, values in samples.items()}
  quartiles = {config: tuple(np.percentile(values, [25, 75])) for config, values in samples.items()}
  ratios = {(variant, resolver): statistics.median(
      v / d for v, d in zip(samples[variant, resolver], samples['dense', resolver], strict=True))
      for variant, resolver in configs}
  return medians, quartiles, ratios


def run_benchmark(name, args, export_dir):
  bench = BENCHMARKS[name]
  data = datasets.load_mnist(source='embedded', flatten=bench.flatten)
  x_test, y_test = data.x_test[:args.test_images], data.y_test[:args.test_images]
  start = time.time()
  keras.utils.set_random_seed(args.seed)
  dense = compile_model(bench.build(args.seed))
  initial = layer_weights(dense)
  train(dense, data, args.epochs, lottery=False)
  trained = layer_weights(dense)
  models_by_variant = {'dense': dense}
  for variant, block_size in (('unstructured', (1, 1)), ('block', BLOCK_SIZE)):
    keras.utils.set_random_seed(args.seed + 1)  # same data order for both tickets
    models_by_variant[variant] = find_ticket(bench, args.seed, initial, trained, data, args, block_size)
  train_seconds = time.time() - start

  rows, paths = [], {}
  for variant, model in models_by_variant.items():
    paths[variant] = os.path.join(export_dir, f'{name}_{variant}.tflite')
    report = ltp_tfmot.export_tflite(model, paths[variant], sparse=variant != 'dense', sample_inputs=x_test[:8])
    rows.append(Row(name, variant, kernel_sparsity(model), keras_accuracy(model, x_test, y_test), report))
  for row in rows:
    row.tflite_accuracy = tflite_accuracy(make_interpreter(paths[row.variant], 'AUTO'), x_test, y_test)
    row.xnnpack = xnnpack_partition(paths[row.variant])
  medians, quartiles, ratios = time_exports(paths, x_test[0], args.reps, args.block_seconds)
  for row in rows:
    row.latency_us = {resolver: medians[row.variant, resolver] for resolver in RESOLVERS}
    row.quartiles_us = {resolver: quartiles[row.variant, resolver] for resolver in RESOLVERS}
    row.ratio = {resolver: ratios[row.variant, resolver] for resolver in RESOLVERS}
  other_seconds = time.time() - start - train_seconds
  print(f'{bench.title}: trained in {train_seconds:.0f} s, exported and timed in {other_seconds:.0f} s', flush=True)
  for row in rows:
    print(f'  {row.variant:>12}: sparsity {row.sparsity:.1%}, {row.report.file_bytes:,} B, accuracy Keras '
          f'{row.keras_accuracy:.3f} TFLite {row.tflite_accuracy:.3f}, '
          + ', '.join(f'{r} {row.latency_us[r]:.1f} us ({row.ratio[r]:.2f}x)' for r in RESOLVERS), flush=True)
  return rows


def ops_cell(report):
  """Which ops use sparse weights, and how (from the ExportReport)."""
  if not report.sparse:
    return 'none (dense export)'
  parts = []
  for ops, how in ((report.sparse_ops, 'on sparse weights'), (report.densified_ops, 'after DENSIFY')):
    if ops:
      counts = collections.Counter(ops)
      parts.append(', '.join(f'{op} x{n}' for op, n in sorted(counts.items())) + ' ' + how)
  return '; '.join(parts) or 'no weight stored sparse'


def goal_lines(rows):
  """The goal verdict for each MLP, from the measured rows."""
  lines = []
  verdicts = []
  by_key = {(row.model, row.variant): row for row in rows}
  for name, bench in BENCHMARKS.items():
    if not bench.is_mlp or (name, 'block') not in by_key:
      continue
    block, unstructured = by_key[name, 'block'], by_key[name, 'unstructured']
    gap = 100 * (unstructured.keras_accuracy - block.keras_accuracy)
    accuracy_ok = gap <= GOAL_ACCURACY_POINTS
    speed = {resolver: block.ratio[resolver] <= GOAL_RATIO for resolver in RESOLVERS}
    met = speed['AUTO'] and accuracy_ok
    verdicts.append(met)
    lines.append(
        f'- **{bench.title}: goal {"met" if met else "NOT met"}.** Block-sparse latency / dense: '
        f'{block.ratio["AUTO"]:.2f}x with the default resolver (XNNPACK), '
        f'{block.ratio[RESOLVERS[1]]:.2f}x without default delegates (goal <= {GOAL_RATIO}x: '
        f'{"yes" if speed["AUTO"] else "no"} / {"yes" if speed[RESOLVERS[1]] else "no"}); '
        f'test accuracy {block.keras_accuracy:.1%} vs. {unstructured.keras_accuracy:.1%} for the unstructured '
        f'ticket (block - unstructured = {-gap:+.1f} points; goal >= -{GOAL_ACCURACY_POINTS:g}: '
        f'{"yes" if accuracy_ok else "no"}); '
        f'{block.report.densify_ops} DENSIFY ops, {ops_cell(block.report)}.')
  return lines, verdicts


def environment():
  cpu = 'unknown'
  if os.path.exists('/proc/cpuinfo'):
    with open('/proc/cpuinfo') as f:
      names = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
    cpu = names[0] if names else platform.processor() or 'unknown'

  def version(package):
    try:
      return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      return 'not installed'

  return {
      'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
      'nproc': len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count(),
      'cpu': cpu,
      'python': platform.python_version(),
      'tensorflow': tf.__version__,
      'ai-edge-litert': version('ai-edge-litert'),
      'tf-keras': version('tf-keras'),
      'tensorflow-model-optimization': version('tensorflow-model-optimization'),
  }


def markdown(rows, args, env, seconds, cpu_seconds, load):
  r0, r1 = RESOLVERS
  lines = [
      '# TFLite: lottery tickets at 90% sparsity, unstructured vs. block (4, 1)',
      '',
      f'Written by `benchmarks/tflite_sparsity.py` (issue 4). Command: `{args.command}`',
      '',
      f'- date: {env["date"]}; whole run {seconds:.0f} s wall clock, {cpu_seconds:.0f} s CPU time of this process',
      f'- machine: `nproc` = {env["nproc"]}, CPU: {env["cpu"]}; load average {load[0]:.1f} at the start, '
      f'{load[1]:.1f} at the end (the cores are shared, so latencies are noisy; the ratios are paired per '
      'repetition)',
      f'- Python {env["python"]}, TensorFlow {env["tensorflow"]}, ai-edge-litert {env["ai-edge-litert"]}, '
      f'tf-keras {env["tf-keras"]}, tensorflow-model-optimization {env["tensorflow-model-optimization"]}',
      '- data: embedded MNIST subset (4,000 training images; accuracies on '
      + (f'the first {args.test_images} of the 1,000 test images)' if args.test_images < 1000 else
         'the 1,000 test images)'),
      f'- training: Adam {LEARNING_RATE:g}, batch {BATCH_SIZE}, {args.epochs} epoch(s) for the dense model and after '
      f'each of {args.rounds} lottery rounds (rate {1 - (1 - SPARSITY) ** (1 / args.rounds):.4f} per round, every '
      'prunable layer ends at 90%; rewind to the initial weights; both tickets start from the same trained dense '
      'weights and initialisation)',
      f'- latency: batch 1, `num_threads=1`, median over {args.reps} interleaved repetitions of a block of '
      f'back-to-back invokes lasting about {args.block_seconds * 1e3:.0f} ms (Python `invoke()` overhead '
      'included); "/ dense" is the median of the per-repetition ratios to the dense export under the same '
      f'resolver. **{r0}** = the default resolver (XNNPACK delegate); **builtin** = `{r1}`',
      '',
      '| model | variant | sparsity | file bytes | gzip bytes | latency median, AUTO (us) | latency / dense, AUTO '
      '| latency median, builtin (us) | latency / dense, builtin | test accuracy Keras | test accuracy TFLite '
      '| DENSIFY ops | ops using sparse weights |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ]
  for row in rows:
    lines.append(
        f'| {BENCHMARKS[row.model].title} | {VARIANT_WORDS[row.variant]} | {row.sparsity:.1%} '
        f'| {row.report.file_bytes:,} | {row.report.gzip_bytes:,} '
        f'| {row.latency_us[r0]:.1f} | {row.ratio[r0]:.2f}x | {row.latency_us[r1]:.1f} | {row.ratio[r1]:.2f}x '
        f'| {row.keras_accuracy:.1%} | {row.tflite_accuracy:.1%} | {row.report.densify_ops} '
        f'| {ops_cell(row.report)} |')
  goal, verdicts = goal_lines(rows)
  lines += [
      '',
      '## Goal',
      '',
      f'"The block-sparse MLP at 90% sparsity runs in at most {GOAL_RATIO}x the dense model\'s time, with accuracy '
      f'within {GOAL_ACCURACY_POINTS:g} point of the unstructured ticket at the same sparsity" (timed with the '
      'default resolver; the builtin ratio is given too; accuracy = Keras test accuracy).',
      '',
      *goal,
      '',
      f'One seed. On {args.test_images} test images an accuracy near 93% has a binomial standard error of about '
      f'{100 * (0.93 * 0.07 / args.test_images) ** 0.5:.1f} points, so a gap of 1 point is near the noise of '
      'a single run; both tickets share the initialisation, the trained dense weights and the data order, which '
      'makes the comparison paired.',
      '',
      f'**Overall: {"met for every MLP" if verdicts and all(verdicts) else "not met"}.**',
      '',
      '## Why',
      '',
      '- Unstructured tickets: the converter stores the weights sparse (smaller file) but puts a DENSIFY op in '
      'front of each of them, and their ops run the dense kernels on the expanded weights. Under the default '
      'resolver XNNPACK takes the DENSIFY ops along with the rest (table below: it expands the static weights '
      'once, when the delegate is built); without delegates the built-in DENSIFY kernel expands them once, on '
      'the first invoke. Either way the latency stays at the dense model\'s.',
      '- Block (4, 1) tickets: the Dense kernels are stored as 1x4 blocks of TFLite\'s [out, in] layout with no '
      'DENSIFY, and the built-in float FULLY_CONNECTED kernel runs them sparse. XNNPACK does not take ops with '
      'sparse weights, so under the default resolver they run on the same built-in kernel (hence about the '
      'same latency with both resolvers) while XNNPACK keeps the rest of the graph. In the CNN the convolutions '
      '(pruned weight by weight: CONV_2D has no sparse kernel) keep their DENSIFY ops and most of the time.',
      '',
      '## Where the ops run with the default resolver',
      '',
      'What the XNNPACK delegate takes (found from the interpreter\'s op list: the ops between each DELEGATE '
      'node\'s inputs and outputs); ops it does not take run on TFLite\'s built-in kernels, where the float '
      'FULLY_CONNECTED kernel consumes 1x4-block sparse weights directly.',
      '',
      '| model | variant | XNNPACK delegate takes | file / dense file | latency p25-p75, AUTO (us) '
      '| latency p25-p75, builtin (us) |',
      '|---|---|---|---:|---:|---:|',
  ]
  dense_bytes = {row.model: row.report.file_bytes for row in rows if row.variant == 'dense'}
  for row in rows:
    spread = ' | '.join('{:.1f}-{:.1f}'.format(*row.quartiles_us[r]) for r in RESOLVERS)
    lines.append(f'| {BENCHMARKS[row.model].title} | {VARIANT_WORDS[row.variant]} | {row.xnnpack} '
                 f'| {row.report.file_bytes / dense_bytes[row.model]:.1%} | {spread} |')
  return '\n'.join(lines) + '\n'


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true',
                      help='smoke run: 1 epoch, 2 rounds, 200 test images, 3 short timing repetitions')
  parser.add_argument('--models', default=','.join(BENCHMARKS), help=f'comma-separated subset of {list(BENCHMARKS)}')
  parser.add_argument('--epochs', type=int, help='epochs of the dense training and after each round (default 4)')
  parser.add_argument('--rounds', type=int, help='lottery rounds to reach 90%% sparsity (default 4)')
  parser.add_argument('--reps', type=int, help='interleaved timing repetitions (default 40)')
  parser.add_argument('--block-seconds', type=float, help='length of one timed block of invokes (default 0.02)')
  parser.add_argument('--test-images', type=int, help='test images for the accuracies (default all 1,000)')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--out', help='Markdown report to write (default: benchmarks/tflite_results.md; '
                      'with --quick, none)')
  parser.add_argument('--export-dir', help='where to keep the .tflite files (default: a temporary directory)')
  args = parser.parse_args(argv)
  defaults = dict(epochs=1, rounds=2, reps=3, block_seconds=0.005, test_images=200) if args.quick else dict(
      epochs=4, rounds=4, reps=40, block_seconds=0.02, test_images=1000)
  for key, value in defaults.items():
    if getattr(args, key) is None:
      setattr(args, key, value)
  if args.out is None and not args.quick:
    args.out = DEFAULT_OUT
  args.models = [m.strip() for m in args.models.split(',') if m.strip()]
  unknown = sorted(set(args.models) - set(BENCHMARKS))
  if unknown or not args.models:
    parser.error(f'--models: unknown {unknown}; choose from {list(BENCHMARKS)}')
  if args.epochs < 1 or args.rounds < 1 or args.reps < 1 or args.block_seconds <= 0 or args.test_images < 1:
    parser.error('--epochs, --rounds, --reps, --test-images must be >= 1 and --block-seconds > 0')
  args.command = 'PYTHONPATH=. .venv/bin/python ' + shlex.join(['benchmarks/tflite_sparsity.py'] + sys.argv[1:])
  return args


def main(argv=None):
  args = parse_args(argv)
  start, cpu_start, load_start = time.time(), time.process_time(), os.getloadavg()[0]
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    export_dir = args.export_dir or tmp
    os.makedirs(export_dir, exist_ok=True)
    for name in args.models:
      rows.extend(run_benchmark(name, args, export_dir))
  text = markdown(rows, args, environment(), time.time() - start, time.process_time() - cpu_start,
                  (load_start, os.getloadavg()[0]))
  print(text)
  if args.out:
    with open(args.out, 'w') as f:
      f.write(text)
    print(f'Wrote {args.out}')


if __name__ == '__main__':
  main()
