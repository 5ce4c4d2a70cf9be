"""`ltp-tfmot export`: a level's ticket of a run as a sparse TFLite file.

The output path is checked before the run is loaded (minutes can go into
loading and converting), and Ctrl-C says whether the file was written.
"""

import os

from absl import flags

from ltp_tfmot import errors
from ltp_tfmot import files
from ltp_tfmot.cli import command

FLAGS = flags.FlagValues()


def _define_flags():
  where = dict(flag_values=FLAGS, module_name=command.section('export'))
  command.define_common_flags(FLAGS)
  flags.DEFINE_string('out', None, 'The .tflite file to write (needed).', **where)
  flags.DEFINE_integer('level', None, 'The level to export (default: the last finished one).', **where)
  flags.DEFINE_integer('replicate', 0, 'The replicate.', **where)
  flags.DEFINE_enum('quantization', 'none', ['none', 'float16', 'dynamic', 'int8'],
                    'TFLite quantization (int8 calibrates on 200 training examples).', **where)
  flags.DEFINE_bool('shrink', False, 'Rebuild a --granularity=unit ticket as the smaller dense model without its '
                    'removed units (ltp_tfmot.shrink) and export that: it runs faster on every runtime.', **where)


_define_flags()


def execute(args):
  """Exports the --level of the run directory in `args` to --out and prints the export report.

  Args:
    args: The positional arguments after `export`: one run directory.

  Returns:
    0.

  Raises:
    UsageError: for missing or bad arguments.
    KeyboardInterrupt: on Ctrl-C, its message saying whether --out was written.
  """
  command.quiet_tensorflow(FLAGS.verbose)
  if len(args) != 1:
    raise errors.UsageError(f'export takes one run directory, got {args or "none"}')
  if FLAGS.out is None:
    raise errors.UsageError('export needs --out, the .tflite file to write (e.g. --out=model.tflite)')
  if not FLAGS.out.endswith('.tflite'):
    raise errors.UsageError(f'--out must name the .tflite file to write, got {FLAGS.out!r}')
  files.check_directory_of(FLAGS.out)  # before minutes of loading and converting
  before = _file_version(FLAGS.out)
  try:
    report = _export(args[0])
  except KeyboardInterrupt:
    if _file_version(FLAGS.out) != before:
      raise KeyboardInterrupt(f'interrupted after {FLAGS.out} was written (it is complete and checked)') from None
    kept = ' (the file there is as it was)' if before is not None else ''
    raise KeyboardInterrupt(f'interrupted before {FLAGS.out} was written: nothing was written{kept}') from None
  command.say(report.to_markdown())
  command.say(f'Wrote {FLAGS.out}.')
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
  command.import_tensorflow(FLAGS.verbose)
  import ltp_tfmot  # pylint: disable=g-import-not-at-top
  from ltp_tfmot.experiment import level_state  # pylint: disable=g-import-not-at-top
  model, split = level_state.load_trained_model(run_dir, level=FLAGS.level, replicate=FLAGS.replicate)
  if FLAGS.shrink:
    if any(w.granularity != 'unit' for w in ltp_tfmot.lottery_wrappers(model)):
      raise errors.UsageError(f'--shrink needs a run pruned with --granularity=unit, which {run_dir} is not: its '
                              'tickets keep every unit. Export without --shrink')
    model = ltp_tfmot.shrink(model)
  quantization = None if FLAGS.quantization == 'none' else FLAGS.quantization
  return ltp_tfmot.export_tflite(
      model, FLAGS.out, quantization=quantization,
      representative_data=split.x_train[:200] if quantization == 'int8' else None, sample_inputs=split.x_test[:8])
