"""`ltp-tfmot run`: run or resume a lottery experiment, every setting of its config a flag.

The setting flags are made from the config dataclasses (`RunConfig` and its
`DataConfig`, `TrainingConfig` and `PruningConfig`): one flag per field, of
the field's type, with the field's default and its documentation (the
'Attributes:' section of the class docstring, the one place a setting is
described) as help. The few tables here hold only what the command line adds:
other flag names, the values a flag takes, and help about the command line's
syntax. `config_from_flags` turns the parsed flags back into a `RunConfig`:
the model's preset, overridden by every flag given.
"""

import dataclasses
import inspect
import typing

from absl import flags

from ltp_tfmot import errors
from ltp_tfmot.cli import command
from ltp_tfmot.experiment import branches as branches_lib
from ltp_tfmot.experiment import config as config_lib
from ltp_tfmot.zoo import registry as zoo_registry

FLAGS = flags.FlagValues()
# Where `run` makes its run directory without --out.
DEFAULT_OUT = 'runs'

# The config groups the setting flags are made from: (RunConfig field or '' for the top level, dataclass).
_GROUPS = (('', config_lib.RunConfig), ('data', config_lib.DataConfig), ('training', config_lib.TrainingConfig),
           ('pruning', config_lib.PruningConfig))
# Flags not named as their setting (each other setting's flag is the field's name).
_FLAG_NAMES = {'data.name': 'dataset', 'data.source': 'dataset_source', 'controls': 'branches'}
# {a setting flag's older name, which still works: the flag}.
ALIASES = {'controls': _FLAG_NAMES['controls']}
# Settings whose flag takes only these values (the others are checked by the config, with its message).
_CHOICES = {
    'model': zoo_registry.model_names(),
    'data.source': list(config_lib.MNIST_SOURCES),
    'training.optimizer': list(config_lib.OPTIMIZERS),
    'training.lr_decay': list(config_lib.LR_DECAYS),
    'training.precision': list(config_lib.PRECISIONS),
    'pruning.retrain': list(config_lib.RETRAIN_MODES),
    'pruning.granularity': list(config_lib.GRANULARITIES),
    'pruning.unit_pooling': list(config_lib.UNIT_POOLINGS),
}
# What a setting's flag help says beyond the setting's documentation.
_HELP_EXTRA = {
    'data.name': " Built in: mnist, cifar10 (from --data_dir, else Keras' cache), tfds.<name> (TensorFlow "
                 'Datasets, prepared in --data_dir).',
    'pruning.layer_rates': ' On the command line: name:rate pairs, comma-separated; empty (--layer_rates=) for none.',
    'controls': ' Registered: ' + '; '.join(f'{name} ({branches_lib.get_branch(name).description})'
                                            for name in branches_lib.branch_names()) + '. Also --controls.',
    'control_levels': ' On the command line: the levels --branches run at, comma-separated.',
}


class _SettingFlag(typing.NamedTuple):
  """The flag of one config field."""
  key: str  # the setting: 'group.field', or the field for RunConfig's own ('model', 'seed', ...)
  name: str  # the flag's name
  field: dataclasses.Field
  hint: typing.Any  # the field's type
  help: str


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


def _setting_flag_specs():
  """The `_SettingFlag` of every config field the run flags set, in the groups' and fields' order."""
  result = []
  for group, cls in _GROUPS:
    docs = _attribute_docs(cls)
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
      if dataclasses.is_dataclass(hints[field.name]):
        continue  # a group of its own
      key = f'{group}.{field.name}' if group else field.name
      help_text = docs.get(field.name, '') + _HELP_EXTRA.get(key, '')
      result.append(_SettingFlag(key, _FLAG_NAMES.get(key, field.name), field, hints[field.name], help_text))
  return result


def setting_flags():
  """{setting key ('training.learning_rate', 'model', ...): its flag name} of every config field."""
  return {setting.key: setting.name for setting in _setting_flag_specs()}


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


