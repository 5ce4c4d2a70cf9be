"""The resumable level loop of a lottery experiment: iterative magnitude pruning, its controls, replicates.

Level 0 trains the dense network for T iterations (`training.length()`). Each
next level prunes the previous level's trained weights and rewinds the
survivors (`ltp_tfmot.run_lottery_round`), resets the optimizer and the layers
without prunable weights (BatchNormalization's included), and retrains. With
`rewind_step=k` it resumes at iteration k, as open_lth and the papers define
rewinding: the optimizer's iteration count is k (so the learning-rate schedule
continues from k), the data order and augmentation continue from batch k, and
the level trains the remaining T - k iterations. With a criterion that scores
from the model (`snip`, `grasp`, `synflow`), a level's masks are scored at the
rewind point instead, on the first batch of the level's training data, never
reviving the previous level's pruned weights. `pruning.retrain` chooses how
levels after 0 retrain (Renda et al. 2020): 'weight_rewind' as above;
'lr_rewind' keeps the trained survivors (and the unpruned layers' trained
values) and replays the learning-rate schedule over the last
`retrain_steps` iterations of T; 'finetune' keeps them and trains on for
`retrain_steps` iterations past T at the final rate (the batches continue
the order). Training follows the config's
recipe (`recipes`: SGD or Adam with coupled L2 weight decay, warm-up, step or
cosine decay) on the batches of `pipeline.train_dataset` (a data seed of its
own, optional CIFAR augmentation).
Controls are the registered branches (`branches`) the config names: each
trains at a level from that level's main outputs, e.g. 'reinit' (same masks,
fresh weights) and 'random_prune' (random masks with the same per-layer
counts, same rewind point). Every level writes its files atomically and the
next run of the same command skips what is done, so a killed process loses at
most the level it was in (each level's files are checked against their
sha256 manifest first; a damaged level is redone, with a warning).

Several devices: `strategy='mirrored'` or `'multi_worker'` trains each level on
a `tf.distribute` strategy (`platform`); `workers` > 1 or `ray_address` trains
independent levels at a time in Ray worker processes (`parallel`). The levels
themselves train in `level` (its docs list the level metrics), and
`level_state.load_trained_model` loads a finished level's model.

Example:

```python
from ltp_tfmot import experiment

config = experiment.RunConfig(
    data=experiment.DataConfig(source='embedded'),
    training=experiment.TrainingConfig(epochs=10),
    pruning=experiment.PruningConfig(levels=5),
    controls=('reinit',))
results = experiment.run_experiment(config, out_dir='runs')
print(experiment.markdown_table(experiment.summarize(results)))
```
"""

import os
import shutil
import tempfile
import time
import traceback

import numpy as np

from ltp_tfmot import errors
from ltp_tfmot import validation
from ltp_tfmot.experiment import branches as branches_lib
from ltp_tfmot.experiment import config as config_lib
from ltp_tfmot.experiment import factory as factory_lib
from ltp_tfmot.experiment import hooks as hooks_lib
from ltp_tfmot.experiment import level as level_lib
from ltp_tfmot.experiment import parallel
from ltp_tfmot.experiment import platform
from ltp_tfmot.experiment import resume
from ltp_tfmot.experiment import storage
from ltp_tfmot.experiment import training_path as training_path_lib
from ltp_tfmot.experiment import worker as worker_lib

MAIN = branches_lib.MAIN


def format_duration(seconds):
  """'45s', '3m05s' or '1h02m'."""
  seconds = int(round(seconds))
  if seconds < 60:
    return f'{seconds}s'
  if seconds < 3600:
    return f'{seconds // 60}m{seconds % 60:02d}s'
  return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'


def _print_line(line):
  print(line, flush=True)


