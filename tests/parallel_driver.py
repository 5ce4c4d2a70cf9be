"""The run of tests/parallel_test.py, and a driver process for it that one of its workers SIGKILLs.

Usage:

  python -m tests.parallel_driver RUN_DIR KILL_AT_STEP

runs `config()` with two local Ray workers; the worker that reaches its
KILL_AT_STEP-th training step SIGKILLs this driver process.
"""

import os
import signal
import sys

from ltp_tfmot import experiment
from tests import fixtures

DATA = fixtures.RUN_DATA
model_fn = fixtures.run_model_fn


def config(**top):
  """2 replicates x levels 0..2 (9 steps each) of a toy MLP, with the reinit control at levels 1 and 2.

  On Keras' loop: compiling a step with XLA costs a job more than its training.
  """
  top = dict({'replicates': 2, 'controls': ('reinit',)}, **top)
  return experiment.RunConfig(
      model='mlp',
      data=experiment.DataConfig(name='toy'),
      training=experiment.TrainingConfig(learning_rate=0.01, batch_size=16, epochs=1, eval_every=3,
                                         jit_compile=False),
      pruning=experiment.PruningConfig(rate=0.5, layer_rates={}, levels=2), **top)


def make(run_dir, cfg=None, **kwargs):
  kwargs.setdefault('model_fn', model_fn)
  kwargs.setdefault('log', lambda line: None)
  return experiment.LotteryExperiment(cfg or config(), run_dir=run_dir, data=DATA, tensorboard=False, **kwargs)


class KillDriver(experiment.RunHooks):
  """In a worker: SIGKILLs the driver at the worker's `step`-th training step."""

  def __init__(self, driver_pid, step):
    self.driver_pid = driver_pid
    self.step = step
    self.steps = 0

  def after_train_step(self):
    self.steps += 1
    if self.steps == self.step:
      os.kill(self.driver_pid, signal.SIGKILL)


class KillWorkerOnce(experiment.RunHooks):
  """SIGKILLs the worker process that reaches its `step`-th training step first; `marker` records that it did."""

  def __init__(self, marker, step):
    self.marker = marker
    self.step = step
    self.steps = 0

  def after_train_step(self):
    self.steps += 1
    if self.steps == self.step and not os.path.exists(self.marker):
      with open(self.marker, 'w') as f:
        f.write(str(os.getpid()))
      os.kill(os.getpid(), signal.SIGKILL)


def main(argv):
  run_dir, step = argv[1], int(argv[2])
  make(run_dir, workers=2, hooks=KillDriver(os.getpid(), step)).run()


if __name__ == '__main__':
  main(sys.argv)
