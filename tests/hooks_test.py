"""Tests for the points of a run where a caller can step in (ltp_tfmot.experiment.hooks): by default, no change."""

import io
import os
import tempfile

import tensorflow as tf

from ltp_tfmot import experiment
from ltp_tfmot.experiment import hooks
from ltp_tfmot.experiment import storage


class _RecordingHooks(hooks.RunHooks):
  """Records the names of the files a run writes, and writes them."""

  def __init__(self):
    self.written = []

  def write_file(self, path, file, data):
    self.written.append(os.path.basename(path))
    super().write_file(path, file, data)


class RunHooksTest(tf.test.TestCase):

  def test_the_default_hooks_do_nothing_but_write_the_bytes(self):
    run_hooks = experiment.RunHooks()
    self.assertIsNone(run_hooks.after_train_step())
    self.assertIsNone(run_hooks.after_round())
    file = io.BytesIO()
    run_hooks.write_file('ignored.json', file, b'{}')
    self.assertEqual(file.getvalue(), b'{}')

  def test_run_directory_writes_go_through_the_hooks(self):
    recording = _RecordingHooks()
    path = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'level_0', storage.METRICS_JSON)
    storage.write_json(path, {'level': 0}, hooks=recording)
    self.assertEqual(recording.written, [storage.METRICS_JSON])
    self.assertEqual(storage.read_json(path), {'level': 0})


if __name__ == '__main__':
  tf.test.main()
