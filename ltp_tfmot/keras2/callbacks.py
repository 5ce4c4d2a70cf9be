"""Keras callbacks that drive lottery-ticket schedules during `fit` and log them."""

import weakref

from absl import logging
import tensorflow as tf
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_callbacks
import tf_keras as keras

from ltp_tfmot import validation
from ltp_tfmot.core import schedule as schedule_lib
from ltp_tfmot.keras2 import rewind as rewind_lib
from ltp_tfmot.keras2 import rounds as rounds_lib
from ltp_tfmot.keras2 import wrapped_model

# What tf.summary.scalar attaches (it needs the tensorboard package; tf.summary.write does not).
_SCALAR_METADATA = tf.compat.v1.SummaryMetadata(
    plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name='scalars'))


class _ExecutionCap:
  """Shortens a model's next `fit` execution so that it ends at the nearest step some callback must see.

  With `compile(steps_per_execution=N)`, Keras calls the batch callbacks once
  per execution of N steps, so a callback that must act after exactly k steps
  (a round boundary, the rewind point, an evaluation) asks for an execution
  end there. Each asking callback keeps one request: the steps from now to its
  next boundary. The model's `steps_per_execution` variable (read by Keras at
  the start of every execution) is the smallest request, never above the
  compiled N; it goes back to N when the last asking callback lets go.
  """

  def __init__(self, variable):
    self.variable = variable
    self.compiled = int(variable.numpy())
    self.requests = {}
    # Set once a batch ran: a `fit` that starts while it is set follows one that raised before its end.
    self.batches_seen = False

  def apply(self):
    value = min([self.compiled] + list(self.requests.values()))
    if int(self.variable.numpy()) != value:
      self.variable.assign(value)


_CAPS = weakref.WeakKeyDictionary()


def _execution_cap(model):
  """The model's `_ExecutionCap`, or None when every execution is one step (nothing to shorten)."""
  cap = _CAPS.get(model)
  if cap is None:
    variable = getattr(model, '_steps_per_execution', None)
    if variable is None or int(variable.numpy()) <= 1:
      return None
    cap = _CAPS[model] = _ExecutionCap(variable)
  return cap


class ExactStepCallback(keras.callbacks.Callback):
  """A callback that acts after exact training steps, also when `fit` runs several steps per execution.

  Subclasses return from `steps_to_boundary()` the number of training steps
  from now until the next step they must see (>= 1), or None when no later
  step matters. With `compile(steps_per_execution=N)` every execution is then
  cut to end there (the first execution of a `fit` is one step, as the state
  a subclass reads may be restored only in a later callback's
  `on_train_begin`); with N = 1 this costs nothing. Call the base methods
  when overriding `on_train_begin`, `on_epoch_begin`, `on_train_batch_end` or
  `on_train_end`, and update the boundary before calling the base
  `on_train_batch_end`.

  Example:

  ```python
  class EvaluateEvery(ltp_tfmot.ExactStepCallback):
    def __init__(self, every):
      super().__init__()
      self.every = every

    def on_train_batch_end(self, batch, logs=None):
      step = int(self.model.optimizer.iterations.numpy())
      if step % self.every == 0:
        print(step, self.model.evaluate(x_val, y_val, verbose=0))
      super().on_train_batch_end(batch, logs)

    def steps_to_boundary(self):
      return self.every - int(self.model.optimizer.iterations.numpy()) % self.every
  ```
  """

  def steps_to_boundary(self):
    """Training steps until the next step this callback must see, or None."""
    raise NotImplementedError

  def on_train_begin(self, logs=None):
    cap = _execution_cap(self.model)
    if cap is not None:
      if cap.batches_seen:  # the requests of a fit that raised: gone with it
        cap.requests.clear()
        cap.batches_seen = False
      cap.requests[self] = 1
      cap.apply()

  def on_epoch_begin(self, epoch, logs=None):
    # Keras' last partial execution of an epoch puts back the value it read before it: set ours again.
    cap = _CAPS.get(self.model)
    if cap is not None:
      cap.apply()

  def on_train_batch_end(self, batch, logs=None):
    cap = _CAPS.get(self.model)
    if cap is None or self not in cap.requests:
      return
    cap.batches_seen = True
    steps = self.steps_to_boundary()
    if steps is None:
      del cap.requests[self]
    else:
      cap.requests[self] = max(1, int(steps))
    cap.apply()

  def on_train_end(self, logs=None):
    cap = _CAPS.get(self.model)
    if cap is None:
      return
    cap.requests.pop(self, None)
    cap.apply()
    if not cap.requests:
      del _CAPS[self.model]


