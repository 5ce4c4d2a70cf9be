"""Tests for the files of a run directory (ltp_tfmot.experiment.storage): atomic writes, checksums, finding runs."""

import errno
import hashlib
import os
import tempfile

import numpy as np
import tensorflow as tf

from ltp_tfmot.experiment import hooks
from ltp_tfmot.experiment import storage


class _DiskFull(hooks.RunHooks):
  """Fails every write as a full disk does."""

  def write_file(self, path, file, data):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


def _finished_level(paths, replicate, level, branch='main'):
  """Writes a level's files (small stand-ins) and its manifest, as a finished level has them."""
  checksums = {}
  for name in paths.needed_files(branch):
    path = paths.file(replicate, level, branch, name)
    if name.endswith('.json'):
      checksums[name] = storage.write_json(path, {'replicate': replicate, 'level': level, 'branch': branch})
    else:
      checksums[name] = storage.write_bytes(path, f'{name} of level {level}'.encode())
  paths.write_manifest(replicate, level, branch, checksums)


class FilesTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp(dir=self.get_temp_dir())

  def test_json_and_arrays_are_read_back_as_written(self):
    path = os.path.join(self.dir, 'sub', 'a.json')
    digest = storage.write_json(path, {'b': [1, 2], 'a': 'x'})
    self.assertEqual(storage.read_json(path), {'a': 'x', 'b': [1, 2]})
    self.assertEqual(digest, storage.file_sha256(path))
    arrays = storage.pack('mask', [np.ones((2, 3), np.float32), np.zeros(4, np.float32)], ['k', 'b'])
    storage.save_arrays(os.path.join(self.dir, 'm.npz'), arrays)
    loaded = storage.load_arrays(os.path.join(self.dir, 'm.npz'))
    self.assertEqual([a.shape for a in storage.unpack(loaded, 'mask')], [(2, 3), (4,)])
    self.assertAllEqual(loaded['mask_names'], ['k', 'b'])

  def test_a_truncated_file_is_a_corrupt_file_error_naming_it(self):
    json_path, npz_path = os.path.join(self.dir, 'a.json'), os.path.join(self.dir, 'm.npz')
    storage.write_json(json_path, {'level': 1})
    storage.save_arrays(npz_path, {'x': np.arange(100)})
    for path, read in ((json_path, storage.read_json), (npz_path, storage.load_arrays)):
      with open(path, 'rb') as f:
        data = f.read()
      with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
      with self.assertRaisesRegex(storage.CorruptFileError, f'^{path} is truncated or corrupt'):
        read(path)

  def test_csv_columns_are_the_union_of_the_rows_keys_in_first_seen_order(self):
    path = os.path.join(self.dir, 'results.csv')
    storage.write_csv(path, [{'level': 0, 'acc': 0.5}, {'level': 1, 'loss': 2.0}])
    with open(path, newline='') as f:
      self.assertEqual(f.read(), 'level,acc,loss\r\n0,0.5,\r\n1,,2.0\r\n')

  def test_a_write_that_fails_is_a_storage_error_naming_the_file_and_leaves_nothing(self):
    path = os.path.join(self.dir, 'metrics.json')
    with self.assertRaisesRegex(storage.StorageError, f'^could not write {path}: No space left on device. Files '
                                'written before are intact; free some space and run the same command again') as c:
      storage.write_bytes(path, b'{}', hooks=_DiskFull())
    self.assertEqual(c.exception.errno, errno.ENOSPC)
    self.assertEqual(os.listdir(self.dir), [])

  def test_write_bytes_returns_the_sha256_and_temp_files_are_removed(self):
    self.assertEqual(storage.write_bytes(os.path.join(self.dir, 'a.bin'), b'abc'), hashlib.sha256(b'abc').hexdigest())
    os.makedirs(os.path.join(self.dir, 'level_0'))
    for name in ('.a.bin.1f2e.tmp', os.path.join('level_0', '.masks.npz.3c4d.tmp')):
      with open(os.path.join(self.dir, name), 'wb') as f:
        f.write(b'half')
    self.assertEqual(storage.remove_temp_files(self.dir), 2)
    self.assertCountEqual(os.listdir(self.dir), ['a.bin', 'level_0'])


class RunDirectoryTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.out = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.paths = storage.RunDirectory(os.path.join(self.out, 'run'))

  def test_a_level_is_done_when_its_manifest_matches_its_files(self):
    self.assertIsNone(self.paths.verify(0, 0))
    self.assertFalse(self.paths.is_done(0, 0))
    _finished_level(self.paths, 0, 0)
    self.assertTrue(self.paths.is_done(0, 0))
    self.assertEqual(self.paths.verify(0, 0), '')
    curve = self.paths.file(0, 0, 'main', storage.CURVE)
    with open(curve, 'ab') as f:
      f.write(b'changed')
    self.assertStartsWith(self.paths.verify(0, 0), f'{curve} does not match its checksum')
    with self.assertRaisesRegex(storage.CorruptFileError, r'replicate 0 level 0 main of .* is damaged: .*curve\.csv'):
      self.paths.check_level(0, 0)
    os.remove(curve)
    self.assertEqual(self.paths.verify(0, 0), f'{curve} is missing')

  def test_a_branch_needs_no_weights_file(self):
    self.assertIn(storage.WEIGHTS, storage.RunDirectory.needed_files('main'))
    self.assertNotIn(storage.WEIGHTS, storage.RunDirectory.needed_files('reinit'))

  def test_a_failure_record_is_written_read_and_cleared(self):
    record = {'replicate': 0, 'level': 1, 'branch': 'main', 'error': 'NaN loss'}
    self.paths.write_failure(record)
    self.assertEqual(self.paths.failure(0, 1), record)
    self.paths.clear_failure(0, 1)
    self.assertIsNone(self.paths.failure(0, 1))

  def test_claim_writes_the_config_once_and_refuses_another_run_or_a_foreign_directory(self):
    meta = {'hash': 'a'}
    self.assertEqual(self.paths.claim(meta, lambda stored: []), meta)
    self.paths.lock.release()
    self.assertEqual(storage.read_json(self.paths.config_path), meta)
    with self.assertRaisesRegex(ValueError, r'holds a run with other settings, so it was left as it is: hash'):
      self.paths.check({'hash': 'b'}, lambda stored: ['hash'])
    foreign = storage.RunDirectory(os.path.join(self.out, 'foreign'))
    os.makedirs(foreign.path)
    storage.write_text(os.path.join(foreign.path, 'notes.txt'), 'mine')
    with self.assertRaisesRegex(ValueError, r'is not empty and has no config\.json'):
      foreign.claim(meta, lambda stored: [])
    self.assertEqual(os.listdir(foreign.path), ['notes.txt'])

  def test_level_metrics_are_those_of_levels_with_a_manifest_in_replicate_level_branch_order(self):
    for replicate, level, branch in ((1, 0, 'main'), (0, 1, 'reinit'), (0, 1, 'main'), (0, 0, 'main')):
      _finished_level(self.paths, replicate, level, branch)
    os.remove(self.paths.manifest_path(1, 0))  # unfinished
    rows = storage.load_level_metrics(self.paths.path, verify=True)
    self.assertEqual([(r['replicate'], r['level'], r['branch']) for r in rows],
                     [(0, 0, 'main'), (0, 1, 'main'), (0, 1, 'reinit')])

  def test_sorting_puts_main_then_the_registered_branches_then_the_others(self):
    rows = [{'replicate': 0, 'level': 0, 'branch': name} for name in ('zz_other', 'random_prune', 'main', 'reinit')]
    self.assertEqual([r['branch'] for r in storage.sort_level_metrics(rows)],
                     ['main', 'reinit', 'random_prune', 'zz_other'])

  def test_find_runs_takes_run_directories_and_folders_of_them(self):
    for name in ('b', 'a'):
      storage.write_json(os.path.join(self.out, name, storage.CONFIG), {})
    run_a, run_b = (os.path.join(self.out, name) for name in ('a', 'b'))
    self.assertEqual(storage.find_runs([self.out]), [run_a, run_b])
    self.assertEqual(storage.find_runs([run_b, self.out]), [run_b, run_a])
    with self.assertRaisesRegex(ValueError, r'missing does not exist'):
      storage.find_runs([os.path.join(self.out, 'missing')])
    with self.assertRaisesRegex(ValueError, r'is neither a run directory \(no config\.json\) nor a folder of run'):
      storage.find_runs([tempfile.mkdtemp(dir=self.get_temp_dir())])


if __name__ == '__main__':
  tf.test.main()
