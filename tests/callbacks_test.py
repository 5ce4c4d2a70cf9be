"""Tests for UpdateLotteryStep driving a LotteryTicketSchedule through fit, and for LotterySummaries."""

import glob
import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

import ltp_tfmot
from tests import fixtures


def _fit(model, steps, batch_size=16, **kwargs):
  x, y = fixtures.classification_data(n=steps * batch_size)
  model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
            callbacks=[ltp_tfmot.UpdateLotteryStep()], **kwargs)


def _wrapped(schedule, **kwargs):
  return fixtures.compile_for_training(ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), schedule, **kwargs))


def _shared_layer_model(shared_first):
  """Dense 'shared' applied twice beside Dense 'side'; `shared_first` puts it first in model.layers.

  Both orders compute the same function: identity layers after a branch only
  put its Dense deeper in the graph, hence earlier in `model.layers`.
  """
  init = lambda offset: keras.initializers.GlorotUniform(seed=offset)
  inputs = keras.Input((8,))
  shared = keras.layers.Dense(8, activation='tanh', kernel_initializer=init(0), name='shared')
  side = keras.layers.Dense(8, activation='tanh', kernel_initializer=init(1), name='side')
  a, b = shared(shared(inputs)), side(inputs)
  for _ in range(2):
    if shared_first:
      a = keras.layers.Activation('linear')(a)
    else:
      b = keras.layers.Activation('linear')(b)
  outputs = keras.layers.Dense(4, kernel_initializer=init(2), name='output')(keras.layers.Concatenate()([a, b]))
  return keras.Model(inputs, outputs)


class _Trace(keras.callbacks.Callback):
  """Records (steps done, rounds done, snapshot step) after every batch, and the weights after `weights_at` steps."""

  def __init__(self, weights_at=None):
    super().__init__()
    self.weights_at = weights_at
    self.states, self.weights = [], None

  def on_train_batch_end(self, batch, logs=None):
    first = ltp_tfmot.lottery_wrappers(self.model)[0]
    steps = ltp_tfmot.steps_done(self.model)
    self.states.append((steps, int(first.rounds_done.numpy()), int(first.snapshot_step.numpy())))
    if steps == self.weights_at:
      self.weights = {w.layer.name: w.layer.kernel.numpy() for w in ltp_tfmot.lottery_wrappers(self.model)}


class _Preempt(keras.callbacks.Callback):
  """Raises at the start of the `at`-th batch of a fit (counted from 1), as a preemption would stop the job."""

  def __init__(self, at):
    super().__init__()
    self.at, self.batches = at, 0

  def on_train_batch_begin(self, batch, logs=None):
    self.batches += 1
    if self.batches == self.at:
      raise RuntimeError('preempted')


