"""The training steps a model's lottery wrappers count, for both Keras front ends.

Every wrapper keeps `step_offset` (steps done = offset + the optimizer's
iterations; moved when a round resets the optimizer; the front end's
`NOT_COUNTING` before counting starts) and `pruning_step` (the count last
recorded, which a model loaded without its optimizer's state resumes from).
A front end reads a counter variable as an int with its own `read`.
"""


def steps_done(first, iterations, read, not_counting):
  """The steps done: the wrappers' offset plus `iterations`, never below the count last recorded.

  Args:
    first: The model's first lottery wrapper (all hold the same counters).
    iterations: The optimizer's iterations, or None for a model without one.
    read: `read(variable) -> int`.
    not_counting: The front end's offset before counting starts.

  Returns:
    An int >= 0.
  """
  recorded = max(read(first.pruning_step), 0)
  offset = read(first.step_offset)
  if offset == not_counting or iterations is None:
    return recorded
  return max(recorded, offset + iterations)


def count_steps_with(wrappers, iterations, steps):
  """Makes the wrappers count on from `steps` with an optimizer now at `iterations`; returns the offset."""
  offset = steps - iterations
  for w in wrappers:
    w.step_offset.assign(offset)
    w.pruning_step.assign(steps)
  return offset


def start_counting(w, read, not_counting):
  """Starts counting a wrapper's steps (offset 0) unless it does already, as taking the rewind snapshot does."""
  if read(w.step_offset) == not_counting:
    w.step_offset.assign(0)
    w.pruning_step.assign(max(read(w.pruning_step), 0))
