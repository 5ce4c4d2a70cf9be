"""Tests for the ltp-tfmot command line: flags to config, run + resume + report, errors, `python -m`."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

import tensorflow as tf

import ltp_tfmot
from ltp_tfmot import cli
from ltp_tfmot import experiment
from ltp_tfmot.experiment import level_state
from ltp_tfmot.experiment import run_lock
from ltp_tfmot.experiment import storage
from tests import fixtures

# LeNet-300-100 on 300 embedded MNIST digits, one epoch, one pruning level and the reinit control, on Keras' loop
# (compiling a step with XLA costs these runs more than their training).
RUN_FLAGS = ['--model=lenet_300_100', '--dataset=mnist', '--dataset_source=embedded', '--train_size=300',
             '--test_size=200', '--epochs=1', '--batch_size=50', '--eval_every=2', '--levels=1', '--controls=reinit',
             '--nojit_compile', '--notensorboard']


class _CtrlCAfter(experiment.RunHooks):
  """Raises KeyboardInterrupt (what Ctrl-C raises) after the n-th training step."""

  def __init__(self, steps):
    self.steps = steps

  def after_train_step(self):
    self.steps -= 1
    if self.steps == 0:
      raise KeyboardInterrupt


class FlagsTest(tf.test.TestCase):

  def test_usage_errors_exit_2_before_any_work(self):
    for args, message in ((['--rate=0.5'], 'first argument must be a command'),
                          (['train'], "got 'train'"),
                          (['run', '--no_such_flag=1'], 'no_such_flag'),
                          (['run', '--rate=1.5'], r'pruning.rate must be in (0, 1), got 1.5'),
                          (['run', '--layer_rates=output'], 'name:rate'),
                          (['report'], 'at least one run directory')):
      status, _, err = fixtures.run_cli(*args)
      self.assertEqual(status, 2, args)
      self.assertIn(message, err)

  def test_tensorflow_start_up_lines_are_quieted_unless_verbose_or_set(self):
    for args, preset, expected in ((['run'], None, '2'), (['run', '--verbose'], None, None), (['run'], '0', '0')):
      environ = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
      if preset is not None:
        environ['TF_CPP_MIN_LOG_LEVEL'] = preset
      with mock.patch.dict(os.environ, environ, clear=True):
        self.assertEqual(fixtures.run_cli(*args, '--rate=1.5')[0], 2)  # stops at the config, after the level is set
        self.assertEqual(os.environ.get('TF_CPP_MIN_LOG_LEVEL'), expected, args)

  def test_help_lists_commands_and_flags(self):
    status, out, _ = fixtures.run_cli('--help')
    self.assertEqual(status, 0)
    self.assertIn('ltp-tfmot report DIR', out)
    self.assertIn('--rewind_step', out)

  def test_every_help_flag_works_on_every_command(self):
    for command in ('',) + cli.COMMANDS:
      for flag, every_setting in (('--help', True), ('-h', True), ('--helpfull', True), ('--helpshort', False)):
        status, out, err = fixtures.run_cli(*filter(None, [command, flag]))
        self.assertEqual((status, err), (0, ''), (command, flag))
        self.assertIn('ltp-tfmot export RUN_DIR --level=N', out, (command, flag))
        self.assertIn('--report_dir', out, (command, flag))
        self.assertEqual('--momentum:' in out, every_setting, (command, flag))


  def test_each_command_takes_only_its_own_flags(self):
    for args, flag in ((['run', '--report_dir=reports'], 'report_dir'), (['report', 'runs', '--rate=0.5'], 'rate'),
                       (['export', 'runs', '--workers=2'], 'workers'), (['instability', 'runs', '--shrink'], 'shrink')):
      status, out, err = fixtures.run_cli(*args)
      self.assertEqual((status, out), (2, ''), args)
      self.assertEqual(err, f"ltp-tfmot: Unknown command line flag '{flag}'\nTry: ltp-tfmot --help\n", args)

  def test_flags_may_come_before_the_command_with_or_without_equals(self):
    for args in (['--rate=1.5', 'run'], ['--out', 'runs', 'run', '--rate=1.5'], ['--notensorboard', 'run', '--rate',
                                                                                  '1.5']):
      status, _, err = fixtures.run_cli(*args)
      self.assertEqual((status, err), (2, 'ltp-tfmot run: pruning.rate must be in (0, 1), got 1.5\n'), args)

  def test_help_lists_each_commands_flags_under_its_name(self):
    _, out, _ = fixtures.run_cli('--help')
    sections = re.findall(r'^(Flags of [^:]*|absl.flags):$', out, re.MULTILINE)
    self.assertEqual(sections, ['Flags of every command'] + [f'Flags of ltp-tfmot {name}' for name in cli.COMMANDS]
                     + ['absl.flags'])
    export_section = out[out.index('Flags of ltp-tfmot export:'):out.index('Flags of ltp-tfmot instability:')]
    self.assertIn('--out: The .tflite file to write (needed).', export_section)
    self.assertNotIn('--rate', export_section)


class CommandsTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.out = tempfile.mkdtemp(prefix='ltp_cli_test_')
    cls.status, cls.stdout, cls.stderr = fixtures.run_cli('run', f'--out={cls.out}', *RUN_FLAGS)
    cls.run_dirs = [os.path.join(cls.out, d) for d in os.listdir(cls.out)]

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.out, ignore_errors=True)
    super().tearDownClass()

  def test_run_trains_every_level_and_prints_progress_and_table(self):
    self.assertEqual(self.status, 0, self.stderr)
    self.assertLen(self.run_dirs, 1)
    self.assertStartsWith(os.path.basename(self.run_dirs[0]), 'lottery_')
    self.assertIn('replicate 0 level 0/1 main:', self.stdout)
    self.assertIn('replicate 0 level 1/1 reinit:', self.stdout)
    self.assertIn('| Level | Weights remaining | Ticket acc. | Reinit acc. |', self.stdout)
    self.assertTrue(os.path.exists(os.path.join(self.run_dirs[0], 'replicate_0', 'level_1', 'main', 'metrics.json')))

  def test_same_command_again_skips_everything(self):
    status, out, err = fixtures.run_cli('run', f'--out={self.out}', *RUN_FLAGS)
    self.assertEqual(status, 0, err)
    self.assertIn('3 done earlier, 0 to run', out)
    self.assertNotIn('replicate 0 level', out)

  def test_run_dir_with_other_settings_is_refused(self):
    status, _, err = fixtures.run_cli('run', f'--run_dir={self.run_dirs[0]}', '--rate=0.5', *RUN_FLAGS)
    self.assertEqual(status, 1)
    self.assertIn('pruning.rate is 0.2 there and 0.5 here', err)

  def test_run_on_a_directory_in_use_is_refused_in_one_line_naming_the_holder(self):
    holder = storage.RunDirectory(self.run_dirs[0])
    holder.lock.take()  # as a run in progress holds it
    try:
      status, _, err = fixtures.run_cli('run', f'--run_dir={self.run_dirs[0]}', *RUN_FLAGS)
    finally:
      holder.lock.release()
    self.assertEqual(status, 1)
    self.assertRegex(err, f'^ltp-tfmot run: error: run directory {re.escape(self.run_dirs[0])} is in use by process '
                     f'{os.getpid()} on .*, so this run did nothing: wait for it to end or stop it, then run the same '
                     'command again\n$')
    self.assertNotIn(run_lock.LOCK, os.listdir(self.run_dirs[0]))

  def test_export_writes_a_level_as_sparse_tflite_and_prints_the_report(self):
    path = os.path.join(self.out, 'level1.tflite')
    status, out, err = fixtures.run_cli('export', self.run_dirs[0], '--level=1', f'--out={path}')
    self.assertEqual(status, 0, err)
    self.assertTrue(os.path.exists(path))
    self.assertIn('hidden_300', out)
    self.assertIn(f'Wrote {path}.', out)

  def test_export_of_an_unfinished_level_is_refused_and_writes_nothing(self):
    path = os.path.join(self.out, 'level5.tflite')
    status, _, err = fixtures.run_cli('export', self.run_dirs[0], '--level=5', f'--out={path}')
    self.assertEqual(status, 1)
    self.assertIn('level 5 of replicate 0 is not finished', err)
    self.assertFalse(os.path.exists(path))

  def test_export_failure_is_one_line(self):
    path = os.path.join(self.out, 'failed.tflite')
    failure = ltp_tfmot.ExportError('the converter failed: no TFLite op for this layer')
    with mock.patch.object(ltp_tfmot, 'export_tflite', side_effect=failure):
      status, _, err = fixtures.run_cli('export', self.run_dirs[0], '--level=1', f'--out={path}')
    self.assertEqual(status, 1)
    self.assertEqual(err, 'ltp-tfmot export: error: the converter failed: no TFLite op for this layer\n')

  def test_export_shrink_refuses_a_run_of_single_weights(self):
    path = os.path.join(self.out, 'shrunk.tflite')
    status, _, err = fixtures.run_cli('export', self.run_dirs[0], '--shrink', f'--out={path}')
    self.assertEqual(status, 2)
    self.assertIn('--shrink needs a run pruned with --granularity=unit', err)
    self.assertFalse(os.path.exists(path))

  def test_export_into_a_folder_it_cannot_write_is_refused_before_loading_the_run(self):
    folder = tempfile.mkdtemp(prefix='ltp_cli_read_only_')
    self.addCleanup(shutil.rmtree, folder, ignore_errors=True)
    path = os.path.join(folder, 't.tflite')
    with fixtures.read_only_folder(folder), \
        mock.patch.object(level_state, 'load_trained_model', side_effect=AssertionError('loaded')) as load:
      status, out, err = fixtures.run_cli('export', self.run_dirs[0], '--level=1', f'--out={path}')
    self.assertEqual((status, out), (1, ''))
    self.assertEqual(err, f'ltp-tfmot export: error: cannot write {path}: Read-only file system (in {folder}), so '
                     'nothing was done: choose a folder you can write to\n')
    load.assert_not_called()
    self.assertEqual(os.listdir(folder), [])

  def test_export_without_out_asks_for_the_tflite_path(self):
    status, _, err = fixtures.run_cli('export', self.run_dirs[0], '--level=1')
    self.assertEqual(status, 2)
    self.assertEqual(err, 'ltp-tfmot export: export needs --out, the .tflite file to write (e.g. --out=model.tflite)\n')

  def test_ctrl_c_in_export_says_whether_the_file_was_written(self):
    path = os.path.join(self.out, 'interrupted.tflite')

    def write_then_interrupt(model, out, **kwargs):
      with open(out, 'wb') as f:
        f.write(b'model')
      raise KeyboardInterrupt

    for side_effect, message in ((KeyboardInterrupt, f'interrupted before {path} was written: nothing was written'),
                                 (write_then_interrupt, f'interrupted after {path} was written (it is complete and '
                                  'checked)')):
      with mock.patch.object(ltp_tfmot, 'export_tflite', side_effect=side_effect):
        status, _, err = fixtures.run_cli('export', self.run_dirs[0], '--level=1', f'--out={path}')
      self.assertEqual((status, err), (130, f'ltp-tfmot export: {message}\n'))
    self.assertTrue(os.path.exists(path))

  def test_export_needs_a_tflite_path(self):
    status, _, err = fixtures.run_cli('export', self.run_dirs[0], '--out=runs')
    self.assertEqual(status, 2)
    self.assertIn('--out must name the .tflite file', err)

  def test_ctrl_c_prints_one_line_exits_130_and_the_same_command_resumes(self):
    out = tempfile.mkdtemp(prefix='ltp_cli_interrupted_')
    self.addCleanup(shutil.rmtree, out, ignore_errors=True)
    steps_per_level = 270 // 50
    status, _, err = fixtures.run_cli('run', f'--out={out}', *RUN_FLAGS, hooks=_CtrlCAfter(steps_per_level + 2))
    self.assertEqual(status, 130)
    self.assertEqual(err, 'ltp-tfmot run: interrupted at replicate 0 level 1; run the same command to resume\n')
    status, stdout, err = fixtures.run_cli('run', f'--out={out}', *RUN_FLAGS)
    self.assertEqual(status, 0, err)
    self.assertIn('1 done earlier, 2 to run', stdout)

  def test_report_in_a_subprocess_as_python_m(self):
    report_dir = tempfile.mkdtemp(prefix='ltp_cli_report_')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), TF_CPP_MIN_LOG_LEVEL='3')
    result = subprocess.run([sys.executable, '-m', 'ltp_tfmot.cli', 'report', self.out, f'--report_dir={report_dir}'],
                            capture_output=True, text=True, env=env, timeout=120, check=False)
    self.assertEqual(result.returncode, 0, result.stderr)
    self.assertIn('| 1 | 80% |', result.stdout)
    self.assertCountEqual(os.listdir(report_dir), ['report.md', 'accuracy.png'])
    shutil.rmtree(report_dir, ignore_errors=True)



class ResearchScaleTest(tf.test.TestCase):

  def test_resnet20_on_a_cifar_folder_runs_end_to_end_with_the_preset_recipe(self):
    folder = tempfile.mkdtemp(prefix='ltp_cli_cifar_')
    self.addCleanup(shutil.rmtree, folder, ignore_errors=True)
    fixtures.write_cifar10(folder, train_per_batch=8, test=8)  # 40 training images, 36 after validation
    out = os.path.join(folder, 'runs')
    status, stdout, err = fixtures.run_cli('run', '--model=resnet20', '--dataset=cifar10', f'--data_dir={folder}',
                                '--training_steps=6it', '--batch_size=12', '--rewind_step=2', '--levels=1',
                                '--eval_every=3', '--notensorboard', f'--out={out}')
    self.assertEqual(status, 0, err)
    self.assertIn('6 iterations per level; data cifar10-folder (36 train, 4 validation, 8 test)', stdout)
    run_dir, = [os.path.join(out, d) for d in os.listdir(out)]
    config = experiment.RunConfig.from_dict(storage.read_json(os.path.join(run_dir, 'config.json'))['config'])
    t = config.training
    # open_lth's recipe, with the length, batch and rewind step of this trial.
    self.assertEqual((t.optimizer, t.learning_rate, t.momentum, t.weight_decay, t.lr_decay, t.augment,
                      config.pruning.scope), ('sgd', 0.1, 0.9, 1e-4, 'step', True, 'global'))
    levels = experiment.load_level_metrics(run_dir)
    self.assertEqual([(m['level'], m['curve'][0]['iteration']) for m in levels], [(0, 0), (1, 2)])
    self.assertAllClose(levels[1]['weights_remaining'], 0.8, atol=0.01)

if __name__ == '__main__':
  tf.test.main()
