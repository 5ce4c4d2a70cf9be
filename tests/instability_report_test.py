"""Tests of the instability report: the earliest stable rewind step, the table, the plot and the report files."""

import os

from absl.testing import parameterized
import tensorflow as tf

from ltp_tfmot import experiment
from ltp_tfmot.experiment import instability
from ltp_tfmot.experiment import instability_report


def _result(k, value, level=0, replicate=0):
  return {'rewind_step': k, 'instability': value, 'level': level, 'replicate': replicate}


def _full_result(k, errors_on_path, replicate=0):
  """A result as `instability_analysis` gives it, of a path whose test errors are `errors_on_path`."""
  path = [{'alpha': i / (len(errors_on_path) - 1), 'test_error': e, 'test_loss': 2 * e}
          for i, e in enumerate(errors_on_path)]
  end_mean = (errors_on_path[0] + errors_on_path[-1]) / 2
  return {'run': 'lottery_abc', 'replicate': replicate, 'level': 1, 'rewind_step': k, 'points': len(path),
          'same_data_order': False, 'iterations': 20, 'weights_remaining': 0.8, 'path': path,
          'instability': max(errors_on_path) - end_mean, 'end_error_mean': end_mean,
          'max_error_alpha': path[errors_on_path.index(max(errors_on_path))]['alpha'],
          'copies': [{'test_error': errors_on_path[0]}, {'test_error': errors_on_path[-1]}]}


class EarliestStableRewindStepTest(tf.test.TestCase, parameterized.TestCase):

  def test_picks_the_earliest_rewind_step_below_the_threshold(self):
    results = [_result(500, 0.001), _result(0, 0.30), _result(100, 0.019), _result(50, 0.021)]
    self.assertEqual(instability_report.earliest_stable_rewind_step(results), 100)
    self.assertEqual(instability_report.earliest_stable_rewind_step(results, threshold=0.5), 0)
    self.assertEqual(instability_report.earliest_stable_rewind_step(results, threshold=0.019), 500)

  def test_averages_replicates_at_each_rewind_step(self):
    results = [_result(0, 0.01), _result(0, 0.05, replicate=1), _result(10, 0.0), _result(10, 0.01, replicate=1)]
    self.assertEqual(instability_report.earliest_stable_rewind_step(results, threshold=0.02), 10)

  def test_says_when_no_rewind_step_is_stable(self):
    with self.assertRaisesRegex(experiment.NoStableRewindStepError,
                                r'No rewind step analysed has an instability below 2% \(k=0: 30.00%, k=100: '
                                r'2.50%\); analyse later rewind steps than 100'):
      instability_report.earliest_stable_rewind_step([_result(0, 0.3), _result(100, 0.025)])

  @parameterized.named_parameters(('zero', 0), ('negative', -0.02), ('above_one', 1.5), ('string', '2%'),
                                  ('bool', True))
  def test_bad_threshold_is_refused(self, threshold):
    with self.assertRaisesRegex(ValueError, r'threshold must be an error difference in \(0, 1\]'):
      instability_report.earliest_stable_rewind_step([_result(0, 0.0)], threshold=threshold)

  def test_results_of_several_levels_are_refused(self):
    with self.assertRaisesRegex(ValueError, r'one level, got levels \[0, 1\]'):
      instability_report.earliest_stable_rewind_step([_result(0, 0.0), _result(0, 0.0, level=1)])


class ReportTest(tf.test.TestCase):

  def test_table_has_a_row_per_rewind_step_with_the_replicates_means(self):
    results = [_full_result(0, [0.1, 0.4, 0.3]), _full_result(0, [0.1, 0.2, 0.1], replicate=1),
               _full_result(8, [0.1, 0.1, 0.1])]
    table = instability_report.instability_table(results).splitlines()
    self.assertLen(table, 4)
    self.assertStartsWith(table[0], '| Rewind step k | Instability | Error at the ends (mean) |')
    self.assertEqual(table[2], '| 0 | 15.00% | 15.00% | 30.00% | 10.00% | 20.00% |')
    self.assertEqual(table[3], '| 8 | 0.00% | 10.00% | 10.00% | 10.00% | 10.00% |')

  def test_report_writes_the_table_the_verdict_and_the_plot(self):
    out = self.get_temp_dir()
    results = [_full_result(0, [0.1, 0.4, 0.3]), _full_result(8, [0.1, 0.105, 0.1])]
    md_path, png_path, text = instability_report.write_instability_report(results, out, threshold=0.02)
    self.assertEqual((md_path, png_path), (os.path.join(out, instability.REPORT_MD),
                                           os.path.join(out, instability.REPORT_PNG)))
    self.assertStartsWith(text, '# Instability of lottery_abc, level 1\n\n80% of the weights; 20 iterations per '
                          'level; 3 points per path.')
    self.assertIn('Earliest rewind step with instability below 2%: k=8.', text)
    with open(md_path) as f:
      self.assertEqual(f.read(), text)
    with open(png_path, 'rb') as f:
      self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')

  def test_report_without_a_stable_rewind_step_says_so(self):
    _, _, text = instability_report.write_instability_report([_full_result(0, [0.1, 0.4, 0.3])], self.get_temp_dir())
    self.assertIn('No rewind step analysed has an instability below 2% (k=0: 20.00%)', text)

  def test_public_names_resolve_to_this_module(self):
    for name in ('earliest_stable_rewind_step', 'instability_table', 'plot_instability', 'write_instability_report'):
      self.assertIs(getattr(experiment, name), getattr(instability_report, name))


if __name__ == '__main__':
  tf.test.main()
