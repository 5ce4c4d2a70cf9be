"""Where a run trains: the `tf.distribute` strategy of the runner's `strategy` argument and this process' role in it.

`LotteryExperiment(..., strategy='mirrored')` (all local GPUs, else all
logical CPUs) or `strategy='multi_worker'` (a `MultiWorkerMirroredStrategy`
configured by the TF_CONFIG environment variable; run the same command on
every worker) builds, wraps and compiles every model inside `strategy.scope()`.
Only the chief writes the run directory (for multi-worker runs on several
machines it must be on a shared file system, e.g. gs://bucket/runs); the other
workers write their files to a temporary directory, removed at the end. If a
worker dies, the others stop with `WorkerLostError` (the level in progress is
not written); starting every worker again resumes the run.
"""

import contextlib
import re

import tensorflow as tf

from ltp_tfmot import errors

STRATEGIES = ('default', 'mirrored', 'multi_worker')
# What a collective op raises on a worker whose peer died or cannot be reached.
PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
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

  Returns:
    The strategy, or None for the default strategy.

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

  Args:
    strategy: A `tf.distribute.Strategy`, or None.

  Returns:
    (whether this process is the chief, its task or None outside a cluster).
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


def strategy_scope(strategy):
  """The scope models are built, trained and evaluated in: `strategy.scope()`, or none for the default strategy."""
  return strategy.scope() if strategy is not None else contextlib.nullcontext()


def peer_lost(error, task, run_dir):
  """The `WorkerLostError` a multi-worker run's task raises for `error`, one of `PEER_ERRORS`.

  Args:
    error: What a collective op raised.
    task: This process' task ('worker:1').
    run_dir: The run directory.

  Returns:
    A `WorkerLostError` naming the tasks `error` names and how to resume.
  """
  tasks = sorted(set(re.findall(r'/job:\w+/replica:\d+/task:\d+', str(error))))
  detail = f'{type(error).__name__}' + (f' naming {", ".join(tasks)}' if tasks else '')
  if 'heartbeat' in str(error):
    detail += ', which stopped sending heartbeats'
  return WorkerLostError(
      f'worker {task}: another worker of this multi-worker run died or cannot be reached ({detail}), so this '
      f'one stopped too. The level in progress was not written; finished levels in {run_dir} are intact. '
      'Start every worker again with the same command to resume.')
