"""Independent jobs of a run in parallel: Ray tasks on the cores of this machine or on a Ray cluster.

A run's jobs form a graph (`worker.job_needs`): level l + 1 of a
replicate needs level l, a branch at level l needs the main levels its
`Branch.needs` names. The driver gives every job whose needs are done to an
idle worker of a `WorkerPool` of Ray worker processes, main levels first (they
are the critical path). The pool starts before the driver loads its data (the
CLI starts it before it imports TensorFlow), so that the workers' start
overlaps the driver's. A worker that just trained a main level goes on with
the next one in the same model, as the serial loop does; any other job
rebuilds its level from the run directory, as a resumed run does, so the
results equal a serial run's. Every worker writes its levels' files
atomically there itself, so the run directory must be one every Ray node
can read and write (a shared file system or gs://). The driver writes
results.csv and the progress lines.

A job that raises (a NaN loss, an exception in a branch) is recorded in its
level's `<branch>.failed.json` and not retried; the jobs that need it are not
started, every other job runs, and the run then raises `JobsFailedError`. A
worker process that dies (killed, out of memory) is restarted by Ray and its
job is run again up to `_WORKER_RETRIES` times. If the driver dies, a local Ray
dies with it (`ray_watchdog` ends the processes that would not), and running
the same command again resumes the run.
"""

import contextlib
import os
import secrets
import sys
import tempfile
import traceback
import uuid

from absl import logging

from ltp_tfmot import errors
from ltp_tfmot import startup
from ltp_tfmot.experiment import branches
from ltp_tfmot.experiment import ray_watchdog

JobsFailedError = errors.JobsFailedError

# How often Ray restarts a worker process that died (killed, out of memory) and runs its job again; a job that
# raised is not run again.
_WORKER_RETRIES = 2
# The longest directory a local Ray's socket paths fit under.
_MAX_RAY_TEMP_DIR = 36


def _ray():
  try:
    import ray  # pylint: disable=g-import-not-at-top
  except ImportError as error:
    raise errors.MissingDependencyError('running jobs in parallel (workers > 1 or ray_address) needs Ray, which is '
                                        'not installed: pip install "ray>=2.9", or run the jobs one at a time '
                                        '(workers=1)') from error
  return ray


