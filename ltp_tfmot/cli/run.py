"""`ltp-tfmot run`: run or resume a lottery experiment, every setting of its config a flag.

The setting flags are made from the config dataclasses (`RunConfig` and its
`DataConfig`, `TrainingConfig` and `PruningConfig`): one flag per field, of
the field's type, with the field's default, and the rest from the field's
metadata (`ltp_tfmot.settings.setting`): its help (the one place a setting is
described), and where the command line differs, the flag's name, an older
alias, the values it takes and help about its syntax. So a new config field
is a new flag, with its help, without a change here. `config_from_flags` turns
the parsed flags back into a `RunConfig`: the model's preset, overridden by
every flag given.
"""

import dataclasses
import typing

from absl import flags

from ltp_tfmot import errors
from ltp_tfmot.cli import command
from ltp_tfmot.experiment import config as config_lib

FLAGS = flags.FlagValues()
# Where `run` makes its run directory without --out.
DEFAULT_OUT = 'runs'


class _SettingFlag(typing.NamedTuple):
  """The flag of one config field."""
  key: str  # the setting: 'group.field', or the field for RunConfig's own ('model', 'seed', ...)
  name: str  # the flag's name
  field: dataclasses.Field
  hint: typing.Any  # the field's type
  help: str


def _setting_flag_specs():
  """The `_SettingFlag` of every config field the run flags set: RunConfig's own, then each group's, in order."""
  run_hints = typing.get_type_hints(config_lib.RunConfig)
  groups = [('', config_lib.RunConfig)] + [(field.name, run_hints[field.name])
                                           for field in dataclasses.fields(config_lib.RunConfig)
                                           if dataclasses.is_dataclass(run_hints[field.name])]
  result = []
  for group, cls in groups:
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
      if dataclasses.is_dataclass(hints[field.name]):
        continue  # a group of its own
      key = f'{group}.{field.name}' if group else field.name
      alias = field.metadata.get('alias')
      help_text = (field.metadata['help'] + field.metadata.get('flag_help', '') +
                   (f' Also --{alias}.' if alias else ''))
      result.append(_SettingFlag(key, field.metadata.get('flag', field.name), field, hints[field.name], help_text))
  return result


# {a setting flag's older name, which still works: the flag} (`--controls` is `--branches`).
ALIASES = {setting.field.metadata['alias']: setting.name for setting in _setting_flag_specs()
           if 'alias' in setting.field.metadata}


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
  """(tuple or dict, its type arguments) for a (maybe Optional) Tuple[...] or Dict[...] hint, else (None, ())."""
  for arg in (hint,) + typing.get_args(hint):
    origin = typing.get_origin(arg)
    if origin in (tuple, dict):
      return origin, typing.get_args(arg)
  return None, ()


def _define_setting_flag(setting, where):
  name, hint, help_text = setting.name, setting.hint, setting.help
  default = _field_default(setting.field)
  container = _container(hint)[0]
  if 'choices' in setting.field.metadata:
    flags.DEFINE_enum(name, default, list(setting.field.metadata['choices']), help_text, **where)
  elif container is dict:
    flags.DEFINE_list(name, None if default is None else [f'{k}:{v}' for k, v in default.items()], help_text, **where)
  elif container is tuple:
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


def _name_rate_pairs(flag, entries):
  """{name: rate} of a dict flag's name:rate entries."""
  rates = {}
  for entry in entries:
    name, sep, value = entry.rpartition(':')
    try:
      if not sep or not name:
        raise ValueError
      rates[name] = float(value)
    except ValueError:
      raise errors.UsageError(f'--{flag} entries must be name:rate, got {entry!r}') from None
  return rates


def _integers(flag, entries):
  try:
    return tuple(int(v) for v in entries)
  except ValueError:
    raise errors.UsageError(f'--{flag} must be comma-separated integers, got {",".join(entries)!r}') from None


def _setting_value(setting, value):
  """The config value of a parsed setting flag, from its field's type."""
  if value is None:
    return None
  container, arguments = _container(setting.hint)
  if container is dict:
    return _name_rate_pairs(setting.name, value)
  if container is tuple:
    return _integers(setting.name, value) if arguments[0] is int else tuple(value)
  if _is(setting.hint, int) and _is(setting.hint, str):  # a length: a bare number is iterations
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
      given[group][field] = _setting_value(setting, fv[setting.name].value)
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
