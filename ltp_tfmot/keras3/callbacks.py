"""The Keras 3 callback that runs the lottery-ticket schedule during `fit`, at exact training steps.

Keras 3 compiles `steps_per_execution` steps into one call of the model's
`train_function` (a loop inside one program on the TensorFlow backend) and
calls the batch callbacks once per call, so a callback cannot act between two
steps of a call. `UpdateLotteryStep` therefore wraps the model's
`train_function` for the length of `fit`: a call whose steps would cross a
step the schedule acts at (the rewind step, a round boundary) runs as pieces
that end there, with the snapshot or the round between them. Pieces of k
steps are the model's own train function compiled for k steps (TensorFlow
backend) or its one-step function run k times (JAX backend, whose own
multi-step loop does the same); on the JAX backend the trainer's state is put
into the model's variables before the round and read back after it.
"""

from absl import logging
import keras

from ltp_tfmot.core import schedule as schedule_lib
from ltp_tfmot.keras3 import rewind as rewind_lib
from ltp_tfmot.keras3 import rounds as rounds_lib
from ltp_tfmot.keras3 import wrapped_model


def _state_variables(model):
  """The variable lists of the JAX trainer's state, in its order."""
  return (model.trainable_variables, model.non_trainable_variables, model.optimizer.variables,
          model.metrics_variables)


def _put_state(model, state):
  """Assigns a JAX trainer state to the model's variables."""
  for variables, values in zip(_state_variables(model), state, strict=True):
    for variable, value in zip(variables, values, strict=True):
      variable.assign(value)


def _take_state(model):
  """The JAX trainer state held in the model's variables."""
  return tuple([variable.value for variable in variables] for variables in _state_variables(model))


class _PiecewiseTraining:
  """A model's `train_function`, cut into pieces that end at the steps a callback must act at.

  Args:
    model: The compiled Keras 3 model, its train function made.
    steps_to_boundary: `f()`: training steps until the next step to act at, or None.
    on_steps: `f(steps)`: called after every piece with the steps it ran; acts when at a boundary.
  """

  def __init__(self, model, steps_to_boundary, on_steps):
    self.model = model
    self.original = model.train_function
    self.steps_per_execution = model.steps_per_execution
    self.steps_to_boundary = steps_to_boundary
    self.on_steps = on_steps
    self.pieces = {self.steps_per_execution: self.original}
    self.jax = keras.backend.backend() == 'jax'

  def piece(self, steps):
    """The model's train function made for `steps` steps per call (once per length)."""
    if steps not in self.pieces:
      model = self.model
      model.steps_per_execution = steps
      try:
        model.make_train_function(force=True)
        self.pieces[steps] = model.train_function
      finally:
        model.steps_per_execution = self.steps_per_execution
        model.train_function = self
    return self.pieces[steps]

  def run_piece(self, steps, *arguments):
    """Runs `steps` steps; Keras reads `steps_per_execution` when it traces or runs a function, so it is set."""
    function = self.piece(steps)
    if steps == self.steps_per_execution:
      return function(*arguments)
    self.model.steps_per_execution = steps
    try:
      return function(*arguments)
    finally:
      self.model.steps_per_execution = self.steps_per_execution

  def __call__(self, *arguments):
    if self.jax:
      return self._jax_call(*arguments)
    return self._tf_call(*arguments)

  def _remaining(self, ran):
    left = self.steps_per_execution - ran
    boundary = self.steps_to_boundary()
    return left if boundary is None else max(1, min(left, boundary))

  def _tf_call(self, iterator):
    iterations = self.model.optimizer.iterations
    ran, logs = 0, None
    while ran < self.steps_per_execution:
      steps = self._remaining(ran)
      # One step either runs or raises StopIteration; a longer piece may run short when the data ends.
      before = None if steps == 1 else int(iterations.numpy())
      try:
        logs = self.run_piece(steps, iterator)
      except StopIteration:
        if logs is None:
          raise
        break
      done = steps if before is None else int(iterations.numpy()) - before
      ran += steps
      self.on_steps(done)
      if done < steps:
        break
    return logs

  def _jax_call(self, state, iterator):
    ran, logs = 0, None
    while ran < self.steps_per_execution:
      steps = self._remaining(ran)
      for done in range(steps):
        try:
          logs, state = self.run_piece(1, state, iterator)
        except StopIteration:
          if logs is None:
            raise
          # The data ended inside the piece, before its boundary: the steps it ran still count (a model saved
          # now resumes from them).
          if done:
            self.on_steps(done)
          return logs, state
        ran += 1
      if self.steps_to_boundary() == steps:
        _put_state(self.model, state)
        self.on_steps(steps)
        state = _take_state(self.model)
      else:
        self.on_steps(steps)
    return logs, state


