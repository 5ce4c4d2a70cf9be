"""`ltp-tfmot instability`: instability analysis of a run's level (Frankle et al. 2020).

Two copies of the level's network fork at each rewind step, train on
different data orders, and the error along the path between them says
whether the level is stable from that step on.
"""

from absl import flags

from ltp_tfmot import errors
from ltp_tfmot.cli import command

FLAGS = flags.FlagValues()


def _define_flags():
  where = dict(flag_values=FLAGS, module_name=command.section('instability'))
  command.define_common_flags(FLAGS)
  flags.DEFINE_list('rewind_steps', None, 'The iterations k the two copies fork at, comma-separated (e.g. 0,100,500).',
                    **where)
  flags.DEFINE_integer('level', None, 'The level to analyse (default: 0, the dense network).', **where)
  flags.DEFINE_integer('replicate', 0, 'The replicate.', **where)
  flags.DEFINE_integer('points', 31, 'Points evaluated along the path between the copies (ends included).', **where)
  flags.DEFINE_float('threshold', 0.02, 'The instability below which a rewind step counts as stable (0.02: 2%, as in '
                     'Frankle et al. 2020).', **where)
  flags.DEFINE_bool('same_data_order', False, 'Train both copies on the run\'s data order (a check: the instability '
                    'is then 0).', **where)
  flags.DEFINE_enum('strategy', 'default', list(command.STRATEGIES),
                    'tf.distribute strategy: default (one device) or mirrored (all local GPUs, else all logical CPUs).',
                    **where)


_define_flags()


def execute(args):
  """Analyses the --level of the run directory in `args` at every --rewind_steps and prints the table.

  Args:
    args: The positional arguments after `instability`: one run directory.

  Returns:
    0.

  Raises:
    UsageError: for missing or bad arguments.
    KeyboardInterrupt: on Ctrl-C, its message saying how to resume (finished rewind steps are kept).
  """
  command.quiet_tensorflow(FLAGS.verbose)
  command.import_tensorflow(FLAGS.verbose)
  # pylint: disable=g-import-not-at-top
  from ltp_tfmot.experiment import instability as instability_lib
  from ltp_tfmot.experiment import instability_report
  if len(args) != 1:
    raise errors.UsageError(f'instability takes one run directory, got {args or "none"}')
  if not FLAGS.rewind_steps:
    raise errors.UsageError('instability needs --rewind_steps, the iterations to fork the copies at (e.g. 0,100,500)')
  try:
    rewind_steps = [int(k) for k in FLAGS.rewind_steps]
  except ValueError:
    raise errors.UsageError(
        f'--rewind_steps must be comma-separated integers, got {",".join(FLAGS.rewind_steps)!r}') from None
  threshold = instability_lib.check_threshold(FLAGS.threshold)
  level = 0 if FLAGS.level is None else FLAGS.level
  try:
    results = instability_lib.instability_analysis(
        args[0], level, rewind_steps, replicate=FLAGS.replicate, points=FLAGS.points,
        same_data_order=FLAGS.same_data_order, log=command.say,
        strategy=None if FLAGS.strategy == 'default' else FLAGS.strategy)
  except KeyboardInterrupt:
    raise KeyboardInterrupt('interrupted; run the same command to resume (finished rewind steps are kept)') from None
  md_path, png_path, text = instability_report.write_instability_report(
      results, instability_lib.instability_dir(args[0], level, FLAGS.replicate), threshold)
  command.say('')
  command.say(text)
  command.say(f'Wrote {md_path} and {png_path}.')
  return 0
