"""Tests for `UpdateLotteryStep` on Keras 3 models: rounds at exact steps, in compiled multi-step executions."""

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

import ltp_tfmot


def _model(seed=0):
  keras.utils.set_random_seed(seed)
  return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation='relu', name='hidden'),
                           keras.layers.Dense(2, name='output')])


def _data(examples=20):
  rng = np.random.default_rng(0)
  return rng.standard_normal((examples, 6)).astype(np.float32), rng.integers(0, 2, examples)


class UpdateLotteryStepTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(steps_per_execution=[1, 3], rewind_step=[0, 2])
  def test_the_last_round_ends_exactly_at_the_last_step(self, steps_per_execution, rewind_step):
    # 10 steps, rounds end after steps 5 and 10: the model ends rewound, untrained since.
    schedule = ltp_tfmot.LotteryTicketSchedule(0.5, round_steps=5, rounds=2)
    model = ltp_tfmot.prune_lottery_ticket(_model(), schedule, rewind_step=rewind_step)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True,
                  steps_per_execution=steps_per_execution)
    x, y = _data()
    model.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])
    wrappers = ltp_tfmot.lottery_wrappers(model)
    self.assertEqual([int(np.asarray(w.rounds_done)) for w in wrappers], [2, 2])
    self.assertEqual(int(np.asarray(wrappers[0].snapshot_step)), rewind_step)
    self.assertEqual(int(model.optimizer.iterations.numpy()), rewind_step)
    self.assertEqual(ltp_tfmot.steps_done(model), 10)
    for w in wrappers:
      mask = np.asarray(w.masks[0])
      self.assertAllClose(np.asarray(w.layer.kernel), np.asarray(w.snapshots[0]) * mask)
    self.assertAllClose(ltp_tfmot.weights_remaining(model), 0.25, atol=0.05)

  def test_training_on_resumes_the_count_across_fits(self):
    schedule = ltp_tfmot.LotteryTicketSchedule(0.5, round_steps=4, rounds=3)
    model = ltp_tfmot.prune_lottery_ticket(_model(), schedule)
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(12)
    for _ in range(2):  # 6 steps each: rounds at 4, 8 and 12
      model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])
    self.assertEqual(ltp_tfmot.steps_done(model), 12)
    self.assertEqual(int(np.asarray(ltp_tfmot.lottery_wrappers(model)[0].rounds_done)), 3)

  def test_pruned_weights_are_exact_zeros_after_fit(self):
    schedule = ltp_tfmot.LotteryTicketSchedule(0.5, round_steps=3, rounds=1)
    model = ltp_tfmot.prune_lottery_ticket(_model(), schedule)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(True))
    x, y = _data()
    model.fit(x, y, batch_size=2, epochs=2, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])
    for w in ltp_tfmot.lottery_wrappers(model):
      pruned = np.asarray(w.masks[0]) == 0
      self.assertTrue(pruned.any())
      self.assertAllEqual(np.asarray(w.layer.kernel)[pruned], np.zeros(pruned.sum()))

  def test_a_model_without_wrappers_is_refused(self):
    model = _model()
    model.compile('sgd', keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with self.assertRaisesRegex(ValueError, r'needs a model wrapped with ltp_tfmot.prune_lottery_ticket'):
      model.fit(*_data(), verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])


if __name__ == '__main__':
  tf.test.main()
