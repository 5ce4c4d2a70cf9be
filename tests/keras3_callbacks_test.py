"""Tests for `UpdateLotteryStep` on Keras 3 models: rounds at exact steps, in compiled multi-step executions."""

import os
import tempfile

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


class _StopBeforeEpoch(keras.callbacks.Callback):
  """Interrupts `fit` as a crash would, when an epoch begins."""

  def __init__(self, epoch):
    super().__init__()
    self.epoch = epoch

  def on_epoch_begin(self, epoch, logs=None):
    if epoch == self.epoch:
      raise RuntimeError('interrupted')


class ResumeAfterSavingTest(tf.test.TestCase, parameterized.TestCase):
  """A schedule trained in one fit, and in fits interrupted and resumed from files, finds the same ticket.

  Masks, counters and weights are compared exactly: the resumed fits run the same steps on the same batches in
  the same order, and the files hold every variable bit for bit.
  """

  def _compiled(self):
    # Rounds end after steps 5 and 10, the rewind point at step 1; 2 steps per execution put round ends inside one.
    schedule = ltp_tfmot.LotteryTicketSchedule(0.5, round_steps=5, rounds=2)
    model = ltp_tfmot.prune_lottery_ticket(_model(), schedule, rewind_step=1)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), steps_per_execution=2)
    return model

  def assertSameTicket(self, got, want):
    self.assertEqual(ltp_tfmot.steps_done(got), ltp_tfmot.steps_done(want))
    self.assertEqual(int(got.optimizer.iterations.numpy()), int(want.optimizer.iterations.numpy()))
    for variable, expected in zip(got.weights, want.weights, strict=True):
      self.assertAllEqual(np.asarray(variable), np.asarray(expected), msg=variable.path)

  def test_saving_and_loading_between_two_fits_finds_the_same_ticket(self):
    x, y = _data(24)
    whole = self._compiled()
    whole.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])
    first = self._compiled()
    first.fit(x[:14], y[:14], batch_size=2, epochs=1, shuffle=False, verbose=0,
              callbacks=[ltp_tfmot.UpdateLotteryStep()])  # 7 steps: the snapshot and one round
    path = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'model.keras')
    first.save(path)
    loaded = keras.models.load_model(path)  # the wrapper class is registered: no custom_objects
    wrappers = ltp_tfmot.lottery_wrappers(loaded)
    self.assertEqual([int(np.asarray(w.rounds_done)) for w in wrappers], [1, 1])
    self.assertEqual(int(np.asarray(wrappers[0].snapshot_step)), 1)
    self.assertEqual(ltp_tfmot.steps_done(loaded), 7)
    loaded.fit(x[14:], y[14:], batch_size=2, epochs=1, shuffle=False, verbose=0,
               callbacks=[ltp_tfmot.UpdateLotteryStep()])
    self.assertEqual(ltp_tfmot.steps_done(loaded), 12)
    self.assertSameTicket(loaded, whole)

  def test_backup_and_restore_resumes_an_interrupted_fit_to_the_same_ticket(self):
    x, y = _data(8)  # 4 steps an epoch, 16 in all
    whole = self._compiled()
    whole.fit(x, y, batch_size=2, epochs=4, shuffle=False, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])
    backup = tempfile.mkdtemp(dir=self.get_temp_dir())
    interrupted = self._compiled()
    with self.assertRaisesRegex(RuntimeError, 'interrupted'):
      interrupted.fit(x, y, batch_size=2, epochs=4, shuffle=False, verbose=0,
                      callbacks=[ltp_tfmot.UpdateLotteryStep(), keras.callbacks.BackupAndRestore(backup),
                                 _StopBeforeEpoch(2)])
    self.assertEqual(ltp_tfmot.steps_done(interrupted), 8)
    resumed = self._compiled()  # a new process would build the model again
    resumed.fit(x, y, batch_size=2, epochs=4, shuffle=False, verbose=0,
                callbacks=[ltp_tfmot.UpdateLotteryStep(), keras.callbacks.BackupAndRestore(backup)])
    self.assertEqual(ltp_tfmot.steps_done(resumed), 16)
    self.assertSameTicket(resumed, whole)


if __name__ == '__main__':
  tf.test.main()
