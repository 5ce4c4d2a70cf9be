"""The ltp-tfmot command line: run lottery-ticket experiments and report on them.

Usage:

  ltp-tfmot run [--flags]        run or resume an experiment (every runner setting is a flag)
  ltp-tfmot report DIR [DIR...]  Markdown table + accuracy plot of runs (DIR: a run or a folder of runs)
  ltp-tfmot export RUN_DIR --level=N --out=model.tflite   a level's ticket as a sparse TFLite file
  ltp-tfmot --help               this text and every flag

Examples:

  ltp-tfmot run --model=lenet_300_100 --dataset=mnist --levels=5 --rate=0.2 \\
      --criterion=large_final --scope=layer --rewind_step=0 --controls=reinit,random_prune --out=runs
  ltp-tfmot report runs/lottery_1a2b3c4d5e6f runs/lottery_0f9e8d7c6b5a
  ltp-tfmot export runs/lottery_1a2b3c4d5e6f --level=5 --quantization=float16 --out=lenet_level5.tflite
  python -m ltp_tfmot.cli run --dataset_source=embedded --epochs=10 --levels=3
  TF_CONFIG='{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", "index": 0}}' \
      ltp-tfmot run --strategy=multi_worker --out=/shared/runs   # the same on host2 with "index": 1

The defaults are Frankle & Carbin's LeNet-300-100 set-up: Adam 1.2e-3, batch
60, 20% pruned per level and the output layer at half that rate. Running the
same command again skips every finished level and continues from the first
missing one; a run directory holding other settings is refused, not touched.
--strategy=mirrored trains on all local GPUs (else all logical CPUs);
--strategy=multi_worker on the workers TF_CONFIG lists, where only the chief
(worker 0) writes the run directory (on a file system every worker can read);
if a worker dies the others stop, and running the command again on every
worker resumes the run. Ctrl-C stops a run with one line saying where (exit
status 130); the same command resumes it. --out and --run_dir may be on any
file system TensorFlow knows (gs://bucket/runs).
"""

import sys

from absl import flags

from ltp_tfmot import files
from ltp_tfmot.experiment import config as config_lib
from ltp_tfmot.experiment import models as models_lib

FLAGS = flags.FlagValues()
COMMANDS = ('run', 'report', 'export')

_RUN = config_lib.RunConfig()
_DATA, _TRAINING, _PRUNING = _RUN.data, _RUN.training, _RUN.pruning


def _define_flags():
  fv = dict(flag_values=FLAGS)
  flags.DEFINE_bool('help', False, 'Show this help and exit.', short_name='h', **fv)
  # Model and data.
  flags.DEFINE_enum('model', _RUN.model, models_lib.model_names(), 'Model to prune.', **fv)
  flags.DEFINE_enum('dataset', _DATA.name, ['mnist', 'cifar10'], 'Dataset (CIFAR-10 needs Keras\' cache or '
                    'the internet; user arrays: Python API).', **fv)
  flags.DEFINE_enum('dataset_source', _DATA.source, list(config_lib.MNIST_SOURCES),
                    'MNIST only: auto (Keras, else the embedded 5,000 digits), keras or embedded.', **fv)
  flags.DEFINE_float('validation_split', _DATA.validation_split,
                     'Share of the training examples held out for validation (early stopping).', **fv)
  flags.DEFINE_integer('train_size', _DATA.train_size, 'Use only this many training examples (default: all).', **fv)
  flags.DEFINE_integer('test_size', _DATA.test_size, 'Use only this many test examples (default: all).', **fv)
  # Training.
  flags.DEFINE_enum('optimizer', _TRAINING.optimizer, list(config_lib.OPTIMIZERS), 'Optimizer.', **fv)
  flags.DEFINE_float('learning_rate', _TRAINING.learning_rate, 'Learning rate.', **fv)
  flags.DEFINE_float('momentum', _TRAINING.momentum, 'SGD momentum (sgd only).', **fv)
  flags.DEFINE_integer('batch_size', _TRAINING.batch_size, 'Batch size.', **fv)
  flags.DEFINE_integer('epochs', _TRAINING.epochs, 'Training epochs per level.', **fv)
  flags.DEFINE_integer('eval_every', _TRAINING.eval_every,
                       'Validation every this many iterations (early-stop iteration).', **fv)
  flags.DEFINE_integer('seed', _RUN.seed, 'Seed of replicate 0; replicate i uses seed + i.', **fv)
  # Pruning.
  flags.DEFINE_integer('levels', _PRUNING.levels, 'Pruning levels after the dense level 0.', **fv)
  flags.DEFINE_float('rate', _PRUNING.rate, 'Fraction of the alive weights pruned per level.', **fv)
  flags.DEFINE_list('layer_rates', None, 'Per-layer rates as name:rate pairs (default: the layer named '
                    f'{config_lib.OUTPUT_LAYER!r} at half of --rate); empty (--layer_rates=) for none.', **fv)
  flags.DEFINE_string('criterion', _PRUNING.criterion, 'Mask criterion (ltp_tfmot.criterion_names()).', **fv)
  flags.DEFINE_string('scope', _PRUNING.scope, 'layer or global.', **fv)
  flags.DEFINE_integer('rewind_step', _PRUNING.rewind_step,
                       'Rewind to the weights after this many iterations of level 0 (0: the initial weights).', **fv)
  flags.DEFINE_string('mask_0_action', _PRUNING.mask_0_action, 'Pruned weights: zero or freeze.', **fv)
  flags.DEFINE_string('mask_1_action', _PRUNING.mask_1_action,
                      'Kept weights start from: rewind, reinit, reshuffle or signed_constant.', **fv)
  flags.DEFINE_bool('dynamic_weight_rescaling', _PRUNING.dynamic_weight_rescaling,
                    'Rescale survivors by n / n_kept after each rewind.', **fv)
  # What to run and where.
  flags.DEFINE_integer('replicates', _RUN.replicates, 'Number of seeds.', **fv)
  flags.DEFINE_list('controls', list(_RUN.controls), 'Controls: reinit, random_prune (comma-separated).', **fv)
  flags.DEFINE_list('control_levels', None, 'Levels the controls run at (default: every level from 1).', **fv)
  flags.DEFINE_string('out', 'runs', 'run: folder the run directory (named by the settings\' hash) is made in; '
                      'export: the .tflite file to write.', **fv)
  flags.DEFINE_string('run_dir', None, 'The run directory itself, instead of --out.', **fv)
  flags.DEFINE_bool('verbose', False, 'Show Keras\' per-epoch output.', **fv)
  flags.DEFINE_bool('tensorboard', True, 'Write TensorBoard summaries under <run_dir>/tensorboard.', **fv)
  flags.DEFINE_enum('strategy', 'default', ['default', 'mirrored', 'multi_worker'],
                    'run: tf.distribute strategy: default (one device), mirrored (all local GPUs, else all logical '
                    'CPUs) or multi_worker (MultiWorkerMirroredStrategy over the cluster in TF_CONFIG; only the chief '
                    'writes the run directory).', **fv)
  # Export.
  flags.DEFINE_integer('level', None, 'export: the level to export (default: the last finished one).', **fv)
  flags.DEFINE_integer('replicate', 0, 'export: the replicate to export.', **fv)
  flags.DEFINE_enum('quantization', 'none', ['none', 'float16', 'dynamic', 'int8'],
                    'export: TFLite quantization (int8 calibrates on 200 training examples).', **fv)
  # Report.
  flags.DEFINE_string('report_dir', None, 'report: where report.md and accuracy.png go (default: the run '
                      'directory for one run, else the runs\' common folder).', **fv)


