"""Tests for ltp_tfmot.files: the one atomic write, and paths of TensorFlow's other file systems (ram://).

TensorFlow's in-memory file system `ram://` stands in for gs:// and the other
file systems `tf.io.gfile` knows: everything but local paths goes through it.
"""

import errno
import os
import stat
import tempfile
import uuid

import tensorflow as tf

import ltp_tfmot
from ltp_tfmot import files
from tests import fixtures


def _ram_dir():
  """A fresh directory of TensorFlow's in-memory file system (shared by the whole process)."""
  path = f'ram://files_test_{uuid.uuid4().hex}'
  tf.io.gfile.makedirs(path)
  return path


def _umask():
  mask = os.umask(0)
  os.umask(mask)
  return mask


class _Refused(Exception):
  pass


def _refuse(temp):
  del temp
  raise _Refused('not this file')


class LocalAtomicWriteTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.path = os.path.join(self.dir, 'file.bin')

  def test_writes_the_bytes_with_the_permissions_open_gives(self):
    files.atomic_write(self.path, b'new')
    with open(self.path, 'rb') as f:
      self.assertEqual(f.read(), b'new')
    self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o666 & ~_umask())
    self.assertEqual(os.listdir(self.dir), ['file.bin'])

  def test_verify_sees_the_whole_temporary_file_before_the_rename(self):
    seen = []

    def verify(temp):
      self.assertTrue(files.is_temp_file(os.path.basename(temp)))
      self.assertEqual(os.path.dirname(temp), self.dir)
      self.assertFalse(os.path.exists(self.path))
      with open(temp, 'rb') as f:
        seen.append(f.read())

    files.atomic_write(self.path, b'content', verify=verify)
    self.assertEqual(seen, [b'content'])

  def test_refused_or_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(self):
    files.atomic_write(self.path, b'old')

    def interrupted(f, data):
      f.write(data[:1])
      raise KeyboardInterrupt

    with self.assertRaises(_Refused):
      files.atomic_write(self.path, b'new', verify=_refuse)
    with self.assertRaises(KeyboardInterrupt):
      files.atomic_write(self.path, b'new', write=interrupted)
    with open(self.path, 'rb') as f:
      self.assertEqual(f.read(), b'old')
    self.assertEqual(os.listdir(self.dir), ['file.bin'])

  def test_missing_directory_is_an_os_error(self):
    with self.assertRaises(FileNotFoundError):
      files.atomic_write(os.path.join(self.dir, 'missing', 'file.bin'), b'x')


class OtherFileSystemTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = _ram_dir()
    self.path = self.dir + '/file.bin'

  def test_paths_with_a_scheme_stay_as_they_are(self):
    self.assertEqual(files.abspath('gs://bucket/runs'), 'gs://bucket/runs')
    self.assertFalse(files.is_local('ram://x'))
    self.assertTrue(files.is_local('runs/x'))
    files.check_directory_of('gs://bucket/no/such/prefix/model.tflite')  # object stores have no directories
    self.assertEqual(files.commonpath(['gs://b/runs/x', 'gs://b/runs/y']), 'gs://b/runs')
    self.assertEqual(files.commonpath(['/runs/x', '/runs/y']), '/runs')
    with self.assertRaisesRegex(ValueError, 'different file systems'):
      files.commonpath(['gs://b/runs/x', '/runs/y'])

  def test_atomic_write_replaces_the_file_and_leaves_no_temporary(self):
    files.atomic_write(self.path, b'old')
    files.atomic_write(self.path, b'new')
    self.assertEqual(files.read_bytes(self.path), b'new')
    self.assertEqual(files.getsize(self.path), 3)
    self.assertEqual(files.listdir(self.dir), ['file.bin'])

  def test_refused_write_keeps_the_old_file_and_leaves_no_temporary(self):
    files.atomic_write(self.path, b'old')
    with self.assertRaises(_Refused):
      files.atomic_write(self.path, b'new', verify=_refuse)
    self.assertEqual(files.read_bytes(self.path), b'old')
    self.assertEqual(files.listdir(self.dir), ['file.bin'])

  def test_errors_are_os_errors(self):
    with self.assertRaises(FileNotFoundError) as raised:
      files.read_bytes(self.dir + '/missing.bin')
    self.assertEqual(raised.exception.errno, errno.ENOENT)
    self.assertIn('missing.bin', str(raised.exception))

  def test_ticket_saves_and_loads(self):
    model = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), ltp_tfmot.LotteryTicketSchedule(0.5))
    model.build((None, 8))
    ltp_tfmot.take_snapshot(model)
    fixtures.perturb(model)
    ltp_tfmot.run_lottery_round(model)
    path = self.dir + '/ticket.npz'
    ltp_tfmot.save_ticket(model, path, config={'where': 'ram'})
    self.assertEqual(tf.io.gfile.listdir(self.dir), ['ticket.npz'])
    fresh = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(seed=3), ltp_tfmot.LotteryTicketSchedule(0.5))
    fresh.build((None, 8))
    ticket = ltp_tfmot.load_ticket(fresh, path)
    self.assertEqual(ticket.config, {'where': 'ram'})
    x, _ = fixtures.classification_data()
    self.assertAllEqual(fresh(x), model(x))
    with self.assertRaises(FileNotFoundError):
      ltp_tfmot.read_ticket(self.dir + '/missing.npz')

  def test_export_writes_a_file_that_loads_back(self):
    model = fixtures.mlp()
    path = self.dir + '/model.tflite'
    report = ltp_tfmot.export_tflite(model, path)
    self.assertEqual(report.path, path)
    self.assertEqual(tf.io.gfile.listdir(self.dir), ['model.tflite'])
    content = files.read_bytes(path)
    self.assertLen(content, report.file_bytes)
    runner = ltp_tfmot.load_tflite(content).get_signature_runner()
    x, _ = fixtures.classification_data(n=1)
    (output,) = runner(**{name: x for name in runner.get_input_details()}).values()
    fixtures.assert_close_to_scale(self, output, model(x))


if __name__ == '__main__':
  tf.test.main()
