"""The ltp-tfmot command line: run lottery-ticket experiments and report on them.

Usage:

  ltp-tfmot run [--flags]        run or resume an experiment (every runner setting is a flag)
  ltp-tfmot report DIR [DIR...]  Markdown table + accuracy plot of runs (DIR: a run or a folder of runs)
  ltp-tfmot export RUN_DIR --level=N --out=model.tflite   a level's ticket as a sparse TFLite file
  ltp-tfmot instability RUN_DIR --level=N --rewind_steps=0,100,500   instability analysis of a level
  ltp-tfmot --help               this text and every flag

Examples:

  ltp-tfmot run --model=lenet_300_100 --dataset=mnist --levels=5 --rate=0.2 \\
      --criterion=large_final --scope=layer --rewind_step=0 --branches=reinit,random_prune --out=runs
  ltp-tfmot report runs/lottery_1a2b3c4d5e6f runs/lottery_0f9e8d7c6b5a
  ltp-tfmot export runs/lottery_1a2b3c4d5e6f --level=5 --quantization=float16 --out=lenet_level5.tflite
  ltp-tfmot instability runs/lottery_1a2b3c4d5e6f --level=0 --rewind_steps=0,100,500,2000
  python -m ltp_tfmot.cli run --dataset_source=embedded --epochs=10 --levels=3
  ltp-tfmot run --model=resnet20 --data_dir=data/cifar-10-batches-py --levels=10 --out=runs
  ltp-tfmot run --replicates=4 --branches=reinit --workers=2 --out=runs      # two jobs at a time, local Ray
  ltp-tfmot run --model=vgg16 --data_dir=DIR --training_steps=30000it --lr_decay=cosine --warmup_steps=1ep
  TF_CONFIG='{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", "index": 0}}' \\
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
different replicates, branches) in Ray worker processes on this machine;
--ray_address=ADDRESS runs them on a Ray cluster. Ctrl-C stops a run with one line saying where (exit
status 130); the same command resumes it. --out and --run_dir may be on any
file system TensorFlow knows (gs://bucket/runs).
"""

# The docstring above is what --help prints. This module holds `main` and the dispatch to the commands; each
# command lives in a module of its own (`run`, `report`, `export`, `instability`) with the flags it takes, and
# `command` holds what they share.

import sys
import textwrap

from absl import flags
from absl import logging

from ltp_tfmot import errors
from ltp_tfmot.cli import command
from ltp_tfmot.cli import export
from ltp_tfmot.cli import instability
from ltp_tfmot.cli import report
from ltp_tfmot.cli import run

# Each command's module: its `FLAGS` (only the flags it takes) and its `execute`.
_COMMANDS = {'run': run, 'report': report, 'export': export, 'instability': instability}
COMMANDS = tuple(_COMMANDS)
# The errors a command reports in one line (exit status 1) instead of a traceback: the library's own family (a
# `UsageError`, which is one, is caught before them and exits 2) and a bad value.
_COMMAND_FAILURES = (errors.LtpError, ValueError)
# The help flags that work without a command (`ltp-tfmot --help`).
_HELP_ARGS = ('-h', '--help', '--helpfull')

# The run command's flags and settings, by their names from before the commands had modules of their own.
FLAGS = run.FLAGS
DEFAULT_OUT = run.DEFAULT_OUT
config_from_flags = run.config_from_flags
setting_flags = run.setting_flags
UsageError = errors.UsageError


def _sections():
  """(help section, the FlagValues that holds its flags): the flags every command takes, then each command's own."""
  return [(command.EVERY_COMMAND, run.FLAGS)] + [(command.section(name), module.FLAGS)
                                                  for name, module in _COMMANDS.items()]


def usage():
  """The commands and every flag of every command (--help, --helpfull)."""
  sections = [flag_values.module_help(section) for section, flag_values in _sections()]
  # absl's own flags (--flagfile, --undefok), which every command takes too.
  sections.append('\nabsl.flags:\n' + flags.FlagValues().get_help(prefix='  '))
  return __doc__ + '\n'.join(sections)


def short_usage():
  """The commands and the flags that are no run setting (--helpshort)."""
  settings = set(setting_flags().values()) | set(run.ALIASES)
  text = __doc__ + '\nEvery run setting is a flag too: ltp-tfmot --helpfull.\n'
  for section, flag_values in _sections():
    lines = [textwrap.fill(f'--{flag.name}: {flag.help}', 80, initial_indent='  ', subsequent_indent='    ')
             for flag in sorted(flag_values.get_flags_for_module(section), key=lambda flag: flag.name)
             if flag.name not in settings]
    text += f'\n{section}:\n' + '\n'.join(lines) + '\n'
  return text


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


def _command_index(args):
  """Where the command is in `args`: the first argument that is neither a flag nor a flag's value (--out DIR)."""
  value_next = False
  for index, arg in enumerate(args):
    if value_next:
      value_next = False
    elif not arg.startswith('-'):
      return index
    elif '=' not in arg:
      name = arg.lstrip('-')
      value_next = any(name in module.FLAGS and not module.FLAGS[name].boolean for module in _COMMANDS.values())
  return None


def _main(argv, hooks):
  args = argv[1:]
  index = _command_index(args)
  name = None if index is None else args[index]
  if name is None and any(arg in _HELP_ARGS for arg in args):
    print(usage())
    return 0
  if name is None and '--helpshort' in args:
    print(short_usage())
    return 0
  if name not in _COMMANDS:
    got = 'none' if name is None else repr(name)
    print(f'ltp-tfmot: the first argument must be a command, one of {list(COMMANDS)}; got {got}.\n'
          'Try: ltp-tfmot --help', file=sys.stderr)
    return 2
  module = _COMMANDS[name]
  module.FLAGS.unparse_flags()  # every call starts from the defaults (main may run more than once in a process)
  try:
    args = module.FLAGS(argv[:1] + args[:index] + args[index + 1:])[1:]
  except flags.Error as error:
    print(f'ltp-tfmot: {error}\nTry: ltp-tfmot --help', file=sys.stderr)
    return 2
  if module.FLAGS.verbose:
    logging.set_verbosity(logging.INFO)
  if module.FLAGS.help or module.FLAGS.helpfull:
    print(usage())
    return 0
  if module.FLAGS.helpshort:
    print(short_usage())
    return 0
  try:
    return run.execute(args, hooks) if module is run else module.execute(args)
  except KeyboardInterrupt as error:  # Ctrl-C: a command says where it stopped
    print(f'ltp-tfmot {name}: {str(error) or "interrupted"}', file=sys.stderr)
    return 130
  except UsageError as error:
    print(f'ltp-tfmot {name}: {error}', file=sys.stderr)
    return 2
  except _COMMAND_FAILURES as error:
    print(f'ltp-tfmot {name}: error: {error}', file=sys.stderr)
    return 1
