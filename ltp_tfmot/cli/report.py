"""`ltp-tfmot report`: a Markdown table and an accuracy plot of finished runs.

It reads run directories (or folders of them) and draws with matplotlib: no
TensorFlow starts.
"""

from absl import flags

from ltp_tfmot import errors
from ltp_tfmot import files
from ltp_tfmot.cli import command

FLAGS = flags.FlagValues()
command.define_common_flags(FLAGS)
flags.DEFINE_string('report_dir', None, 'Where report.md and accuracy.png go (default: the run directory for one '
                    'run, else the runs\' common folder).', flag_values=FLAGS, module_name=command.section('report'))


def execute(args):
  """Writes and prints the report of the runs in `args`.

  Args:
    args: The run directories (or folders of them) after `report`.

  Returns:
    0.

  Raises:
    UsageError: without a run directory.
  """
  from ltp_tfmot.experiment import report as report_lib  # pylint: disable=g-import-not-at-top
  from ltp_tfmot.experiment import storage  # pylint: disable=g-import-not-at-top
  if not args:
    raise errors.UsageError('report needs at least one run directory (or a folder of them)')
  md_path, png_path = report_lib.write_report(args, out_dir=FLAGS.report_dir)
  command.say(files.read_bytes(md_path).decode('utf-8'))
  command.say(f'Wrote {md_path} and {png_path} ({len(storage.find_runs(args))} run(s)).')
  return 0
