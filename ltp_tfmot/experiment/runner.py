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

Several devices: `LotteryExperiment(..., strategy='mirrored')` (all local GPUs,
else all logical CPUs) or `strategy='multi_worker'` (a
`MultiWorkerMirroredStrategy` configured by the TF_CONFIG environment variable;
run the same command on every worker) builds, wraps and compiles every model
inside `strategy.scope()`. Only the chief writes the run directory (for
multi-worker runs on several machines it must be on a shared file system, e.g.
gs://bucket/runs); the other workers write their files to a temporary
directory, removed at the end. If a worker dies, the others stop with
`WorkerLostError` (the level in progress is not written); starting every
worker again resumes the run.

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

Level metrics (metrics.json of each level and branch, and what `run` returns):
run, replicate, seed, level, branch ('main', 'reinit' or 'random_prune');
weights_remaining (fraction of the prunable weights alive), weights_alive,
prunable_weights, layer_weights_remaining ({layer: fraction}); test_accuracy
and test_loss at the end of training; best_val_accuracy and
best_val_iteration; early_stop_iteration (iteration of minimum validation
loss, evaluated every `eval_every` iterations) with early_stop_val_loss and
early_stop_val_accuracy; supermask_accuracy and supermask_loss (test set,
masked rewind point before any training; with lr_rewind or finetune: the
pruned trained weights); iterations (T); trained_iterations (what the level
trained: T at level 0, the retraining budget after it); wall_time_s; curve
(the validation points); training_path (the numeric path the level trained
on: jit_compile and why, steps_per_execution, threads, inter_op_threads,
precision, tensorflow, cpu, and accepted_change where a resume accepted
another path; see `training_path`).
"""

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import traceback

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2
import tf_keras as keras

from ltp_tfmot import errors
from ltp_tfmot import files
from ltp_tfmot import validation
from ltp_tfmot.experiment import branches as branches_lib
from ltp_tfmot.experiment import config as config_lib
from ltp_tfmot.experiment import data as data_lib
from ltp_tfmot.experiment import factory as factory_lib
from ltp_tfmot.experiment import hooks as hooks_lib
from ltp_tfmot.experiment import parallel
from ltp_tfmot.experiment import storage
from ltp_tfmot.experiment import training_path as training_path_lib
from ltp_tfmot.keras2 import callbacks as callbacks_lib
from ltp_tfmot.keras2 import criteria as criteria_lib
from ltp_tfmot.keras2 import rewind as rewind_lib
from ltp_tfmot.keras2 import rounds as rounds_lib
from ltp_tfmot.keras2 import wrapped_model
from ltp_tfmot.keras2 import wrapper as wrapper_lib

MAIN = branches_lib.MAIN
STRATEGIES = ('default', 'mirrored', 'multi_worker')
# What a collective op raises on a worker whose peer died or cannot be reached.
_PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
                tf.errors.CancelledError)


WorkerLostError = errors.WorkerLostError


def make_strategy(strategy):
  """The `tf.distribute.Strategy` for the runner's `strategy` argument (None for the default strategy).

  Args:
    strategy: None or 'default' (no distribution); 'mirrored' (a
      `MirroredStrategy` over all local GPUs, else all logical CPU devices);
      'multi_worker' (a `MultiWorkerMirroredStrategy` configured by the
      TF_CONFIG environment variable; create it before running any
      TensorFlow op in the process); or a `tf.distribute.Strategy`.

  Raises:
    ValueError: for anything else.
  """
  if strategy is None or strategy == 'default':
    return None
  if isinstance(strategy, tf.distribute.Strategy):
    return strategy
  if strategy == 'mirrored':
    devices = tf.config.list_logical_devices('GPU') or tf.config.list_logical_devices('CPU')
    return tf.distribute.MirroredStrategy([d.name for d in devices])
  if strategy == 'multi_worker':
    try:
      return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as error:
      raise ValueError(f'cannot start a MultiWorkerMirroredStrategy ({error}): it must be created before the '
                       'process runs any TensorFlow op, and TF_CONFIG must describe the cluster') from error
  raise ValueError(f'strategy must be one of {list(STRATEGIES)}, None or a tf.distribute.Strategy, got {strategy!r}')


def worker_role(strategy):
  """(is_chief, 'task_type:task_id' or None) of this process in `strategy`'s cluster.

  The chief is the 'chief' task, or worker 0 of a cluster without one; a
  process without a cluster (default strategy, MirroredStrategy, a
  multi-worker strategy without TF_CONFIG) is its own chief.
  """
  resolver = getattr(strategy, 'cluster_resolver', None) if strategy is not None else None
  if resolver is None or not resolver.task_type:
    return True, None
  task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
  jobs = resolver.cluster_spec().as_dict()
  if not jobs:
    return True, None
  chief = task_type == 'chief' or (task_type == 'worker' and task_id == 0 and 'chief' not in jobs)
  return chief, f'{task_type}:{task_id}'


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


def _other_variables(model):
  """The model's variables outside the lottery wrappers (e.g. BatchNormalization's), in order."""
  inside = {v.ref() for w in wrapped_model.lottery_wrappers(model) for v in w.weights}
  return [v for v in model.weights if v.ref() not in inside]


def _model_fingerprint(model):
  layers = []

  def visit(m):
    for layer in m.layers:
      if isinstance(layer, keras.Model):
        visit(layer)
      else:
        layers.append((type(layer).__name__, [tuple(int(d) for d in w.shape) for w in layer.weights]))

  visit(model)
  return hashlib.sha256(repr(layers).encode()).hexdigest()[:16]


def _scalar_summary(tag, value, step):
  """`tf.summary.scalar` without the tensorboard package (TensorFlow 2.21 no longer installs it).

  Writes the same event: a float32 scalar tagged for TensorBoard's scalars
  plugin, through the core op `tf.summary.write`.
  """
  metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name='scalars'))
  tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step, metadata=metadata)


def _iteration(model):
  """The iteration a level's training is at: the optimizer's count (levels after 0 start it at the rewind step)."""
  return int(model.optimizer.iterations.numpy())


class _RewindPoint(callbacks_lib.ExactStepCallback):
  """Takes the rewind snapshot after `step` training iterations (late rewinding, level 0)."""

  def __init__(self, step, on_snapshot):
    super().__init__()
    self.step = step
    self.on_snapshot = on_snapshot
    self.taken = False

  def on_train_batch_end(self, batch, logs=None):
    if not self.taken and _iteration(self.model) == self.step:
      rewind_lib.take_snapshot(self.model, step=self.step)
      self.on_snapshot()
      self.taken = True
    super().on_train_batch_end(batch, logs)

  def steps_to_boundary(self):
    return None if self.taken else self.step - _iteration(self.model)


class _AfterTrainStep(keras.callbacks.Callback):
  """Calls the run's `RunHooks.after_train_step` once per training step, after the execution that ran it."""

  def __init__(self, hooks):
    super().__init__()
    self.hooks = hooks

  def on_train_begin(self, logs=None):
    self.iteration = _iteration(self.model)

  def on_train_batch_end(self, batch, logs=None):
    iteration = _iteration(self.model)
    for _ in range(iteration - self.iteration):
      self.hooks.after_train_step()
    self.iteration = iteration


