"""Lottery-ticket pruning schedules: rounds of a rate, for both Keras front ends.

The schedules know no Keras and no tfmot, so that a Keras 3 program can make
one without loading tfmot (which switches `tf.keras` to Keras 2). The Keras 2
front end registers them as tfmot `PruningSchedule`s (`ltp_tfmot.keras2`).
"""

import tensorflow as tf

from ltp_tfmot import validation


class LotteryTicketSchedule:
  """Iterative magnitude pruning in rounds: prune `rate` of what is alive, rewind.

  Training step `r * round_steps` (for r = 1..rounds) ends round r: the
  `UpdateLotteryStep` callback then prunes `rate` of the weights still alive,
  ranked by the wrapper's criterion, and rewinds the survivors. After round r
  a layer keeps `(1 - rate) ** r` of its weights (counted exactly, rounded half
  up). Training on after the last round trains the final ticket, so a full
  schedule is `total_steps = (rounds + 1) * round_steps` steps.

  With `round_steps=None` and `rounds=None` rounds never start on their own:
  run them with `ltp_tfmot.run_lottery_round` (custom loops, the experiment
  runner).

  Called as a tfmot schedule (Keras 2), `schedule(step)` returns `(ends_a_round,
  target_sparsity)` as tensors.

  Args:
    rate: Fraction of the alive weights pruned each round, in (0, 1).
    round_steps: Training steps per round, >= 1, or None.
    rounds: Number of pruning rounds, >= 1, or None.

  Raises:
    ValueError: for a rate outside (0, 1), round_steps or rounds below 1, or
      only one of round_steps and rounds given.

  Example:

  ```python
  schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.2, round_steps=500, rounds=5)
  model = ltp_tfmot.prune_lottery_ticket(model, pruning_schedule=schedule)
  model.fit(x, y, epochs=..., callbacks=[ltp_tfmot.UpdateLotteryStep()])
  ```
  """

  def __init__(self, rate=0.2, round_steps=None, rounds=None):
    self.rate = validation.check_fraction(rate, 'rate')
    by_hand = ' (or None for rounds run by hand)'
    self.round_steps = validation.check_int(round_steps, 'round_steps', 1, optional=True, hint=by_hand)
    self.rounds = validation.check_int(rounds, 'rounds', 1, optional=True, hint=by_hand)
    if (self.round_steps is None) != (self.rounds is None):
      raise ValueError('round_steps and rounds must be given together (or both None for rounds run by hand), '
                       f'got round_steps={round_steps!r}, rounds={rounds!r}')

  @property
  def total_steps(self):
    """Steps to run every round and then train the final ticket, or None."""
    return None if self.rounds is None else (self.rounds + 1) * self.round_steps

  def density_after(self, rounds_done, rate=None):
    """Fraction of a layer's weights alive after `rounds_done` rounds at `rate`."""
    return (1.0 - (self.rate if rate is None else rate)) ** rounds_done

  def rounds_due(self, steps_done):
    """How many rounds should have ended after `steps_done` training steps."""
    if self.round_steps is None:
      return 0
    return min(self.rounds, max(0, int(steps_done)) // self.round_steps)

  def __call__(self, step):
    step = tf.cast(step, tf.int64)
    if self.round_steps is None:
      return tf.constant(False), tf.constant(0.0, tf.float32)
    round_steps = tf.constant(self.round_steps, tf.int64)
    rounds_done = tf.clip_by_value(step // round_steps, 0, self.rounds)
    ends_a_round = tf.logical_and(
        tf.logical_and(step > 0, tf.math.floormod(step, round_steps) == 0),
        step // round_steps <= self.rounds)
    sparsity = 1.0 - tf.pow(1.0 - self.rate, tf.cast(rounds_done, tf.float32))
    return ends_a_round, sparsity

  def get_config(self):
    return {
        'class_name': self.__class__.__name__,
        'config': {'rate': self.rate, 'round_steps': self.round_steps, 'rounds': self.rounds},
    }

  @classmethod
  def from_config(cls, config):
    """The schedule of `get_config()['config']`."""
    return cls(**config)

  def __eq__(self, other):
    return type(self) is type(other) and self.get_config() == other.get_config()

  def __repr__(self):
    return f'{self.__class__.__name__}(rate={self.rate}, round_steps={self.round_steps}, rounds={self.rounds})'


class OneShotLotterySchedule(LotteryTicketSchedule):
  """One-shot lottery ticket: prune to `target_sparsity` once, then rewind.

  Args:
    target_sparsity: Fraction of each layer's weights pruned, in (0, 1).
    prune_step: The training step at which the single round ends, >= 1.

  Example:

  ```python
  schedule = ltp_tfmot.OneShotLotterySchedule(target_sparsity=0.9, prune_step=2000)
  ```
  """

  def __init__(self, target_sparsity, prune_step):
    if prune_step is None:
      raise ValueError('prune_step must be an integer >= 1, got None')
    super().__init__(rate=validation.check_fraction(target_sparsity, 'target_sparsity'),
                     round_steps=validation.check_int(prune_step, 'prune_step', 1), rounds=1)

  def get_config(self):
    return {
        'class_name': self.__class__.__name__,
        'config': {'target_sparsity': self.rate, 'prune_step': self.round_steps},
    }


def check_rewind_before_first_round(rewind_step, schedule):
  """Raises a ValueError unless the rewind point comes before the end of the schedule's first round."""
  if schedule.round_steps is not None and rewind_step >= schedule.round_steps:
    raise ValueError(f'rewind_step ({rewind_step}) must come before the end of the first round '
                     f'(round_steps={schedule.round_steps})')


def shared_schedule(wrappers):
  """The schedule and rewind step every lottery wrapper of a model shares.

  Args:
    wrappers: The model's lottery wrappers (either Keras front end).

  Returns:
    `(schedule, rewind_step)`.

  Raises:
    ValueError: for no wrapper, wrappers that disagree on schedule or rewind
      step, or a rewind step not before the end of the first round.
  """
  if not wrappers:
    raise ValueError('UpdateLotteryStep needs a model wrapped with ltp_tfmot.prune_lottery_ticket')
  schedules = {repr(w.pruning_schedule) for w in wrappers}
  rewind_steps = {w.rewind_step for w in wrappers}
  if len(schedules) > 1 or len(rewind_steps) > 1:
    raise ValueError('all lottery wrappers of a model must share one schedule and rewind_step, '
                     f'got {sorted(schedules)} and rewind steps {sorted(rewind_steps)}')
  schedule, rewind_step = wrappers[0].pruning_schedule, rewind_steps.pop()
  check_rewind_before_first_round(rewind_step, schedule)
  return schedule, rewind_step


def next_boundary(schedule, rewind_step, has_snapshot, rounds_done):
  """The training step a schedule acts at next (the rewind snapshot, the end of a round), or None after the last.

  Args:
    schedule: A `LotteryTicketSchedule`.
    rewind_step: The step the rewind snapshot is taken at.
    has_snapshot: Whether it was taken.
    rounds_done: The rounds ended so far.
  """
  boundaries = [] if has_snapshot else [rewind_step]
  if rounds_done < (schedule.rounds or 0):
    boundaries.append((rounds_done + 1) * schedule.round_steps)
  return min(boundaries) if boundaries else None


SCHEDULES = {cls.__name__: cls for cls in (LotteryTicketSchedule, OneShotLotterySchedule)}


def deserialize_schedule(config):
  """Rebuilds a schedule from `get_config()` output."""
  if config['class_name'] not in SCHEDULES:
    raise ValueError(f'unknown lottery schedule {config["class_name"]!r}; known: {sorted(SCHEDULES)}')
  return SCHEDULES[config['class_name']].from_config(config['config'])