class UpdateLotteryStep(pruning_callbacks.UpdatePruningStep, ExactStepCallback):
  """Runs the lottery-ticket schedule during `fit` (tfmot's `UpdatePruningStep` role).

  It counts the model's training steps (optimizer steps, however often a step
  calls a shared layer; see `steps_done`), takes the rewind snapshot once
  `rewind_step` training steps are done (0: before the first step), ends each
  round of the `LotteryTicketSchedule` with `run_lottery_round` (prune,
  rewind, reset the optimizer), and applies the masks when training ends so
  that a stripped model is exactly as sparse as its masks. Snapshot, round
  count and step count live in the wrappers, so a saved model resumes where it
  stopped. They are read at the first batch, after every callback's
  `on_train_begin`, so `BackupAndRestore` may come before or after it.

  With `rewind_step=k`, each round boundary puts every weight (BatchNormalization's
  gamma, beta and moving statistics included) back to its value after k steps,
  resets the optimizer's slots and sets `optimizer.iterations` to k, so that a
  learning-rate schedule continues from step k; the rounds' lengths still count
  training steps (`steps_done` goes on counting up).

  With `compile(steps_per_execution=N)` the callback cuts the executions so
  that one ends at every step it must act at (the rewind step and each round
  boundary): rounds end after exactly `round_steps` steps, as with N = 1, and
  the other executions keep N steps.

  Raises:
    ValueError: at the start of training, if the model has no lottery wrapper,
      its wrappers disagree on schedule or rewind step, or the rewind step is
      not before the end of the first round.

  Example:

  ```python
  model.fit(x, y, epochs=10, callbacks=[ltp_tfmot.UpdateLotteryStep()])
  ```
  """

  def __init__(self):
    super().__init__()
    # The callback reads no logs: spare Keras converting them to NumPy after every batch.
    self._supports_tf_logs = True
    self.wrappers = []
    self._started = False

  def on_train_begin(self, logs=None):
    self.wrappers = wrapped_model.lottery_wrappers(self.model)
    self.schedule, self.rewind_step = schedule_lib.shared_schedule(self.wrappers)
    if any(w.refused_training for w in self.wrappers):
      # An earlier fit without this callback failed while Keras traced its step; the function it keeps would
      # fail again ("Creating variables on a non-first call").
      self.model.make_train_function(force=True)
      for w in self.wrappers:
        w.refused_training = False
    super().on_train_begin(logs)
    ExactStepCallback.on_train_begin(self, logs)
    # State is read at the first batch: a callback after this one may still
    # restore the model in its on_train_begin (BackupAndRestore does).
    self._started = False

  def on_train_batch_begin(self, batch, logs=None):
    if self._started:
      return
    self._started = True
    self._optimizer = self.model.optimizer
    self._offset = wrapped_model.count_steps_with(self.wrappers, self._optimizer)
    self._has_snapshot = self.wrappers[0].has_snapshot
    self._rounds_done = int(self.wrappers[0].rounds_done.numpy())
    self._on_steps_done()

  def on_train_batch_end(self, batch, logs=None):
    self._on_steps_done()
    ExactStepCallback.on_train_batch_end(self, batch, logs)

  def on_epoch_end(self, epoch, logs=None):
    super().on_epoch_end(epoch, logs)
    self._record_steps()

  def on_train_end(self, logs=None):
    ExactStepCallback.on_train_end(self, logs)
    self._record_steps()
    rounds_lib.apply_masks(self.model)

  def steps_to_boundary(self):
    boundary = schedule_lib.next_boundary(self.schedule, self.rewind_step, self._has_snapshot, self._rounds_done)
    return None if boundary is None else boundary - self._steps_done()

  def _steps_done(self):
    return self._offset + int(self._optimizer.iterations.numpy())

  def _record_steps(self):
    # pruning_step is what a model loaded without its optimizer's state resumes from.
    if self._started:
      wrapped_model.count_steps_with(self.wrappers, self._optimizer, self._steps_done())

  def _on_steps_done(self):
    if self._has_snapshot and self._rounds_done >= (self.schedule.rounds or 0):
      return  # nothing left to do: skip even reading the step
    steps_done = self._steps_done()
    if steps_done >= self.rewind_step and not self._has_snapshot:
      rewind_lib.take_snapshot(self.model, step=steps_done)  # the model: BatchNormalization's weights too
      self._has_snapshot = True
    while self._rounds_done < self.schedule.rounds_due(steps_done):
      rounds_lib.run_lottery_round(self.model, self._optimizer)
      self._rounds_done += 1
      # The round set optimizer.iterations to the rewind step and moved the offset: the count goes on from
      # steps_done.
      self._offset = steps_done - int(self._optimizer.iterations.numpy())
      logging.info('Lottery round ended at step %d; weights remaining %.2f%%', steps_done,
                   100 * rounds_lib.weights_remaining(self.model))