class _StopOnDivergence(keras.callbacks.Callback):
  """Raises `TrainingDivergedError` when the training loss is NaN or infinite, so the level fails, not lies."""

  def __init__(self, job):
    super().__init__()
    self._job = job

  def on_train_batch_end(self, batch, logs=None):
    loss = (logs or {}).get('loss')
    if loss is not None and not np.isfinite(float(loss)):
      r, level, branch = self._job
      raise errors.TrainingDivergedError(
          f'replicate {r} level {level} {branch}: the training loss is {float(loss)} at iteration '
          f'{_iteration(self.model)}, so training diverged and the level was not written. Lower the learning rate '
          '(training.learning_rate), add warm-up (training.warmup_steps), or check the data for NaNs')


class _ValidationCurve(callbacks_lib.ExactStepCallback):
  """Evaluates on the validation set where training starts, every `every` iterations and at the last."""

  def __init__(self, evaluate, x, y, every, total):
    super().__init__()
    self.evaluate, self.x, self.y, self.every, self.total = evaluate, x, y, every, total
    self.curve = []

  def _record(self):
    loss, accuracy = self.evaluate(self.x, self.y)
    self.curve.append({'iteration': _iteration(self.model), 'val_loss': loss, 'val_accuracy': accuracy})

  def on_train_begin(self, logs=None):
    super().on_train_begin(logs)
    self._record()

  def on_train_batch_end(self, batch, logs=None):
    iteration = _iteration(self.model)
    if iteration % self.every == 0 or iteration == self.total:
      self._record()
    super().on_train_batch_end(batch, logs)

  def steps_to_boundary(self):
    iteration = _iteration(self.model)
    return min(self.every - iteration % self.every, self.total - iteration) if iteration < self.total else None


class _MainState:
  """The live main-branch model of one replicate, carried from level to level."""

  def __init__(self, model, optimizer, evaluate):
    self.model = model
    self.optimizer = optimizer
    self.evaluate = evaluate
    self.rewind_other = None


