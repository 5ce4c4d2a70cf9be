"""One job of a run in a worker process: what a job needs first, what a worker is sent, and how it trains the job.

A run's jobs are (replicate, level, branch) trainings, and they form a graph
(`job_needs`): level l + 1 of a replicate needs level l, a branch at level l
needs the main levels its `Branch.needs` names. The driver of a parallel run
(`parallel`) sends each worker process the run's `worker_spec`; a `JobWorker`
made from it trains the jobs it is given. A main level after the one the
worker trained last goes on in that model, as the serial loop does; any other
job starts from the run directory's files, as a resumed run does, so both
give the serial run's results.
"""

from ltp_tfmot import validation
from ltp_tfmot.core import criteria as criteria_lib
from ltp_tfmot.experiment import branches as branches_lib
from ltp_tfmot.experiment import factory as factory_lib
from ltp_tfmot.experiment import level as level_lib
from ltp_tfmot.experiment import storage

MAIN = branches_lib.MAIN


def job_needs(job):
  """The jobs that must be done before `job` (replicate, level, branch) can train."""
  r, level, branch = job
  if branch == MAIN:
    return [(r, level - 1, MAIN)] if level > 0 else []
  return [(r, lv, MAIN) for lv in branches_lib.get_branch(branch).needs(level)]


def worker_spec(config, run_dir, *, model_fn, data, verbose, tensorboard, hooks, training_path_change):
  """What a worker process needs to make a run's `JobWorker` (`parallel` sends it to every Ray task).

  Args:
    config: The run's `RunConfig`.
    run_dir: The run directory (the driver claimed it).
    model_fn: The run's own model builder, or None.
    data: The run's own arrays, or None.
    verbose: Show Keras' per-epoch output.
    tensorboard: Write per-level TensorBoard summaries.
    hooks: The run's `RunHooks`.
    training_path_change: The training path change the driver accepted, or
      None; the levels the workers train record it.

  Returns:
    A dict (picklable where the arguments are).
  """
  criterion = config.pruning.criterion
  return {'config': config, 'run_dir': run_dir, 'model_fn': model_fn, 'data': data, 'verbose': verbose,
          'tensorboard': tensorboard, 'hooks': hooks,
          # What this process registered itself: a worker process has only the built-in ones.
          'branches': [branches_lib.get_branch(name) for name in config.controls
                       if name not in branches_lib.builtin_branch_names()],
          'criteria': [] if criterion in validation.BUILTIN_CRITERIA else [criteria_lib.get_criterion(criterion)],
          'training_path_change': training_path_change}


class JobWorker:
  """The jobs of one run in a worker process: the run's data loaded once, and the last main level's model.

  Args:
    spec: The run's `worker_spec`. Its branches and criteria are registered
      in this process (replacing those of the same names).
  """

  def __init__(self, spec):
    for branch in spec['branches']:
      branches_lib.register_branch(branch, overwrite=True)
    for criterion in spec['criteria']:
      criteria_lib.register_criterion(criterion, overwrite=True)
    self.config = spec['config']
    factory = factory_lib.RunFactory(self.config, model_fn=spec['model_fn'], data=spec['data'])
    self.trainer = level_lib.LevelTrainer(self.config, factory, storage.RunDirectory(spec['run_dir'], spec['hooks']),
                                          spec['hooks'], verbose=spec['verbose'], tensorboard=spec['tensorboard'])
    self.trainer.path_change = spec['training_path_change']
    self._last_main = None  # ((replicate, level), MainState) of the last main level trained here
    factory.load_data()

  def run_job(self, job):
    """Trains one job and writes its level.

    A main level after the one this process trained last goes on in its
    model, as the serial loop does; any other job starts from the run
    directory's files, as a resumed run does.

    Args:
      job: (replicate, level, branch), whose needs (`job_needs`) are done.

    Returns:
      The job's metrics.
    """
    r, level, branch = job
    done = {need for need in job_needs(job) if self.trainer.paths.is_done(*need)}
    seed = self.config.seed + r
    if branch != MAIN:
      return self.trainer.branch_level(branch, seed, r, level, done)
    previous, self._last_main = self._last_main, None
    state = previous[1] if previous is not None and previous[0] == (r, level - 1) else None
    state = state or self.trainer.main_state(seed, r, level)
    metrics = self.trainer.main_level(state, seed, r, level)
    self._last_main = ((r, level), state)
    return metrics
