"""Tests for TensorFlow's start without its CUDA start-up lines."""

import os
import subprocess
import sys
from unittest import mock

import tensorflow as tf

from ltp_tfmot import startup

# Lines TensorFlow 2.21 printed at start on a machine without a GPU driver, at TF_CPP_MIN_LOG_LEVEL=2.
_NOISE = [
    b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR',
    b'I0000 00:00:1796615401.039121    9046 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will '
    b'not be used.',
    b'E0000 00:00:1796615405.130163    9046 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed '
    b'call to cuInit: UNKNOWN ERROR (303)',
]


class StartupTest(tf.test.TestCase):

  def test_the_start_up_lines_are_recognised_and_other_lines_are_not(self):
    for line in _NOISE:
      self.assertTrue(startup.START_UP_NOISE.match(line), line)
    for line in (b'Traceback (most recent call last):', b'ValueError: a real problem',
                 b'E0000 00:00:1796615405.130163    9046 op_kernel.cc:1830] OP_REQUIRES failed: out of memory'):
      self.assertFalse(startup.START_UP_NOISE.match(line), line)

  def test_tensorflow_starts_without_its_start_up_lines_and_keeps_other_output(self):
    code = ('import os, sys\n'
            'from ltp_tfmot import startup\n'
            'tf = startup.import_tensorflow()\n'
            'print(os.environ["TF_CPP_MIN_LOG_LEVEL"], float(tf.constant(1.0) + 1))\n'
            'print("kept", file=sys.stderr)\n')
    env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
    env['PYTHONPATH'] = os.pathsep.join(p for p in sys.path if p)
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, env=env, timeout=120, check=False)
    self.assertEqual(result.returncode, 0, result.stderr)
    self.assertEqual(result.stdout, b'2 2.0\n')
    self.assertEqual(result.stderr, b'kept\n')

  def test_start_up_lines_are_wanted_with_verbose_or_a_level_below_2(self):
    for level, verbose, wanted in ((None, False, False), ('2', False, False), ('3', False, False),
                                   ('0', False, True), (None, True, True)):
      env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
      if level is not None:
        env['TF_CPP_MIN_LOG_LEVEL'] = level
      with mock.patch.dict(os.environ, env, clear=True):
        self.assertEqual(startup.wants_start_up_lines(verbose), wanted, (level, verbose))


if __name__ == '__main__':
  tf.test.main()