class LotteryExperiment:
  """A resumable lottery-ticket experiment (IMP with rewinding, controls, replicates).

  Args:
    config: A `RunConfig`.
    out_dir: Folder the run directory `config.run_name()` is made in: a local
      path or one of a file system `tf.io.gfile` knows (gs://bucket/runs).
    run_dir: The run directory itself, instead of `out_dir` (a directory
      holding another run is refused).
    model_fn: Your own model builder `(input_shape, num_classes, seed) ->
      tf_keras model` producing logits; `config.model` is then its label.
    data: Your own (x_train, y_train, x_test, y_test) arrays (or a
      `ltp_tfmot.datasets.Dataset`); `config.data.name` is then their label.
    verbose: Show Keras' per-epoch output.
    tensorboard: Write per-level TensorBoard summaries under
      `<run_dir>/tensorboard`.
    log: A function taking one progress line (default: print, flushed).
    strategy: None or 'default', 'mirrored', 'multi_worker', or a
      `tf.distribute.Strategy` (see `platform.make_strategy`); models are built,
      wrapped and compiled inside its scope. In a multi-worker cluster only
      the chief writes the run directory. 'multi_worker' creates the strategy
      here: make the experiment before running any TensorFlow op.
    hooks: A `RunHooks` called at chosen points of the run (after each
      training step, at each round boundary, to write each file); the default
      does nothing there. The fault tests use it.
    workers: How many independent jobs (levels of different replicates,
      branches) train at a time, each in a Ray worker process with its share
      of the cores (`parallel`). None: 1 (serial, in this process) without
      `ray_address`, else one per GPU or CPU of the cluster.
    ray_address: The address of a Ray cluster to run the jobs on (e.g.
      'ray://head:10001'), or None for a local Ray on this machine when
      `workers` > 1.
    pool: A `WorkerPool` to run the jobs on, instead of the one
      `run` starts with `workers` or `ray_address` (give neither then): one
      started before importing TensorFlow, or shared by several runs.
    accept_training_path_change: Resume a run whose finished levels trained
      on another numeric path (`training_path`: XLA or not, threads,
      precision, TensorFlow version, CPU), which changes the floats; the
      levels trained here record the change. False (the default) refuses
      with `TrainingPathChangedError` before anything is changed.

  Raises:
    ValueError: if neither or both of `out_dir` and `run_dir` are given,
      `config.model` is not registered and no `model_fn` is given, or
      `strategy` is unknown, or `workers` / `ray_address` / `pool` are
      given with a strategy, or `pool` with `workers` or `ray_address`.
  """

  def __init__(self, config, out_dir=None, *, run_dir=None, model_fn=None, data=None, verbose=False,
               tensorboard=True, log=None, strategy=None, hooks=None, workers=None, ray_address=None, pool=None,
               accept_training_path_change=False):
    if not isinstance(config, config_lib.RunConfig):
      raise TypeError(f'config must be a RunConfig, got {type(config).__name__}')
    if (out_dir is None) == (run_dir is None):
      raise ValueError('give exactly one of out_dir (the run directory is made in it, named by the config hash) '
                       'and run_dir (the run directory itself)')
    if hooks is not None and not isinstance(hooks, hooks_lib.RunHooks):
      raise TypeError(f'hooks must be a ltp_tfmot.experiment.RunHooks, got {type(hooks).__name__}')
    parallel.check_settings(workers, ray_address)
    validation.check_bool(accept_training_path_change, 'accept_training_path_change')
    if pool is not None:
      if not isinstance(pool, parallel.WorkerPool):
        raise TypeError(f'pool must be a ltp_tfmot.experiment.WorkerPool, got {type(pool).__name__}')
      if workers is not None or ray_address is not None:
        raise ValueError('give workers / ray_address or a pool, not both: a pool has its own workers and Ray')
      workers, ray_address = pool.workers, pool.address
    self.parallel = pool is not None or ray_address is not None or (workers or 1) > 1
    if self.parallel:
      parallel.check_no_strategy(strategy)
    self.workers = workers
    self.ray_address = ray_address
    self._pool = pool
    self.strategy = platform.make_strategy(strategy)
    self.is_chief, self.task = platform.worker_role(self.strategy)
    self.config = config
    self.factory = factory_lib.RunFactory(config, model_fn=model_fn, data=data, strategy=self.strategy)
    self._model_fn, self._data = model_fn, data
    self.log = log if log is not None else _print_line
    self.hooks = hooks if hooks is not None else hooks_lib.RunHooks()
    self.paths = storage.RunDirectory(run_dir if run_dir is not None else os.path.join(out_dir, config.run_name()),
                                      self.hooks)
    self.trainer = level_lib.LevelTrainer(config, self.factory, self.paths, self.hooks, is_chief=self.is_chief,
                                          verbose=verbose, tensorboard=tensorboard)
    self.done = set()
    self.jobs_run = 0
    self.job_in_progress = None  # (replicate, level, branch) while it trains or is written
    self._durations = []
    self._starts = {}  # job -> when it started, for the jobs running now
    self._pending = []
    self.accept_training_path_change = accept_training_path_change

  @property
  def split(self):
    """The run's data split (after `run` loaded it)."""
    return self.factory.split

  @property
  def iterations(self):
    """Training iterations per level (after `run` loaded the data)."""
    return self.factory.iterations

  @property
  def run_dir(self):
    return self.paths.path

  # --- set-up -----------------------------------------------------------------------------------------------------

  def _jobs(self):
    jobs = []
    for r in range(self.config.replicates):
      for level in range(self.config.pruning.levels + 1):
        jobs.append((r, level, MAIN))
        if level in self.config.levels_with_controls():
          jobs.extend((r, level, control) for control in self.config.controls)
    return jobs

  # --- the loop ----------------------------------------------------------------------------------------------------

  def run(self):
    """Runs (or resumes) every level, control and replicate of the config.

    Returns:
      The metrics dicts of every finished level of the run directory (see
      "Level metrics" in the `level` module docs), sorted by replicate,
      level, branch.

    Raises:
      ValueError: for data or a model that do not fit the config, or a run
        directory that holds another run (it is left untouched then).
      storage.StorageError: (an OSError) if a file cannot be written (disk
        full, no permission); finished levels are intact, and running again
        resumes.
      WorkerLostError: in a multi-worker run, if another worker died or
        cannot be reached; the level in progress is not written.
    """
    if not self.parallel:
      return self._run_here()
    # Started first: its workers import TensorFlow and start while this process loads the data.
    if self._pool is not None and self._pool.closed:
      raise ValueError('this WorkerPool is closed: start a new one, or give workers / ray_address instead')
    pool = self._pool if self._pool is not None else parallel.WorkerPool(self.workers, self.ray_address)
    self.workers = pool.workers
    self.trainer.path_threads = (pool.threads, pool.threads)
    try:
      self._set_up()
      spec = worker_lib.worker_spec(self.config, self.run_dir, model_fn=self._model_fn, data=self._data,
                                    verbose=self.trainer.verbose, tensorboard=self.trainer.tensorboard,
                                    hooks=self.hooks, training_path_change=self.trainer.path_change)
      try:
        parallel.run_jobs(self, self._pending, pool, spec)
      finally:
        storage.remove_temp_files(self.run_dir)  # of workers killed while writing; no job is running now
        self._write_results()
      return storage.load_level_metrics(self.run_dir)
    finally:
      self.paths.lock.release()
      if pool is not self._pool:
        pool.close()

  def _set_up(self):
    """Loads the data, claims (or checks) the run directory and finds the jobs left to run."""
    cfg = self.config
    self.factory.load_data()
    probe = self.factory.build_model(cfg.seed)  # plain variables, outside the strategy: no collective ops
    meta = resume.run_meta(cfg, self.factory, probe)
    self.factory.wrap(probe, cfg.seed)  # checks layer_rates against the model before anything is written
    self.factory.jit_compile(probe)
    del probe
    jobs = self._jobs()
    differences = resume.run_differences(cfg, meta)
    if self.is_chief:
      self.paths.claim(meta, differences)  # and its lock, which `run` releases however it ends
    else:
      self.paths.check(meta, differences)
    here = self.factory.training_path(self.trainer.path_threads)
    self.trainer.path_change = resume.training_path_change(self.paths, jobs, here, self.accept_training_path_change,
                                                           self.log)
    if self.is_chief:
      stale = storage.remove_temp_files(self.run_dir)
      if stale:
        self.log(f'Removed {stale} temporary file(s) left by a process killed while writing.')
    self.done = resume.verified_done(self.paths, jobs, self.log)
    self._pending = [job for job in jobs if job not in self.done]
    done = len(jobs) - len(self._pending)
    where = '' if self.task is None else f'worker {self.task} ({"chief" if self.is_chief else "not the chief"}) '
    self.log(f'[{os.path.basename(self.run_dir)}] {where}{cfg.describe()}: {len(jobs)} trainings, {done} done '
             f'earlier, {len(self._pending)} to run; {self.iterations} iterations per level; data {self.split.source} '
             f'({len(self.split.x_train)} train, {len(self.split.x_val)} validation, {len(self.split.x_test)} test)')
    path = self.trainer.training_path()
    self.log(f'Training path: {training_path_lib.describe(path)} (jit_compile {path["jit_compile_reason"]}).')
    failed = [job for job in self._pending if self.paths.failure(*job)]
    if failed:
      self.log(f'{len(failed)} job(s) failed in an earlier run and will be tried again: '
               + ', '.join(f'replicate {r} level {lv} {b}' for r, lv, b in failed))

  def _run_here(self):
    """Runs the jobs left in this process (with the other workers of a multi-worker strategy)."""
    try:
      self._set_up()
    except BaseException:
      self.paths.lock.release()
      raise
    shadow = None
    if not self.is_chief:
      shadow = tempfile.mkdtemp(prefix=f'ltp_tfmot_{self.task.replace(":", "")}_')
      self.trainer.out = storage.RunDirectory(shadow, self.hooks)
      self.log(f'worker {self.task} writes its files to {shadow} (removed at the end); the chief writes the run '
               'directory')
    try:
      with platform.strategy_scope(self.strategy):
        for r in range(self.config.replicates):
          self._run_replicate(r)
      if self.is_chief:
        self._write_results()
        return storage.load_level_metrics(self.run_dir)
      return self._merged_metrics(shadow)
    except platform.PEER_ERRORS as error:
      if self.task is None:
        raise
      raise platform.peer_lost(error, self.task, self.run_dir) from error
    finally:
      self.paths.lock.release()
      self.trainer.out = self.paths
      if shadow is not None:
        shutil.rmtree(shadow, ignore_errors=True)

  def _merged_metrics(self, shadow):
    """A non-chief worker's results: the levels it ran, and the run directory's for the others."""
    rows = {(m['replicate'], m['level'], m['branch']): m for m in storage.load_level_metrics(self.run_dir)}
    rows.update({(m['replicate'], m['level'], m['branch']): m for m in storage.load_level_metrics(shadow)})
    return storage.sort_level_metrics(rows.values())

  def _run_replicate(self, r):
    cfg = self.config
    seed = cfg.seed + r
    state = None
    for level in range(cfg.pruning.levels + 1):
      if (r, level, MAIN) in self.done:
        state = None  # a later missing level starts from this level's saved weights
      else:
        if state is None:
          self.job_in_progress = (r, level, MAIN)
          state = self.trainer.main_state(seed, r, level)
        self._timed((r, level, MAIN), self.trainer.main_level, state, seed, r, level)
      if level in cfg.levels_with_controls():
        for control in cfg.controls:
          if (r, level, control) not in self.done:
            self._timed((r, level, control), self.trainer.branch_level, control, seed, r, level, self.done)

  def _timed(self, job, fn, *args):
    """Runs one training job `fn(*args)` in this process, then prints its line with an ETA for the rest."""
    self.started(job)
    try:
      metrics = fn(*args)
      if self.is_chief:
        self._write_results()
    except (KeyboardInterrupt, errors.StorageError, platform.WorkerLostError) + platform.PEER_ERRORS:
      raise
    except Exception as error:
      self.record_failure(job, error, traceback.format_exc())
      raise
    self.finished(job, metrics)

  # --- progress: the serial loop's and `parallel`'s -----------------------------------------------------------------

  def started(self, job):
    """Notes that `job` started (for the ETA and for what an interrupted run names)."""
    self.job_in_progress = job
    self._starts[job] = time.time()

  def finished(self, job, metrics):
    """Notes that `job` is done and prints its line with an ETA for the jobs left."""
    r, level, branch = job
    self.job_in_progress = next(iter(self._starts.keys() - {job}), None)
    self.done.add(job)
    self.jobs_run += 1
    self._durations.append(time.time() - self._starts.pop(job))
    if job in self._pending:
      self._pending.remove(job)
    if self.parallel:
      self._write_results()
    at_a_time = min(self.workers or 1, len(self._pending)) if self.parallel else 1
    eta = format_duration(np.mean(self._durations) * len(self._pending) / max(at_a_time, 1)) \
        if self._pending else 'done'
    self.log(f'replicate {r} level {level}/{self.config.pruning.levels} {branch}: '
             f'{100 * metrics["weights_remaining"]:.1f}% weights left, test acc {100 * metrics["test_accuracy"]:.2f}%, '
             f'best val {100 * metrics["best_val_accuracy"]:.2f}%, early stop it {metrics["early_stop_iteration"]}, '
             f'supermask {100 * metrics["supermask_accuracy"]:.1f}%, {metrics["wall_time_s"]:.1f}s | ETA {eta}')

  def record_failure(self, job, error, traceback_text):
    """Writes the failure record of `job` (its level's .failed.json) and prints one line; returns the record."""
    r, level, branch = job
    self._starts.pop(job, None)
    if self.job_in_progress == job:
      self.job_in_progress = None
    self.log(f'replicate {r} level {level}/{self.config.pruning.levels} {branch}: FAILED: '
             f'{type(error).__name__}: {error}')
    record = {'replicate': r, 'level': level, 'branch': branch, 'error': f'{type(error).__name__}: {error}',
              'traceback': traceback_text}
    if self.is_chief:
      try:
        self.paths.write_failure(record)
      except errors.StorageError as write_error:  # the job's own error is the one to report
        self.log(f'WARNING: could not record the failure: {write_error}')
    return record

  def _write_results(self):
    rows = [level_lib.flat_metrics(m) for m in storage.load_level_metrics(self.run_dir)]
    if rows:
      storage.write_csv(self.paths.results_path, rows, hooks=self.hooks)


def run_experiment(config, out_dir=None, **kwargs):
  """Runs or resumes a lottery experiment; see `LotteryExperiment` for the arguments.

  Returns:
    The metrics of every finished level, as `LotteryExperiment.run`.
  """
  return LotteryExperiment(config, out_dir, **kwargs).run()
