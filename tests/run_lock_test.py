"""Tests of a run directory's lock: one holder at a time, a dead holder's lock taken over, only one's own released."""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile

import tensorflow as tf

from ltp_tfmot import errors
from ltp_tfmot.experiment import run_lock
from ltp_tfmot.experiment import storage


def _dead_pid():
  """The pid of a process that has ended."""
  return int(subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True,
                            check=True).stdout)


class RunLockTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.directory = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'run')

  def _write_lock(self, **holder):
    os.makedirs(self.directory, exist_ok=True)
    with open(os.path.join(self.directory, run_lock.LOCK), 'w') as f:
      json.dump(dict({'host': socket.gethostname(), 'started': '2026-01-01 00:00:00 UTC', 'command': 'ltp-tfmot'},
                     **holder), f)

  def test_a_second_lock_while_the_first_holds_it_is_refused_naming_the_first(self):
    first = run_lock.RunLock(self.directory)
    first.take()
    self.addCleanup(first.release)
    with open(first.path) as f:
      holder = json.load(f)
    self.assertEqual((holder['pid'], holder['host']), (os.getpid(), socket.gethostname()))
    with self.assertRaisesRegex(errors.RunLockedError,
                                f'^run directory {re.escape(self.directory)} is in use by process {os.getpid()} on '
                                f'{re.escape(socket.gethostname())} \\(started [-0-9: ]+ UTC.*\\), so this run did '
                                'nothing: wait for it to end or stop it, then run the same command again$'):
      run_lock.RunLock(self.directory).take()

  def test_a_claim_takes_the_lock_and_a_second_claim_is_refused(self):
    meta = {'name': 'run'}
    first = storage.RunDirectory(self.directory)
    first.claim(meta, lambda stored: [])
    self.addCleanup(first.lock.release)
    with self.assertRaises(errors.RunLockedError):
      storage.RunDirectory(self.directory).claim(meta, lambda stored: [])

  def test_the_lock_of_a_dead_process_is_taken_over(self):
    self._write_lock(pid=_dead_pid())
    lock = run_lock.RunLock(self.directory)
    lock.take()
    with open(lock.path) as f:
      self.assertEqual(json.load(f)['pid'], os.getpid())
    lock.release()
    self.assertEqual(os.listdir(self.directory), [])

  def test_another_hosts_lock_is_refused_naming_the_file_to_delete(self):
    self._write_lock(pid=1, host='elsewhere')
    lock_path = os.path.join(self.directory, run_lock.LOCK)
    with self.assertRaisesRegex(errors.RunLockedError, f'in use by process 1 on elsewhere .*run the same command '
                                f'again \\(if it is gone, delete {re.escape(lock_path)}\\)$'):
      run_lock.RunLock(self.directory).take()
    self.assertEqual(os.listdir(self.directory), [run_lock.LOCK])

  def test_release_leaves_a_lock_another_process_took_since(self):
    lock = run_lock.RunLock(self.directory)
    lock.take()
    self._write_lock(pid=1, host='elsewhere')  # as if this lock had been taken over
    lock.release()
    self.assertEqual(os.listdir(self.directory), [run_lock.LOCK])
    run_lock.RunLock(self.directory).release()  # one never taken: nothing to do
    self.assertEqual(os.listdir(self.directory), [run_lock.LOCK])


if __name__ == '__main__':
  tf.test.main()
