"""The ltp-tfmot command line: run lottery-ticket experiments and report on them.

Usage:

  ltp-tfmot run [--flags]        run or resume an experiment (every runner setting is a flag)
  ltp-tfmot report DIR [DIR...]  Markdown table + accuracy plot of runs (DIR: a run or a folder of runs)
  ltp-tfmot export RUN_DIR --level=N --out=model.tflite   a level's ticket as a sparse TFLite file
  ltp-tfmot instability RUN_DIR --level=N --rewind_steps=0,100,500   instability analysis of a level
  ltp-tfmot --help               this text and every flag

Examples:

  ltp-tfmot run --model=lenet_300_100 --dataset=mnist --levels=5 --rate=0.2 \\
      --criterion=large_final --scope=layer --rewind_step=0 --controls=reinit,random_prune --out=runs
  ltp-tfmot report runs/lottery_1a2b3c4d5e6f runs/lottery_0f9e8d7c6b5a
  ltp-tfmot export runs/lottery_1a2b3c4d5e6f --level=5 --quantization=float16 --out=lenet_level5.tflite
  ltp-tfmot instability runs/lottery_1a2b3c4d5e6f --level=0 --rewind_steps=0,100,500,2000
  python -m ltp_tfmot.cli run --dataset_source=embedded --epochs=10 --levels=3
  ltp-tfmot run --model=resnet20 --data_dir=data/cifar-10-batches-py --levels=10 --out=runs
  ltp-tfmot run --replicates=4 --controls=reinit --workers=2 --out=runs      # two jobs at a time, local Ray
  ltp-tfmot run --model=vgg16 --data_dir=DIR --training_steps=30000it --lr_decay=cosine --warmup_steps=1ep
  TF_CONFIG='{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", "index": 0}}' \
      ltp-tfmot run --strategy=multi_worker --out=/shared/runs   # the same on host2 with "index": 1

Every setting of the run's config is a flag (its help is the setting's
documentation). Each model comes with its paper's set-up (`--model=conv4`:
Frankle & Carbin's Conv-4, Adam 3e-4, conv layers at 10%; `--model=resnet20`:
open_lth's SGD 0.1, momentum 0.9, weight decay 1e-4, 160 epochs with drops at
80 and 120, augmentation, global pruning, rewind to iteration 2000), and the
flags you give override it; the defaults shown are the default model's,
Frankle & Carbin's LeNet-300-100 set-up: Adam 1.2e-3, batch 60, 50 epochs,
20% pruned per level and the output layer at half that rate. Running the
same command again skips every finished level and continues from the first
missing one; a run directory holding other settings is refused, not touched.
--strategy=mirrored trains on all local GPUs (else all logical CPUs);
--strategy=multi_worker on the workers TF_CONFIG lists, where only the chief
(worker 0) writes the run directory (on a file system every worker can read);
if a worker dies the others stop, and running the command again on every
worker resumes the run. --workers=N trains N independent jobs at a time (levels of
different replicates, controls) in Ray worker processes on this machine;
--ray_address=ADDRESS runs them on a Ray cluster. Ctrl-C stops a run with one line saying where (exit
status 130); the same command resumes it. --out and --run_dir may be on any
file system TensorFlow knows (gs://bucket/runs).
"""

import dataclasses
import inspect
import os
import sys
import textwrap
import typing

from absl import flags
from absl import logging

from ltp_tfmot import errors
from ltp_tfmot import files
from ltp_tfmot import startup
from ltp_tfmot.experiment import branches as branches_lib
from ltp_tfmot.experiment import config as config_lib
from ltp_tfmot.experiment import models as models_lib

FLAGS = flags.FlagValues()
COMMANDS = ('run', 'report', 'export', 'instability')
# Where `run` makes its run directory without --out.
DEFAULT_OUT = 'runs'

