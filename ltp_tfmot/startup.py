"""TensorFlow's start without its CUDA start-up lines, for the command line, the demo and Ray workers.

Importing TensorFlow on a machine without a GPU driver prints lines from C++
that no log level hides: "All log messages before absl::InitializeLog() ...",
"cudart_stub.cc ... Could not find cuda drivers" (written before TensorFlow
reads TF_CPP_MIN_LOG_LEVEL) and "failed call to cuInit" (an error-level line
when TensorFlow looks for devices). `import_tensorflow` runs the import and
the device search with the process's stderr (file descriptor 2) going to a
temporary file, then writes back every line but those: anything else
TensorFlow or Python printed meanwhile still shows.
"""

import contextlib
import os
import re
import sys
import tempfile

# The lines TensorFlow prints at start where no GPU driver or library is found (C++ logging, GPU-less machines).
START_UP_NOISE = re.compile(
    rb'^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR'
    rb'|[IWE]\d{4} [\d:.]+ +\d+ (cudart_stub\.cc|cuda_platform\.cc|cuda_executor\.cc|cuda_diagnostics\.cc'
    rb'|cuda_dnn\.cc|cuda_fft\.cc|cuda_blas\.cc|gpu_device\.cc|port\.cc)(:\d+)?\] .*'
    rb'|.*TF-TRT Warning: Could not find TensorRT.*)$')


def wants_start_up_lines(verbose=False):
  """Whether TensorFlow's start-up lines should show: with --verbose, or a TF_CPP_MIN_LOG_LEVEL below 2 set."""
  level = os.environ.get('TF_CPP_MIN_LOG_LEVEL', '')
  return verbose or (level.isdigit() and int(level) < 2)


def import_tensorflow():
  """Imports TensorFlow and finds its devices without the start-up lines above; returns the module.

  Sets TF_CPP_MIN_LOG_LEVEL=2 (warnings and info hidden) unless it is set. A
  process that imported TensorFlow already gets it as it is.
  """
  if 'tensorflow' in sys.modules:
    return sys.modules['tensorflow']
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  with _stderr_without(START_UP_NOISE):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.config.list_physical_devices()  # the device search, where cuInit is called
  return tf


@contextlib.contextmanager
def _stderr_without(pattern):
  """Sends file descriptor 2 to a temporary file inside, then writes back the lines that do not match `pattern`."""
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      kept = b''.join(line for line in captured if not pattern.match(line.rstrip(b'\n')))
      if kept:
        os.write(2, kept)
