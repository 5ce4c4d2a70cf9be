"""Instability analysis (Frankle, Dziugaite, Roy & Carbin 2020, "Linear Mode Connectivity and the LTH").

From the weights at iteration k of a run's level, two copies are trained to
the end of the level's training with different data orders, and the test
error is measured along the straight line between the two trained weight
sets. The instability at k is the largest rise of the error above the mean of
the two ends' errors:

    instability(k) = max over alpha of err(alpha) - (err(0) + err(1)) / 2,

alpha in `linspace(0, 1, points)`. It is >= 0 (the ends are on the path), and
exactly 0 for two identical copies. A network is stable at k when it is below
a small threshold (the paper: 2%); `earliest_stable_rewind_step` picks the
first such k, the rewind step to use for late rewinding (it, the table and
the plot of the results are in `instability_report`).

Where the weights at iteration k come from:

- Level 0 (the dense network): the replicate's initial weights, rebuilt from
  its seed (checked against the run: model fingerprint, and the stored
  initial weights when the run rewinds to 0), trained for k iterations on the
  run's data order.
- Level N > 0 (a ticket): level N's masks and its weights at the run's rewind
  step (the stored rewind snapshot, as the level itself starts), trained
  masked from the rewind step to k as the level trains; so k must be at least
  the run's rewind step.

Both copies start from the whole training state at k (weights, the variables
outside the wrappers such as BatchNormalization's, masks, and the optimizer's
slots and iteration count, so a learning-rate schedule goes on from k) and
train to the level's last iteration T. Copy A sees the run's data order from
batch k on, copy B the order of another data seed (the order the run would
give a replicate of seed `seed + 1 + derived_seed(seed, 'instability')`), or
the run's order too with `same_data_order=True`. Along the path every weight
of the network (the wrapped layers' weights, BatchNormalization's moving
statistics, the layers that are not wrapped) is (1 - alpha) * A + alpha * B,
where A and B differ (so the ends are exactly A and B and pruned weights stay
exactly 0), and the masks are applied before each evaluation. The test error
is 1 - accuracy on the run's test set, evaluated as the runner does.

Files (under the run directory, each written atomically; a k is done when
its result.json, written last, exists and its files match the checksums it
lists; a rerun skips the k's that are done):

```
instability/replicate_<r>/level_<N>/rewind_<k>/
  copies.npz     the two trained weight sets (the path's ends)
  path.csv       alpha, test_error, test_loss along the path
  result.json    settings, instability, the path, each copy's own evaluation, checksums
instability/replicate_<r>/level_<N>/instability.md, instability.png   (`write_instability_report`)
```

Example:

```python
from ltp_tfmot import experiment

results = experiment.instability_analysis('runs/lottery_44136fa355b3', level=0, rewind_steps=[0, 100, 500])
print(experiment.instability_table(results))
k = experiment.earliest_stable_rewind_step(results, threshold=0.02)
```
"""

import numbers
import os
import time

import numpy as np

from ltp_tfmot import errors
from ltp_tfmot import files
from ltp_tfmot import validation
from ltp_tfmot.core import seeds
from ltp_tfmot.experiment import branch_context
from ltp_tfmot.experiment import branches
from ltp_tfmot.experiment import config as config_lib
from ltp_tfmot.experiment import hooks as hooks_lib
from ltp_tfmot.experiment import level as level_lib
from ltp_tfmot.experiment import platform
from ltp_tfmot.experiment import resume
from ltp_tfmot.experiment import runner as runner_lib
from ltp_tfmot.experiment import storage
from ltp_tfmot.keras2 import callbacks as callbacks_lib
from ltp_tfmot.keras2 import rewind as rewind_lib
from ltp_tfmot.keras2 import rounds as rounds_lib
from ltp_tfmot.keras2 import wrapped_model

DIRECTORY = 'instability'
RESULT = 'result.json'
PATH_CSV = 'path.csv'
COPIES = 'copies.npz'
REPORT_MD = 'instability.md'
REPORT_PNG = 'instability.png'
DEFAULT_THRESHOLD = 0.02


