"""Tests for the rounds of Keras 3 models: the same masks as the Keras 2 front end for the same weights."""

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf
import tf_keras

import ltp_tfmot
from ltp_tfmot.core import criteria as criteria_lib
from tests import fixtures

_WEIGHT_CRITERIA = [name for name in ltp_tfmot.criterion_names()
                    if not criteria_lib.get_criterion(name).needs_model and not name.endswith('_inverted')]


def _layers(library):
  return [library.layers.Conv2D(4, 3, name='conv'), library.layers.Flatten(name='flatten'),
          library.layers.Dense(16, activation='relu', name='hidden'), library.layers.Dense(3, name='output')]


def _twin_models(seed=0):
  """A Keras 2 and a Keras 3 model of one architecture holding the same weights."""
  k2 = tf_keras.Sequential([tf_keras.Input((6, 6, 1))] + _layers(tf_keras))
  k3 = keras.Sequential([keras.Input((6, 6, 1))] + _layers(keras))
  rng = np.random.default_rng(seed)
  weights = [rng.standard_normal(w.shape).astype(np.float32) for w in k2.get_weights()]
  k2.set_weights(weights)
  k3.set_weights(weights)
  return k2, k3


class SameMasksAsKeras2Test(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(criterion=_WEIGHT_CRITERIA, scope=['layer', 'global'])
  def test_rounds_give_the_masks_of_keras_2(self, criterion, scope):
    keras2_masks, keras3_masks = fixtures.masks_after_rounds(
        _twin_models(), [0, 1], pruning_schedule=ltp_tfmot.LotteryTicketSchedule(0.3), criterion=criterion,
        scope=scope, seed=7)
    fixtures.assert_same_masks(self, keras2_masks, keras3_masks)

  @parameterized.named_parameters(('layer_rates', {'layer_rates': {'output': 0.1}}),
                                  ('blocks', {'block_size': (2, 2)}))
  def test_layer_rates_and_blocks_give_the_masks_of_keras_2(self, settings):
    masks = fixtures.masks_after_rounds(_twin_models(seed=3), [5],
                                        pruning_schedule=ltp_tfmot.LotteryTicketSchedule(0.5), **settings)
    for name, layer_masks in masks[0].items():
      for want, got in zip(layer_masks, masks[1][name], strict=True):
        self.assertAllEqual(got, want, msg=name)


class RoundTest(tf.test.TestCase):

  def test_a_round_prunes_rewinds_and_resets_the_optimizer(self):
    _, model = _twin_models()
    wrapped = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(0.5))
    wrapped.compile(keras.optimizers.SGD(0.1, momentum=0.9), 'mse')
    initial = [np.asarray(w.layer.kernel) for w in ltp_tfmot.lottery_wrappers(wrapped)]
    ltp_tfmot.take_snapshot(wrapped)
    x = np.random.default_rng(0).standard_normal((8, 6, 6, 1)).astype(np.float32)
    wrapped.fit(x, np.zeros((8, 3), np.float32), epochs=2, verbose=0)
    sparsity = ltp_tfmot.run_lottery_round(wrapped)
    self.assertAllClose(list(sparsity.values()), [0.5] * 3, atol=0.02)
    self.assertEqual(int(wrapped.optimizer.iterations.numpy()), 0)
    for w, kernel in zip(ltp_tfmot.lottery_wrappers(wrapped), initial, strict=True):
      mask = np.asarray(w.masks[0])
      self.assertAllEqual(np.asarray(w.layer.kernel), kernel * mask)
    self.assertAllClose(ltp_tfmot.weights_remaining(wrapped), 0.5, atol=0.02)

  def test_a_nan_weight_is_named_and_changes_nothing(self):
    _, model = _twin_models()
    wrapped = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(0.5))
    kernel = ltp_tfmot.lottery_wrappers(wrapped)[2].layer.kernel
    kernel.assign(np.full(kernel.shape, np.nan, np.float32))
    with self.assertRaisesRegex(ValueError, r"output/kernel in layer 'output' has NaN or inf values"):
      ltp_tfmot.compute_next_masks(wrapped)
    self.assertEqual(ltp_tfmot.weights_remaining(wrapped), 1.0)

  def test_a_round_without_a_snapshot_raises_and_changes_nothing(self):
    _, model = _twin_models()
    wrapped = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(0.5))
    with self.assertRaisesRegex(ValueError, r'no rewind snapshot yet'):
      ltp_tfmot.run_lottery_round(wrapped)
    self.assertEqual(ltp_tfmot.weights_remaining(wrapped), 1.0)


if __name__ == '__main__':
  tf.test.main()