def limit_threads(threads):
  """Sets TensorFlow's thread pools (intra- and inter-op) in this process to `threads`, before TensorFlow starts.

  Parallel jobs get cores / workers each, so that they do not oversubscribe
  the cores. The thread count decides how CPU kernels split long sums, so
  runs with the same count compute the same floats: a serial run at 1 thread
  equals a run of 1-thread workers bit for bit.

  Returns:
    Whether the pools have that size now: False if TensorFlow had already
    started with other sizes (they cannot change then; a warning says so).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if (tf.config.threading.get_intra_op_parallelism_threads() == threads
      and tf.config.threading.get_inter_op_parallelism_threads() == threads):
    return True
  try:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
  except RuntimeError:
    logging.warning('TensorFlow started in this process before its thread pools could be set to %d; they stay as '
                    'they are', threads)
    return False
  return True


class _Worker:
  """One worker process of a parallel run (a Ray actor): the `worker.JobWorker` of the run it serves now.

  It imports TensorFlow when it starts, which is while the driver still loads
  its own. Each job comes with the run's spec; the worker makes that run's
  `JobWorker` at its first job (a pool can serve several runs in turn).
  """

  def __init__(self, threads):
    startup.import_tensorflow()  # its CUDA start-up lines would reach the driver's output through Ray
    limit_threads(threads)
    from ltp_tfmot.experiment import worker as worker_lib  # pylint: disable=g-import-not-at-top
    self._worker_lib = worker_lib
    self._spec_id, self._jobs = None, None

  def run(self, spec, job):
    """Trains `job` of the run `spec` describes and writes its level; returns its metrics."""
    if spec['id'] != self._spec_id:
      self._jobs = self._worker_lib.JobWorker(spec)
      self._spec_id = spec['id']
    return self._jobs.run_job(job)


def _ray_temp_dir():
  """Where a local Ray keeps its session: the temporary directory, unless its sockets' paths would be too long.

  Unix socket paths have at most 107 bytes, and Ray's add about 70 to its
  directory, which a deep TMPDIR (a test runner's, for one) exceeds.
  """
  temp = tempfile.gettempdir()
  if len(os.path.join(temp, 'ray')) > _MAX_RAY_TEMP_DIR and os.path.isdir('/tmp'):
    temp = '/tmp'
  return os.path.join(temp, 'ray')


def _provide_auth_token():
  """Gives a local Ray a token in the environment where Ray would otherwise write one into the home directory.

  A new local Ray (2.5x and later) turns token authentication on and, when no
  token is configured, saves a new one to `~/.ray/auth_token`: that fails
  where the home is read-only (a test sandbox, a locked-down account) and
  leaves a file behind everywhere else. A token of this process, inherited by
  the Ray processes it starts, keeps authentication on and writes nothing.
  A token or mode the user configured is left as it is.
  """
  configured = ('RAY_AUTH_MODE', 'RAY_AUTH_TOKEN', 'RAY_AUTH_TOKEN_PATH')
  if any(name in os.environ for name in configured):
    return
  if os.path.exists(os.path.join(os.path.expanduser('~'), '.ray', 'auth_token')):
    return
  os.environ['RAY_AUTH_TOKEN'] = secrets.token_hex(32)


def _init_ray(ray, workers, address):
  """Starts a local Ray for `workers` jobs, or joins the cluster at `address`.

  Returns:
    None if Ray was running in this process already (the pool leaves it
    running), else a function() that ends it, which for a local Ray it started
    also ends the processes the Ray leaves (`ray_watchdog`, started here).
  """
  if ray.is_initialized():
    return None
  if address is not None:
    ray.init(address=address, configure_logging=False, log_to_driver=True)
    return ray.shutdown
  _provide_auth_token()
  token = uuid.uuid4().hex
  # The workers import what this process can (the modules of a model_fn, hooks or branch of yours). They inherit
  # the environment of the Ray processes started here: a runtime_env would make Ray start new worker processes
  # instead of the ones it starts with (1.5 s later, on top of their start).
  with _environment(PYTHONPATH=os.pathsep.join(p for p in [os.getcwd()] + sys.path if p),
                    **{ray_watchdog.MARKER: token}):
    context = ray.init(num_cpus=workers, include_dashboard=False, configure_logging=False, log_to_driver=True,
                       _node_ip_address='127.0.0.1', _temp_dir=_ray_temp_dir())
  # It ends with this process however it ends: Ray's agents outlive a killed driver.
  watchdog = ray_watchdog.start(token, context.address_info['session_dir'])

  def shut_down():
    ray.shutdown()
    watchdog.stop()  # the processes ray.shutdown leaves behind

  return shut_down


@contextlib.contextmanager
def _environment(**variables):
  """Sets environment variables inside (for the processes started there), then restores them."""
  saved = {name: os.environ.get(name) for name in variables}
  os.environ.update(variables)
  try:
    yield
  finally:
    for name, value in saved.items():
      if value is None:
        del os.environ[name]
      else:
        os.environ[name] = value


def _placement(ray, workers, address, threads):
  """(workers, threads per job, GPUs per job) for this Ray: one GPU per job where the cluster has GPUs."""
  resources = ray.cluster_resources()
  cpus, gpus = int(resources.get('CPU', 1)), int(resources.get('GPU', 0))
  if workers is None:
    workers = max(1, gpus or cpus)
  if address is None:
    cpus = os.cpu_count() or 1
  return workers, threads or max(1, cpus // workers), 1 if gpus else 0


class WorkerPool:
  """Ray worker processes that train the jobs of parallel runs, started before the driver loads anything else.

  A `LotteryExperiment` with `workers` > 1 or a `ray_address` starts one as
  the first thing its `run` does and stops it at the end. Starting one
  yourself, before importing TensorFlow (as `ltp-tfmot run` does), lets the
  workers import TensorFlow while this process does, and one pool can run
  several experiments in turn without starting again.

  Args:
    workers: How many jobs run at a time; None: one per GPU, else per CPU of
      the cluster (of this machine without `address`).
    address: A Ray cluster's address (e.g. 'ray://head:10001'), or None for a
      local Ray on this machine (127.0.0.1), stopped by `close`.
    threads: TensorFlow threads of each job (`limit_threads`); None: the
      cores of a node divided among its jobs.

  Raises:
    MissingDependencyError: (an ImportError) if Ray is not installed.
    ValueError: for a `workers` or `address` that is not one.

  Example:

  ```python
  from ltp_tfmot import experiment
  with experiment.WorkerPool(workers=2) as pool:  # before TensorFlow loads: the workers load theirs meanwhile
    for seed in (0, 1):
      experiment.LotteryExperiment(experiment.RunConfig(seed=seed), 'runs', pool=pool).run()
  ```
  """

  def __init__(self, workers=None, address=None, threads=None):
    check_settings(workers, address, threads)
    self.ray = _ray()
    self._shut_down_ray = _init_ray(self.ray, workers, address)
    self.address = address
    self.actors = []
    try:
      self.workers, self.threads, self.gpus = _placement(self.ray, workers, address, threads)
      actor = self.ray.remote(num_cpus=self.threads if address is not None else 1, num_gpus=self.gpus,
                              max_restarts=_WORKER_RETRIES, max_task_retries=_WORKER_RETRIES)(_Worker)
      # Their start (TensorFlow's import) runs in the background from here.
      self.actors = [actor.remote(self.threads) for _ in range(self.workers)]
    except BaseException:
      self.close()
      raise

  @property
  def closed(self):
    return not self.actors

  def describe(self):
    return (f'{self.workers} Ray worker(s) ({self.threads} thread(s) each' + (', one GPU each' if self.gpus else '')
            + (f', cluster {self.address}' if self.address else ', this machine') + ')')

  def close(self):
    """Stops the workers, and the local Ray if this pool started it."""
    if self._shut_down_ray is not None:
      shut_down, self._shut_down_ray = self._shut_down_ray, None
      shut_down()
    else:
      for actor in self.actors:
        self.ray.kill(actor)
    self.actors = []

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.close()


def check_settings(workers, address, threads=None):
  """Raises ValueError for a `workers`, Ray `address` or `threads` that is not one."""
  for value, name, what in ((workers, 'workers', 'jobs trained at a time'),
                            (threads, 'threads', 'TensorFlow threads per job')):
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
      raise ValueError(f'{name} must be an integer >= 1 ({what}), got {value!r}')
  if address is not None and (not isinstance(address, str) or not address):
    raise ValueError(f"ray_address must be a Ray cluster's address such as 'ray://head:10001', got {address!r}")


def check_no_strategy(strategy):
  """Raises ValueError for a `tf.distribute` strategy in a run whose jobs train in parallel."""
  if strategy not in (None, 'default'):
    raise ValueError(f'workers and ray_address run each job in a process of its own and cannot be combined with '
                     f'strategy={strategy!r}, which spreads one job over several devices: choose one of the two')


def run_jobs(experiment, jobs, pool, spec):
  """Runs `jobs` of `experiment` on the workers of `pool`, each job once its needs are done.

  Args:
    experiment: The `LotteryExperiment` (set up: data loaded, run directory
      claimed); its `started`, `finished` and `record_failure` follow the jobs.
    jobs: The (replicate, level, branch) jobs to run.
    pool: The `WorkerPool` to run them on.
    spec: The run's `worker.worker_spec`.

  Raises:
    JobsFailedError: if a job failed; the others ran.
  """
  # An id per run: a worker that served another run before makes this one's JobWorker at its first job.
  spec = pool.ray.put(dict(spec, id=uuid.uuid4().hex))
  experiment.log(f'Running {len(jobs)} jobs on {pool.describe()}')
  _schedule(pool.ray, experiment, pool.actors, spec, list(jobs))


def _continuation(last):
  """The main level after `last` if that was a main level: the worker that ran `last` goes on with it."""
  return None if last is None or last[2] != branches.MAIN else (last[0], last[1] + 1, branches.MAIN)


def _next_job(experiment, waiting, last, job_needs):
  """The ready job a worker that last ran `last` takes: the main level after it if ready, else main levels first."""
  ready = [job for job in waiting if all(need in experiment.done for need in job_needs(job))]
  if not ready:
    return None
  if _continuation(last) in ready:
    return _continuation(last)
  return min(ready, key=lambda job: (job[2] != branches.MAIN, job[1], job[0]))


def _schedule(ray, experiment, pool, spec, waiting):
  """Gives ready jobs to idle workers, records what ends; raises `JobsFailedError` at the end if any failed."""
  # Imported here: `worker` loads TensorFlow, which this module must not (a pool starts before TensorFlow loads).
  from ltp_tfmot.experiment import worker as worker_lib  # pylint: disable=g-import-not-at-top
  running, failures, blocked = {}, [], []
  idle = [(worker, None) for worker in pool]  # (worker, the job it ran last)

  def hopeless(job):
    coming = set(waiting) | {running_job for running_job, _ in running.values()}
    return any(need not in experiment.done and need not in coming for need in worker_lib.job_needs(job))

  while waiting or running:
    for job in [j for j in waiting if hopeless(j)]:
      waiting.remove(job)
      blocked.append(job)
    # A worker whose main level's successor waits is served first: any other would take that level and rebuild
    # (and compile) its model, where this one goes on in the model it has.
    idle.sort(key=lambda item: _continuation(item[1]) not in waiting)
    for worker, last in list(idle):
      job = _next_job(experiment, waiting, last, worker_lib.job_needs)
      if job is None:
        break
      idle.remove((worker, last))
      waiting.remove(job)
      running[worker.run.remote(spec, job)] = (job, worker)
      experiment.started(job)
    if not running:
      blocked.extend(waiting)  # needs that can never be met: reported, never dropped silently
      break
    finished, _ = ray.wait(list(running), num_returns=1)
    job, worker = running.pop(finished[0])
    idle.append((worker, job))
    try:
      metrics = ray.get(finished[0])
    except ray.exceptions.RayError as error:
      failures.append(experiment.record_failure(job, _cause(ray, error), _remote_traceback(error)))
      continue
    experiment.finished(job, metrics)
  if failures or blocked:
    raise JobsFailedError(_failure_message(failures, blocked, experiment.run_dir), failures)


def _cause(ray, error):
  if isinstance(error, ray.exceptions.RayTaskError) and error.cause is not None:
    return error.cause
  return error


def _remote_traceback(error):
  return str(error) or ''.join(traceback.format_exception(error))


def _failure_message(failures, blocked, run_dir):
  names = lambda jobs: ', '.join(f'replicate {r} level {lv} {b}' for r, lv, b in jobs)
  parts = [f'{len(failures)} job(s) of {run_dir} failed: '
           + '; '.join(f'replicate {f["replicate"]} level {f["level"]} {f["branch"]}: {f["error"]}' for f in failures)
           ] if failures else []
  if blocked:
    parts.append(f'{len(blocked)} job(s) that need {"them" if failures else "levels that are not done"} were not '
                 f'started ({names(blocked)})')
  return ('; '.join(parts) + '. Every other job finished. The errors and tracebacks are in each level\'s '
          '.failed.json; fix the cause and run the same command again to run the jobs left.')
