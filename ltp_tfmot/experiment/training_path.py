"""The numeric path a level trains on: recorded with the level, chosen for speed, kept when a run resumes.

Two trainings from the same weights on the same batches compute the same
floats only on the same numeric path: XLA (`jit_compile`) or Keras' step by
step ops, the number of threads CPU kernels split their sums over, the
precision, the TensorFlow version and the CPU. A difference in the last bit
grows over training (the Adam and SGD steps of a network learning fast
amplify it about threefold per step early on), so two paths end with masks
that differ at the pruning cut-off and accuracies that differ by as much as
two runs of one path from initial weights one float32 ulp apart. Steps per
execution change nothing: the same path gives the same floats with 1 or 50.

So each level records its path (`current`), a resumed run compares its own
with the recorded ones (`changes`) and refuses to mix them unless told to,
and `choose_jit_compile` picks the faster path where the config leaves it
open: on a CPU, XLA makes networks of convolutions slower (Conv-4 1.1-1.2x,
ResNet-20 1.9-2.9x) and LeNet-300-100 faster (0.6-0.8x the step time;
BENCHMARKS.md, "Default training path").
"""

import os
import platform

from ltp_tfmot import errors

# TensorFlow is imported where a function needs it: `ltp-tfmot report` describes recorded paths without loading it.

# The recorded settings that change the floats of a training, in the order a refusal names them.
NUMERIC = ('jit_compile', 'threads', 'precision', 'tensorflow', 'cpu')
# Those a process can be rerun with; the others belong to the machine.
_RERUNNABLE = {'jit_compile': lambda v: '--jit_compile' if v else '--nojit_compile',
               'threads': lambda v: f'--threads={v}', 'precision': lambda v: f'--precision={v}'}
_CONVOLUTIONS = ('Conv1D', 'Conv2D', 'Conv3D', 'SeparableConv1D', 'SeparableConv2D', 'DepthwiseConv1D',
                 'DepthwiseConv2D')  # Keras layer classes


TrainingPathChangedError = errors.TrainingPathChangedError


def cpu_model():
  """The CPU's model name (/proc/cpuinfo's 'model name', else `platform.processor()` or the architecture)."""
  try:
    with open('/proc/cpuinfo', encoding='utf-8') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine() or 'unknown'


def _cores():
  return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1


def threads():
  """(intra-op, inter-op) threads of TensorFlow in this process; TensorFlow's 0 (its default) is the core count."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return (tf.config.threading.get_intra_op_parallelism_threads() or _cores(),
          tf.config.threading.get_inter_op_parallelism_threads() or _cores())


def has_gpu():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return bool(tf.config.list_physical_devices('GPU'))


def has_convolutions(model):
  """Whether any layer of `model` (wrapped or nested ones included) is a convolution."""
  import tf_keras as keras  # pylint: disable=g-import-not-at-top
  convolutions = tuple(getattr(keras.layers, name) for name in _CONVOLUTIONS)
  return any(isinstance(m, convolutions) for m in model.submodules)


def choose_jit_compile(model, gpu=None):
  """(jit_compile, why) for a model whose config leaves `jit_compile` to the runner.

  XLA on a GPU; on a CPU only for a model without convolutions: measured on
  CPUs, XLA steps LeNet-300-100 in 0.6-0.8x the time of Keras' loop, Conv-4
  in 1.1-1.2x and ResNet-20 in 1.9-2.9x (BENCHMARKS.md, "Default training
  path"; a GPU is not measured yet).
  """
  if has_gpu() if gpu is None else gpu:
    return True, 'auto: on a GPU'
  if has_convolutions(model):
    return False, 'auto: off for convolutions on a CPU, where XLA is slower'
  return True, 'auto: on for a model without convolutions on a CPU, where XLA is faster'


def current(jit_compile, steps_per_execution, precision, thread_counts=None, reason=None):
  """The path record of a level trained in this process (`thread_counts`: (intra, inter), default this process')."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  intra, inter = thread_counts if thread_counts is not None else threads()
  record = {'jit_compile': bool(jit_compile), 'steps_per_execution': int(steps_per_execution), 'threads': int(intra),
            'inter_op_threads': int(inter), 'precision': precision, 'tensorflow': tf.__version__, 'cpu': cpu_model()}
  if reason:
    record['jit_compile_reason'] = reason
  return record


def describe(record):
  """A short line of a path record: 'XLA, 50 steps per execution, 2 threads, float32, TF 2.21.0, <CPU>'."""
  return (f'{"XLA" if record.get("jit_compile") else "no XLA"}, {record.get("steps_per_execution")} steps per '
          f'execution, {record.get("threads")} thread(s), {record.get("precision")}, TF {record.get("tensorflow")}, '
          f'{record.get("cpu")}')


def changes(recorded, here):
  """[(setting, recorded value, value here)] of the NUMERIC settings in which two path records differ."""
  return [(key, recorded.get(key), here.get(key)) for key in NUMERIC
          if key in recorded and recorded.get(key) != here.get(key)]


def describe_changes(found):
  """'jit_compile True -> False, threads 2 -> 1' of `changes(...)`."""
  return ', '.join(f'{key} {old!r} -> {new!r}' for key, old, new in found)


def refusal(run_dir, found, levels):
  """The one-line `TrainingPathChangedError` for resuming `run_dir` on a path that differs in `found`."""
  what = '; '.join(f'{key} was {old!r} there and is {new!r} here' for key, old, new in found)
  fixes = [_RERUNNABLE[key](old) for key, old, _ in found if key in _RERUNNABLE]
  fixed = [key for key, _, _ in found if key in _RERUNNABLE]
  machine = [key for key, _, _ in found if key not in _RERUNNABLE]
  rerun = f'rerun with {" ".join(fixes)} (as recorded)' if fixes else ''
  if machine:
    rerun += (' and ' if rerun else '') + (f'run on a machine with the recorded {" and ".join(machine)} '
                                           '(it cannot be set here)')
  return TrainingPathChangedError(
      f'run directory {run_dir} trained {levels} on another numeric path ({what}), which changes the floats and so '
      f'the masks: {rerun}, or pass --accept_training_path_change (accept_training_path_change=True) to go on and '
      f'record the change of {", ".join(fixed + machine)} in the report; nothing was changed')
