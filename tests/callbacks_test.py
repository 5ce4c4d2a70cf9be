"""Tests for UpdateLotteryStep driving a LotteryTicketSchedule through fit."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import ltp_tfmot
from tests import fixtures


def _fit(model, steps, batch_size=16, **kwargs):
  x, y = fixtures.classification_data(n=steps * batch_size)
  model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
            callbacks=[ltp_tfmot.UpdateLotteryStep()], **kwargs)


def _wrapped(schedule, **kwargs):
  return fixtures.compile_for_training(ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), schedule, **kwargs))


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
    for snapshot, want in zip(model.layers[0].snapshots, initial):
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
    for snapshot, want in zip(model.layers[1].snapshots, after_k):
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

  def test_fit_without_the_callback_names_it(self):
    model = _wrapped(ltp_tfmot.LotteryTicketSchedule(rate=0.5))
    x, y = fixtures.classification_data()
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, 'UpdateLotteryStep'):
      model.fit(x, y, verbose=0)

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


if __name__ == '__main__':
  tf.test.main()
