"""Training one level of a lottery run, a main level or a branch's: its round, its training, its measures, its files.

`LevelTrainer` holds what every level of a run shares (the settings, the
factory that builds and compiles the models, the run directory) and trains
one job (replicate, level, branch) at a time, for the runner's serial loop
(`runner`) and for a worker process of a parallel run (`worker`) alike. The
Keras callbacks here act at exact iterations of a level's training: the
rewind snapshot, the validation curve, the run's hooks, and the stop on a
diverged loss.

Level metrics (metrics.json of each level and branch, and what
`LotteryExperiment.run` returns): run, replicate, seed, level, branch ('main',
'reinit' or 'random_prune'); weights_remaining (fraction of the prunable
weights alive), weights_alive, prunable_weights, layer_weights_remaining
({layer: fraction}); test_accuracy and test_loss at the end of training;
best_val_accuracy and best_val_iteration; early_stop_iteration (iteration of
minimum validation loss, evaluated every `eval_every` iterations) with
early_stop_val_loss and early_stop_val_accuracy; supermask_accuracy and
supermask_loss (test set, masked rewind point before any training; with
lr_rewind or finetune: the pruned trained weights); iterations (T);
trained_iterations (what the level trained: T at level 0, the retraining
budget after it); wall_time_s; curve (the validation points); training_path
(the numeric path the level trained on: jit_compile and why,
steps_per_execution, threads, inter_op_threads, precision, tensorflow, cpu,
and accepted_change where a resume accepted another path; see
`training_path`).
"""

import json
import os
import time

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2
import tf_keras as keras

from ltp_tfmot import errors
from ltp_tfmot import files
from ltp_tfmot.core import criteria as criteria_lib
from ltp_tfmot.core import seeds
from ltp_tfmot.experiment import branch_context
from ltp_tfmot.experiment import branches as branches_lib
from ltp_tfmot.experiment import level_state
from ltp_tfmot.experiment import storage
from ltp_tfmot.experiment import training_path as training_path_lib
from ltp_tfmot.keras2 import callbacks as callbacks_lib
from ltp_tfmot.keras2 import rewind as rewind_lib
from ltp_tfmot.keras2 import rounds as rounds_lib
from ltp_tfmot.keras2 import wrapped_model

MAIN = branches_lib.MAIN
METRIC_COLUMNS = ('run', 'replicate', 'seed', 'level', 'branch', 'weights_remaining', 'weights_alive',
                  'prunable_weights', 'test_accuracy', 'test_loss', 'best_val_accuracy', 'best_val_iteration',
                  'early_stop_iteration', 'early_stop_val_loss', 'early_stop_val_accuracy', 'supermask_accuracy',
                  'supermask_loss', 'iterations', 'trained_iterations', 'wall_time_s')


def iteration(model):
  """The iteration a level's training is at: the optimizer's count (levels after 0 start it at the rewind step)."""
  return int(model.optimizer.iterations.numpy())


class RewindPoint(callbacks_lib.ExactStepCallback):
  """Takes the rewind snapshot after `step` training iterations (late rewinding, level 0)."""

  def __init__(self, step, on_snapshot):
    super().__init__()
    self.step = step
    self.on_snapshot = on_snapshot
    self.taken = False

  def on_train_batch_end(self, batch, logs=None):
    if not self.taken and iteration(self.model) == self.step:
      rewind_lib.take_snapshot(self.model, step=self.step)
      self.on_snapshot()
      self.taken = True
    super().on_train_batch_end(batch, logs)

  def steps_to_boundary(self):
    return None if self.taken else self.step - iteration(self.model)


class AfterTrainStep(keras.callbacks.Callback):
  """Calls the run's `RunHooks.after_train_step` once per training step, after the execution that ran it."""

  def __init__(self, hooks):
    super().__init__()
    self.hooks = hooks

  def on_train_begin(self, logs=None):
    self.iteration = iteration(self.model)

  def on_train_batch_end(self, batch, logs=None):
    now = iteration(self.model)
    for _ in range(now - self.iteration):
      self.hooks.after_train_step()
    self.iteration = now


class StopOnDivergence(keras.callbacks.Callback):
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
          f'{iteration(self.model)}, so training diverged and the level was not written. Lower the learning rate '
          '(training.learning_rate), add warm-up (training.warmup_steps), or check the data for NaNs')


class ValidationCurve(callbacks_lib.ExactStepCallback):
  """Evaluates on the validation set where training starts, every `every` iterations and at the last."""

  def __init__(self, evaluate, x, y, every, total):
    super().__init__()
    self.evaluate, self.x, self.y, self.every, self.total = evaluate, x, y, every, total
    self.curve = []

  def _record(self):
    loss, accuracy = self.evaluate(self.x, self.y)
    self.curve.append({'iteration': iteration(self.model), 'val_loss': loss, 'val_accuracy': accuracy})

  def on_train_begin(self, logs=None):
    super().on_train_begin(logs)
    self._record()

  def on_train_batch_end(self, batch, logs=None):
    now = iteration(self.model)
    if now % self.every == 0 or now == self.total:
      self._record()
    super().on_train_batch_end(batch, logs)

  def steps_to_boundary(self):
    now = iteration(self.model)
    return min(self.every - now % self.every, self.total - now) if now < self.total else None