def _define_setting_flag(setting, where):
  name, hint, help_text = setting.name, setting.hint, setting.help
  default = _field_default(setting.field)
  if setting.key in _CHOICES:
    flags.DEFINE_enum(name, default, _CHOICES[setting.key], help_text, **where)
  elif _container(hint) is dict:
    flags.DEFINE_list(name, None if default is None else [f'{k}:{v}' for k, v in default.items()], help_text, **where)
  elif _container(hint) is tuple:
    flags.DEFINE_list(name, None if default is None else [str(v) for v in default], help_text, **where)
  elif _is(hint, bool):
    flags.DEFINE_bool(name, default, help_text, **where)
  elif _is(hint, str):  # names, paths and lengths ('160ep', '30000it', or a number of iterations)
    flags.DEFINE_string(name, None if default is None else str(default), help_text, **where)
  elif _is(hint, int):
    flags.DEFINE_integer(name, default, help_text, **where)
  elif _is(hint, float):
    flags.DEFINE_float(name, default, help_text, **where)
  else:
    raise TypeError(f'no command-line flag kind for setting {setting.key} of type {hint}')


def _define_flags():
  where = dict(flag_values=FLAGS, module_name=command.section('run'))
  command.define_common_flags(FLAGS)
  for setting in _setting_flag_specs():
    _define_setting_flag(setting, where)
  for alias, name in ALIASES.items():
    flags.DEFINE_alias(alias, name, **where)
  flags.DEFINE_string('out', None, f'Folder the run directory (named by the settings\' hash) is made in (default: '
                      f'{DEFAULT_OUT}).', **where)
  flags.DEFINE_string('run_dir', None, 'The run directory itself, instead of --out.', **where)
  flags.DEFINE_bool('tensorboard', True, 'Write TensorBoard summaries under <run_dir>/tensorboard.', **where)
  flags.DEFINE_enum('strategy', 'default', list(command.STRATEGIES),
                    'tf.distribute strategy: default (one device), mirrored (all local GPUs, else all logical CPUs) '
                    'or multi_worker (MultiWorkerMirroredStrategy over the cluster in TF_CONFIG; only the chief writes '
                    'the run directory).', **where)
  flags.DEFINE_integer('workers', None, 'How many independent jobs (levels of other replicates, branches) train at a '
                       'time, each in a Ray worker process with its share of the cores; default 1 (serial, in this '
                       'process), or one per GPU (else CPU) of the cluster with --ray_address.', lower_bound=1,
                       **where)
  flags.DEFINE_integer('threads', None, 'TensorFlow threads per training (intra- and inter-op pools); default: '
                       'TensorFlow\'s (all cores) in a serial run, cores / workers for each of --workers. The count '
                       'decides how CPU kernels split sums: runs with the same --threads compute the same floats '
                       '(--threads=1 serially equals --workers=2 on 2 cores bit for bit).', lower_bound=1, **where)
  flags.DEFINE_bool('accept_training_path_change', False, 'Resume a run whose finished levels trained on another '
                    'numeric path (XLA or not, --threads, TensorFlow version, CPU), which changes the floats; the '
                    'levels trained now record the change and the report shows it. Without it such a resume is '
                    'refused.', **where)
  flags.DEFINE_string('ray_address', None, "A Ray cluster's address (e.g. ray://head:10001) to run the jobs on; the "
                      'run directory must then be on a file system every node reaches.', **where)


_define_flags()


def _layer_rates(entries):
  rates = {}
  for entry in entries:
    name, sep, value = entry.rpartition(':')
    try:
      if not sep or not name:
        raise ValueError
      rates[name] = float(value)
    except ValueError:
      raise errors.UsageError(f'--layer_rates entries must be name:rate, got {entry!r}') from None
  return rates