NoStableRewindStepError = errors.NoStableRewindStepError


def check_threshold(threshold):
  """Returns `threshold` as a float if it is a number in (0, 1], else raises `ValueError`."""
  if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0 < threshold <= 1:
    raise ValueError(f'threshold must be an error difference in (0, 1] (the paper uses 0.02, i.e. 2%), got '
                     f'{threshold!r}')
  return float(threshold)


def path_variables(model):
  """The variables a path between two trained copies interpolates, in a fixed order.

  These are the weights of every wrapped layer (kernels, biases) and every
  variable outside the lottery wrappers (BatchNormalization's gamma, beta and
  moving statistics, layers left unwrapped); not the wrappers' masks,
  snapshots and counters, which both copies share.

  Args:
    model: A model wrapped with `prune_lottery_ticket`.

  Returns:
    A list of `tf.Variable`s.

  Example:

  ```python
  weights_a, weights_b, _ = experiment.load_copies(run_dir, level=1, rewind_step=0)
  model, split = experiment.load_trained_model(run_dir, level=1)
  for variable, value in zip(experiment.path_variables(model),
                             experiment.interpolate_weights(weights_a, weights_b, 0.5)):
    variable.assign(value)                  # the network halfway between the two copies
  ```
  """
  wrapped = [v for w in wrapped_model.lottery_wrappers(model) for v in w.layer.weights]
  return wrapped + [weight for _, weight in rewind_lib.unwrapped_layer_weights(model)]


def interpolate_weights(weights_a, weights_b, alpha):
  """The weights at `alpha` on the straight line from `weights_a` (alpha 0) to `weights_b` (alpha 1).

  Each array is (1 - alpha) * a + alpha * b, computed in float64 on whole
  arrays, except where a and b are equal, which keeps them exactly (pruned
  weights stay exactly 0, and the ends are exactly a and b).

  Args:
    weights_a: A list of arrays (e.g. `[v.numpy() for v in path_variables(model)]`).
    weights_b: A list of arrays of the same shapes.
    alpha: A number in [0, 1].

  Returns:
    A list of arrays with the dtypes of `weights_a`.

  Raises:
    ValueError: if the lists do not match or alpha is outside [0, 1].

  Example:

  ```python
  middle = experiment.interpolate_weights(weights_a, weights_b, 0.5)
  ```
  """
  if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
    raise ValueError(f'alpha must be a number in [0, 1], got {alpha!r}')
  if len(weights_a) != len(weights_b) or any(
      np.shape(a) != np.shape(b) for a, b in zip(weights_a, weights_b, strict=True)):
    raise ValueError(f'the two weight lists do not match ({len(weights_a)} and {len(weights_b)} arrays, or their '
                     'shapes differ): they must come from two copies of one model')
  result = []
  for a, b in zip(weights_a, weights_b, strict=True):
    a, b = np.asarray(a), np.asarray(b)
    mixed = (1.0 - alpha) * a.astype(np.float64) + alpha * b.astype(np.float64)
    result.append(np.where(a == b, a, mixed).astype(a.dtype))
  return result


def instability_dir(run_dir, level, replicate=0):
  """The folder of a level's instability results: `<run_dir>/instability/replicate_<r>/level_<N>`."""
  return os.path.join(files.abspath(run_dir), DIRECTORY, f'replicate_{replicate}', f'level_{level}')


def _rewind_dir(run_dir, level, replicate, k):
  return os.path.join(instability_dir(run_dir, level, replicate), f'rewind_{k}')


def _read_result(run_dir, level, replicate, k):
  """A finished k's result.json, None if it is not done, or (None, reason) when its files are damaged."""
  folder = _rewind_dir(run_dir, level, replicate, k)
  path = os.path.join(folder, RESULT)
  if not files.exists(path):
    return None, None
  try:
    result = storage.read_json(path)
    for name, digest in result['files'].items():
      file_path = os.path.join(folder, name)
      if not files.exists(file_path):
        return None, f'{file_path} is missing'
      if storage.file_sha256(file_path) != digest:
        return None, f'{file_path} does not match its checksum in {path}'
  except (errors.CorruptFileError, KeyError, TypeError, AttributeError) as error:
    return None, f'{path} is unreadable ({error})'
  return result, None


