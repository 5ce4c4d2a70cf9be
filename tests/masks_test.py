"""Tests for the exact-count mask maths."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from ltp_tfmot.core import masks
from tests import fixtures


class KeepTopKTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ('normal', lambda rng, n: rng.randn(n)),
      ('many_ties', lambda rng, n: rng.randint(-3, 4, n).astype(float)),
      ('all_equal', lambda rng, n: np.full(n, 0.25)),
      ('wide_range', lambda rng, n: rng.randn(n) * 10.0 ** rng.randint(-30, 30, n)),
      ('signed_zeros', lambda rng, n: np.where(rng.rand(n) < 0.5, 0.0, -0.0)),
  )
  def test_keeps_exact_count_and_matches_stable_sort(self, make_scores):
    rng = np.random.RandomState(0)
    shapes = [(7, 5), (13,), (2, 3, 4)]
    scores = [make_scores(rng, int(np.prod(s))).reshape(s).astype(np.float32) for s in shapes]
    alive = [rng.rand(*s) < 0.8 for s in shapes]
    n_alive = sum(int(a.sum()) for a in alive)
    for k in [0, 1, n_alive // 3, n_alive - 1, n_alive, n_alive + 5]:
      kept = masks.keep_top_k([tf.constant(s) for s in scores], [tf.constant(a) for a in alive], k)
      expected = fixtures.reference_keep(scores, alive, min(k, n_alive))
      self.assertEqual(sum(int(np.sum(m)) for m in kept), min(k, n_alive))
      for got, want, shape in zip(kept, expected, shapes, strict=True):
        self.assertAllEqual(got, want.reshape(shape))

  @parameterized.parameters(0, 1, 17, 40, 99, 100, 150)
  def test_select_top_k_counts_are_those_of_its_masks(self, k):
    rng = np.random.RandomState(k)
    scores = [rng.randint(0, 5, size).astype(np.float32) for size in (30, 50, 20)]  # ties at every cut-off
    alive = [rng.rand(s.size) < 0.9 for s in scores]
    keyed = [masks.score_keys(None, tf.constant(a), (tf.constant(s),))[0] for s, a in zip(scores, alive, strict=True)]
    kept, counts = masks.select_top_k(keyed, k)
    self.assertEqual(counts, [int(np.sum(m)) for m in kept])
    self.assertEqual(sum(counts), min(k, sum(int(a.sum()) for a in alive)))
    for got, want in zip(kept, fixtures.reference_keep(scores, alive, k), strict=True):
      self.assertAllEqual(got, want)

  def test_score_keys_computes_scores_and_reports_non_finite_inputs(self):
    final = tf.constant([[-3.0, 1.0], [2.0, -0.5]])
    initial = tf.constant([[1.0, float('inf')], [0.0, 1.0]])
    keyed, finite = masks.score_keys(lambda wi, wf: tf.abs(wf), tf.constant([[1.0, 1.0], [0.0, 1.0]]),
                                     (None, final), checked=(final, initial))
    self.assertAllEqual(finite, [True, False])
    self.assertEqual(keyed.shape, (2, 2))
    self.assertEqual(keyed.n_alive, 3)
    kept, counts = masks.select_top_k([keyed], 2)
    self.assertAllEqual(kept[0], [[True, True], [False, False]])  # |-3| and |1|; 2 is pruned
    self.assertEqual(counts, [2])

  @parameterized.named_parameters(
      ('spread', lambda rng, n: rng.randn(n), False),
      ('few_ties', lambda rng, n: np.round(rng.randn(n), 3), False),
      # Two values only: the keys near the cut are most of the pool, too many to gather.
      ('heavy_ties', lambda rng, n: rng.randint(0, 2, n).astype(float), True),
      # Every sampled position holds a large score: the sample brackets the wrong keys.
      ('sample_misleads', lambda rng, n: np.where(np.arange(n) % masks._next_prime(n / masks._SAMPLE_SIZE) == 0,
                                                  1e6 + rng.rand(n), rng.rand(n)), True),
  )
  def test_sampled_cut_is_exact_or_gives_way_to_the_radix_cut(self, make_scores, falls_back):
    rng = np.random.RandomState(3)
    sizes = (150_000, 70_001)
    scores = np.split(make_scores(rng, sum(sizes)).astype(np.float32), [sizes[0]])
    alive = [rng.rand(s.size) < 0.95 for s in scores]
    k = int(0.6 * sum(int(a.sum()) for a in alive))
    keyed = [masks.score_keys(None, tf.constant(a), (tf.constant(s),))[0] for s, a in zip(scores, alive, strict=True)]
    sampled = masks._sampled_cut(keyed, k)  # pylint: disable=protected-access
    self.assertEqual(sampled is None, falls_back)
    if sampled is not None:
      self.assertEqual(sampled, masks._radix_cut(keyed, k))  # pylint: disable=protected-access
    kept, counts = masks.select_top_k(keyed, k)
    self.assertEqual(sum(counts), k)
    for got, want in zip(kept, fixtures.reference_keep(scores, alive, k), strict=True):
      self.assertAllEqual(got, want)

  def test_never_keeps_pruned_weights_even_with_top_scores(self):
    scores = tf.constant([100.0, 50.0, 1.0, 2.0, float('inf')])
    alive = tf.constant([False, True, True, True, False])
    kept = masks.keep_top_k([scores], [alive], 2)[0]
    self.assertAllEqual(kept, [False, True, False, True, False])

  def test_infinite_scores_rank_at_the_ends(self):
    scores = tf.constant([float('-inf'), -1e30, 0.0, 1e30, float('inf')])
    alive = tf.ones([5], tf.bool)
    self.assertAllEqual(masks.keep_top_k([scores], [alive], 2)[0], [False, False, False, True, True])
    self.assertAllEqual(masks.keep_top_k([scores], [alive], 4)[0], [False, True, True, True, True])

  def test_ties_keep_earlier_weights_across_tensors(self):
    first = tf.constant([1.0, 1.0])
    second = tf.constant([1.0, 1.0, 3.0])
    kept = masks.keep_top_k([first, second], [tf.ones([2], tf.bool), tf.ones([3], tf.bool)], 3)
    self.assertAllEqual(kept[0], [True, True])
    self.assertAllEqual(kept[1], [False, False, True])

  def test_large_tensor_matches_numpy_partition_count(self):
    rng = np.random.RandomState(1)
    scores = rng.randn(300_000).astype(np.float32)
    kept = masks.keep_top_k([tf.constant(scores)], [tf.ones(scores.shape, tf.bool)], 123_456)[0].numpy()
    self.assertEqual(kept.sum(), 123_456)
    self.assertGreaterEqual(scores[kept].min(), scores[~kept].max())

  @parameterized.parameters((10, 0.2, 1, 8), (10, 0.2, 2, 6), (266_200, 0.2, 1, 212_960), (3, 0.5, 1, 2))
  def test_keep_count_rounds_half_up(self, total, rate, rounds, expected):
    self.assertEqual(masks.keep_count(total, (1 - rate) ** rounds), expected)


if __name__ == '__main__':
  tf.test.main()
