"""Keras callbacks that drive lottery-ticket schedules during `fit`."""

from absl import logging
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_callbacks

from ltp_tfmot import rounds as rounds_lib
from ltp_tfmot import wrapper as wrapper_lib


class UpdateLotteryStep(pruning_callbacks.UpdatePruningStep):
  """Runs the lottery-ticket schedule during `fit` (tfmot's `UpdatePruningStep` role).

  It keeps tfmot's pruning step, takes the rewind snapshot once `rewind_step`
  training steps are done (0: before the first step), ends each round of the
  `LotteryTicketSchedule` with `run_lottery_round` (prune, rewind, reset the
  optimizer), and applies the masks when training ends so that a stripped
  model is exactly as sparse as its masks. Snapshot and round count live in
  the wrappers, so a saved model resumes where it stopped.

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

  def on_train_begin(self, logs=None):
    self.wrappers = rounds_lib.lottery_wrappers(self.model)
    if not self.wrappers:
      raise ValueError('UpdateLotteryStep needs a model wrapped with ltp_tfmot.prune_lottery_ticket')
    schedules = {repr(w.pruning_schedule) for w in self.wrappers}
    rewind_steps = {w.rewind_step for w in self.wrappers}
    if len(schedules) > 1 or len(rewind_steps) > 1:
      raise ValueError('all lottery wrappers of a model must share one schedule and rewind_step, '
                       f'got {sorted(schedules)} and rewind steps {sorted(rewind_steps)}')
    self.schedule = self.wrappers[0].pruning_schedule
    self.rewind_step = rewind_steps.pop()
    wrapper_lib.check_rewind_before_first_round(self.rewind_step, self.schedule)
    super().on_train_begin(logs)
    self._has_snapshot = self.wrappers[0].has_snapshot
    self._rounds_done = int(self.wrappers[0].rounds_done.numpy())
    self._on_steps_done()

  def on_train_batch_end(self, batch, logs=None):
    self._on_steps_done()

  def on_train_end(self, logs=None):
    rounds_lib.apply_masks(self.model)

  def _on_steps_done(self):
    if self._has_snapshot and self._rounds_done >= (self.schedule.rounds or 0):
      return  # nothing left to do: skip even reading the step
    steps_done = int(self.wrappers[0].pruning_step.numpy())
    if steps_done >= self.rewind_step and not self._has_snapshot:
      rounds_lib.take_snapshot(self.model, step=steps_done)
      self._has_snapshot = True
    while self._rounds_done < self.schedule.rounds_due(steps_done):
      rounds_lib.run_lottery_round(self.model, self.model.optimizer)
      self._rounds_done += 1
      logging.info('Lottery round ended at step %d; weights remaining %.2f%%', steps_done,
                   100 * rounds_lib.weights_remaining(self.model))