def _events(log_dir):
  """{tag: [(step, value), ...]} from the event files under `log_dir`."""
  events = {}
  for path in sorted(glob.glob(os.path.join(log_dir, 'events.out.tfevents.*'))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        events.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
  return events


class UpdateLotteryStepTest(tf.test.TestCase, parameterized.TestCase):

  def test_fit_runs_every_round_of_the_schedule(self):
    schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=3, rounds=2)
    model = _wrapped(schedule, layer_rates={'output': 0.25})
    _fit(model, steps=schedule.total_steps)
    self.assertEqual([int(w.rounds_done.numpy()) for w in model.layers], [2, 2, 2])
    self.assertEqual(ltp_tfmot.layer_sparsity(model), {'hidden1': 0.75, 'hidden2': 0.75, 'output': 0.4375})

  def test_rounds_are_not_repeated_when_training_resumes(self):
    schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=3, rounds=2)
    model = _wrapped(schedule)
    _fit(model, steps=4)
    self.assertEqual(int(model.layers[0].rounds_done.numpy()), 1)
    _fit(model, steps=4)
    self.assertEqual(int(model.layers[0].rounds_done.numpy()), 2)
    _fit(model, steps=4)
    self.assertEqual(int(model.layers[0].rounds_done.numpy()), 2)
    self.assertEqual(ltp_tfmot.weights_remaining(model), 0.25)

  def test_snapshot_holds_the_initial_weights(self):
    model = _wrapped(ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=4, rounds=1))
    model.build((None, 8))
    initial = [w.numpy() for w in model.layers[0].layer.weights]
    _fit(model, steps=4)
    self.assertEqual(int(model.layers[0].snapshot_step.numpy()), 0)
    for snapshot, want in zip(model.layers[0].snapshots, initial, strict=True):
      self.assertAllEqual(snapshot, want)
    # After the round, survivors are back at their initial values.
    mask = model.layers[0].pruning_vars[0][1].numpy()
    self.assertAllEqual(model.layers[0].layer.kernel.numpy(), initial[0] * mask)

  def test_late_rewinding_snapshots_the_weights_after_k_steps(self):
    k = 2
    reference = _wrapped(ltp_tfmot.LotteryTicketSchedule(rate=0.5))
    _fit(reference, steps=k)
    after_k = [w.numpy() for w in reference.layers[1].layer.weights]

    model = _wrapped(ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=4, rounds=1), rewind_step=k)
    _fit(model, steps=4)
    self.assertEqual(int(model.layers[1].snapshot_step.numpy()), k)
    for snapshot, want in zip(model.layers[1].snapshots, after_k, strict=True):
      self.assertAllClose(snapshot, want, rtol=1e-6, atol=1e-6)
    mask = model.layers[1].pruning_vars[0][1].numpy()
    self.assertAllEqual(model.layers[1].layer.kernel.numpy(), model.layers[1].snapshots[0].numpy() * mask)

  def test_pruned_weights_stay_zero_through_training_and_after(self):
    schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.6, round_steps=2, rounds=1)
    model = _wrapped(schedule)
    _fit(model, steps=10)
    for w in model.layers:
      mask = w.pruning_vars[0][1].numpy()
      self.assertAllEqual(w.layer.kernel.numpy()[mask == 0], np.zeros(int((mask == 0).sum())))
    stripped = ltp_tfmot.strip_pruning(model)
    self.assertEqual([type(layer).__name__ for layer in stripped.layers], ['Dense'] * 3)
    kernel = stripped.layers[0].kernel.numpy()
    self.assertEqual(int(np.count_nonzero(kernel)), int(np.round(128 * 0.4)))

  def test_freeze_keeps_pruned_weights_at_snapshot_through_training(self):
    schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=2, rounds=1)
    model = _wrapped(schedule, mask_0_action='freeze')
    model.build((None, 8))
    initial = model.layers[0].layer.kernel.numpy()
    _fit(model, steps=8)
    kernel, mask = model.layers[0].layer.kernel.numpy(), model.layers[0].pruning_vars[0][1].numpy()
    self.assertAllEqual(kernel[mask == 0], initial[mask == 0])
    self.assertNotAllClose(kernel[mask == 1], initial[mask == 1])

  def test_rewind_step_after_first_round_is_refused(self):
    with self.assertRaisesRegex(ValueError, r'rewind_step \(3\) must come before the end of the first round'):
      _wrapped(ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=3, rounds=1), rewind_step=3)

  def test_callback_on_unwrapped_model_is_refused(self):
    model = fixtures.compile_for_training(fixtures.mlp())
    with self.assertRaisesRegex(ValueError, 'prune_lottery_ticket'):
      _fit(model, steps=1)

  def test_one_shot_schedule_prunes_once_to_target(self):
    model = _wrapped(ltp_tfmot.OneShotLotterySchedule(target_sparsity=0.9, prune_step=2))
    _fit(model, steps=5)
    self.assertAllClose(list(ltp_tfmot.layer_sparsity(model).values()), [1 - 13 / 128, 1 - 19 / 192, 1 - 5 / 48])

  def test_global_scope_round_in_fit_keeps_global_count(self):
    schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=2, rounds=1)
    model = _wrapped(schedule, scope='global', criterion='magnitude_increase')
    _fit(model, steps=3)
    self.assertEqual(ltp_tfmot.weights_remaining(model), 184 / 368)


  def test_tfmot_update_pruning_step_alone_is_refused_naming_update_lottery_step(self):
    model = _wrapped(ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=2, rounds=1))
    x, y = fixtures.classification_data()
    with self.assertRaisesRegex(ltp_tfmot.TrainingSetupError, "^PruneLotteryTicket wrappers need the "
                                r"UpdateLotteryStep callback .*UpdatePruningStep runs no[^\n]*$"):
      model.fit(x, y, verbose=0, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])

  def test_training_without_update_lottery_step_is_refused_in_one_line_before_the_first_step(self):
    x, y = fixtures.classification_data()
    for jit_compile in (False, True):  # XLA drops the graph's assertion: the refusal comes before, in Python
      model = ltp_tfmot.prune_lottery_ticket(fixtures.mlp())
      model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    jit_compile=jit_compile)
      before = [v.numpy() for v in model.variables]
      with self.assertRaisesRegex(ValueError, r"^PruneLotteryTicket wrappers need the UpdateLotteryStep callback "
                                  r"during training: model\.fit\(\.\.\., callbacks=\[ltp_tfmot\.UpdateLotteryStep"
                                  r"\(\)\]\);[^\n]*$"):
        model.fit(x, y, verbose=0)
      self.assertEqual(int(model.optimizer.iterations), 0)
      for got, want in zip(model.variables, before, strict=True):
        self.assertAllEqual(got, want)
      model.fit(x, y, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])  # then trains, as if refused never
      self.assertEqual(int(model.optimizer.iterations), 2)

  def test_steps_per_execution_ends_rounds_at_exactly_round_steps(self):
    schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=4, rounds=1)
    model = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), schedule)
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=3)
    trace = _Trace()
    _fit_with(model, 9, [ltp_tfmot.UpdateLotteryStep(), trace])
    # A one-step first execution, one cut at the round boundary (step 4), then whole executions of 3.
    self.assertEqual(trace.states, [(1, 0, 0), (4, 1, 0), (7, 1, 0), (9, 1, 0)])
    self.assertEqual(int(model.steps_per_execution.numpy()), 3)

  def test_steps_per_execution_cuts_rounds_exactly_again_after_a_fit_that_raised(self):
    schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=2, rounds=3)
    model = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), schedule)
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=3)
    with self.assertRaisesRegex(RuntimeError, 'preempted'):
      # Executions of 1 and 1 step (round 1 at step 2), then it raises with 2 steps asked for next.
      _fit_with(model, 9, [ltp_tfmot.UpdateLotteryStep(), _Preempt(at=3)])
    trace = _Trace()
    _fit_with(model, 9, [ltp_tfmot.UpdateLotteryStep(), trace])
    # The dead fit's request is gone: after the last round, whole executions of 3 steps again.
    self.assertEqual(trace.states, [(3, 1, 0), (4, 2, 0), (6, 3, 0), (9, 3, 0), (11, 3, 0)])
    self.assertEqual(int(model.steps_per_execution.numpy()), 3)

  @parameterized.named_parameters(('one_epoch', 1), ('three_epochs', 3))
  def test_steps_per_execution_gives_the_masks_and_weights_of_single_steps(self, epochs):
    results = []
    for steps_per_execution in (1, 5):
      tf.keras.utils.set_random_seed(3)
      schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=7, rounds=2)
      model = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), schedule, rewind_step=3)
      model.compile(keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    steps_per_execution=steps_per_execution)
      trace = _Trace(weights_at=3)
      _fit_with(model, 24 // epochs, [ltp_tfmot.UpdateLotteryStep(), trace], epochs=epochs)
      wrappers = ltp_tfmot.lottery_wrappers(model)
      results.append(([m.numpy() for w in wrappers for m in w.masks], [v.numpy() for v in model.weights],
                      {state[0]: state for state in trace.states}, trace.weights))
    (masks_1, weights_1, states_1, rewind_1), (masks_n, weights_n, states_n, rewind_n) = results
    for step in (3, 7, 14):  # the rewind step and both round ends are execution ends too
      self.assertIn(step, states_n)
      self.assertEqual(states_n[step], states_1[step])
    for a, b in zip(masks_1, masks_n, strict=True):
      self.assertAllEqual(a, b)
    for a, b in zip(weights_1, weights_n, strict=True):
      self.assertAllClose(a, b, rtol=1e-5, atol=1e-6)
    for name, kernel in rewind_1.items():
      self.assertAllClose(kernel, rewind_n[name], rtol=1e-6, atol=1e-7)


def _fit_with(model, steps, callbacks, epochs=1):
  x, y = fixtures.classification_data(n=steps * 16)
  model.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks)


