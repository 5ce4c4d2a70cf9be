"""Tests for a model's lottery wrappers and the training steps they count."""

import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot.keras2 import wrapped_model
from tests import fixtures


class LotteryWrappersTest(tf.test.TestCase):

  def test_the_wrappers_of_nested_models_and_lists_are_found_in_order(self):
    inner = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(name='inner'))
    inputs = keras.Input((8,))
    outer = keras.Model(inputs, keras.layers.Dense(2, name='head')(inner(inputs)))
    names = lambda wrappers: [w.layer.name for w in wrappers]
    self.assertEqual(names(ltp_tfmot.lottery_wrappers(outer)), ['hidden1', 'hidden2', 'output'])
    self.assertEqual(names(ltp_tfmot.lottery_wrappers([inner.layers[2], outer.get_layer('head'), inner.layers[0]])),
                     ['output', 'hidden1'])
    self.assertEqual(ltp_tfmot.lottery_wrappers(outer.get_layer('head')), [])

  def test_built_lottery_wrappers_are_those_of_lottery_wrappers(self):
    model = fixtures.wrapped_mlp()
    self.assertEqual(wrapped_model.built_lottery_wrappers(model), ltp_tfmot.lottery_wrappers(model))

  def test_unwrapped_model_raises(self):
    with self.assertRaisesRegex(ValueError, r'has no PruneLotteryTicket layer'):
      ltp_tfmot.compute_next_masks(fixtures.mlp())

  def test_unbuilt_model_raises(self):
    model = ltp_tfmot.prune_lottery_ticket(keras.Sequential([keras.layers.Dense(2)]))
    with self.assertRaisesRegex(ValueError, r'not built yet'):
      ltp_tfmot.take_snapshot(model)


class StepsTest(tf.test.TestCase):

  def test_a_model_whose_steps_are_not_counted_reports_the_recorded_count(self):
    model = fixtures.compile_for_training(fixtures.wrapped_mlp())
    self.assertEqual(ltp_tfmot.steps_done(model), 0)
    for w in model.layers:
      w.pruning_step.assign(5)
    model.optimizer.iterations.assign(9)
    self.assertEqual(ltp_tfmot.steps_done(model), 5)

  def test_the_count_continues_with_the_optimizer_and_never_goes_below_the_recorded_one(self):
    model = fixtures.wrapped_mlp()
    optimizer = keras.optimizers.SGD(0.1)
    optimizer.iterations.assign(3)
    self.assertEqual(wrapped_model.count_steps_with(model, optimizer, steps=10), 7)
    self.assertEqual(ltp_tfmot.steps_done(model, optimizer), 10)
    optimizer.iterations.assign(5)
    self.assertEqual(ltp_tfmot.steps_done(model, optimizer), 12)
    optimizer.iterations.assign(0)
    self.assertEqual(ltp_tfmot.steps_done(model, optimizer), 10)
    self.assertEqual(ltp_tfmot.steps_done(model), 10)  # no optimizer: the count recorded

  def test_the_optimizer_is_the_one_given_else_the_models(self):
    model = fixtures.compile_for_training(fixtures.wrapped_mlp())
    other = keras.optimizers.SGD(0.1)
    self.assertIs(wrapped_model.model_optimizer(model, other), other)
    self.assertIs(wrapped_model.model_optimizer(model, None), model.optimizer)
    self.assertIsNone(wrapped_model.model_optimizer(model.layers, None))


if __name__ == '__main__':
  tf.test.main()