class BranchContext:
  """What a `Branch` starts from: one replicate and level of a run, and the means to build its model.

  Attributes:
    level: The level the branch trains at.
    replicate: The replicate.
    seed: The branch's own seed (derived from the replicate, branch and
      level): the wrapper's seed for masks and initial values it draws.
    rewind_step: The run's rewind step, where the branch's training starts.
    run_criterion: The name of the criterion the main run prunes with.
  """

  def __init__(self, experiment, replicate, replicate_seed, level, seed):
    self._experiment = experiment
    self._replicate_seed = replicate_seed
    self.replicate = replicate
    self.level = level
    self.seed = seed
    self.rewind_step = experiment.config.pruning.rewind_step
    self.run_criterion = experiment.config.pruning.criterion

  def build_model(self):
    """A fresh, unwrapped model of the run, initialised as the replicate's main run was."""
    return self._experiment.factory.build_model(self._replicate_seed)

  def wrap(self, model, **overrides):
    """`model` wrapped with the run's pruning settings and the branch's seed; `overrides` replace settings.

    Args:
      model: An unwrapped model (`build_model()`).
      **overrides: `prune_lottery_ticket` arguments to change (criterion,
        scope, layer_rates, mask_1_action, ...).
    """
    return self._experiment.factory.wrap(model, self.seed, **overrides)

  def main_outputs(self, level=None):
    """The main run's stored masks.npz of a level (default: this one), as `storage.load_masks` gives it.

    Returns:
      A dict with 'masks', 'mask_names', 'mask_layer' (the wrapper index of
      each mask), 'snapshots', 'snapshot_names', 'other' (the rewind values
      of the variables outside the wrappers), 'snapshot_step' and
      'rounds_done'.
    """
    level = self.level if level is None else level
    path = self._experiment._read_file(self.replicate, level, MAIN, storage.MASKS)  # pylint: disable=protected-access
    return storage.masks_from_arrays(storage.load_arrays(path))

  @staticmethod
  def mask_variables(model):
    """The mask variables of a wrapped model, in wrapper order (as `main_outputs()['masks']`)."""
    return _mask_variables(model)

  @staticmethod
  def set_masks(model, masks):
    """Assigns stored masks (e.g. `main_outputs()['masks']`) to a wrapped model's mask variables."""
    _assign(_mask_variables(model), masks, 'masks')

  def load_rewind_point(self, model, level=None):
    """Sets a wrapped model's rewind snapshot, its step and the other variables to the main run's of a level."""
    outputs = self.main_outputs(level)
    wrappers = wrapped_model.lottery_wrappers(model)
    _assign([s for w in wrappers for s in w.snapshots], outputs['snapshots'], 'snapshots')
    for w in wrappers:
      w.snapshot_step.assign(outputs['snapshot_step'])
    _assign(_other_variables(model), outputs['other'], 'other layers')

  def repruned(self, **overrides):
    """This level's pruning done again with other settings: the model the main run would train, pruned otherwise.

    The model is wrapped with `overrides` (e.g. another `criterion`), set to
    the main run's state after training the previous level, pruned as the
    main run prunes (a `ModelCriterion` scores the rewind point on the
    level's first batch) and rewound to the main run's rewind point.

    Raises:
      ValueError: at level 0, which is not pruned.
    """
    if self.level < 1:
      raise ValueError('level 0 is the dense network: repruned() needs a level >= 1')
    experiment = self._experiment
    model = self.wrap(self.build_model(), **overrides)
    _load_state(model, experiment._read_file(self.replicate, self.level - 1, MAIN, storage.WEIGHTS))  # pylint: disable=protected-access
    data = None
    if criteria_lib.get_criterion(wrapped_model.lottery_wrappers(model)[0].criterion).needs_model:
      _assign(_other_variables(model), self.main_outputs(self.level - 1)['other'], 'other layers')
      data = experiment.scoring_batch(self._replicate_seed)
    rounds_lib.run_lottery_round(model, data=data)
    self.load_rewind_point(model, self.level - 1)
    return model

  def main_ticket(self, level=None):
    """The main run's ticket of a level (default: this one) where its training starts: masks, rewound weights."""
    outputs = self.main_outputs(level)
    model = self.wrap(self.build_model())
    self.load_rewind_point(model, level)
    self.set_masks(model, outputs['masks'])
    rewind_lib.rewind_weights(model)
    return model


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
      `tf.distribute.Strategy` (see `make_strategy`); models are built,
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
    self.strategy = make_strategy(strategy)
    self.is_chief, self.task = worker_role(self.strategy)
    self.config = config
    self.factory = factory_lib.RunFactory(config, model_fn=model_fn, data=data, strategy=self.strategy)
    self._model_fn, self._data = model_fn, data
    self.verbose = verbose
    self.tensorboard = tensorboard
    self.log = log if log is not None else _print_line
    self.hooks = hooks if hooks is not None else hooks_lib.RunHooks()
    self.paths = storage.RunDirectory(run_dir if run_dir is not None else os.path.join(out_dir, config.run_name()),
                                      self.hooks)
    self._out = self.paths  # where this process writes: the run directory, or a temporary one off the chief
    self._writes_results = True  # False in a parallel run's workers: the driver writes results.csv
    self._last_main = None  # in a parallel run's worker: ((replicate, level), _MainState) of its last main level
    self._branch_models = {}  # _training_structure -> (model, optimizer, evaluate) compiled for a branch
    self.done = set()
    self.jobs_run = 0
    self.job_in_progress = None  # (replicate, level, branch) while it trains or is written
    self._durations = []
    self._starts = {}  # job -> when it started, for the jobs running now
    self._pending = []
    self.accept_training_path_change = accept_training_path_change
    self._path_threads = None  # (intra, inter) threads of the processes that train: this one's, or the workers'
    self._path_change = None  # 'jit_compile True -> False, ...' accepted on resume, recorded in every level

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

  def _scope(self):
    return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

  def _read_file(self, r, level, branch, name):
    """A level file: this process' copy if it wrote one in this run, else the run directory's."""
    mine = self._out.file(r, level, branch, name)
    return mine if files.exists(mine) else self.paths.file(r, level, branch, name)

  def _verified_done(self, jobs):
    """The finished jobs whose files match their manifests; warns about (and so redoes) the others."""
    done = set()
    for job in jobs:
      problem = self.paths.verify(*job)
      if problem == '':
        done.add(job)
      elif problem:
        r, level, branch = job
        self.log(f'WARNING: replicate {r} level {level} {branch} is damaged and will be redone: {problem}')
    return done

  def _peer_lost(self, error):
    tasks = sorted(set(re.findall(r'/job:\w+/replica:\d+/task:\d+', str(error))))
    detail = f'{type(error).__name__}' + (f' naming {", ".join(tasks)}' if tasks else '')
    if 'heartbeat' in str(error):
      detail += ', which stopped sending heartbeats'
    return WorkerLostError(
        f'worker {self.task}: another worker of this multi-worker run died or cannot be reached ({detail}), so this '
        f'one stopped too. The level in progress was not written; finished levels in {self.run_dir} are intact. '
        'Start every worker again with the same command to resume.')

  # --- set-up -----------------------------------------------------------------------------------------------------

  def _span(self, level):
    """(first, end) iterations of a main level's training: level 0 all T; later ones as `pruning.retrain` says."""
    return (0, self.iterations) if level == 0 else self.config.pruning.retrain_span(self.iterations)

  @staticmethod
  def _resume_at(model, optimizer, iteration):
    """Makes the next training start at `iteration`, the model's step count going on as it was."""
    steps = wrapped_model.steps_done(model, optimizer)
    optimizer.iterations.assign(iteration)
    wrapped_model.count_steps_with(model, optimizer, steps)

  def _meta(self, model_fingerprint):
    return {
        'name': self.config.run_name(),
        'hash': self.config.hash(),
        'config': self.config.to_dict(),
        'non_default_settings': self.config.non_default_settings(),
        'description': self.config.describe(),
        'data': {
            'source': self.split.source,
            'fingerprint': data_lib.fingerprint(self.split),
            'train': len(self.split.x_train),
            'validation': len(self.split.x_val),
            'test': len(self.split.x_test),
            'example_shape': list(self.split.x_train.shape[1:]),
            'classes': self.factory.num_classes,
        },
        'model_fingerprint': model_fingerprint,
    }

  def _differences(self, meta):
    def check(stored):
      try:
        stored_config = config_lib.RunConfig.from_dict(stored['config'])
      except (KeyError, TypeError, ValueError) as error:
        return [f'its config.json does not hold readable settings ({error})']
      theirs, ours = stored_config.hashed_settings(), self.config.hashed_settings()
      differences = [f'{key} is {theirs.get(key)!r} there and {ours.get(key)!r} here'
                     for key in sorted(set(theirs) | set(ours)) if theirs.get(key) != ours.get(key)]
      stored_data = stored.get('data', {})
      if stored_data.get('fingerprint') != meta['data']['fingerprint']:
        differences.append(f'the data differ (source {stored_data.get("source")!r}, fingerprint '
                           f'{stored_data.get("fingerprint")} there; source {meta["data"]["source"]!r}, '
                           f'fingerprint {meta["data"]["fingerprint"]} here)')
      if stored.get('model_fingerprint') != meta['model_fingerprint']:
        differences.append('the model architecture differs (layers or weight shapes)')
      return differences

    return check

  def job_needs(self, job):
    """The jobs that must be done before `job` (replicate, level, branch) can train."""
    r, level, branch = job
    if branch == MAIN:
      return [(r, level - 1, MAIN)] if level > 0 else []
    return [(r, lv, MAIN) for lv in branches_lib.get_branch(branch).needs(level)]

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
      "Level metrics" in the module docs), sorted by replicate, level, branch.

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
    self._path_threads = (pool.threads, pool.threads)
    try:
      self._set_up()
      try:
        parallel.run_jobs(self, self._pending, pool)
      finally:
        storage.remove_temp_files(self.run_dir)  # of workers killed while writing; no job is running now
        self._write_results()
      return storage.load_level_metrics(self.run_dir)
    finally:
      self.paths.release()
      if pool is not self._pool:
        pool.close()

  def _set_up(self):
    """Loads the data, claims (or checks) the run directory and finds the jobs left to run."""
    cfg = self.config
    self.factory.load_data()
    probe = self.factory.build_model(cfg.seed)  # plain variables, outside the strategy: no collective ops
    meta = self._meta(_model_fingerprint(probe))
    self.factory.wrap(probe, cfg.seed)  # checks layer_rates against the model before anything is written
    self.factory.jit_compile(probe)
    del probe
    jobs = self._jobs()
    if self.is_chief:
      self.paths.claim(meta, self._differences(meta))  # and its lock, which `run` releases however it ends
      self._check_training_path(jobs)
      stale = storage.remove_temp_files(self.run_dir)
      if stale:
        self.log(f'Removed {stale} temporary file(s) left by a process killed while writing.')
    else:
      self.paths.check(meta, self._differences(meta))
      self._check_training_path(jobs)
    self.done = self._verified_done(jobs)
    self._pending = [job for job in jobs if job not in self.done]
    done = len(jobs) - len(self._pending)
    where = '' if self.task is None else f'worker {self.task} ({"chief" if self.is_chief else "not the chief"}) '
    self.log(f'[{os.path.basename(self.run_dir)}] {where}{cfg.describe()}: {len(jobs)} trainings, {done} done '
             f'earlier, {len(self._pending)} to run; {self.iterations} iterations per level; data {self.split.source} '
             f'({len(self.split.x_train)} train, {len(self.split.x_val)} validation, {len(self.split.x_test)} test)')
    path = self.training_path()
    self.log(f'Training path: {training_path_lib.describe(path)} (jit_compile {path["jit_compile_reason"]}).')
    failed = [job for job in self._pending if self.paths.failure(*job)]
    if failed:
      self.log(f'{len(failed)} job(s) failed in an earlier run and will be tried again: '
               + ', '.join(f'replicate {r} level {lv} {b}' for r, lv, b in failed))

  def training_path(self):
    """The path record (`training_path.current`) of the levels this run trains now."""
    path = self.factory.training_path(self._path_threads)
    if self._path_change:
      path['accepted_change'] = self._path_change
    return path

  def _check_training_path(self, jobs):
    """Refuses (or, if accepted, records) a numeric path other than the finished levels'; reads, never writes.

    A change accepted once (a finished level on this path records it) stays
    accepted: the levels trained since continue it.
    """
    here = self.factory.training_path(self._path_threads)
    legacy = self._path_of_unrecorded_levels()
    found, levels, accepted = {}, [], None
    for job in jobs:
      r, level, branch = job
      if not self.paths.is_done(*job):
        continue
      try:
        recorded = storage.read_json(self.paths.file(r, level, branch, storage.METRICS_JSON)).get('training_path')
      except errors.CorruptFileError:
        continue  # a damaged level is redone
      changed = training_path_lib.changes(recorded or legacy, here)
      if not changed and recorded and recorded.get('accepted_change'):
        accepted = recorded['accepted_change']
      if changed:
        levels.append(f'replicate {r} level {level} {branch}')
        for key, old, new in changed:
          found.setdefault(key, (key, old, new))
    if not found:
      return
    found = [found[key] for key in training_path_lib.NUMERIC if key in found]
    named = levels[0] if len(levels) == 1 else f'{levels[0]} and {len(levels) - 1} more level(s)'
    if accepted is None and not self.accept_training_path_change:
      raise training_path_lib.refusal(self.run_dir, found, named)
    self._path_change = accepted or training_path_lib.describe_changes(found)
    self.log(f'WARNING: the training path changed ({self._path_change}) since {named}; accepted, and recorded in '
             'the levels trained from here.')

  def _path_of_unrecorded_levels(self):
    """What is known of the path of levels trained before levels recorded theirs: the jit_compile of config.json.

    Such runs wrote every level with the `jit_compile` of the config they
    were started with (XLA unless forced off), which the run directory's
    config.json keeps; the rest of their path is unknown.
    """
    try:
      jit_compile = storage.read_json(self.paths.config_path)['config']['training'].get('jit_compile')
    except (errors.CorruptFileError, KeyError, TypeError, OSError):
      return {}
    return {} if jit_compile is None else {'jit_compile': bool(jit_compile)}

  def _run_here(self):
    """Runs the jobs left in this process (with the other workers of a multi-worker strategy)."""
    try:
      self._set_up()
    except BaseException:
      self.paths.release()
      raise
    cfg = self.config
    shadow = None
    if not self.is_chief:
      shadow = tempfile.mkdtemp(prefix=f'ltp_tfmot_{self.task.replace(":", "")}_')
      self._out = storage.RunDirectory(shadow, self.hooks)
      self.log(f'worker {self.task} writes its files to {shadow} (removed at the end); the chief writes the run '
               'directory')
    try:
      with self._scope():
        for r in range(cfg.replicates):
          self._run_replicate(r)
      if self.is_chief:
        self._write_results()
        return storage.load_level_metrics(self.run_dir)
      return self._merged_metrics(shadow)
    except _PEER_ERRORS as error:
      if self.task is None:
        raise
      raise self._peer_lost(error) from error
    finally:
      self.paths.release()
      self._out = self.paths
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
          state = self._main_state(seed, r, level)
        self._timed((r, level, MAIN), self._main_level, state, seed, r, level)
      if level in cfg.levels_with_controls():
        for control in cfg.controls:
          if (r, level, control) not in self.done:
            self._timed((r, level, control), self._branch_level, control, seed, r, level)

  def _timed(self, job, fn, *args):
    """Runs one training job `fn(*args)` in this process, then prints its line with an ETA for the rest."""
    self.started(job)
    try:
      metrics = fn(*args)
    except (KeyboardInterrupt, errors.StorageError, WorkerLostError) + _PEER_ERRORS:
      raise
    except Exception as error:
      self.record_failure(job, error, traceback.format_exc())
      raise
    self.finished(job, metrics)

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

  # --- one job in a worker process (see `parallel`) ----------------------------------------------------------------

  def worker_spec(self):
    """What a worker process needs to make this experiment again (`parallel` sends it to every Ray task)."""
    criterion = self.config.pruning.criterion
    return {'config': self.config, 'run_dir': self.run_dir, 'model_fn': self._model_fn, 'data': self._data,
            'verbose': self.verbose, 'tensorboard': self.tensorboard, 'hooks': self.hooks,
            # What this process registered itself: a worker process has only the built-in ones.
            'branches': [branches_lib.get_branch(name) for name in self.config.controls
                         if name not in branches_lib.builtin_branch_names()],
            'criteria': [] if criterion in validation.BUILTIN_CRITERIA else [criteria_lib.get_criterion(criterion)],
            'training_path_change': self._path_change}

  def prepare_worker(self, training_path_change=None):
    """Loads the data for `run_job`, in a worker process of a parallel run (the driver claimed the directory).

    Args:
      training_path_change: The path change the driver accepted, which the
        levels this worker trains record.
    """
    self.factory.load_data()
    self._path_change = training_path_change
    self._writes_results = False

  def run_job(self, job):
    """Trains one job of a parallel run in this worker process and writes its level.

    A main level after the one this process trained last goes on in its
    model, as the serial loop does; any other job starts from the run
    directory's files, as a resumed run does.

    Returns:
      The job's metrics.
    """
    r, level, branch = job
    self.job_in_progress = job
    self.done = {need for need in self.job_needs(job) if self.paths.is_done(*need)}
    seed = self.config.seed + r
    if branch != MAIN:
      return self._branch_level(branch, seed, r, level)
    previous, self._last_main = self._last_main, None
    state = previous[1] if previous is not None and previous[0] == (r, level - 1) else None
    state = state or self._main_state(seed, r, level)
    metrics = self._main_level(state, seed, r, level)
    self._last_main = ((r, level), state)
    return metrics

  def _main_state(self, seed, r, level):
    model = self.factory.wrap(self.factory.build_model(seed), seed)
    optimizer, evaluate = self.factory.compile(model)
    state = _MainState(model, optimizer, evaluate)
    if level > 0:
      _load_state(model, self._read_file(r, level - 1, MAIN, storage.WEIGHTS))
      previous = storage.load_arrays(self._read_file(r, level - 1, MAIN, storage.MASKS))
      state.rewind_other = storage.unpack(previous, 'other')
    return state

  def _main_level(self, state, seed, r, level):
    start = time.time()
    model = state.model
    extra_callbacks = []
    if level == 0:
      if self.config.pruning.rewind_step == 0:
        rewind_lib.take_snapshot(model, step=0)
        state.rewind_other = [v.numpy() for v in _other_variables(model)]
      else:

        def on_snapshot():
          state.rewind_other = [v.numpy() for v in _other_variables(model)]

        extra_callbacks.append(_RewindPoint(self.config.pruning.rewind_step, on_snapshot))
    else:
      self._prune(state, seed)
      self._resume_at(model, state.optimizer, self._span(level)[0])
      self.factory.reset_loss_scale(model)
      self.hooks.after_round()
      if self.config.pruning.retrain == 'weight_rewind':
        for variable, value in zip(_other_variables(model), state.rewind_other, strict=True):
          variable.assign(value)
    metrics = self._train_and_measure(model, state.evaluate, seed, self._span(level), extra_callbacks)
    metrics['wall_time_s'] = time.time() - start
    metrics['training_path'] = self.training_path()
    self._save_level(r, seed, level, MAIN, model, state.rewind_other, metrics, save_weights=True)
    return metrics

  def _prune(self, state, seed):
    """A level's round: ranks the trained weights, or, for a `ModelCriterion`, scores the rewind point.

    A model criterion ('snip', 'grasp', 'synflow') scores the weights rewound
    with the previous level's masks, the layers outside the wrappers at their
    rewind values too, on the first batch of the level's training data.
    """
    if not criteria_lib.get_criterion(self.config.pruning.criterion).needs_model:
      rounds_lib.run_lottery_round(state.model, state.optimizer,
                                   keep_weights=self.config.pruning.retrain != 'weight_rewind')
      return
    _assign(_other_variables(state.model), state.rewind_other, 'other layers')
    rounds_lib.run_lottery_round(state.model, state.optimizer, data=self.scoring_batch(seed))

  def scoring_batch(self, seed):
    """The batch a `ModelCriterion` scores a level's masks on: the first of the level's training data."""
    return next(iter(self.factory.train_dataset(seed, self.config.pruning.rewind_step).take(1)))

  def _branch_level(self, name, seed, r, level):
    start = time.time()
    branch = branches_lib.get_branch(name)
    missing = [lv for lv in branch.needs(level) if (r, lv, MAIN) not in self.done]
    if missing:
      raise ValueError(f'branch {name!r} at level {level} needs the main run\'s levels {missing}, which are not done')
    model = branch.start(BranchContext(self, r, seed, level, factory_lib.derived_seed(seed, name, level)))
    if not wrapped_model.lottery_wrappers(model):
      raise ValueError(f'branch {name!r} returned a model without lottery wrappers from start(); build it with '
                       'context.wrap(...) or context.main_ticket()')
    model, optimizer, evaluate = self._compiled_branch_model(model)
    # Branches start where the main run's level does (open_lth's branches too): at the rewind step.
    optimizer.iterations.assign(self.config.pruning.rewind_step)
    wrapped_model.count_steps_with(model, optimizer, self.config.pruning.rewind_step)
    metrics = self._train_and_measure(model, evaluate, seed, (self.config.pruning.rewind_step, self.iterations), [])
    metrics['wall_time_s'] = time.time() - start
    metrics['training_path'] = self.training_path()
    self._save_level(r, seed, level, name, model, [v.numpy() for v in _other_variables(model)], metrics,
                     save_weights=False)
    return metrics

  def _compiled_branch_model(self, model):
    """`model` compiled, or its values in a compiled model of the same configuration that an earlier branch trained.

    Compiling a fresh model costs its tracing and XLA compilation, which for a
    small network take longer than its training; a model of the same layers
    and wrapper settings (seeds and layer rates aside: they only act in
    rounds and draws, which `start` did) trains the same from the same values.
    """
    key = _training_structure(model)
    cached = self._branch_models.get(key)
    if cached is None or [v.shape for v in cached[0].weights] != [v.shape for v in model.weights]:
      optimizer, evaluate = self.factory.compile(model)
      self._branch_models[key] = (model, optimizer, evaluate)
      return model, optimizer, evaluate
    target, optimizer, evaluate = cached
    for variable, value in zip(target.weights, model.weights, strict=True):
      variable.assign(value)
    rewind_lib.reset_optimizer(optimizer)
    self.factory.reset_loss_scale(target)
    return target, optimizer, evaluate

  def _train_and_measure(self, model, evaluate, seed, span, extra_callbacks):
    """Trains iterations span[0]..span[1]-1 (the optimizer is at span[0]) and measures the level."""
    split, t = self.split, self.config.training
    start_step, end_step = span
    supermask_loss, supermask_accuracy = evaluate(split.x_test, split.y_test)
    curve = _ValidationCurve(evaluate, split.x_val, split.y_val, t.eval_every, end_step)
    remaining = end_step - start_step
    # Whole epochs where they fit (Keras' per-epoch lines), else one "epoch" of what is left after a rewind.
    steps_per_epoch = self.factory.steps_per_epoch
    epochs, per_epoch = ((remaining // steps_per_epoch, steps_per_epoch)
                         if remaining % steps_per_epoch == 0 else (1, remaining))
    model.fit(self.factory.train_dataset(seed, start_step, end_step), epochs=epochs, steps_per_epoch=per_epoch,
              verbose=2 if self.verbose else 0,
              callbacks=extra_callbacks + [callbacks_lib.UpdateLotteryStep(), _StopOnDivergence(self.job_in_progress),
                                           curve, _AfterTrainStep(self.hooks)])
    test_loss, test_accuracy = evaluate(split.x_test, split.y_test)
    points = curve.curve
    stop = min(points, key=lambda p: p['val_loss'])
    best = max(points, key=lambda p: p['val_accuracy'])
    layers = rounds_lib.layer_sparsity(model)
    masks = _mask_variables(model)
    return {
        'weights_remaining': rounds_lib.weights_remaining(model),
        'weights_alive': sum(int(np.count_nonzero(m.numpy())) for m in masks),
        'prunable_weights': sum(int(np.prod(m.shape)) for m in masks),
        'layer_weights_remaining': {name: 1.0 - sparsity for name, sparsity in layers.items()},
        'test_accuracy': test_accuracy,
        'test_loss': test_loss,
        'best_val_accuracy': best['val_accuracy'],
        'best_val_iteration': best['iteration'],
        'early_stop_iteration': stop['iteration'],
        'early_stop_val_loss': stop['val_loss'],
        'early_stop_val_accuracy': stop['val_accuracy'],
        'supermask_accuracy': supermask_accuracy,
        'supermask_loss': supermask_loss,
        'iterations': self.iterations,
        'trained_iterations': remaining,
        'curve': points,
    }

  # --- outputs -----------------------------------------------------------------------------------------------------

  def _save_level(self, r, seed, level, branch, model, other_values, metrics, save_weights):
    metrics = dict(metrics, run=os.path.basename(self.run_dir), replicate=r, seed=seed, level=level, branch=branch)
    wrappers = wrapped_model.lottery_wrappers(model)
    arrays = {}
    arrays.update(storage.pack('mask', [m.numpy() for m in _mask_variables(model)],
                        [f'{w.layer.name}/{path}' for w in wrappers for path in w.prunable_weight_paths]))
    arrays['mask_layer'] = np.array([i for i, w in enumerate(wrappers) for _ in w.masks], np.int64)
    arrays.update(storage.pack('snapshot', [s.numpy() for w in wrappers for s in w.snapshots],
                        [f'{w.layer.name}/{path}' for w in wrappers for path in wrapper_lib.weight_paths(w.layer)]))
    arrays.update(storage.pack('other', list(other_values), [v.name for v in _other_variables(model)]))
    arrays['snapshot_step'] = np.int64(wrappers[0].snapshot_step.numpy())
    arrays['rounds_done'] = np.int64(wrappers[0].rounds_done.numpy())
    weights = storage.pack('weight', [v.numpy() for v in model.weights], [v.name for v in model.weights]) \
        if save_weights else None
    out, hooks = self._out, self.hooks
    checksums = {storage.MASKS: storage.save_arrays(out.file(r, level, branch, storage.MASKS), arrays, hooks)}
    if save_weights:
      checksums[storage.WEIGHTS] = storage.save_arrays(out.file(r, level, branch, storage.WEIGHTS), weights, hooks)
    checksums[storage.CURVE] = storage.write_csv(out.file(r, level, branch, storage.CURVE), metrics['curve'],
                                                 ['iteration', 'val_loss', 'val_accuracy'], hooks)
    checksums[storage.METRICS_CSV] = storage.write_csv(out.file(r, level, branch, storage.METRICS_CSV),
                                                       [flat_metrics(metrics)], hooks=hooks)
    checksums[storage.METRICS_JSON] = storage.write_json(out.file(r, level, branch, storage.METRICS_JSON), metrics,
                                                         hooks)
    if self.tensorboard and self.is_chief:
      self._write_tensorboard(r, level, branch, metrics)  # before the manifest: a redone level repeats, never lacks
    out.write_manifest(r, level, branch, checksums)  # last: the level is done
    out.clear_failure(r, level, branch)
    if self.is_chief and self._writes_results:
      self._write_results()

  def _write_tensorboard(self, r, level, branch, metrics):
    writer = tf.summary.create_file_writer(self.paths.tensorboard_dir(r, branch))
    with writer.as_default():
      for key in ('test_accuracy', 'test_loss', 'best_val_accuracy', 'supermask_accuracy', 'weights_remaining',
                  'early_stop_iteration', 'wall_time_s'):
        _scalar_summary(key, metrics[key], level)
      for layer, remaining in metrics['layer_weights_remaining'].items():
        _scalar_summary(f'sparsity/{layer}', 1.0 - remaining, level)
      for point in metrics['curve']:
        _scalar_summary(f'val_accuracy_by_iteration/level_{level}', point['val_accuracy'], point['iteration'])
    writer.close()

  def _write_results(self):
    rows = [flat_metrics(m) for m in storage.load_level_metrics(self.run_dir)]
    if rows:
      storage.write_csv(self.paths.results_path, rows, hooks=self.hooks)


METRIC_COLUMNS = ('run', 'replicate', 'seed', 'level', 'branch', 'weights_remaining', 'weights_alive',
                  'prunable_weights', 'test_accuracy', 'test_loss', 'best_val_accuracy', 'best_val_iteration',
                  'early_stop_iteration', 'early_stop_val_loss', 'early_stop_val_accuracy', 'supermask_accuracy',
                  'supermask_loss', 'iterations', 'trained_iterations', 'wall_time_s')


def _training_structure(model):
  """What a model's training depends on besides its variables: its config without seeds and layer rates."""

  def strip(value):
    if isinstance(value, dict):
      return {k: strip(v) for k, v in value.items() if k not in ('seed', 'layer_rate')}
    if isinstance(value, (list, tuple)):
      return [strip(v) for v in value]
    return value

  return json.dumps(strip(model.get_config()), sort_keys=True, default=repr)


def flat_metrics(metrics):
  """A level's metrics as one flat CSV row (per-layer values as `remaining/<layer>` columns, no curve).

  The training path is one `training_path` column (`training_path.describe`),
  and a `training_path_change` column where a resume accepted a change.
  """
  row = {key: metrics[key] for key in METRIC_COLUMNS if key in metrics}
  row.update({f'remaining/{layer}': v for layer, v in metrics.get('layer_weights_remaining', {}).items()})
  path = metrics.get('training_path')
  if path:
    row['training_path'] = training_path_lib.describe(path)
    if path.get('accepted_change'):
      row['training_path_change'] = path['accepted_change']
  row.update({k: v for k, v in metrics.items()
              if k not in row and k not in ('curve', 'layer_weights_remaining', 'training_path')})
  return row


def _mask_variables(model):
  return [mask for w in wrapped_model.lottery_wrappers(model) for mask in w.masks]


def _assign(variables, values, what):
  if len(variables) != len(values) or any(
      tuple(v.shape) != tuple(a.shape) for v, a in zip(variables, values, strict=True)):
    raise ValueError(f'the saved {what} do not fit the model ({len(values)} saved, {len(variables)} in the model, '
                     'or shapes differ): was the model builder changed?')
  for variable, value in zip(variables, values, strict=True):
    variable.assign(value)


def _load_state(model, path):
  """Restores every variable of a wrapped model (weights, masks, snapshots, counters) from weights.npz."""
  _assign(model.weights, storage.unpack(storage.load_arrays(path), 'weight'), f'weights in {path}')


def load_trained_model(run_dir, level=None, replicate=0, model_fn=None, data=None):
  """The ticket of one level of a run: its wrapped model after that level's training.

  Args:
    run_dir: A run directory written by `LotteryExperiment`.
    level: The level (default: the last finished one of the replicate).
    replicate: The replicate.
    model_fn: The run's model builder, if it was not a registered model.
    data: The run's arrays, if it did not use a named dataset.

  Returns:
    (model, split): the wrapped, compiled model with the level's weights, masks
    and snapshot, and the run's data split (`split.x_test`, ...).

  Raises:
    ValueError: if `run_dir` holds no run, or the level is not finished.
    storage.CorruptFileError: (a ValueError) if the level's files are
      truncated or do not match its manifest.

  Example:

  ```python
  model, split = ltp_tfmot.experiment.load_trained_model('runs/lottery_44136fa355b3', level=5)
  ltp_tfmot.export_tflite(model, 'level5.tflite', sample_inputs=split.x_test[:8])
  ```
  """
  paths = storage.RunDirectory(run_dir)
  if not files.exists(paths.config_path):
    raise ValueError(f'{run_dir!r} is not a run directory (it has no {storage.CONFIG})')
  config = config_lib.RunConfig.from_dict(storage.read_json(paths.config_path)['config'])
  finished = [lv for lv in range(config.pruning.levels + 1) if paths.is_done(replicate, lv, MAIN)]
  if level is None:
    if not finished:
      raise ValueError(f'replicate {replicate} of {run_dir!r} has no finished level yet')
    level = finished[-1]
  if level not in finished:
    raise ValueError(f'level {level} of replicate {replicate} is not finished in {run_dir!r}; finished: {finished}')
  factory = factory_lib.RunFactory(config, model_fn=model_fn, data=data)
  factory.load_data()
  paths.check_level(replicate, level, MAIN)
  seed = config.seed + replicate
  model = factory.wrap(factory.build_model(seed), seed)
  factory.compile(model)
  _load_state(model, paths.file(replicate, level, MAIN, storage.WEIGHTS))
  return model, factory.split


def run_experiment(config, out_dir=None, **kwargs):
  """Runs or resumes a lottery experiment; see `LotteryExperiment` for the arguments.

  Returns:
    The metrics of every finished level, as `LotteryExperiment.run`.
  """
  return LotteryExperiment(config, out_dir, **kwargs).run()
