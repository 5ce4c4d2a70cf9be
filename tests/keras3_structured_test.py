"""Tests for shrinking Keras 3 structured tickets (ltp_tfmot.keras3.structured): smaller models, same outputs."""

import keras
import numpy as np
import tensorflow as tf

import ltp_tfmot
from ltp_tfmot.keras3 import structured
from tests import fixtures


def _residual_net():
  """`fixtures.unit_residual_net` in Keras 3 with 6 filters and random BatchNormalization statistics."""
  model = fixtures.unit_residual_net(keras, filters=6)
  rng = np.random.default_rng(0)
  for layer in model.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
      gamma, beta, mean, variance = (rng.standard_normal(w.shape).astype(np.float32) for w in layer.weights)
      layer.set_weights([gamma, beta, mean, np.abs(variance) + 0.5])
  return model


def _pruned_ticket(model, rate=0.5):
  wrapped = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(rate), granularity='unit')
  ltp_tfmot.take_snapshot(wrapped)
  ltp_tfmot.compute_next_masks(wrapped)
  return wrapped


def _inputs():
  return np.random.default_rng(1).standard_normal((4, 6, 6, 2)).astype(np.float32)


class ShrinkTest(tf.test.TestCase):

  def test_shrink_removes_the_pruned_units_and_keeps_the_outputs(self):
    wrapped = _pruned_ticket(_residual_net())
    expected = np.asarray(ltp_tfmot.strip_pruning(wrapped)(_inputs(), training=False))
    small = ltp_tfmot.shrink(wrapped)
    self.assertIsInstance(small, keras.Model)
    self.assertEqual(small.get_layer('stem').filters, 3)
    self.assertEqual(small.get_layer('project').filters, 3)
    self.assertEqual(small.get_layer('depthwise').kernel.shape[2], 3)
    self.assertEqual(small.get_layer('fc').units, 4)
    self.assertEqual(small.get_layer('fc').kernel.shape[0], 3 * 9)
    self.assertEqual(small.get_layer('output').units, 3)
    got = np.asarray(small(_inputs(), training=False))
    fixtures.assert_close_to_scale(self, got, expected)

  def test_a_trained_ticket_shrinks_to_the_outputs_of_its_masked_model(self):
    wrapped = _pruned_ticket(_residual_net())
    wrapped.compile(keras.optimizers.SGD(0.01), 'mse')
    wrapped.fit(_inputs(), np.ones((4, 3), np.float32), epochs=2, verbose=0,
                callbacks=[ltp_tfmot.UpdateLotteryStep()])
    expected = np.asarray(ltp_tfmot.strip_pruning(wrapped)(_inputs(), training=False))
    small = ltp_tfmot.shrink(wrapped)
    self.assertEqual(small.get_layer('stem').filters, 3)
    got = np.asarray(small(_inputs(), training=False))
    fixtures.assert_close_to_scale(self, got, expected)

  def test_kept_units_are_the_units_a_group_does_not_make_zero(self):
    stripped = ltp_tfmot.strip_pruning(_pruned_ticket(_residual_net()))
    plan, kept = ltp_tfmot.kept_units(stripped)
    self.assertEqual(sorted(kept), sorted(plan.groups))
    self.assertEqual((int(kept['stem'].sum()), int(kept['fc'].sum())), (3, 4))
    self.assertTrue(kept['output'].all())

  def test_a_dense_model_shrinks_to_itself(self):
    model = _residual_net()
    small = structured.shrink(model)
    self.assertEqual([w.shape for w in small.weights], [w.shape for w in model.weights])
    self.assertAllClose(small(_inputs(), training=False), model(_inputs(), training=False))

  def test_a_sequential_mlp_loses_its_pruned_neurons(self):
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(10, activation='relu', name='hidden'),
                              keras.layers.Dense(2, name='output')])
    wrapped = _pruned_ticket(model, rate=0.6)
    x = _inputs().reshape(-1, 9)[:, :5]
    expected = np.asarray(ltp_tfmot.strip_pruning(wrapped)(x))
    small = ltp_tfmot.shrink(wrapped)
    self.assertEqual([layer.units for layer in small.layers], [4, 2])
    fixtures.assert_close_to_scale(self, small(x), expected)

  def test_a_model_without_a_graph_is_refused(self):
    with self.assertRaisesRegex(ValueError, 'not a Sequential or functional model with a known input'):
      ltp_tfmot.shrink(keras.Sequential([keras.layers.Dense(2)]))
    with self.assertRaisesRegex(TypeError, 'model must be a Keras 3 Model'):
      structured.shrink(keras.layers.Dense(2))


if __name__ == '__main__':
  tf.test.main()
