"""Tests for the seeds of a round's random draws."""

import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot.core import seeds
from tests import fixtures


def _auto_named_model():
  """A wrapped 4-6-3 MLP whose layers Keras names (dense_N): another build gets other names."""
  model = keras.Sequential([keras.layers.Dense(6, input_shape=(4,)), keras.layers.Dense(3)])
  return ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(0.5))


class DrawSeedTest(tf.test.TestCase):

  def test_positions_are_the_stored_ones_else_the_index_among_the_wrappers_given(self):
    wrappers = ltp_tfmot.lottery_wrappers(fixtures.wrapped_mlp())
    alone = ltp_tfmot.PruneLotteryTicket(keras.layers.Dense(2))
    self.assertEqual(seeds.wrapper_positions(wrappers[1:]), {id(wrappers[1]): 1, id(wrappers[2]): 2})
    self.assertEqual(seeds.wrapper_positions([wrappers[2], alone]), {id(wrappers[2]): 2, id(alone): 1})

  def test_a_draw_depends_on_position_purpose_weight_and_round_but_not_on_names(self):
    first, second = _auto_named_model(), _auto_named_model()
    self.assertNotEqual([w.layer.name for w in first.layers], [w.layer.name for w in second.layers])

    def seed(model, index=0, purpose='score', weight='kernel', round_number=1):
      wrappers = ltp_tfmot.lottery_wrappers(model)
      w = wrappers[index]
      return seeds.draw_seed(w, seeds.wrapper_positions(wrappers), purpose, getattr(w.layer, weight),
                                     round_number)

    self.assertEqual(seed(first), seed(second))
    others = [seed(first, index=1), seed(first, purpose='start'), seed(first, weight='bias'),
              seed(first, round_number=2)]
    self.assertLen({seed(first), *others}, 5)
    self.assertTrue(all(0 <= value < 2**31 for value in others))

  def test_derived_seeds_are_deterministic_31_bit_ints(self):
    self.assertEqual(seeds.derived_seed(3, 'start', 0, 1), seeds.derived_seed(3, 'start', 0, 1))
    self.assertNotEqual(seeds.derived_seed(3, 'start', 0, 1), seeds.derived_seed(3, 'start', 1, 0))
    self.assertBetween(seeds.derived_seed('x'), 0, 2**31 - 1)


if __name__ == '__main__':
  tf.test.main()