class LotterySummaries(keras.callbacks.Callback):
  """Writes lottery-ticket summaries for TensorBoard during `fit`, against the training step.

  Each summary is a scalar at the model's training step (see `steps_done`;
  tfmot's `PruningSummaries` plots against `optimizer.iterations`, which each
  round resets): `sparsity/<layer>` (the fraction of the layer's prunable
  weights pruned), `weights_remaining` (the fraction of all prunable weights
  alive) and `rounds_done`. They are written as TensorBoard scalars with
  `tf.summary.write`, which needs no `tensorboard` package, when training
  starts, at the end of each epoch (or every `update_freq` steps) and when it
  ends.

  Args:
    log_dir: The directory of the event files (any file system TensorFlow
      knows).
    update_freq: 'epoch', or a number of training steps between summaries.

  Raises:
    TypeError: for a `log_dir` that is not a string, or an `update_freq`
      that is neither a string nor an integer.
    ValueError: for an empty `log_dir`, or an `update_freq` that is another
      string or an integer < 1.

  Example:

  ```python
  model.fit(x, y, epochs=10, callbacks=[ltp_tfmot.UpdateLotteryStep(), ltp_tfmot.LotterySummaries('logs')])
  ```
  """

  def __init__(self, log_dir, update_freq='epoch'):
    super().__init__()
    self.log_dir = validation.check_str(log_dir, 'log_dir', non_empty=True)
    if update_freq != 'epoch':
      wanted = "update_freq must be 'epoch' or an integer >= 1 (training steps)"
      if not isinstance(update_freq, str) and not validation.is_int(update_freq):
        raise TypeError(f'{wanted}, got {update_freq!r}')
      if isinstance(update_freq, str) or update_freq < 1:
        raise ValueError(f'{wanted}, got {update_freq!r}')
    self.update_freq = update_freq
    self._writer = None
    self._started = False
    self._supports_tf_logs = True  # it reads no logs

  def on_train_begin(self, logs=None):
    wrapped_model.built_lottery_wrappers(self.model)
    if self._writer is None:
      self._writer = tf.summary.create_file_writer(self.log_dir)
    self._started = False
    self._last_step = self._last_written = None

  def on_train_batch_begin(self, batch, logs=None):
    if not self._started:
      self._started = True  # after every on_train_begin: the state of a restored model
      self._write()

  def on_train_batch_end(self, batch, logs=None):
    if self.update_freq != 'epoch':
      step = wrapped_model.steps_done(self.model)
      if step - self._last_step >= self.update_freq:
        self._write(step)

  def on_epoch_end(self, epoch, logs=None):
    if self.update_freq == 'epoch':
      self._write()

  def on_train_end(self, logs=None):
    if self._started:
      self._write()
      self._writer.flush()

  def _write(self, step=None):
    step = wrapped_model.steps_done(self.model) if step is None else step
    wrappers = wrapped_model.built_lottery_wrappers(self.model)
    rounds_done = int(wrappers[0].rounds_done.numpy())
    self._last_step = step
    if (step, rounds_done) == self._last_written:
      return
    self._last_written = (step, rounds_done)
    values = {f'sparsity/{name}': sparsity for name, sparsity in rounds_lib.layer_sparsity(wrappers).items()}
    values.update(weights_remaining=rounds_lib.weights_remaining(wrappers), rounds_done=rounds_done)
    with self._writer.as_default():
      for tag, value in values.items():
        tf.summary.write(tag, tf.constant(value, tf.float32), step=step, metadata=_SCALAR_METADATA)
