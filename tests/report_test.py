"""Tests for the experiment report: tables of results across replicates."""

import tensorflow as tf

from ltp_tfmot import experiment


class ReportTest(tf.test.TestCase):

  def test_table_shows_mean_and_spread_across_replicates(self):
    rows = []
    for replicate, (acc, reinit) in enumerate([(0.9, 0.8), (0.8, 0.6)]):
      for level, branch, value in ((0, 'main', acc), (1, 'main', acc), (1, 'reinit', reinit)):
        rows.append(dict(replicate=replicate, level=level, branch=branch, test_accuracy=value, test_loss=0.1,
                         weights_remaining=1.0 if level == 0 else 0.8, best_val_accuracy=value,
                         early_stop_iteration=100 * (replicate + 1), supermask_accuracy=0.1, wall_time_s=1.0))
    table = experiment.markdown_table(experiment.summarize(rows))
    self.assertEqual(table.splitlines()[2:], [
        '| 0 | 100% | 85.00 ± 7.07% | – | 150 ± 71 | 10.0 ± 0.0% |',
        '| 1 | 80% | 85.00 ± 7.07% | 70.00 ± 14.14% | 150 ± 71 | 10.0 ± 0.0% |',
    ])


if __name__ == '__main__':
  tf.test.main()