def load_instability(run_dir, level=0, replicate=0):
  """The finished instability results of a level of a run, sorted by rewind step.

  Args:
    run_dir: A run directory.
    level: The level.
    replicate: The replicate.

  Returns:
    A list of result dicts, as `instability_analysis` returns them (k's whose
    files are damaged are left out).

  Example:

  ```python
  results = experiment.load_instability('runs/lottery_44136fa355b3', level=0)
  print(experiment.instability_table(results))
  ```
  """
  folder = instability_dir(run_dir, level, replicate)
  if not files.isdir(folder):
    return []
  steps = sorted(int(name[len('rewind_'):]) for name in files.listdir(folder)
                 if name.startswith('rewind_') and name[len('rewind_'):].isdigit())
  results = [_read_result(run_dir, level, replicate, k)[0] for k in steps]
  return [r for r in results if r is not None]


def _copy_b_seed(seed):
  """The seed whose data order copy B takes: one the run gives none of its replicates in practice."""
  return seed + 1 + seeds.derived_seed(seed, 'instability')


class _Analysis:
  """One level of one replicate of a run, rebuilt through the runner's machinery, and its copies' training."""

  def __init__(self, run_dir, level, replicate, model_fn, data, hooks, log, strategy):
    paths = storage.RunDirectory(run_dir)
    if not files.exists(paths.config_path):
      raise ValueError(f'{run_dir!r} is not a run directory (it has no {storage.CONFIG}); give the directory '
                       '`ltp-tfmot run` made')
    self.stored = storage.read_json(paths.config_path)
    config = config_lib.RunConfig.from_dict(self.stored['config'])
    if not validation.is_int(replicate) or not 0 <= replicate < config.replicates:
      raise ValueError(f'replicate must be an integer in [0, {config.replicates}) for this run, got {replicate!r}')
    finished = [lv for lv in range(config.pruning.levels + 1) if paths.is_done(replicate, lv, branches.MAIN)]
    if not validation.is_int(level) or level not in finished:
      raise ValueError(f'level must be a finished level of replicate {replicate} of {run_dir!r}, got {level!r}; '
                       f'finished: {finished} (run the same `ltp-tfmot run` command to finish the others)')
    paths.check_level(replicate, level, branches.MAIN)
    self.experiment = runner_lib.LotteryExperiment(config, run_dir=run_dir, model_fn=model_fn, data=data,
                                                   tensorboard=False, log=log, hooks=hooks, strategy=strategy)
    if self.experiment.task is not None:
      raise ValueError('the instability analysis runs in one process and writes its results itself, so it cannot '
                       "run on a multi-worker strategy: use strategy='mirrored' (the devices of this machine) or none")
    self.factory = self.experiment.factory
    self.config, self.level, self.replicate, self.hooks, self.log = config, level, replicate, hooks, log
    self.seed = config.seed + replicate
    self.rewind_step = config.pruning.rewind_step

  @property
  def iterations(self):
    return self.factory.iterations

  def load(self):
    """Loads the data and checks that this process rebuilds the run's data and model."""
    self.factory.load_data()
    fresh = self.factory.build_model(self.seed)
    meta = resume.run_meta(self.config, self.factory, fresh)
    differences = resume.run_differences(self.config, meta)(self.stored)
    if differences:
      raise ValueError(f'the run in {self.experiment.run_dir} cannot be rebuilt here: ' + '; '.join(differences)
                       + '. Pass the model_fn and data the run was made with')

  def check_rewind_steps(self, rewind_steps):
    """The sorted, distinct rewind steps, each checked against the run; raises `ValueError` for a bad one."""
    if isinstance(rewind_steps, (str, bytes)) or not hasattr(rewind_steps, '__iter__'):
      raise ValueError(f'rewind_steps must be a list of iterations, got {rewind_steps!r}')
    steps = list(rewind_steps)
    if not steps:
      raise ValueError('rewind_steps must name at least one iteration k to fork the copies at')
    for k in steps:
      if not validation.is_int(k) or not 0 <= k < self.iterations:
        raise ValueError(f'every rewind step must be an integer in [0, {self.iterations}) (the iterations of a level '
                         f'of this run), got {k!r}')
      if self.level > 0 and k < self.rewind_step:
        raise ValueError(f'rewind step {k} is before the run\'s rewind step {self.rewind_step}: a ticket of level '
                         f'{self.level} starts at iteration {self.rewind_step}, so its weights at earlier '
                         f'iterations do not exist; use k >= {self.rewind_step} (or level 0)')
    return sorted(set(int(k) for k in steps))

  def _start(self):
    """The wrapped, compiled model where the level's training starts, its evaluator and the start iteration."""
    if self.level == 0:
      model = self.factory.wrap(self.factory.build_model(self.seed), self.seed)
      if self.rewind_step == 0:
        self._check_initialisation(model)
      start_step = 0
    else:
      context = branch_context.BranchContext(self.experiment.trainer, self.replicate, self.seed, self.level,
                                             self.seed)
      model, start_step = context.main_ticket(), self.rewind_step
    optimizer, evaluate = self.factory.compile(model)
    optimizer.iterations.assign(start_step)
    wrapped_model.count_steps_with(model, optimizer, start_step)
    return model, optimizer, evaluate, start_step

  def _check_initialisation(self, model):
    context = branch_context.BranchContext(self.experiment.trainer, self.replicate, self.seed, 0, self.seed)
    stored = context.main_outputs(0)['snapshots']
    fresh = [v.numpy() for w in wrapped_model.lottery_wrappers(model) for v in w.layer.weights]
    if len(stored) != len(fresh) or any(not np.array_equal(s, f) for s, f in zip(stored, fresh, strict=True)):
      raise ValueError(f'the model built from seed {self.seed} does not have the initial weights stored for '
                       f'replicate {self.replicate} of {self.experiment.run_dir}: was the model builder changed?')

  def _train(self, model, seed, start_step, steps):
    if steps:
      model.fit(self.factory.train_dataset(seed, start_step), epochs=1, steps_per_epoch=steps, verbose=0,
                callbacks=[callbacks_lib.UpdateLotteryStep(), level_lib.AfterTrainStep(self.hooks)])

  def analyse(self, k, points, same_data_order):
    """Trains the two copies forked at `k` and evaluates the path between them; returns the result and the ends."""
    with platform.strategy_scope(self.experiment.strategy):
      return self._analyse(k, points, same_data_order)

  def _analyse(self, k, points, same_data_order):
    start = time.time()
    model, optimizer, evaluate, start_step = self._start()
    if k > start_step:
      self.log(f'level {self.level} k={k}: training from iteration {start_step} to the fork at {k}')
    self._train(model, self.seed, start_step, k - start_step)
    fork_model = [v.numpy() for v in model.weights]
    # Slots exist once the optimizer has stepped; before that the fork's optimizer state is a fresh one at k.
    optimizer_variables = rewind_lib.optimizer_variables
    fork_optimizer = [v.numpy() for v in optimizer_variables(optimizer)] if k > start_step else None
    seeds = (self.seed, self.seed if same_data_order else _copy_b_seed(self.seed))
    split, ends, copies = self.factory.split, [], []
    for index, seed in enumerate(seeds):
      if index:
        for variable, value in zip(model.weights, fork_model, strict=True):
          variable.assign(value)
        rewind_lib.reset_optimizer(optimizer, iterations=k)
        self.factory.reset_loss_scale(model)
        if fork_optimizer is not None:
          for variable, value in zip(optimizer_variables(optimizer), fork_optimizer, strict=True):
            variable.assign(value)
      self.log(f'level {self.level} k={k}: training copy {"AB"[index]} to iteration {self.iterations}')
      self._train(model, seed, k, self.iterations - k)
      loss, accuracy = evaluate(split.x_test, split.y_test)
      copies.append({'data_seed': self.factory.data_seed(seed), 'test_error': 1.0 - accuracy, 'test_loss': loss})
      ends.append([v.numpy() for v in path_variables(model)])
    alphas = np.linspace(0.0, 1.0, points)
    path = []
    for alpha in alphas:
      weights = interpolate_weights(ends[0], ends[1], float(alpha))
      for variable, value in zip(path_variables(model), weights, strict=True):
        variable.assign(value)
      loss, accuracy = evaluate(split.x_test, split.y_test)
      path.append({'alpha': float(alpha), 'test_error': 1.0 - accuracy, 'test_loss': loss})
    errors_on_path = [p['test_error'] for p in path]
    end_mean = (errors_on_path[0] + errors_on_path[-1]) / 2
    result = {
        'run': os.path.basename(self.experiment.run_dir), 'replicate': self.replicate, 'seed': self.seed,
        'level': self.level, 'rewind_step': k, 'points': points, 'same_data_order': same_data_order,
        'iterations': self.iterations, 'run_rewind_step': self.rewind_step,
        'weights_remaining': rounds_lib.weights_remaining(model),
        'instability': max(errors_on_path) - end_mean, 'end_error_mean': end_mean,
        'max_error_alpha': path[int(np.argmax(errors_on_path))]['alpha'],
        'copies': copies, 'path': path, 'wall_time_s': time.time() - start,
    }
    return result, ends, [v.name for v in path_variables(model)]