_define_flags()


class UsageError(ValueError):
  pass


def _layer_rates(entries):
  if entries is None:
    return None  # the config's default: the output layer at half the rate
  rates = {}
  for entry in entries:
    name, sep, value = entry.rpartition(':')
    try:
      if not sep or not name:
        raise ValueError
      rates[name] = float(value)
    except ValueError:
      raise UsageError(f'--layer_rates entries must be name:rate, got {entry!r}') from None
  return rates


def _control_levels(entries):
  if entries is None:
    return None
  try:
    return tuple(int(v) for v in entries)
  except ValueError:
    raise UsageError(f'--control_levels must be comma-separated integers, got {",".join(entries)!r}') from None


def config_from_flags(fv=FLAGS):
  """The `RunConfig` the parsed flags describe (ValueError for a bad setting)."""
  return config_lib.RunConfig(
      model=fv.model,
      data=config_lib.DataConfig(name=fv.dataset, source=fv.dataset_source, validation_split=fv.validation_split,
                                 train_size=fv.train_size, test_size=fv.test_size),
      training=config_lib.TrainingConfig(optimizer=fv.optimizer, learning_rate=fv.learning_rate,
                                         momentum=fv.momentum, batch_size=fv.batch_size, epochs=fv.epochs,
                                         eval_every=fv.eval_every),
      pruning=config_lib.PruningConfig(criterion=fv.criterion, scope=fv.scope, rate=fv.rate,
                                       layer_rates=_layer_rates(fv.layer_rates), rewind_step=fv.rewind_step,
                                       mask_0_action=fv.mask_0_action, mask_1_action=fv.mask_1_action,
                                       dynamic_weight_rescaling=fv.dynamic_weight_rescaling, levels=fv.levels),
      seed=fv.seed,
      replicates=fv.replicates,
      controls=tuple(fv.controls),
      control_levels=_control_levels(fv.control_levels),
  )


def _print(line):
  print(line, flush=True)


class _Interrupted(Exception):
  """Ctrl-C (KeyboardInterrupt) during a command; the message says where it stopped."""