# The config groups the `run` flags are made from: (RunConfig field or '' for the top level, dataclass).
_GROUPS = (('', config_lib.RunConfig), ('data', config_lib.DataConfig), ('training', config_lib.TrainingConfig),
           ('pruning', config_lib.PruningConfig))
# Flags not named as their setting (each other setting's flag is the field's name).
_FLAG_NAMES = {'data.name': 'dataset', 'data.source': 'dataset_source'}
# Settings whose flag takes only these values (the others are checked by the config, with its message).
_CHOICES = {
    'model': models_lib.model_names(),
    'data.source': list(config_lib.MNIST_SOURCES),
    'training.optimizer': list(config_lib.OPTIMIZERS),
    'training.lr_decay': list(config_lib.LR_DECAYS),
    'training.precision': list(config_lib.PRECISIONS),
    'pruning.retrain': list(config_lib.RETRAIN_MODES),
    'pruning.granularity': list(config_lib.GRANULARITIES),
    'pruning.unit_pooling': list(config_lib.UNIT_POOLINGS),
}
_HELP_EXTRA = {
    'data.name': " Built in: mnist, cifar10 (from --data_dir, else Keras' cache), tfds.<name> (TensorFlow "
                 'Datasets, prepared in --data_dir).',
    'pruning.layer_rates': ' On the command line: name:rate pairs, comma-separated; empty (--layer_rates=) for none.',
    'controls': ' Registered: ' + '; '.join(f'{name} ({branches_lib.get_branch(name).description})'
                                            for name in branches_lib.branch_names()) + '.',
}


class UsageError(ValueError):
  pass


def _attribute_docs(cls):
  """{field: its description} from the 'Attributes:' section of a dataclass' docstring."""
  docs, name, inside = {}, None, False
  for line in inspect.getdoc(cls).splitlines():
    if line.strip() == 'Attributes:':
      inside = True
    elif inside and line.startswith('    ') and name:
      docs[name] += ' ' + line.strip()
    elif inside and line.startswith('  ') and ':' in line:
      name, text = line.strip().split(':', 1)
      docs[name] = text.strip()
    elif inside and line.strip():
      break
  return docs


def _setting_fields():
  """(setting key 'group.field', flag name, field, field type, help) of every config field the run flags set."""
  result = []
  for group, cls in _GROUPS:
    docs = _attribute_docs(cls)
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
      if dataclasses.is_dataclass(hints[field.name]):
        continue  # a group of its own
      key = f'{group}.{field.name}' if group else field.name
      help_text = docs.get(field.name, '') + _HELP_EXTRA.get(key, '')
      result.append((key, _FLAG_NAMES.get(key, field.name), field, hints[field.name], help_text))
  return result


def _field_default(field):
  if field.default is not dataclasses.MISSING:
    return field.default
  return field.default_factory()


def _is(hint, kind):
  """Whether a type hint is `kind` or Optional[kind] (Union[kind, None])."""
  return hint is kind or (typing.get_origin(hint) is typing.Union and kind in typing.get_args(hint))


def _container(hint):
  """tuple or dict for a (maybe Optional) Tuple[...] or Dict[...] hint, else None."""
  for arg in (hint,) + typing.get_args(hint):
    origin = typing.get_origin(arg)
    if origin in (tuple, dict):
      return origin
  return None


def _define_setting_flag(key, name, field, hint, help_text):
  fv = dict(flag_values=FLAGS)
  default = _field_default(field)
  if key in _CHOICES:
    flags.DEFINE_enum(name, default, _CHOICES[key], help_text, **fv)
  elif _container(hint) is dict:
    flags.DEFINE_list(name, None if default is None else [f'{k}:{v}' for k, v in default.items()], help_text, **fv)
  elif _container(hint) is tuple:
    flags.DEFINE_list(name, None if default is None else [str(v) for v in default], help_text, **fv)
  elif _is(hint, bool):
    flags.DEFINE_bool(name, default, help_text, **fv)
  elif _is(hint, str):  # names, paths and lengths ('160ep', '30000it', or a number of iterations)
    flags.DEFINE_string(name, None if default is None else str(default), help_text, **fv)
  elif _is(hint, int):
    flags.DEFINE_integer(name, default, help_text, **fv)
  elif _is(hint, float):
    flags.DEFINE_float(name, default, help_text, **fv)
  else:
    raise TypeError(f'no command-line flag kind for setting {key} of type {hint}')