def _save(run_dir, result, ends, names, hooks):
  folder = _rewind_dir(run_dir, result['level'], result['replicate'], result['rewind_step'])
  arrays = dict(storage.pack('copy_a', ends[0], names), **storage.pack('copy_b', ends[1], names))
  digests = {COPIES: storage.save_arrays(os.path.join(folder, COPIES), arrays, hooks),
             PATH_CSV: storage.write_csv(os.path.join(folder, PATH_CSV), result['path'],
                                         ['alpha', 'test_error', 'test_loss'], hooks)}
  storage.write_json(os.path.join(folder, RESULT), dict(result, files=digests), hooks)  # last: k is done


def load_copies(run_dir, level, rewind_step, replicate=0):
  """The two trained weight sets (the path's ends) of a finished k, as lists ordered as `path_variables`.

  Returns:
    (weights_a, weights_b, names): two lists of arrays and the variables' names.

  Raises:
    ValueError: if that k is not finished.

  Example:

  ```python
  weights_a, weights_b, names = experiment.load_copies(run_dir, level=0, rewind_step=100)
  ```
  """
  result, problem = _read_result(run_dir, level, replicate, rewind_step)
  if result is None:
    raise ValueError(f'rewind step {rewind_step} of level {level} (replicate {replicate}) has no finished instability '
                     f'result in {run_dir}' + (f': {problem}' if problem else ''))
  arrays = storage.load_arrays(os.path.join(_rewind_dir(run_dir, level, replicate, rewind_step), COPIES))
  return (storage.unpack(arrays, 'copy_a'), storage.unpack(arrays, 'copy_b'),
          [str(n) for n in arrays['copy_a_names']])