class UpdateLotteryStep(keras.callbacks.Callback):
  """Runs the lottery-ticket schedule of a Keras 3 model during `fit`.

  The Keras 3 counterpart of `ltp_tfmot.keras2.callbacks.UpdateLotteryStep`:
  it counts the model's training steps, takes the rewind snapshot once
  `rewind_step` steps are done (0: before the first step), ends each round of
  the `LotteryTicketSchedule` with `run_lottery_round` (prune, rewind, reset
  the optimizer) after exactly `round_steps` steps, also with
  `compile(steps_per_execution=N)` and `jit_compile=True`, and applies the
  masks to the stored weights when training ends. Snapshot, round count and
  step count live in the wrappers, so a saved model resumes where it stopped.
  They are read at the first batch, after every callback's `on_train_begin`,
  so `BackupAndRestore` may come before or after it.

  Raises:
    ValueError: at the start of training, as `core.schedule.shared_schedule`:
      no wrapper, a schedule or rewind step the wrappers disagree on, or a
      rewind step not before the first round's end.

  Example:

  ```python
  model.compile('adam', loss, steps_per_execution=8, jit_compile=True)  # rounds still end at exact steps
  model.fit(x, y, epochs=10, callbacks=[ltp_tfmot.UpdateLotteryStep()])
  ```
  """

  # Nothing happens after a batch (the rounds run inside the training call), so Keras may dispatch the
  # batch-end callbacks asynchronously (the JAX backend does) without waiting for each step.
  async_safe = True

  def __init__(self):
    super().__init__()
    self.wrappers = []
    self._started = False
    self._training = None

  def on_train_begin(self, logs=None):
    # Kept: on the JAX backend `self.model` puts the trainer's last state into the variables, which inside a
    # training call is older than the state the round works on.
    self._fit_model = model = self.model
    self.wrappers = wrapped_model.lottery_wrappers(model)
    self.schedule, self.rewind_step = schedule_lib.shared_schedule(self.wrappers)
    if isinstance(model.train_function, _PiecewiseTraining):  # left by a fit that raised
      model.train_function = model.train_function.original
    self._training = _PiecewiseTraining(model, self.steps_to_boundary, self._on_steps)
    model.train_function = self._training
    self._started = False

  def on_train_batch_begin(self, batch, logs=None):
    if self._started:
      return
    # State is read at the first batch: a callback after this one may still restore the model in its
    # on_train_begin (BackupAndRestore does).
    self._started = True
    self._optimizer = self.model.optimizer
    wrapped_model.count_steps_with(self.wrappers, self._optimizer)
    self._steps = wrapped_model.steps_done(self.wrappers, self._optimizer)
    self._has_snapshot = self.wrappers[0].has_snapshot
    self._rounds_done = int(wrapped_model.value(self.wrappers[0].rounds_done))
    self._act()

  def on_epoch_end(self, epoch, logs=None):
    self._record_steps()

  def on_train_end(self, logs=None):
    model = self.model
    if self._training is not None and model.train_function is self._training:
      model.train_function = self._training.original
    self._training = None
    self._record_steps()
    rounds_lib.apply_masks(model)

  def steps_to_boundary(self):
    """Training steps until the next step the schedule acts at, or None."""
    if not self._started:
      return None
    boundary = schedule_lib.next_boundary(self.schedule, self.rewind_step, self._has_snapshot, self._rounds_done)
    return None if boundary is None else max(1, boundary - self._steps)

  def _on_steps(self, steps):
    self._steps += steps
    self._act()

  def _record_steps(self):
    # pruning_step is what a model loaded without its optimizer's state resumes from.
    if self._started:
      wrapped_model.count_steps_with(self.wrappers, self._optimizer, self._steps)

  def _act(self):
    if self._has_snapshot and self._rounds_done >= (self.schedule.rounds or 0):
      return
    if self._steps >= self.rewind_step and not self._has_snapshot:
      rewind_lib.take_snapshot(self._fit_model, step=self._steps)
      self._has_snapshot = True
    while self._rounds_done < self.schedule.rounds_due(self._steps):
      rounds_lib.run_lottery_round(self._fit_model, self._optimizer)
      self._rounds_done += 1
      logging.info('Lottery round ended at step %d; weights remaining %.2f%%', self._steps,
                   100 * rounds_lib.weights_remaining(self._fit_model))