def _define_flags():
  fv = dict(flag_values=FLAGS)
  flags.DEFINE_bool('help', False, 'Show this help (the commands and every flag) and exit.', short_name='h', **fv)
  flags.DEFINE_bool('helpfull', False, 'The same as --help.', **fv)
  flags.DEFINE_bool('helpshort', False, 'Show the commands and the flags that are no run setting, and exit.', **fv)
  for setting in _setting_fields():
    _define_setting_flag(*setting)
  # What to run and where.
  flags.DEFINE_string('out', None, f'run: folder the run directory (named by the settings\' hash) is made in '
                      f'(default: {DEFAULT_OUT}); export: the .tflite file to write (needed).', **fv)
  flags.DEFINE_string('run_dir', None, 'The run directory itself, instead of --out.', **fv)
  flags.DEFINE_bool('verbose', False, 'Show Keras\' per-epoch output and TensorFlow\'s start-up lines.', **fv)
  flags.DEFINE_bool('tensorboard', True, 'Write TensorBoard summaries under <run_dir>/tensorboard.', **fv)
  flags.DEFINE_enum('strategy', 'default', ['default', 'mirrored', 'multi_worker'],
                    'run: tf.distribute strategy: default (one device), mirrored (all local GPUs, else all logical '
                    'CPUs) or multi_worker (MultiWorkerMirroredStrategy over the cluster in TF_CONFIG; only the chief '
                    'writes the run directory). instability: default or mirrored.', **fv)
  flags.DEFINE_integer('workers', None, 'run: how many independent jobs (levels of other replicates, controls) train '
                       'at a time, each in a Ray worker process with its share of the cores; default 1 (serial, in '
                       'this process), or one per GPU (else CPU) of the cluster with --ray_address.', lower_bound=1,
                       **fv)
  flags.DEFINE_integer('threads', None, 'run: TensorFlow threads per training (intra- and inter-op pools); default: '
                       'TensorFlow\'s (all cores) in a serial run, cores / workers for each of --workers. The count '
                       'decides how CPU kernels split sums: runs with the same --threads compute the same floats '
                       '(--threads=1 serially equals --workers=2 on 2 cores bit for bit).', lower_bound=1, **fv)
  flags.DEFINE_bool('accept_training_path_change', False, 'run: resume a run whose finished levels trained on '
                    'another numeric path (XLA or not, --threads, TensorFlow version, CPU), which changes the floats; '
                    'the levels trained now record the change and the report shows it. Without it such a resume is '
                    'refused.', **fv)
  flags.DEFINE_string('ray_address', None, "run: a Ray cluster's address (e.g. ray://head:10001) to run the jobs "
                      'on; the run directory must then be on a file system every node reaches.', **fv)
  # Export.
  flags.DEFINE_integer('level', None, 'export: the level to export (default: the last finished one); '
                       'instability: the level to analyse (default: 0, the dense network).', **fv)
  flags.DEFINE_integer('replicate', 0, 'export, instability: the replicate.', **fv)
  flags.DEFINE_enum('quantization', 'none', ['none', 'float16', 'dynamic', 'int8'],
                    'export: TFLite quantization (int8 calibrates on 200 training examples).', **fv)
  flags.DEFINE_bool('shrink', False, 'export: rebuild a --granularity=unit ticket as the smaller dense model without '
                    'its removed units (ltp_tfmot.shrink) and export that: it runs faster on every runtime.', **fv)
  # Instability.
  flags.DEFINE_list('rewind_steps', None, 'instability: the iterations k the two copies fork at, comma-separated '
                    '(e.g. 0,100,500).', **fv)
  flags.DEFINE_integer('points', 31, 'instability: points evaluated along the path between the copies (ends '
                       'included).', **fv)
  flags.DEFINE_float('threshold', 0.02, 'instability: the instability below which a rewind step counts as stable '
                     '(0.02: 2%, as in Frankle et al. 2020).', **fv)
  flags.DEFINE_bool('same_data_order', False, 'instability: train both copies on the run\'s data order (a check: '
                    'the instability is then 0).', **fv)
  # Report.
  flags.DEFINE_string('report_dir', None, 'report: where report.md and accuracy.png go (default: the run '
                      'directory for one run, else the runs\' common folder).', **fv)