def instability_analysis(run_dir, level=0, rewind_steps=(0,), *, replicate=0, points=31, same_data_order=False,
                         model_fn=None, data=None, hooks=None, log=None, strategy=None):
  """Measures the instability of a run's level at each rewind step k; resumable, results stored in the run.

  For each k, two copies of the network at iteration k are trained to the
  end of the level's training with different data orders, and the test error
  is evaluated at `points` points of the straight line between them (see
  the module docs for where the weights at k come from). k's already done
  with the same settings are read back, not trained again.

  Args:
    run_dir: A run directory made by `LotteryExperiment` / `ltp-tfmot run`.
    level: A finished level of the run: 0 for the dense network, N > 0 for
      level N's ticket.
    rewind_steps: The iterations k to fork the copies at: integers in [0, T)
      (T: the iterations of a level), and at least the run's rewind step
      for N > 0 (in any order; each is measured once).
    replicate: The replicate of the run.
    points: How many evenly spaced points of the path (both ends included)
      are evaluated, >= 2.
    same_data_order: Train both copies on the run's data order (their
      instability is then 0: a check of determinism).
    model_fn: The run's model builder, if it was not a registered model.
    data: The run's arrays, if it did not use a named dataset.
    hooks: An optional `RunHooks` (called after each training step and to
      write each file).
    log: A function taking one progress line (default: print, flushed).
    strategy: None, 'default', 'mirrored' or a single-process
      `tf.distribute.Strategy`: the copies are built, trained and evaluated
      in its scope, as `LotteryExperiment(strategy=...)` trains the levels.

  Returns:
    A list of result dicts, one per k (sorted): run, replicate, seed, level,
    rewind_step (k), points, same_data_order, iterations, run_rewind_step,
    weights_remaining, instability, end_error_mean, max_error_alpha, copies
    (each copy's data_seed, test_error and test_loss after training), path
    (alpha, test_error, test_loss per point), wall_time_s, files.

  Raises:
    ValueError: for a directory that is not a run, a level that is not
      finished, a bad k or `points`, a k done earlier with other settings,
      or a model or data that differ from the run's, or a multi-worker
      strategy; nothing is written then.
    storage.StorageError: if a file cannot be written; the k's done before
      are intact and a rerun resumes.

  Example:

  ```python
  results = experiment.instability_analysis(run_dir, level=3, rewind_steps=[0, 50, 200], points=11)
  print([round(r['instability'], 3) for r in results])
  ```
  """
  if not validation.is_int(points) or points < 2:
    raise ValueError(f'points must be an integer >= 2 (the path\'s two ends at least), got {points!r}')
  if not isinstance(same_data_order, bool):
    raise ValueError(f'same_data_order must be True or False, got {same_data_order!r}')
  if hooks is not None and not isinstance(hooks, hooks_lib.RunHooks):
    raise TypeError(f'hooks must be a ltp_tfmot.experiment.RunHooks, got {type(hooks).__name__}')
  log = log if log is not None else (lambda line: print(line, flush=True))
  hooks = hooks if hooks is not None else hooks_lib.RunHooks()
  analysis = _Analysis(run_dir, level, replicate, model_fn, data, hooks, log, strategy)
  analysis.load()
  steps = analysis.check_rewind_steps(rewind_steps)
  done, todo = {}, []
  for k in steps:
    result, problem = _read_result(run_dir, level, replicate, k)
    if problem:
      log(f'WARNING: instability at k={k} is damaged and will be redone: {problem}')
    if result is None:
      todo.append(k)
      continue
    if (result['points'], result['same_data_order']) != (points, same_data_order):
      raise ValueError(f'the instability at k={k} of level {level} was measured with points={result["points"]}, '
                       f'same_data_order={result["same_data_order"]} in {instability_dir(run_dir, level, replicate)}; '
                       f'pass the same settings, or delete its rewind_{k} folder to measure it again')
    done[k] = result
  folder = instability_dir(run_dir, level, replicate)
  if files.isdir(folder):
    storage.remove_temp_files(folder)
  log(f'[{os.path.basename(analysis.experiment.run_dir)}] instability of replicate {replicate} level {level}: '
      f'{len(steps)} rewind step(s), {len(done)} done earlier, {len(todo)} to run; {analysis.iterations} '
      f'iterations per level, {points} points per path')
  durations = []
  for position, k in enumerate(todo):
    result, ends, names = analysis.analyse(k, points, same_data_order)
    _save(run_dir, result, ends, names, hooks)
    done[k] = _read_result(run_dir, level, replicate, k)[0]
    durations.append(result['wall_time_s'])
    left = len(todo) - position - 1
    eta = runner_lib.format_duration(np.mean(durations) * left) if left else 'done'
    log(f'level {level} k={k}: instability {100 * result["instability"]:.2f}% (max error '
        f'{100 * max(p["test_error"] for p in result["path"]):.2f}% at alpha {result["max_error_alpha"]:.2f}, ends '
        f'{100 * result["path"][0]["test_error"]:.2f}% and {100 * result["path"][-1]["test_error"]:.2f}%), '
        f'{result["wall_time_s"]:.1f}s | ETA {eta}')
  return [done[k] for k in steps]