def _control_levels(entries):
  try:
    return tuple(int(v) for v in entries)
  except ValueError:
    raise errors.UsageError(f'--control_levels must be comma-separated integers, got {",".join(entries)!r}') from None


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

  Args:
    fv: The parsed run flags (`FLAGS`).

  Returns:
    The `RunConfig`.

  Raises:
    UsageError: for a flag value that is not a setting.
    ValueError: for a bad setting.
  """
  given = {'': {}, 'data': {}, 'training': {}, 'pruning': {}}
  for setting in _setting_flag_specs():
    if fv[setting.name].present and setting.key != 'model':
      group, _, field = setting.key.rpartition('.')
      given[group][field] = _setting_value(setting.key, setting.hint, fv[setting.name].value)
  return config_lib.RunConfig.for_model(fv.model, data=given['data'], training=given['training'],
                                        pruning=given['pruning'], **given[''])


def execute(args, hooks=None):
  """Runs (or resumes) the experiment the parsed `FLAGS` describe and prints its table.

  Args:
    args: The positional arguments after `run` (there must be none).
    hooks: An optional `ltp_tfmot.experiment.RunHooks` for the runner.

  Returns:
    0.

  Raises:
    UsageError: for positional arguments or flags that make no config.
    KeyboardInterrupt: on Ctrl-C, its message saying where the run stopped.
  """
  if args:
    raise errors.UsageError(f'run takes no positional arguments, got {args}')
  command.quiet_tensorflow(FLAGS.verbose)  # before anything can load TensorFlow
  try:
    config = config_from_flags()
  except (TypeError, ValueError) as error:
    raise errors.UsageError(str(error)) from None
  strategy = None if FLAGS.strategy == 'default' else FLAGS.strategy
  pool = None
  try:
    if (FLAGS.workers or 1) > 1 or FLAGS.ray_address is not None:
      from ltp_tfmot.experiment import parallel  # pylint: disable=g-import-not-at-top
      parallel.check_no_strategy(strategy)
      # Before this process imports TensorFlow: the workers import theirs meanwhile.
      pool = parallel.WorkerPool(FLAGS.workers, FLAGS.ray_address, threads=FLAGS.threads)
    return _run_experiment(config, strategy, pool, hooks)
  except KeyboardInterrupt as interrupt:
    if interrupt.args:  # _run_experiment's, which says where the run stopped
      raise
    raise KeyboardInterrupt('interrupted before training started; run the same command to resume') from None
  finally:
    if pool is not None:
      pool.close()


def _run_experiment(config, strategy, pool, hooks):
  command.import_tensorflow(FLAGS.verbose)
  from ltp_tfmot.experiment import report as report_lib  # pylint: disable=g-import-not-at-top
  from ltp_tfmot.experiment import runner as runner_lib  # pylint: disable=g-import-not-at-top
  if pool is None and FLAGS.threads is not None:
    from ltp_tfmot.experiment import parallel  # pylint: disable=g-import-not-at-top
    if not parallel.limit_threads(FLAGS.threads):
      command.say(f'WARNING: --threads={FLAGS.threads} not applied: TensorFlow already runs in this process')
  experiment = runner_lib.LotteryExperiment(
      config, None if FLAGS.run_dir else FLAGS.out or DEFAULT_OUT, run_dir=FLAGS.run_dir, verbose=FLAGS.verbose,
      tensorboard=FLAGS.tensorboard, log=command.say, strategy=strategy, hooks=hooks, pool=pool,
      accept_training_path_change=FLAGS.accept_training_path_change)
  try:
    results = experiment.run()
  except KeyboardInterrupt:
    job = experiment.job_in_progress
    where = 'before training started' if job is None else (
        f'at replicate {job[0]} level {job[1]}' + ('' if job[2] == runner_lib.MAIN else f' ({job[2]})'))
    raise KeyboardInterrupt(f'interrupted {where}; run the same command to resume') from None
  command.say('')
  command.say(report_lib.markdown_table(report_lib.summarize(results)))
  command.say(f'Run directory: {experiment.run_dir}')
  command.say(f'Report: ltp-tfmot report {experiment.run_dir}')
  return 0