_define_flags()


def setting_flags():
  """{setting key ('training.learning_rate', 'model', ...): its flag name} of every config field."""
  return {key: name for key, name, _, _, _ in _setting_fields()}


def _layer_rates(entries):
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
  try:
    return tuple(int(v) for v in entries)
  except ValueError:
    raise UsageError(f'--control_levels must be comma-separated integers, got {",".join(entries)!r}') from None


def _setting_value(key, hint, value):
  """The config value of a parsed flag."""
  if value is None:
    return None
  if key == 'pruning.layer_rates':
    return _layer_rates(value)
  if key == 'control_levels':
    return _control_levels(value)
  if _container(hint) is tuple:
    return tuple(value)
  if _is(hint, int) and _is(hint, str):  # a length: a bare number is iterations
    return int(value) if value.strip().isdigit() else value
  return value


def config_from_flags(fv=FLAGS):
  """The `RunConfig` the parsed flags describe: the model's preset, overridden by every flag given.

  Raises:
    UsageError: for a flag value that is not a setting.
    ValueError: for a bad setting.
  """
  given = {'': {}, 'data': {}, 'training': {}, 'pruning': {}}
  for key, name, _, hint, _ in _setting_fields():
    if fv[name].present and key != 'model':
      group, _, field = key.rpartition('.')
      given[group][field] = _setting_value(key, hint, fv[name].value)
  return config_lib.RunConfig.for_model(fv.model, data=given['data'], training=given['training'],
                                        pruning=given['pruning'], **given[''])


def _print(line):
  print(line, flush=True)


class _Interrupted(Exception):
  """Ctrl-C (KeyboardInterrupt) during a command; the message says where it stopped."""


def _quiet_tensorflow():
  """Keeps TensorFlow's start-up lines out of the output, unless --verbose or TF_CPP_MIN_LOG_LEVEL is set."""
  if not FLAGS.verbose:
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def _import_tensorflow():
  """Imports TensorFlow: without its CUDA start-up lines (`ltp_tfmot.startup`) unless they are asked for."""
  if not startup.wants_start_up_lines(FLAGS.verbose):
    startup.import_tensorflow()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not FLAGS.verbose:
    tf.get_logger().setLevel('ERROR')
  return tf


def _run_command(args, hooks=None):
  if args:
    raise UsageError(f'run takes no positional arguments, got {args}')
  _quiet_tensorflow()  # before anything can load TensorFlow
  try:
    config = config_from_flags()
  except (TypeError, ValueError) as error:
    raise UsageError(str(error)) from None
  strategy = None if FLAGS.strategy == 'default' else FLAGS.strategy
  pool = None
  try:
    if (FLAGS.workers or 1) > 1 or FLAGS.ray_address is not None:
      from ltp_tfmot.experiment import parallel  # pylint: disable=g-import-not-at-top
      parallel.check_no_strategy(strategy)
      # Before this process imports TensorFlow: the workers import theirs meanwhile.
      pool = parallel.WorkerPool(FLAGS.workers, FLAGS.ray_address, threads=FLAGS.threads)
    return _run_experiment(config, strategy, pool, hooks)
  except KeyboardInterrupt:
    raise _Interrupted('interrupted before training started; run the same command to resume') from None
  finally:
    if pool is not None:
      pool.close()


