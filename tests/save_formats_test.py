"""Which save format resumes training bit-exactly: .keras and .h5 keep the optimizer's state, SavedModel does not."""

import os

from absl.testing import parameterized
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from tests import fixtures

ROUND_STEPS = 6  # the save falls mid-round (after 4 steps), where the optimizer's state matters
STEPS_PER_EPOCH = 4  # 64 examples, batch 16


def _model():
  schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=ROUND_STEPS, rounds=2)
  return fixtures.compile_for_training(ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), schedule))


def _fit(model, epochs):
  x, y = fixtures.classification_data()
  model.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])


def _counters(model):
  return [(int(w.pruning_step.numpy()), int(w.rounds_done.numpy())) for w in ltp_tfmot.lottery_wrappers(model)]


class ResumeFormatTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.uninterrupted = _model()
    _fit(cls.uninterrupted, 1)
    _fit(cls.uninterrupted, 2)

  def _save_mid_round_and_load(self, filename):
    model = _model()
    _fit(model, 1)
    self.assertEqual(int(model.optimizer.iterations.numpy()), STEPS_PER_EPOCH)
    path = os.path.join(self.get_temp_dir(), filename)
    model.save(path)
    with ltp_tfmot.prune_scope():
      return keras.models.load_model(path)

  @parameterized.named_parameters(('keras', 'model.keras'), ('h5', 'model.h5'))
  def test_keras_and_h5_resume_bit_identical_to_an_uninterrupted_run(self, filename):
    loaded = self._save_mid_round_and_load(filename)
    self.assertEqual(int(loaded.optimizer.iterations.numpy()), STEPS_PER_EPOCH)
    _fit(loaded, 2)
    self.assertEqual(_counters(loaded), _counters(self.uninterrupted))
    for got, want in zip(loaded.weights, self.uninterrupted.weights, strict=True):
      self.assertAllEqual(got, want, msg=want.name)

  def test_saved_model_restarts_the_optimizer_but_keeps_the_round_count(self):
    loaded = self._save_mid_round_and_load('saved_model')
    self.assertEqual(int(loaded.optimizer.iterations.numpy()), 0)  # tf_keras restores no optimizer state from it
    _fit(loaded, 2)
    self.assertEqual(_counters(loaded), _counters(self.uninterrupted))  # rounds end at the same training steps
    differs = [w.name for got, w in zip(loaded.weights, self.uninterrupted.weights, strict=True)
               if not (got.numpy() == w.numpy()).all()]
    self.assertNotEmpty(differs)


if __name__ == '__main__':
  tf.test.main()
