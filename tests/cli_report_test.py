"""Tests for `ltp-tfmot report` (ltp_tfmot.cli.report): the table and plot of finished runs, and its refusals."""

import os
import re
import shutil
import tempfile

import tensorflow as tf

from ltp_tfmot.experiment import storage
from tests import fixtures


class ReportCommandTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.run_dir = fixtures.finished_run(cls, fixtures.tiny_run_config())
    cls.out = os.path.dirname(cls.run_dir)

  def test_report_writes_the_table_and_the_plot_and_prints_the_table(self):
    report_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    status, out, err = fixtures.run_cli('report', self.out, f'--report_dir={report_dir}')
    self.assertEqual((status, err), (0, ''))
    self.assertCountEqual(os.listdir(report_dir), ['report.md', 'accuracy.png'])
    with open(os.path.join(report_dir, 'report.md')) as f:
      self.assertIn(f.read(), out)
    self.assertIn('| 1 | 50% |', out)
    self.assertEndsWith(out, f'Wrote {os.path.join(report_dir, "report.md")} and '
                        f'{os.path.join(report_dir, "accuracy.png")} (1 run(s)).\n')

  def test_report_dir_that_is_a_file_is_refused_and_nothing_written(self):
    path = os.path.join(self.out, 'a_file')
    with open(path, 'w') as f:
      f.write('not a folder\n')
    for report_dir in (path, os.path.join(path, 'reports')):
      status, out, err = fixtures.run_cli('report', self.run_dir, f'--report_dir={report_dir}')
      self.assertEqual((status, out), (1, ''))
      self.assertEqual(err, f'ltp-tfmot report: error: the report folder {report_dir} cannot be made: {path} is a '
                       'file. Name a folder for report.md and accuracy.png (it is made if missing)\n')
    with open(path) as f:
      self.assertEqual(f.read(), 'not a folder\n')

  def test_report_refuses_a_run_whose_level_files_were_changed_or_removed(self):
    run_dir = os.path.join(tempfile.mkdtemp(prefix='ltp_cli_damaged_'), 'run')
    self.addCleanup(shutil.rmtree, os.path.dirname(run_dir), ignore_errors=True)
    shutil.copytree(self.run_dir, run_dir)
    metrics = storage.RunDirectory(run_dir).file(0, 1, 'main', storage.METRICS_JSON)
    report_dir = os.path.join(os.path.dirname(run_dir), 'report')
    with open(metrics) as f:
      edited = f.read().replace('"test_accuracy": 0.', '"test_accuracy": 1.')
    with open(metrics, 'w') as f:
      f.write(edited)
    for change, problem in ((lambda: None, f'{metrics} does not match its checksum'),
                            (lambda: os.remove(metrics), f'{metrics} is missing')):
      change()
      status, out, err = fixtures.run_cli('report', run_dir, f'--report_dir={report_dir}')
      self.assertEqual((status, out), (1, ''))
      self.assertRegex(err, f'^ltp-tfmot report: error: replicate 0 level 1 main of {run_dir} is damaged: '
                       f'{re.escape(problem)}.*Run the experiment again .* to redo it.\n$')
      self.assertFalse(os.path.exists(report_dir))


if __name__ == '__main__':
  tf.test.main()
