"""What every `ltp-tfmot` command shares: the flags every command takes, quiet TensorFlow, one-line output.

Each command module (`run`, `report`, `export`, `instability`) owns a
`flags.FlagValues` holding only its flags. Every flag is defined with a help
section as its `module_name`, so that `ltp-tfmot --help` lists the flags every
command takes once (`EVERY_COMMAND`) and then each command's own
(`section(command)`). A command stopped by Ctrl-C raises a `KeyboardInterrupt`
whose message says where it stopped, which `main` prints in one line.
"""

import os

from absl import flags

from ltp_tfmot import startup

# The help section of the flags every command takes.
EVERY_COMMAND = 'Flags of every command'
# The --strategy values of the commands that train (`instability` refuses multi_worker with its own message).
STRATEGIES = ('default', 'mirrored', 'multi_worker')


def section(command):
  """The help section of the flags only `command` takes.

  Args:
    command: A command name ('run', 'export', ...).

  Returns:
    The section's title, which the command's flags are defined under (`module_name`).
  """
  return f'Flags of ltp-tfmot {command}'


def define_common_flags(flag_values):
  """Defines the flags every command takes (--help, -h, --helpfull, --helpshort, --verbose).

  Args:
    flag_values: The command's `flags.FlagValues`.
  """
  where = dict(flag_values=flag_values, module_name=EVERY_COMMAND)
  flags.DEFINE_bool('help', False, 'Show this help (the commands and every flag) and exit.', short_name='h', **where)
  flags.DEFINE_bool('helpfull', False, 'The same as --help.', **where)
  flags.DEFINE_bool('helpshort', False, 'Show the commands and the flags that are no run setting, and exit.', **where)
  flags.DEFINE_bool('verbose', False, 'Show Keras\' per-epoch output and TensorFlow\'s start-up lines.', **where)


def say(line):
  """Prints a line of a command's output at once (a run's progress shows while it trains)."""
  print(line, flush=True)


def quiet_tensorflow(verbose):
  """Keeps TensorFlow's start-up lines out of the output, unless `verbose` or TF_CPP_MIN_LOG_LEVEL is set.

  Args:
    verbose: The command's --verbose.
  """
  if not verbose:
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def import_tensorflow(verbose):
  """Imports TensorFlow: without its CUDA start-up lines (`ltp_tfmot.startup`) unless they are asked for.

  Args:
    verbose: The command's --verbose.

  Returns:
    The `tensorflow` module.
  """
  if not startup.wants_start_up_lines(verbose):
    startup.import_tensorflow()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not verbose:
    tf.get_logger().setLevel('ERROR')
  return tf
