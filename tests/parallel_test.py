"""Tests for the jobs of a run in parallel on a local Ray (127.0.0.1), and for failed jobs.

A parallel run with two workers gives the serial run's masks and metrics
(exactly: every job rebuilds its level from the run directory as a resumed
serial run does), also when one worker is SIGKILLed mid-job (Ray runs the job
again) and when the driver is SIGKILLed (the same command resumes, losing no
finished level). A job that fails is recorded with its error and not retried;
the jobs that need it are not started.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

import ltp_tfmot
from ltp_tfmot.experiment import parallel
from ltp_tfmot.experiment import ray_watchdog
from ltp_tfmot.experiment import storage
from tests import fixtures
from tests import parallel_driver

_JOBS = [(r, level, branch) for r in range(2) for level in range(3)
         for branch in (['main'] + (['reinit'] if level else []))]
_METRICS = ('weights_remaining', 'weights_alive', 'test_accuracy', 'test_loss', 'best_val_accuracy',
            'best_val_iteration', 'early_stop_iteration', 'supermask_accuracy', 'curve')
_TIMEOUT_S = 300
# LeNet-300-100 on 300 embedded MNIST digits, one epoch at batch 50, one level and the reinit control: 3 jobs, on
# Keras' loop (compiling with XLA costs each job more than its training).
_CLI_RUN_FLAGS = ['--model=lenet_300_100', '--dataset=mnist', '--dataset_source=embedded', '--train_size=300',
                  '--test_size=200', '--epochs=1', '--batch_size=50', '--eval_every=5', '--levels=1',
                  '--controls=reinit', '--nojit_compile', '--notensorboard']


def _outputs(run_dir, jobs=tuple(_JOBS)):
  """{job: (masks, metrics)} of every finished job of a run directory."""
  paths = storage.RunDirectory(run_dir)
  outputs = {}
  for job in jobs:
    if paths.verify(*job) == '':
      metrics = storage.read_json(paths.file(*job, storage.METRICS_JSON))
      outputs[job] = (storage.load_masks(run_dir, *job)['masks'], {k: metrics[k] for k in _METRICS})
  return outputs


def _diverging_mlp(input_shape, num_classes, seed):
  """The toy MLP, with a NaN weight for replicate 0 (seed 0): its loss is NaN from the first step."""
  model = parallel_driver.model_fn(input_shape, num_classes, seed)
  if seed == 0:
    kernel = model.layers[0].kernel
    kernel.assign(tf.tensor_scatter_nd_update(kernel, [[0, 0]], [np.nan]))
  return model


@contextlib.contextmanager
def _without_ray():
  """`import ray` fails inside, as where Ray is not installed.

  Only the entry of `ray` is set and restored: `mock.patch.dict(sys.modules)`
  would also drop the modules first imported inside, and a later import
  would make second copies of their classes.
  """
  saved = sys.modules.get('ray')
  sys.modules['ray'] = None
  try:
    yield
  finally:
    if saved is None:
      del sys.modules['ray']
    else:
      sys.modules['ray'] = saved


def _env(tmp):
  env = {k: v for k, v in os.environ.items() if k != 'TF_CONFIG'}
  env.update(PYTHONPATH=os.pathsep.join(p for p in sys.path if p), TF_CPP_MIN_LOG_LEVEL='2', TMPDIR=tmp)
  return env


def _processes_of(tmp):
  """{pid: command line} of the processes started with TMPDIR=tmp (a driver's Ray and its workers)."""
  found = {}
  for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
      with open(f'/proc/{pid}/environ', 'rb') as f:
        if f'TMPDIR={tmp}'.encode() not in f.read().split(b'\0'):
          continue
      with open(f'/proc/{pid}/cmdline', 'rb') as f:
        found[int(pid)] = f.read().replace(b'\0', b' ').decode(errors='replace')
    except OSError:  # gone, or not ours to read
      continue
  return found


def _job_processes_of(tmp):
  return [pid for pid, command in _processes_of(tmp).items() if command.startswith(('ray::_Worker', 'ray::IDLE'))]


def _job_processes_of_ray(pool):
  """The pids of a pool's worker processes."""
  return sorted(pool.ray.get([actor.__ray_call__.remote(lambda self: os.getpid()) for actor in pool.actors]))


def _kill_processes_of(tmp):
  """Removes what a failed test leaves running (a local Ray's processes end with their driver, however it ends)."""
  for pid in _processes_of(tmp):
    try:
      os.kill(pid, signal.SIGKILL)
    except OSError:
      pass


def _tree(path):
  return {os.path.join(root, name): os.stat(os.path.join(root, name)).st_mtime_ns
          for root, _, names in os.walk(path) for name in names}


class ParallelRunTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='ltp_parallel_test_')
    cls.serial_dir = os.path.join(cls.tmp, 'serial')
    parallel_driver.make(cls.serial_dir).run()
    cls.serial = _outputs(cls.serial_dir)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def _assert_equals_serial(self, run_dir):
    outputs = _outputs(run_dir)
    self.assertCountEqual(outputs, _JOBS)
    for job in _JOBS:
      masks, metrics = outputs[job]
      want_masks, want_metrics = self.serial[job]
      for got, want in zip(masks, want_masks, strict=True):
        self.assertAllEqual(got, want, msg=f'masks of {job}')
      self.assertEqual(metrics, want_metrics, msg=f'metrics of {job}')
    self.assertEqual([name for _, _, names in os.walk(run_dir) for name in names if storage.is_temp_file(name)], [])

  def test_two_workers_equal_the_serial_run_when_a_worker_is_killed_mid_job(self):
    run_dir = os.path.join(self.tmp, 'worker_killed')
    marker = os.path.join(self.tmp, 'worker_killed.pid')
    results = parallel_driver.make(run_dir, workers=2,
                                   hooks=parallel_driver.KillWorkerOnce(marker, step=13)).run()

    self.assertTrue(os.path.exists(marker), 'no worker was killed')
    self.assertLen(results, len(_JOBS))
    self._assert_equals_serial(run_dir)
    with open(storage.RunDirectory(run_dir).results_path) as f:
      self.assertLen(f.read().strip().splitlines(), 1 + len(_JOBS))

  def test_a_killed_driver_loses_nothing_and_the_same_command_finishes_the_run(self):
    run_dir = os.path.join(self.tmp, 'driver_killed')
    driver_tmp = tempfile.mkdtemp(dir=self.tmp)
    self.addCleanup(_kill_processes_of, driver_tmp)
    driver = subprocess.run([sys.executable, '-m', 'tests.parallel_driver', run_dir, '12'], env=_env(driver_tmp),
                            capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    self.assertEqual(driver.returncode, -9, driver.stderr[-3000:])
    # Its workers die with the local Ray (a job that was writing may finish first): then nothing changes.
    deadline = time.time() + _TIMEOUT_S
    while _job_processes_of(driver_tmp):
      self.assertLess(time.time(), deadline, 'the killed driver\'s workers are still running')
      time.sleep(0.5)
    before = _tree(run_dir)
    time.sleep(2)
    self.assertEqual(_tree(run_dir), before)
    done = _outputs(run_dir)
    self.assertNotEmpty(done)
    self.assertLess(len(done), len(_JOBS))
    for job, (masks, metrics) in done.items():
      self.assertEqual(metrics, self.serial[job][1])
      for got, want in zip(masks, self.serial[job][0], strict=True):
        self.assertAllEqual(got, want)

    parallel_driver.make(run_dir, workers=2).run()
    self._assert_equals_serial(run_dir)

  def test_one_pool_runs_two_experiments_in_turn_each_equal_to_the_serial_run(self):
    with ltp_tfmot.experiment.WorkerPool(workers=2) as pool:
      first = _job_processes_of_ray(pool)
      for name in ('pool_first', 'pool_second'):
        run_dir = os.path.join(self.tmp, name)
        self.assertLen(parallel_driver.make(run_dir, pool=pool).run(), len(_JOBS))
        self._assert_equals_serial(run_dir)
      self.assertEqual(_job_processes_of_ray(pool), first)  # the same two workers served both runs
      with self.assertRaisesRegex(ValueError, 'give workers / ray_address or a pool, not both'):
        parallel_driver.make(os.path.join(self.tmp, 'refused'), pool=pool, workers=2)
    closed_dir = os.path.join(self.tmp, 'closed_pool')
    with self.assertRaisesRegex(ValueError, 'this WorkerPool is closed'):
      parallel_driver.make(closed_dir, pool=pool).run()
    self.assertFalse(os.path.exists(closed_dir))

  def test_cli_with_two_workers_equals_a_one_thread_serial_run_bit_for_bit(self):
    serial_dir, parallel_dir = os.path.join(self.tmp, 'cli_serial'), os.path.join(self.tmp, 'cli_parallel')
    # A process of its own: TensorFlow's thread pools are set before it starts, which this one has done already.
    serial = subprocess.run([sys.executable, '-m', 'ltp_tfmot.cli', 'run', f'--run_dir={serial_dir}', '--threads=1',
                             *_CLI_RUN_FLAGS], env=_env(self.tmp), capture_output=True, text=True,
                            timeout=_TIMEOUT_S, check=False)
    self.assertEqual(serial.returncode, 0, serial.stderr[-3000:])
    self.assertNotIn('not applied', serial.stdout)

    status, stdout, stderr = fixtures.run_cli('run', f'--run_dir={parallel_dir}', '--workers=2', *_CLI_RUN_FLAGS)
    self.assertEqual(status, 0, stderr)
    self.assertIn('Running 3 jobs on 2 Ray worker(s) (1 thread(s) each, this machine)', stdout)
    self.assertIn('| Level | Weights remaining | Ticket acc. | Reinit acc. |', stdout)
    jobs = [(0, 0, 'main'), (0, 1, 'main'), (0, 1, 'reinit')]
    want, got = _outputs(serial_dir, jobs), _outputs(parallel_dir, jobs)
    self.assertCountEqual(got, jobs)
    for job in jobs:
      for got_mask, want_mask in zip(got[job][0], want[job][0], strict=True):
        self.assertAllEqual(got_mask, want_mask, msg=f'masks of {job}')
      self.assertEqual(got[job][1], want[job][1], msg=f'metrics of {job}')

  def test_a_local_ray_writes_nothing_into_the_home_directory(self):
    # Ray writes a new auth token to ~/.ray unless it finds one: that fails where the home is read-only (a test
    # sandbox) and leaves state behind elsewhere. A process of its own: this one's environment has a token already.
    home = tempfile.mkdtemp(dir=self.tmp)
    env = {k: v for k, v in _env(self.tmp).items() if not k.startswith('RAY_AUTH_')}
    # Keras' and matplotlib's caches have settings of their own (in a sandbox they fall back to the temp directory).
    env.update(HOME=home, KERAS_HOME=os.path.join(self.tmp, 'keras'), MPLCONFIGDIR=os.path.join(self.tmp, 'mpl'))
    script = ('from ltp_tfmot.experiment import parallel\n'
              'with parallel.WorkerPool(workers=1) as pool:\n'
              '  print(pool.ray.get(pool.actors[0].__ray_call__.remote(lambda self: "worker ready")))\n')
    started = subprocess.run([sys.executable, '-c', script], env=env, capture_output=True, text=True,
                             timeout=_TIMEOUT_S, check=False)
    self.assertEqual(started.returncode, 0, started.stderr[-3000:])
    self.assertIn('worker ready', started.stdout)
    self.assertEqual(os.listdir(home), [])

  def test_failed_jobs_are_recorded_with_their_error_and_their_dependents_not_started(self):
    run_dir = os.path.join(self.tmp, 'failing')
    experiment = parallel_driver.make(run_dir, model_fn=_diverging_mlp, workers=2)
    with self.assertRaisesRegex(ltp_tfmot.JobsFailedError,
                                r'1 job\(s\) .* failed: replicate 0 level 0 main: TrainingDivergedError: .*training '
                                r'loss is nan at iteration 1.*4 job\(s\) that need them were not started'):
      experiment.run()

    paths = storage.RunDirectory(run_dir)
    record = paths.failure(0, 0, 'main')
    self.assertStartsWith(record['error'], 'TrainingDivergedError: replicate 0 level 0 main')
    self.assertIn('TrainingDivergedError', record['traceback'])
    self.assertCountEqual(_outputs(run_dir), [job for job in _JOBS if job[0] == 1])
    for job in _JOBS[1:]:
      self.assertIsNone(paths.failure(*job))

  def test_a_serial_run_records_a_diverged_level_and_stops(self):
    run_dir = os.path.join(self.tmp, 'failing_serial')
    with self.assertRaisesRegex(ltp_tfmot.TrainingDivergedError,
                                'replicate 0 level 0 main: the training loss is nan at iteration 1'):
      parallel_driver.make(run_dir, model_fn=_diverging_mlp).run()
    self.assertStartsWith(storage.RunDirectory(run_dir).failure(0, 0, 'main')['error'], 'TrainingDivergedError')
    self.assertEmpty(_outputs(run_dir))


class _FinishInOrder:
  """A stand-in for Ray's task API in which jobs end in the order they started; it records who ran what."""

  class exceptions:  # pylint: disable=invalid-name
    RayError = RuntimeError

  def __init__(self):
    self.ran = []

  def worker(self, name):
    fake = self

    class _Method:
      def remote(self, spec, job):
        del spec
        fake.ran.append((name, job))
        return len(fake.ran)

    return type('Worker', (), {'run': _Method()})()

  def wait(self, refs, num_returns):
    return sorted(refs)[:num_returns], None

  def get(self, ref):
    del ref
    return {'weights_remaining': 1.0, 'test_accuracy': 0.5, 'best_val_accuracy': 0.5, 'early_stop_iteration': 3,
            'supermask_accuracy': 0.1, 'wall_time_s': 1.0}


class ScheduleTest(tf.test.TestCase):

  def test_each_main_level_runs_on_the_worker_that_ran_the_level_before(self):
    ray = _FinishInOrder()
    experiment = parallel_driver.make(os.path.join(self.get_temp_dir(), 'unused'), parallel_driver.config(replicates=1))
    jobs = [(0, level, branch) for level in range(3) for branch in (['main'] + (['reinit'] if level else []))]
    parallel._schedule(ray, experiment, [ray.worker('a'), ray.worker('b')], None, list(jobs))

    self.assertCountEqual([job for _, job in ray.ran], jobs)
    self.assertEqual({name for name, job in ray.ran if job[2] == 'main'}, {'a'})  # b ran only the controls


# A driver that starts a local Ray with two workers, says so once they run, and waits to be killed.
_WAITING_DRIVER = """
import os, time
from ltp_tfmot.experiment import parallel
pool = parallel.WorkerPool(2)
pool.ray.get([actor.__ray_call__.remote(lambda self: os.getpid()) for actor in pool.actors])
print('ready', flush=True)
time.sleep(600)
"""
_RAY_AGENTS = ('ray::DashboardAgent', 'ray::RuntimeEnvAgent')


class LocalRayLifetimeTest(tf.test.TestCase):

  def _wait(self, condition, what, timeout_s=60):
    deadline = time.time() + timeout_s
    while not condition():
      self.assertLess(time.time(), deadline, what)
      time.sleep(0.2)

  def test_every_process_of_a_local_ray_ends_when_its_driver_is_killed(self):
    tmp = tempfile.mkdtemp(prefix='ltp_ray_lifetime_')
    self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
    self.addCleanup(_kill_processes_of, tmp)
    driver = subprocess.Popen([sys.executable, '-c', _WAITING_DRIVER], env=_env(tmp), stdout=subprocess.PIPE,
                              text=True)
    self.addCleanup(driver.kill)
    self.assertEqual(driver.stdout.readline(), 'ready\n')
    driver.stdout.close()
    watchdog, = [command.split() for command in _processes_of(tmp).values() if 'ray_watchdog' in command]
    token, session_dir = watchdog[3:5]
    self.addCleanup(ray_watchdog.end_ray_processes, token, session_dir, driver.pid)  # if the test fails
    ray_processes = lambda: [_command_of(pid) for pid in ray_watchdog.ray_processes(token, session_dir, driver.pid)]
    # Ray's agents outlived a killed driver before the watchdog: the test is moot until they run.
    self._wait(lambda: all(any(command.startswith(agent) for command in ray_processes()) for agent in _RAY_AGENTS),
               'Ray started no agents')
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    self._wait(lambda: not ray_processes() and not _processes_of(tmp),
               'processes of the killed driver\'s Ray are still running', timeout_s=20)


def _command_of(pid):
  try:
    with open(f'/proc/{pid}/cmdline', 'rb') as f:
      return f.read().replace(b'\0', b' ').decode(errors='replace')
  except OSError:
    return ''


class ParallelArgumentsTest(tf.test.TestCase):

  def test_bad_workers_and_strategies_are_refused_before_anything_is_written(self):
    run_dir = os.path.join(self.get_temp_dir(), 'refused')
    for kwargs, message in [
        ({'workers': 0}, r'workers must be an integer >= 1 .*got 0'),
        ({'ray_address': ''}, "ray_address must be a Ray cluster's address"),
        ({'workers': 2, 'strategy': 'mirrored'}, "cannot be combined with strategy='mirrored'"),
    ]:
      with self.assertRaisesRegex(ValueError, message):
        parallel_driver.make(run_dir, **kwargs)
    with self.assertRaisesRegex(TypeError, 'pool must be a ltp_tfmot.experiment.WorkerPool, got int'):
      parallel_driver.make(run_dir, pool=2)
    self.assertFalse(os.path.exists(run_dir))

  def test_workers_without_ray_is_one_line_naming_the_install_and_writes_nothing(self):
    out = os.path.join(self.get_temp_dir(), 'no_ray')
    with _without_ray():
      with self.assertRaisesRegex(ImportError, r'needs Ray, which is not installed: pip install "ray>=2.9"'):
        parallel.WorkerPool(workers=2)
      status, _, err = fixtures.run_cli('run', f'--out={out}', '--workers=2', *_CLI_RUN_FLAGS)
    self.assertEqual(status, 1)
    self.assertRegex(err, r'^ltp-tfmot run: error: running jobs in parallel .*needs Ray, which is not installed: '
                     r'pip install "ray>=2.9", or run the jobs one at a time \(workers=1\)\n$')
    self.assertFalse(os.path.exists(out))


if __name__ == '__main__':
  tf.test.main()
