"""Tests for the watchdog that ends a local Ray's processes (ltp_tfmot.experiment.ray_watchdog), without Ray.

A sleeping child process whose environment holds the watchdog's marker stands in for a process of a local Ray.
"""

import os
import signal
import subprocess
import sys
import tempfile
import unittest

import tensorflow as tf

from ltp_tfmot.experiment import ray_watchdog


@unittest.skipUnless(os.path.isdir('/proc'), 'the watchdog finds processes through /proc')
class RayWatchdogTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.session_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.token = f'token-{os.getpid()}-{self.id()}'

  def _marked_child(self, token):
    """A sleeping child process with `MARKER=token` in its environment (killed at the end of the test)."""
    env = dict(os.environ, **{ray_watchdog.MARKER: token})
    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], env=env)
    self.addCleanup(child.wait)
    self.addCleanup(child.kill)
    return child

  def test_ray_processes_are_the_marked_ones_and_never_the_driver(self):
    marked = self._marked_child(self.token)
    other = self._marked_child('another-token')
    self.assertEqual(ray_watchdog.ray_processes(self.token, self.session_dir, os.getpid()), [marked.pid])
    self.assertEqual(ray_watchdog.ray_processes(self.token, self.session_dir, marked.pid), [])
    self.assertNotIn(other.pid, ray_watchdog.ray_processes(self.token, self.session_dir, os.getpid()))

  def test_end_ray_processes_kills_the_marked_ones_only(self):
    marked = self._marked_child(self.token)
    other = self._marked_child('another-token')
    ray_watchdog.end_ray_processes(self.token, self.session_dir, os.getpid())
    self.assertEqual(marked.wait(timeout=10), -signal.SIGKILL)
    self.assertIsNone(other.poll())

  def test_stopping_the_watchdog_ends_the_marked_processes_and_the_watchdog(self):
    marked = self._marked_child(self.token)
    watchdog = ray_watchdog.start(self.token, self.session_dir)
    self.addCleanup(watchdog.process.kill)
    self.assertIsNone(watchdog.process.poll())
    watchdog.stop()
    self.assertEqual(watchdog.process.returncode, 0)
    self.assertEqual(marked.wait(timeout=10), -signal.SIGKILL)
    watchdog.stop()  # a second stop does nothing


if __name__ == '__main__':
  tf.test.main()
