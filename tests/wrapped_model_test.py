"""Tests for a model's lottery wrappers, the seeds of their random draws and the training steps they count."""

import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot.keras2 import wrapped_model
from tests import fixtures


def _auto_named_model():
  """A wrapped 4-6-3 MLP whose layers Keras names (dense_N): another build gets other names."""
  model = keras.Sequential([keras.layers.Dense(6, input_shape=(4,)), keras.layers.Dense(3)])
  return ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(0.5))


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


class DrawSeedTest(tf.test.TestCase):

  def test_positions_are_the_stored_ones_else_the_index_among_the_wrappers_given(self):
    wrappers = ltp_tfmot.lottery_wrappers(fixtures.wrapped_mlp())
    alone = ltp_tfmot.PruneLotteryTicket(keras.layers.Dense(2))
    self.assertEqual(wrapped_model.wrapper_positions(wrappers[1:]), {id(wrappers[1]): 1, id(wrappers[2]): 2})
    self.assertEqual(wrapped_model.wrapper_positions([wrappers[2], alone]), {id(wrappers[2]): 2, id(alone): 1})

  def test_a_draw_depends_on_position_purpose_weight_and_round_but_not_on_names(self):
    first, second = _auto_named_model(), _auto_named_model()
    self.assertNotEqual([w.layer.name for w in first.layers], [w.layer.name for w in second.layers])

    def seed(model, index=0, purpose='score', weight='kernel', round_number=1):
      wrappers = ltp_tfmot.lottery_wrappers(model)
      w = wrappers[index]
      return wrapped_model.draw_seed(w, wrapped_model.wrapper_positions(wrappers), purpose, getattr(w.layer, weight),
                                     round_number)

    self.assertEqual(seed(first), seed(second))
    others = [seed(first, index=1), seed(first, purpose='start'), seed(first, weight='bias'),
              seed(first, round_number=2)]
    self.assertLen({seed(first), *others}, 5)
    self.assertTrue(all(0 <= value < 2**31 for value in others))

  def test_derived_seeds_are_deterministic_31_bit_ints(self):
    self.assertEqual(wrapped_model.derived_seed(3, 'start', 0, 1), wrapped_model.derived_seed(3, 'start', 0, 1))
    self.assertNotEqual(wrapped_model.derived_seed(3, 'start', 0, 1), wrapped_model.derived_seed(3, 'start', 1, 0))
    self.assertBetween(wrapped_model.derived_seed('x'), 0, 2**31 - 1)


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