class MainState:
  """The live main-branch model of one replicate, carried from level to level."""

  def __init__(self, model, optimizer, evaluate):
    self.model = model
    self.optimizer = optimizer
    self.evaluate = evaluate
    self.rewind_other = None


class LevelTrainer:
  """Trains the levels of one run and writes their files.

  Args:
    config: The run's `RunConfig`.
    factory: Its `RunFactory` (the data loaded before the first level).
    paths: The run directory's `storage.RunDirectory`.
    hooks: The run's `RunHooks`.
    is_chief: Whether this process is the chief of its cluster (only the
      chief writes TensorBoard summaries).
    verbose: Show Keras' per-epoch output.
    tensorboard: Write per-level TensorBoard summaries.

  Attributes:
    out: The directory this process writes its levels to: the run directory,
      or a temporary one off the chief of a multi-worker run.
    path_threads: (intra, inter) threads of the processes that train, or None
      for this process' own.
    path_change: The training path change a resume accepted
      ('jit_compile True -> False, ...'), recorded in every level, or None.
  """

  def __init__(self, config, factory, paths, hooks, *, is_chief=True, verbose=False, tensorboard=True):
    self.config = config
    self.factory = factory
    self.paths = paths
    self.out = paths
    self.hooks = hooks
    self.is_chief = is_chief
    self.verbose = verbose
    self.tensorboard = tensorboard
    self.path_threads = None
    self.path_change = None
    self._branch_models = {}  # training_structure -> (model, optimizer, evaluate) compiled for a branch

  @property
  def iterations(self):
    """Training iterations per level (after the factory loaded the data)."""
    return self.factory.iterations

  def read_file(self, r, level, branch, name):
    """A level file: this process' copy if it wrote one in this run, else the run directory's."""
    mine = self.out.file(r, level, branch, name)
    return mine if files.exists(mine) else self.paths.file(r, level, branch, name)

  def training_path(self):
    """The path record (`training_path.current`) of the levels trained now."""
    path = self.factory.training_path(self.path_threads)
    if self.path_change:
      path['accepted_change'] = self.path_change
    return path

  def span(self, level):
    """(first, end) iterations of a main level's training: level 0 all T; later ones as `pruning.retrain` says."""
    return (0, self.iterations) if level == 0 else self.config.pruning.retrain_span(self.iterations)

  def scoring_batch(self, seed):
    """The batch a `ModelCriterion` scores a level's masks on: the first of the level's training data."""
    return next(iter(self.factory.train_dataset(seed, self.config.pruning.rewind_step).take(1)))

  def main_state(self, seed, r, level):
    """The main model of replicate `r` where `level` starts: fresh at level 0, else the previous level's files."""
    model = self.factory.wrap(self.factory.build_model(seed), seed)
    optimizer, evaluate = self.factory.compile(model)
    state = MainState(model, optimizer, evaluate)
    if level > 0:
      level_state.load_state(model, self.read_file(r, level - 1, MAIN, storage.WEIGHTS))
      previous = storage.load_arrays(self.read_file(r, level - 1, MAIN, storage.MASKS))
      state.rewind_other = storage.unpack(previous, 'other')
    return state

  def main_level(self, state, seed, r, level):
    """Prunes (after level 0), trains and writes main level `level` of replicate `r` in `state`; returns its metrics."""
    start = time.time()
    model = state.model
    extra_callbacks = []
    if level == 0:
      if self.config.pruning.rewind_step == 0:
        rewind_lib.take_snapshot(model, step=0)
        state.rewind_other = [v.numpy() for v in level_state.other_variables(model)]
      else:

        def on_snapshot():
          state.rewind_other = [v.numpy() for v in level_state.other_variables(model)]

        extra_callbacks.append(RewindPoint(self.config.pruning.rewind_step, on_snapshot))
    else:
      self._prune(state, seed)
      self._resume_at(model, state.optimizer, self.span(level)[0])
      self.factory.reset_loss_scale(model)
      self.hooks.after_round()
      if self.config.pruning.retrain == 'weight_rewind':
        for variable, value in zip(level_state.other_variables(model), state.rewind_other, strict=True):
          variable.assign(value)
    metrics = self.train_and_measure((r, level, MAIN), model, state.evaluate, seed, self.span(level),
                                     extra_callbacks)
    metrics['wall_time_s'] = time.time() - start
    metrics['training_path'] = self.training_path()
    self._save_level(r, seed, level, MAIN, model, state.rewind_other, metrics, save_weights=True)
    return metrics

  @staticmethod
  def _resume_at(model, optimizer, step):
    """Makes the next training start at iteration `step`, the model's step count going on as it was."""
    steps = wrapped_model.steps_done(model, optimizer)
    optimizer.iterations.assign(step)
    wrapped_model.count_steps_with(model, optimizer, steps)

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
    level_state.assign(level_state.other_variables(state.model), state.rewind_other, 'other layers')
    rounds_lib.run_lottery_round(state.model, state.optimizer, data=self.scoring_batch(seed))

  def branch_level(self, name, seed, r, level, done):
    """Trains and writes branch `name` at `level` of replicate `r`; returns its metrics.

    Args:
      name: The registered branch.
      seed: The replicate's seed.
      r: The replicate.
      level: The level.
      done: The finished jobs: the main levels the branch needs must be
        among them.

    Raises:
      ValueError: if a main level the branch needs is not done, or its
        `start` returns a model without lottery wrappers.
    """
    start = time.time()
    branch = branches_lib.get_branch(name)
    missing = [lv for lv in branch.needs(level) if (r, lv, MAIN) not in done]
    if missing:
      raise ValueError(f'branch {name!r} at level {level} needs the main run\'s levels {missing}, which are not done')
    context = branch_context.BranchContext(self, r, seed, level, seeds.derived_seed(seed, name, level))
    model = branch.start(context)
    if not wrapped_model.lottery_wrappers(model):
      raise ValueError(f'branch {name!r} returned a model without lottery wrappers from start(); build it with '
                       'context.wrap(...) or context.main_ticket()')
    model, optimizer, evaluate = self._compiled_branch_model(model)
    # Branches start where the main run's level does (open_lth's branches too): at the rewind step.
    rewind_step = self.config.pruning.rewind_step
    optimizer.iterations.assign(rewind_step)
    wrapped_model.count_steps_with(model, optimizer, rewind_step)
    metrics = self.train_and_measure((r, level, name), model, evaluate, seed, (rewind_step, self.iterations), [])
    metrics['wall_time_s'] = time.time() - start
    metrics['training_path'] = self.training_path()
    self._save_level(r, seed, level, name, model, [v.numpy() for v in level_state.other_variables(model)], metrics,
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

  def train_and_measure(self, job, model, evaluate, seed, span, extra_callbacks):
    """Trains iterations span[0]..span[1]-1 of `job` (the optimizer is at span[0]) and measures the level.

    Returns:
      The level's metrics, but for wall_time_s and training_path.

    Raises:
      TrainingDivergedError: if the training loss is NaN or infinite.
    """
    split, t = self.factory.split, self.config.training
    start_step, end_step = span
    supermask_loss, supermask_accuracy = evaluate(split.x_test, split.y_test)
    curve = ValidationCurve(evaluate, split.x_val, split.y_val, t.eval_every, end_step)
    remaining = end_step - start_step
    # Whole epochs where they fit (Keras' per-epoch lines), else one "epoch" of what is left after a rewind.
    steps_per_epoch = self.factory.steps_per_epoch
    epochs, per_epoch = ((remaining // steps_per_epoch, steps_per_epoch)
                         if remaining % steps_per_epoch == 0 else (1, remaining))
    model.fit(self.factory.train_dataset(seed, start_step, end_step), epochs=epochs, steps_per_epoch=per_epoch,
              verbose=2 if self.verbose else 0,
              callbacks=extra_callbacks + [callbacks_lib.UpdateLotteryStep(), StopOnDivergence(job), curve,
                                           AfterTrainStep(self.hooks)])
    test_loss, test_accuracy = evaluate(split.x_test, split.y_test)
    points = curve.curve
    stop = min(points, key=lambda p: p['val_loss'])
    best = max(points, key=lambda p: p['val_accuracy'])
    layers = rounds_lib.layer_sparsity(model)
    masks = level_state.mask_variables(model)
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

  def _save_level(self, r, seed, level, branch, model, other_values, metrics, save_weights):
    """Writes a level's files to `out`, its manifest last (the level is done then), and clears its failure."""
    metrics = dict(metrics, run=os.path.basename(self.paths.path), replicate=r, seed=seed, level=level,
                   branch=branch)
    arrays = level_state.mask_arrays(model, other_values)
    weights = level_state.weight_arrays(model) if save_weights else None
    out, hooks = self.out, self.hooks
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


def _scalar_summary(tag, value, step):
  """`tf.summary.scalar` without the tensorboard package (TensorFlow 2.21 no longer installs it).

  Writes the same event: a float32 scalar tagged for TensorBoard's scalars
  plugin, through the core op `tf.summary.write`.
  """
  metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name='scalars'))
  tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step, metadata=metadata)


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

  Args:
    metrics: A level's metrics (metrics.json).

  Returns:
    The row, a dict.
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