def _run_experiment(config, strategy, pool, hooks):
  _import_tensorflow()
  from ltp_tfmot.experiment import report as report_lib  # pylint: disable=g-import-not-at-top
  from ltp_tfmot.experiment import runner as runner_lib  # pylint: disable=g-import-not-at-top
  if pool is None and FLAGS.threads is not None:
    from ltp_tfmot.experiment import parallel  # pylint: disable=g-import-not-at-top
    if not parallel.limit_threads(FLAGS.threads):
      _print(f'WARNING: --threads={FLAGS.threads} not applied: TensorFlow already runs in this process')
  experiment = runner_lib.LotteryExperiment(
      config, None if FLAGS.run_dir else FLAGS.out or DEFAULT_OUT, run_dir=FLAGS.run_dir, verbose=FLAGS.verbose,
      tensorboard=FLAGS.tensorboard, log=_print, strategy=strategy, hooks=hooks, pool=pool,
      accept_training_path_change=FLAGS.accept_training_path_change)
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
  _quiet_tensorflow()
  if len(args) != 1:
    raise UsageError(f'export takes one run directory, got {args or "none"}')
  if FLAGS.out is None:
    raise UsageError('export needs --out, the .tflite file to write (e.g. --out=model.tflite)')
  if not FLAGS.out.endswith('.tflite'):
    raise UsageError(f'--out must name the .tflite file to write, got {FLAGS.out!r}')
  files.check_directory_of(FLAGS.out)  # before minutes of loading and converting
  before = _file_version(FLAGS.out)
  try:
    report = _export(args[0])
  except KeyboardInterrupt:
    if _file_version(FLAGS.out) != before:
      raise _Interrupted(f'interrupted after {FLAGS.out} was written (it is complete and checked)') from None
    kept = ' (the file there is as it was)' if before is not None else ''
    raise _Interrupted(f'interrupted before {FLAGS.out} was written: nothing was written{kept}') from None
  _print(report.to_markdown())
  _print(f'Wrote {FLAGS.out}.')
  return 0


def _file_version(path):
  """What changes when a file is written or replaced (its inode, time and size), or None if there is none."""
  if not files.is_local(path):
    return files.exists(path) or None
  try:
    stat = os.stat(path)
  except FileNotFoundError:
    return None
  return stat.st_ino, stat.st_mtime_ns, stat.st_size


def _export(run_dir):
  """Exports the --level of `run_dir` as the flags say; returns the `ExportReport`."""
  _import_tensorflow()
  import ltp_tfmot  # pylint: disable=g-import-not-at-top
  from ltp_tfmot.experiment import level_state  # pylint: disable=g-import-not-at-top
  model, split = level_state.load_trained_model(run_dir, level=FLAGS.level, replicate=FLAGS.replicate)
  if FLAGS.shrink:
    if any(w.granularity != 'unit' for w in ltp_tfmot.lottery_wrappers(model)):
      raise UsageError(f'--shrink needs a run pruned with --granularity=unit, which {run_dir} is not: its tickets '
                       'keep every unit. Export without --shrink')
    model = ltp_tfmot.shrink(model)
  quantization = None if FLAGS.quantization == 'none' else FLAGS.quantization
  return ltp_tfmot.export_tflite(
      model, FLAGS.out, quantization=quantization,
      representative_data=split.x_train[:200] if quantization == 'int8' else None, sample_inputs=split.x_test[:8])


