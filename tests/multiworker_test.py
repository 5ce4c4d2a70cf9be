"""Tests of MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1.

Each worker is a subprocess of its own (TF_CONFIG is read when the strategy is
created), given loopback ports picked by binding port 0, bounded in time and
killed at clean-up whatever happens:

- a lottery round (tests/multiworker_worker.py) gives the same masks and
  rewound weights as one device, and both workers (and every replica copy)
  hold the same values;
- `ltp-tfmot run --strategy=multi_worker` on two workers gives the results of
  a one-device run; a worker killed mid-level makes the other stop with a
  clear error, nothing half-written, and running both again resumes.
"""

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from ltp_tfmot import cli
from ltp_tfmot.experiment import storage
from tests import multiworker_worker
from tests import paused_cli

# LeNet-300-100 on 300 embedded MNIST digits: 5 steps per level, 3 levels; on Keras' loop, as a multi-worker run
# on CPUs trains (the one-device reference too: compiling a step with XLA costs more than its training).
RUN_FLAGS = ['--model=lenet_300_100', '--dataset=mnist', '--dataset_source=embedded', '--train_size=300',
             '--epochs=1', '--batch_size=50', '--levels=2', '--nojit_compile', '--notensorboard']
STEPS_PER_LEVEL = 5
WORKER_TIMEOUT_S = 240  # a worker still running after this is killed and the test fails
SURVIVOR_TIMEOUT_S = 120  # how long the surviving worker may take to notice a dead peer and stop


def _free_ports(n):
  sockets = [socket.socket() for _ in range(n)]
  try:
    for s in sockets:
      s.bind(('127.0.0.1', 0))
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def _env(tmp, **extra):
  env = {k: v for k, v in os.environ.items() if k != 'TF_CONFIG'}
  env.update(PYTHONPATH=os.pathsep.join(p for p in sys.path if p), TF_CPP_MIN_LOG_LEVEL='2', TMPDIR=tmp)
  env.update(extra)
  return env


def _read(path):
  with open(path, errors='replace') as f:
    return f.read()


class _Workers:
  """Starts the processes of a cluster of workers and makes sure they end."""

  def __init__(self, test, tmp, name, count=2):
    self.test, self.tmp, self.name = test, tmp, name
    self.ports = _free_ports(count)
    self.procs, self.logs = [], []

  def tf_config(self, index):
    return json.dumps({'cluster': {'worker': [f'127.0.0.1:{p}' for p in self.ports]},
                       'task': {'type': 'worker', 'index': index}})

  def start(self, args):
    """Starts every worker: `python <args>` (a list, or a function of the worker index giving one)."""
    for index in range(len(self.ports)):
      log = os.path.join(self.tmp, f'{self.name}_worker_{index}.log')
      env = _env(self.tmp, TF_CONFIG=self.tf_config(index))
      command = [sys.executable] + (args(index) if callable(args) else args)
      with open(log, 'w') as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
      self.test.addCleanup(self._stop, proc)
      self.procs.append(proc)
      self.logs.append(log)

  @staticmethod
  def _stop(proc):
    if proc.poll() is None:
      proc.kill()
    proc.wait()

  def wait(self, index, timeout):
    """The exit status of worker `index`, killing it (and failing) if it runs past `timeout` seconds."""
    try:
      return self.procs[index].wait(timeout=timeout)
    except subprocess.TimeoutExpired:
      for proc in self.procs:
        self._stop(proc)
      self.test.fail(f'{self.name}: worker {index} still runs after {timeout}s; its log:\n{self.log(index)[-3000:]}')

  def wait_all(self):
    deadline = time.time() + WORKER_TIMEOUT_S
    return [self.wait(i, max(1.0, deadline - time.time())) for i in range(len(self.procs))]

  def log(self, index):
    return _read(self.logs[index])

  def wait_for_marker(self, index, timeout=WORKER_TIMEOUT_S):
    deadline = time.time() + timeout
    while time.time() < deadline:
      if paused_cli.MARKER in self.log(index):
        return
      if self.procs[index].poll() is not None:
        self.test.fail(f'{self.name}: worker {index} ended before its pause point:\n{self.log(index)[-3000:]}')
      time.sleep(0.05)
    self.test.fail(f'{self.name}: worker {index} did not reach its pause point in {timeout}s')