class SharedLayerTest(tf.test.TestCase):

  def test_rounds_and_rewind_point_count_optimizer_steps_whatever_the_layer_order(self):
    masks = []
    for shared_first in (True, False):
      schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=4, rounds=2)
      model = fixtures.compile_for_training(
          ltp_tfmot.prune_lottery_ticket(_shared_layer_model(shared_first), schedule, rewind_step=2))
      self.assertEqual(model.layers[1].name == 'prune_lottery_ticket_shared', shared_first)
      trace = _Trace(weights_at=2)
      _fit_with(model, 10, [ltp_tfmot.UpdateLotteryStep(), trace])
      self.assertEqual(trace.states, [(1, 0, -1)] + [(step, step // 4 if step < 12 else 2, 2) for step in range(2, 11)])
      for w in ltp_tfmot.lottery_wrappers(model):
        self.assertEqual(int(w.pruning_step.numpy()), 10)
        self.assertAllEqual(w.snapshots[0], trace.weights[w.layer.name])
      masks.append(fixtures.masks_of(model))
    for name, mask in masks[0].items():
      self.assertAllEqual(mask, masks[1][name], name)


class BackupAndRestoreTest(tf.test.TestCase, parameterized.TestCase):

  def _model(self):
    schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=4, rounds=3)
    return _wrapped(schedule, rewind_step=2)

  @parameterized.named_parameters(('lottery_step_first', True), ('backup_first', False))
  def test_preempted_run_resumes_to_the_uninterrupted_ticket(self, lottery_step_first):
    reference = self._model()
    _fit_with(reference, 4, [ltp_tfmot.UpdateLotteryStep()], epochs=4)

    backup_dir = os.path.join(self.get_temp_dir(), f'backup_{lottery_step_first}')

    def callbacks(extra):
      ordered = [ltp_tfmot.UpdateLotteryStep(), keras.callbacks.BackupAndRestore(backup_dir)]
      return (ordered if lottery_step_first else ordered[::-1]) + extra

    preempted = self._model()
    with self.assertRaisesRegex(RuntimeError, 'preempted'):
      _fit_with(preempted, 4, callbacks([_Preempt(at=10)]), epochs=4)  # in round 3; backup after step 8
    self.assertEqual(int(preempted.layers[0].rounds_done.numpy()), 2)

    resumed = self._model()  # a new process: the model as built, restored by BackupAndRestore
    _fit_with(resumed, 4, callbacks([]), epochs=4)
    self.assertEqual(ltp_tfmot.weights_remaining(resumed), 0.125)
    for want, got in zip(reference.layers, resumed.layers, strict=True):
      self.assertEqual(int(got.rounds_done.numpy()), 3)
      self.assertEqual(int(got.snapshot_step.numpy()), 2)
      self.assertAllEqual(got.snapshots[0], want.snapshots[0])
      self.assertAllEqual(got.pruning_vars[0][1], want.pruning_vars[0][1])
    self.assertEqual(ltp_tfmot.steps_done(resumed), 16)


class LotterySummariesTest(tf.test.TestCase):

  def test_summaries_follow_the_pruning_step_through_rounds(self):
    log_dir = os.path.join(self.get_temp_dir(), 'summaries')
    model = _wrapped(ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=4, rounds=2), layer_rates={'output': 0.25})
    _fit_with(model, 4, [ltp_tfmot.UpdateLotteryStep(), ltp_tfmot.LotterySummaries(log_dir)], epochs=3)
    events = _events(log_dir)
    want = {
        'rounds_done': [0, 1, 2, 2],
        'weights_remaining': [1.0, 196 / 368, 107 / 368, 107 / 368],
        'sparsity/hidden1': [0.0, 0.5, 0.75, 0.75],
        'sparsity/output': [0.0, 0.25, 0.4375, 0.4375],
    }
    for tag, values in want.items():
      self.assertEqual([step for step, _ in events[tag]], [0, 4, 8, 12], tag)
      self.assertAllClose([value for _, value in events[tag]], values, rtol=1e-6, msg=tag)

  def test_summaries_every_few_steps(self):
    log_dir = os.path.join(self.get_temp_dir(), 'every_3')
    model = _wrapped(ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=4, rounds=1))
    _fit_with(model, 8, [ltp_tfmot.LotterySummaries(log_dir, update_freq=3), ltp_tfmot.UpdateLotteryStep()])
    self.assertEqual(_events(log_dir)['rounds_done'], [(0, 0), (3, 0), (6, 1), (8, 1)])


if __name__ == '__main__':
  tf.test.main()