def _instability_command(args):
  _quiet_tensorflow()
  _import_tensorflow()
  # pylint: disable=g-import-not-at-top
  from ltp_tfmot.experiment import instability as instability_lib
  from ltp_tfmot.experiment import instability_report
  if len(args) != 1:
    raise UsageError(f'instability takes one run directory, got {args or "none"}')
  if not FLAGS.rewind_steps:
    raise UsageError('instability needs --rewind_steps, the iterations to fork the copies at (e.g. 0,100,500)')
  try:
    rewind_steps = [int(k) for k in FLAGS.rewind_steps]
  except ValueError:
    raise UsageError(f'--rewind_steps must be comma-separated integers, got {",".join(FLAGS.rewind_steps)!r}') from None
  threshold = instability_lib.check_threshold(FLAGS.threshold)
  level = 0 if FLAGS.level is None else FLAGS.level
  try:
    results = instability_lib.instability_analysis(
        args[0], level, rewind_steps, replicate=FLAGS.replicate, points=FLAGS.points,
        same_data_order=FLAGS.same_data_order, log=_print,
        strategy=None if FLAGS.strategy == 'default' else FLAGS.strategy)
  except KeyboardInterrupt:
    raise _Interrupted('interrupted; run the same command to resume (finished rewind steps are kept)') from None
  md_path, png_path, text = instability_report.write_instability_report(
      results, instability_lib.instability_dir(args[0], level, FLAGS.replicate), threshold)
  _print('')
  _print(text)
  _print(f'Wrote {md_path} and {png_path}.')
  return 0


def _command_failures():
  """The errors a command reports in one line (exit status 1) instead of a traceback."""
  return ValueError, errors.LtpError


def usage():
  return __doc__ + '\nFlags:\n' + FLAGS.get_help()


def short_usage():
  """The commands and the flags that are no run setting (--helpshort)."""
  settings = set(setting_flags().values())
  lines = [textwrap.fill(f'--{name}: {FLAGS[name].help}', 80, initial_indent='  ', subsequent_indent='    ')
           for name in sorted(FLAGS) if name not in settings and len(name) > 1]
  return __doc__ + '\nFlags (every run setting too: ltp-tfmot --helpfull):\n' + '\n'.join(lines)


def main(argv=None, hooks=None):
  """Entry point of the `ltp-tfmot` console script; returns the exit status.

  Args:
    argv: The command line, program name first (default: `sys.argv`).
    hooks: An optional `ltp_tfmot.experiment.RunHooks` that `run` passes to
      the runner (the fault tests stop runs at chosen points with it).

  Returns:
    0 on success, 1 when the command failed (e.g. a run directory holding
    other settings, a full disk, a worker of a multi-worker run lost, a
    training that diverged or jobs that failed), 2 for
    a usage error, 130 when interrupted (Ctrl-C): one line says where, and
    running the same command again resumes.
  """
  argv = list(sys.argv if argv is None else argv)
  # The library's progress lines go through absl logging; a command prints its own, so they show only with
  # --verbose (this matters where absl logs at INFO, e.g. under absltest).
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.WARNING)
  try:
    return _main(argv, hooks)
  finally:
    logging.set_verbosity(verbosity)


def _main(argv, hooks):
  FLAGS.unparse_flags()  # every call starts from the defaults (main may run more than once in a process)
  try:
    rest = FLAGS(argv)
  except flags.Error as error:
    print(f'ltp-tfmot: {error}\nTry: ltp-tfmot --help', file=sys.stderr)
    return 2
  args = rest[1:]
  if FLAGS.verbose:
    logging.set_verbosity(logging.INFO)
  if FLAGS.help or FLAGS.helpfull:
    print(usage())
    return 0
  if FLAGS.helpshort:
    print(short_usage())
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
    return {'report': _report_command, 'export': _export_command, 'instability': _instability_command}[command](args)
  except (_Interrupted, KeyboardInterrupt) as error:
    print(f'ltp-tfmot {command}: {str(error) or "interrupted"}', file=sys.stderr)
    return 130
  except UsageError as error:
    print(f'ltp-tfmot {command}: {error}', file=sys.stderr)
    return 2
  except _command_failures() as error:
    print(f'ltp-tfmot {command}: error: {error}', file=sys.stderr)
    return 1


if __name__ == '__main__':
  sys.exit(main())