class MultiWorkerRoundTest(tf.test.TestCase):

  def test_round_on_two_workers_matches_one_device_and_every_copy_agrees(self):
    tmp = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)  # runs last, after the workers are stopped
    outs = [os.path.join(tmp, f'worker_{i}.npz') for i in range(2)]
    workers = _Workers(self, tmp, 'round')
    workers.start(lambda index: ['-m', 'tests.multiworker_worker', f'--out={outs[index]}'])
    statuses = workers.wait_all()
    for index, status in enumerate(statuses):
      self.assertEqual(status, 0, f'worker {index} failed:\n{workers.log(index)[-3000:]}')

    reference = multiworker_worker.model_arrays(multiworker_worker.lottery_round(tf.distribute.get_strategy()))
    results = [dict(np.load(out)) for out in outs]
    for result in results:
      self.assertEqual(int(result['num_replicas_in_sync']), 2)
      self.assertAllEqual(result['rounds_done'], [1, 1, 1])
    names = [k for k in reference if k.startswith(('mask/', 'weight/', 'snapshot/'))]
    self.assertLen([k for k in names if k.startswith('mask/')], 3)
    for name in names:
      first, second = results[0][name], results[1][name]
      self.assertAllEqual(first, second, msg=f'{name} differs between the workers')
      copies = [v for k, v in results[0].items() if k.startswith(f'copy/{name}/')]
      copies += [v for k, v in results[1].items() if k.startswith(f'copy/{name}/')]
      self.assertNotEmpty(copies)
      for copy in copies:
        self.assertAllEqual(copy, first, msg=f'a replica copy of {name} differs')
      if name.startswith('mask/'):
        self.assertAllEqual(first, reference[name], msg=name)
      else:
        self.assertAllClose(first, reference[name], rtol=1e-5, atol=1e-6, msg=name)
    alive = sum(int(np.count_nonzero(results[0][k])) for k in names if k.startswith('mask/'))
    total = sum(results[0][k].size for k in names if k.startswith('mask/'))
    self.assertEqual(alive, total // 2)



def _level_arrays(run_dir, level, name):
  return storage.load_arrays(os.path.join(run_dir, 'replicate_0', f'level_{level}', 'main', name))


class MultiWorkerRunnerTest(tf.test.TestCase):

  def _check_nothing_half_written(self, run_dir):
    """Every level with a manifest matches it, and every file at a final name reads completely."""
    paths = storage.RunDirectory(run_dir)
    for root, _, files in os.walk(run_dir):
      for name in files:
        path = os.path.join(root, name)
        if name.endswith('.npz'):
          storage.load_arrays(path)
        elif name.endswith('.json'):
          storage.read_json(path)
    for level in range(3):
      self.assertIn(paths.verify(0, level), (None, ''), f'level {level}')

  def test_cli_on_two_workers_matches_one_device_survives_a_killed_worker_and_resumes(self):
    tmp = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)  # runs last, after the workers are stopped
    reference_out, out = os.path.join(tmp, 'reference'), os.path.join(tmp, 'runs')
    self.assertEqual(cli.main(['ltp-tfmot', 'run', f'--out={reference_out}'] + RUN_FLAGS), 0)
    reference_dir = storage.find_runs([reference_out])[0]
    run_dir = os.path.join(out, os.path.basename(reference_dir))
    rng = random.Random(int(os.environ.get('LTP_TFMOT_KILL_SEED', '0')))
    # A step of level 1 or 2, not a level's last one (after which the survivor may write that level or finish).
    victim = rng.randrange(2)
    step = rng.choice([s for s in range(STEPS_PER_LEVEL + 1, 3 * STEPS_PER_LEVEL) if s % STEPS_PER_LEVEL])
    run_args = ['run', '--strategy=multi_worker', f'--out={out}'] + RUN_FLAGS
    args = ['-m', 'ltp_tfmot.cli'] + run_args
    plan = f'worker {victim} killed after training step {step}'

    killed = _Workers(self, tmp, 'killed')
    killed.start(lambda index: ['-m', 'tests.paused_cli', f'--pause_at=train@{step}'] + run_args if index == victim
                 else args)
    killed.wait_for_marker(victim)
    killed.procs[victim].kill()
    killed.procs[victim].wait()
    survivor = 1 - victim
    start = time.time()
    status = killed.wait(survivor, SURVIVOR_TIMEOUT_S)
    log = killed.log(survivor)
    self.assertEqual(status, 1, f'{plan}; survivor log:\n{log[-3000:]}')
    self.assertIn('another worker of this multi-worker run died or cannot be reached', log)
    self.assertIn('Start every worker again with the same command to resume', log)
    self.assertLess(time.time() - start, SURVIVOR_TIMEOUT_S)
    self._check_nothing_half_written(run_dir)
    done_before = [level for level in range(3) if storage.RunDirectory(run_dir).verify(0, level) == '']
    self.assertLess(len(done_before), 3, plan)

    resumed = _Workers(self, tmp, 'resumed')
    resumed.start(args)
    for index, status in enumerate(resumed.wait_all()):
      self.assertEqual(status, 0, f'{plan}; resumed worker {index}:\n{resumed.log(index)[-3000:]}')
    self.assertIn(f'{len(done_before)} done earlier, {3 - len(done_before)} to run', resumed.log(0))
    chief_log, other_log = resumed.log(0), resumed.log(1)
    self.assertIn('worker worker:0 (chief)', chief_log)
    self.assertIn('worker worker:1 (not the chief)', other_log)
    shadow = other_log.split('worker worker:1 writes its files to ')[1].split(' ')[0]
    self.assertFalse(os.path.exists(shadow), 'the non-chief worker left its temporary directory')
    self._check_nothing_half_written(run_dir)
    self.assertFalse([n for _, _, files in os.walk(run_dir) for n in files if storage.is_temp_file(n)])

    results, expected = storage.load_level_metrics(run_dir), storage.load_level_metrics(reference_dir)
    self.assertEqual([(r['level'], r['branch']) for r in results], [(0, 'main'), (1, 'main'), (2, 'main')])
    for got, want in zip(results, expected, strict=True):
      for key in ('weights_remaining', 'weights_alive', 'early_stop_iteration', 'best_val_iteration'):
        self.assertEqual(got[key], want[key], key)
      for key in ('test_accuracy', 'test_loss', 'best_val_accuracy', 'supermask_accuracy', 'supermask_loss'):
        self.assertAllClose(got[key], want[key], rtol=1e-4, atol=1e-4, msg=key)
    for level in range(3):
      got, want = _level_arrays(run_dir, level, storage.MASKS), _level_arrays(reference_dir, level, storage.MASKS)
      for key in want:
        if key.startswith('mask_'):
          self.assertAllEqual(got[key], want[key], msg=f'level {level} {key}')
        elif key.startswith(('snapshot_0', 'other_0')):
          self.assertAllClose(got[key], want[key], rtol=1e-5, atol=1e-5, msg=f'level {level} {key}')
      got, want = _level_arrays(run_dir, level, storage.WEIGHTS), _level_arrays(reference_dir, level, storage.WEIGHTS)
      for key in want:
        if key.startswith('weight_0'):
          self.assertAllClose(got[key], want[key], rtol=1e-4, atol=1e-5, msg=f'level {level} {key}')


if __name__ == '__main__':
  tf.test.main()