def _run_command(args, hooks=None):
  from ltp_tfmot.experiment import report as report_lib  # pylint: disable=g-import-not-at-top
  from ltp_tfmot.experiment import runner as runner_lib  # pylint: disable=g-import-not-at-top
  if args:
    raise UsageError(f'run takes no positional arguments, got {args}')
  try:
    config = config_from_flags()
  except (TypeError, ValueError) as error:
    raise UsageError(str(error)) from None
  if not FLAGS.verbose:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.get_logger().setLevel('ERROR')
  experiment = runner_lib.LotteryExperiment(
      config, None if FLAGS.run_dir else FLAGS.out, run_dir=FLAGS.run_dir, verbose=FLAGS.verbose,
      tensorboard=FLAGS.tensorboard, log=_print, strategy=None if FLAGS.strategy == 'default' else FLAGS.strategy,
      hooks=hooks)
  try:
    results = experiment.run()
  except KeyboardInterrupt:
    job = experiment.job_in_progress
    where = 'before training started' if job is None else (
        f'at replicate {job[0]} level {job[1]}' + ('' if job[2] == runner_lib.MAIN else f' ({job[2]})'))
    raise _Interrupted(f'interrupted {where}; run the same command to resume') from None
  _print('')
  _print(report_lib.markdown_table(report_lib.summarize(results)))
  _print(f'Run directory: {experiment.run_dir}')
  _print(f'Report: ltp-tfmot report {experiment.run_dir}')
  return 0


def _report_command(args):
  from ltp_tfmot.experiment import report as report_lib  # pylint: disable=g-import-not-at-top
  from ltp_tfmot.experiment import storage  # pylint: disable=g-import-not-at-top
  if not args:
    raise UsageError('report needs at least one run directory (or a folder of them)')
  md_path, png_path = report_lib.write_report(args, out_dir=FLAGS.report_dir)
  _print(files.read_bytes(md_path).decode('utf-8'))
  _print(f'Wrote {md_path} and {png_path} ({len(storage.find_runs(args))} run(s)).')
  return 0


def _export_command(args):
  import ltp_tfmot  # pylint: disable=g-import-not-at-top
  from ltp_tfmot.experiment import runner as runner_lib  # pylint: disable=g-import-not-at-top
  if len(args) != 1:
    raise UsageError(f'export takes one run directory, got {args or "none"}')
  if not FLAGS.out.endswith('.tflite'):
    raise UsageError(f'--out must name the .tflite file to write, got {FLAGS.out!r}')
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.get_logger().setLevel('ERROR')
  model, split = runner_lib.load_trained_model(args[0], level=FLAGS.level, replicate=FLAGS.replicate)
  quantization = None if FLAGS.quantization == 'none' else FLAGS.quantization
  report = ltp_tfmot.export_tflite(
      model, FLAGS.out, quantization=quantization,
      representative_data=split.x_train[:200] if quantization == 'int8' else None, sample_inputs=split.x_test[:8])
  _print(report.to_markdown())
  _print(f'Wrote {FLAGS.out}.')
  return 0


def _command_failures():
  """The errors a command reports in one line (exit status 1) instead of a traceback."""
  from ltp_tfmot.experiment import runner as runner_lib  # pylint: disable=g-import-not-at-top
  from ltp_tfmot.experiment import storage  # pylint: disable=g-import-not-at-top
  return (ValueError, storage.StorageError, runner_lib.WorkerLostError)


def usage():
  return __doc__ + '\nFlags:\n' + FLAGS.get_help()


def main(argv=None, hooks=None):
  """Entry point of the `ltp-tfmot` console script; returns the exit status.

  Args:
    argv: The command line, program name first (default: `sys.argv`).
    hooks: An optional `ltp_tfmot.experiment.RunHooks` that `run` passes to
      the runner (the fault tests stop runs at chosen points with it).

  Returns:
    0 on success, 1 when the command failed (e.g. a run directory holding
    other settings, a full disk, a worker of a multi-worker run lost), 2 for
    a usage error, 130 when interrupted (Ctrl-C): one line says where, and
    running the same command again resumes.
  """
  argv = list(sys.argv if argv is None else argv)
  FLAGS.unparse_flags()  # every call starts from the defaults (main may run more than once in a process)
  try:
    rest = FLAGS(argv)
  except flags.Error as error:
    print(f'ltp-tfmot: {error}\nTry: ltp-tfmot --help', file=sys.stderr)
    return 2
  args = rest[1:]
  if FLAGS.help:
    print(usage())
    return 0
  if not args or args[0] not in COMMANDS:
    got = repr(args[0]) if args else 'none'
    print(f'ltp-tfmot: the first argument must be a command, one of {list(COMMANDS)}; got {got}.\n'
          'Try: ltp-tfmot --help', file=sys.stderr)
    return 2
  command, args = args[0], args[1:]
  try:
    if command == 'run':
      return _run_command(args, hooks)
    return {'report': _report_command, 'export': _export_command}[command](args)
  except (_Interrupted, KeyboardInterrupt) as error:
    print(f'ltp-tfmot {command}: {error or "interrupted"}', file=sys.stderr)
    return 130
  except UsageError as error:
    print(f'ltp-tfmot {command}: {error}', file=sys.stderr)
    return 2
  except _command_failures() as error:
    print(f'ltp-tfmot {command}: error: {error}', file=sys.stderr)
    return 1


if __name__ == '__main__':
  sys.exit(main())
