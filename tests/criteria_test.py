"""Tests for the mask criteria and their registry."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras

import ltp_tfmot
from ltp_tfmot.core import criteria

INITIAL = np.array([0.5, -0.2, 0.1, -0.9, 0.3, -0.4], np.float32)
FINAL = np.array([0.7, 0.3, -0.05, -1.2, 0.0, -0.1], np.float32)
ALIVE = np.ones(6, bool)


def _score(name, initial=INITIAL, final=FINAL, alive=ALIVE):
  criterion = ltp_tfmot.get_criterion(name)
  return criterion.score(tf.constant(initial), tf.constant(final), tf.constant(alive),
                         tf.constant([0, 0], tf.int64)).numpy()


class CriteriaTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ('large_final', 'large_final', np.abs(FINAL)),
      ('small_final', 'small_final', -np.abs(FINAL)),
      ('large_init', 'large_init', np.abs(INITIAL)),
      ('small_init', 'small_init', -np.abs(INITIAL)),
      ('magnitude_increase', 'magnitude_increase', np.abs(FINAL) - np.abs(INITIAL)),
      ('movement', 'movement', np.abs(FINAL - INITIAL)),
  )
  def test_elementwise_scores_follow_the_formula(self, name, expected):
    self.assertAllClose(_score(name), expected)

  def test_same_sign_ranks_every_same_sign_weight_first(self):
    scores = _score('large_final_same_sign')
    same = np.sign(INITIAL) == np.sign(FINAL)
    self.assertGreater(scores[same].min(), scores[~same].max())
    self.assertAllClose(scores[same], np.abs(FINAL[same]))

  def test_diff_sign_ranks_every_sign_flip_first(self):
    scores = _score('large_final_diff_sign')
    flipped = np.sign(INITIAL) != np.sign(FINAL)
    self.assertGreater(scores[flipped].min(), scores[~flipped].max())
    # Among flipped weights, larger |w_f| ranks higher.
    order = np.argsort(-scores[flipped])
    self.assertAllEqual(np.argsort(-np.abs(FINAL[flipped])), order)

  def test_large_init_large_final_keeps_weights_above_one_percentile_in_both(self):
    rng = np.random.RandomState(0)
    initial, final = rng.randn(1000).astype(np.float32), rng.randn(1000).astype(np.float32)
    scores = _score('large_init_large_final', initial, final, np.ones(1000, bool))
    kept = ltp_tfmot.keep_top_k([tf.constant(scores)], [tf.ones([1000], tf.bool)], 200)[0].numpy()
    # Every kept weight beats every pruned one in min(rank |w_i|, rank |w_f|).
    rank = lambda v: np.argsort(np.argsort(v, kind='stable'), kind='stable')
    both = np.minimum(rank(np.abs(initial)), rank(np.abs(final)))
    self.assertGreaterEqual(both[kept].min(), both[~kept].max())

  def test_percentile_ranks_ignore_pruned_weights(self):
    alive = np.array([True, True, False, True, False, True])
    scores = _score('large_init_large_final', alive=alive)
    only_alive = _score('large_init_large_final', INITIAL[alive], FINAL[alive], np.ones(4, bool))
    self.assertAllEqual(np.argsort(scores[alive]), np.argsort(only_alive))

  def test_random_is_seeded_and_differs_between_seeds(self):
    criterion = ltp_tfmot.get_criterion('random')
    args = (None, tf.zeros([50]), tf.ones([50], tf.bool))
    a = criterion.score(*args, tf.constant([1, 2], tf.int64))
    b = criterion.score(*args, tf.constant([1, 2], tf.int64))
    c = criterion.score(*args, tf.constant([1, 3], tf.int64))
    self.assertAllEqual(a, b)
    self.assertNotAllEqual(a, c)

  def test_unknown_name_lists_the_known_criteria(self):
    with self.assertRaisesRegex(ValueError, r"criterion must be one of .*'large_final'.*got 'largest'"):
      ltp_tfmot.get_criterion('largest')

  def test_registry_holds_every_criterion_of_the_literature(self):
    self.assertContainsSubset(
        ['large_final', 'small_final', 'large_init', 'small_init', 'large_init_large_final',
         'small_init_small_final', 'magnitude_increase', 'movement', 'random', 'large_final_same_sign',
         'large_final_diff_sign'], ltp_tfmot.criterion_names())

  def test_registered_criterion_is_usable_by_name_and_not_overwritten_silently(self):
    custom = ltp_tfmot.Criterion('twice_final_test', lambda wi, wf: 2 * tf.abs(wf), needs_initial=False)
    ltp_tfmot.register_criterion(custom)
    self.assertIs(ltp_tfmot.get_criterion('twice_final_test'), custom)
    with self.assertRaisesRegex(ValueError, 'already registered'):
      ltp_tfmot.register_criterion(ltp_tfmot.Criterion('twice_final_test', lambda wi, wf: wf))
    with self.assertRaisesRegex(TypeError, 'must be a ltp_tfmot.Criterion'):
      ltp_tfmot.register_criterion('twice_final_test')

  def test_unregistered_criterion_object_prunes_through_a_round(self):
    keep_negative = ltp_tfmot.Criterion('keep_negative_test', lambda wi, wf: -wf, needs_initial=False)
    layer = ltp_tfmot.prune_lottery_ticket(
        tf_keras.layers.Dense(4, kernel_initializer=tf_keras.initializers.RandomNormal(seed=1)),
        ltp_tfmot.LotteryTicketSchedule(rate=0.5), criterion=keep_negative)
    layer.build((None, 4))
    ltp_tfmot.take_snapshot(layer)
    ltp_tfmot.run_lottery_round(layer)
    initial = layer.prunable_snapshots[0].numpy()
    kept = layer.pruning_vars[0][1].numpy() > 0
    self.assertIs(ltp_tfmot.get_criterion('keep_negative_test'), keep_negative)
    self.assertEqual(kept.sum(), 8)
    self.assertLess(initial[kept].max(), initial[~kept].min())

  def test_criterion_object_with_a_taken_name_is_refused_before_wrapping(self):
    impostor = ltp_tfmot.Criterion('large_final', lambda wi, wf: -tf.abs(wf), needs_initial=False)
    with self.assertRaisesRegex(ValueError, 'name of another registered criterion.*overwrite=True'):
      ltp_tfmot.prune_lottery_ticket(tf_keras.layers.Dense(4), criterion=impostor)
    self.assertIsNot(ltp_tfmot.get_criterion('large_final'), impostor)

  def test_pool_scores_split_back_to_tensor_shapes(self):
    rng = np.random.RandomState(2)
    shapes = [(3, 4), (5,)]
    initials = [tf.constant(rng.randn(*s).astype(np.float32)) for s in shapes]
    finals = [tf.constant(rng.randn(*s).astype(np.float32)) for s in shapes]
    alives = [tf.ones(s, tf.bool) for s in shapes]
    for name in ('large_init_large_final', 'magnitude_increase'):
      scores = criteria.score_pool(ltp_tfmot.get_criterion(name), initials, finals, alives, seed=3)
      self.assertEqual([s.shape for s in scores], [tf.TensorShape(s) for s in shapes])


if __name__ == '__main__':
  tf.test.main()
