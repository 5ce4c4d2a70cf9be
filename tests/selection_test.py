"""Tests for the round's selection of weights, on wrappers that are plain objects (no Keras)."""

import types

import numpy as np
import tensorflow as tf

from ltp_tfmot.core import selection


class _Wrapper:
  """The settings and tensors a front end's lottery wrapper exposes to `selection`, and nothing else."""

  def __init__(self, name, weights, scope='layer', rate=0.5, criterion='large_final', block=None, position=None):
    self.layer = types.SimpleNamespace(name=name, weights=[tf.Variable(w, dtype=tf.float32) for w in weights])
    self.prunable_weights = list(self.layer.weights)
    self.prunable_weight_names = tuple(f'{name}/kernel' for _ in self.prunable_weights)
    self.prunable_snapshots = [tf.Variable(w * 0.5) for w in self.prunable_weights]
    self.masks = [tf.Variable(tf.ones_like(w)) for w in self.prunable_weights]
    self.granularity, self.scope, self.layer_rate, self.rate = 'weight', scope, None, rate
    self.criterion, self.seed, self.position, self.has_snapshot = criterion, 0, position, True
    self.rounds_done = tf.Variable(0, dtype=tf.int64)
    self.block_pooling_type, self._block = 'AVG', block

  def block_shape(self, index):
    del index
    return self._block


def _masks(wrappers):
  new_masks, kept = selection.next_masks(wrappers, selection.round_pools(wrappers), {})
  return [value.numpy() for _, value in new_masks], kept


class SelectionTest(tf.test.TestCase):

  def test_layer_scope_keeps_the_largest_half_of_each_tensor(self):
    w = _Wrapper('a', [np.array([[1.0, -4.0], [3.0, 2.0]])])
    (mask,), kept = _masks([w])
    self.assertAllEqual(mask, [[0, 1], [1, 0]])
    self.assertEqual(list(kept.values()), [2])

  def test_global_scope_ranks_every_tensor_together(self):
    wrappers = [_Wrapper('a', [np.array([[1.0, 2.0]])], scope='global'),
                _Wrapper('b', [np.array([[8.0, 9.0]])], scope='global')]
    masks, _ = _masks(wrappers)
    self.assertAllEqual(masks, [[[0, 0]], [[1, 1]]])
    self.assertEqual(selection.sparsity(wrappers, _masks(wrappers)[1]), {'a': 1.0, 'b': 0.0})

  def test_pruned_weights_stay_pruned_whatever_their_score(self):
    w = _Wrapper('a', [np.array([[9.0, 1.0, 2.0, 3.0]])])
    w.masks[0].assign([[0.0, 1.0, 1.0, 1.0]])
    w.rounds_done.assign(1)  # the second round keeps 1 of 4
    (mask,), _ = _masks([w])
    self.assertAllEqual(mask, [[0, 0, 0, 1]])

  def test_blocks_are_kept_or_pruned_whole(self):
    w = _Wrapper('a', [np.array([[1.0, 1.0, 5.0, 5.0], [1.0, 1.0, 5.0, 5.0]])], block=(2, 2))
    (mask,), kept = _masks([w])
    self.assertAllEqual(mask, [[0, 0, 1, 1], [0, 0, 1, 1]])
    self.assertEqual(list(kept.values()), [4])

  def test_global_layers_with_two_rates_raise(self):
    wrappers = [_Wrapper('a', [np.ones((2, 2))], scope='global', rate=0.5),
                _Wrapper('b', [np.ones((2, 2))], scope='global', rate=0.2)]
    with self.assertRaisesRegex(ValueError, r'must share one rate and one criterion'):
      selection.round_pools(wrappers)

  def test_a_criterion_of_the_snapshot_without_one_raises(self):
    w = _Wrapper('a', [np.ones((2, 2))], criterion='large_init')
    w.has_snapshot = False
    with self.assertRaisesRegex(ValueError, r'none was taken yet'):
      selection.round_pools([w])

  def test_a_nan_weight_raises_naming_it(self):
    w = _Wrapper('a', [np.array([[1.0, np.nan]])])
    with self.assertRaisesRegex(ValueError, r'in layer \'a\' has NaN or inf values'):
      _masks([w])


if __name__ == '__main__':
  tf.test.main()
