"""Tests of the plots' shared set-up: a figure on the Agg canvas, written as a PNG atomically."""

import os
import tempfile

import tensorflow as tf

from ltp_tfmot.experiment import plots


class PlotsTest(tf.test.TestCase):

  def test_a_new_figure_is_written_as_a_png_and_nothing_else(self):
    folder = tempfile.mkdtemp(dir=self.get_temp_dir())
    fig = plots.new_figure()
    self.assertEqual(tuple(fig.get_size_inches()), (12.0, 4.8))
    fig.subplots(1, 2)[0].plot([0, 1], [1, 0])
    path = os.path.join(folder, 'figure.png')
    self.assertEqual(plots.save_png(fig, path), path)
    with open(path, 'rb') as f:
      self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')
    self.assertEqual(os.listdir(folder), ['figure.png'])  # no temporary file left

  def test_accuracy_plot_of_a_run(self):
    results = [{'branch': 'main', 'level': level, 'weights_remaining': 0.5 ** level, 'test_accuracy': 0.9,
                'early_stop_iteration': 10} for level in range(3)]
    path = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'accuracy.png')
    self.assertEqual(plots.plot_accuracy([('', results)], path), path)
    self.assertGreater(os.path.getsize(path), 0)


if __name__ == '__main__':
  tf.test.main()
