"""Exact-count keep-masks from scores, on whole tensors.

This module is the mask maths of ltp_tfmot and knows nothing about Keras: it
turns per-weight scores into keep-masks that keep exactly the requested number
of weights, never reviving a weight that is already pruned.

Selection is a radix select over order-preserving int32 keys of the scores:
one compiled pass per tensor makes its keys and a histogram of their high 16
bits (the scores themselves can be computed inside that pass, see
`score_keys`), a second one histograms the low 16 bits of the keys in the
chosen high bin, and a third writes the mask. The bin picks and all counts
come from the histograms, in NumPy, so a mask over millions of weights costs
three fused passes over memory instead of a sort.

Tie-breaking rule: among weights with equal scores at the cut-off, the ones that
come first are kept, in flat (row-major) order within a tensor and in list order
across tensors. The rule is deterministic, so the same scores always give the
same masks.
"""

import collections
import math

import numpy as np
import tensorflow as tf

_HALF_BITS = 16
_BINS = 1 << _HALF_BITS
_DEAD_KEY = np.iinfo(np.int32).min
_MAX_KEY = np.iinfo(np.int32).max
# Below this many weights, XLA's compile time (once per tensor shape) costs more
# than the fused passes save.
_XLA_MIN_SIZE = 1 << 18


def _xla_for_large_tensors(fn):
  """Runs `fn` compiled with XLA when its first argument is large, else eagerly."""
  compiled = tf.function(fn, jit_compile=True, reduce_retracing=True)

  def run(tensor, *args):
    return (compiled if tensor.shape.num_elements() >= _XLA_MIN_SIZE else fn)(tensor, *args)

  return run


def _keys(scores, alive):
  """Order-preserving int32 keys of the scores; pruned weights get the smallest int32.

  A float's bits read as int32 sort like the float once the negative ones have
  all bits but the sign flipped. The pruned weights' key is below the key of
  every score, -inf included, and alone in high-half histogram bin 0.
  """
  bits = tf.bitcast(tf.cast(tf.reshape(scores, [-1]), tf.float32), tf.int32)
  # -0.0 becomes +0.0, so that the two zeros compare equal. (Compared as bits: a float comparison on CPU may
  # flush denormals to zero.)
  bits = tf.where(bits == _DEAD_KEY, 0, bits)
  keys = tf.bitwise.bitwise_xor(bits, tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, 31), 0x7FFFFFFF))
  return tf.where(tf.reshape(alive, [-1]), keys, _DEAD_KEY)


def _high_bins(keys):
  return tf.bitwise.right_shift(keys, _HALF_BITS) + (_BINS // 2)


_KEY_PASSES = {}


def _key_pass(score_fn):
  """The compiled pass of `score_keys` for one score function (compiled once per function and shape)."""
  if score_fn not in _KEY_PASSES:

    def key_pass(alive, inputs, checked):
      if alive.dtype != tf.bool:
        alive = alive > 0
      keys = _keys(score_fn(*inputs), alive)
      histogram = tf.math.unsorted_segment_sum(tf.ones_like(keys), _high_bins(keys), _BINS)
      finite = [tf.reduce_all(tf.math.is_finite(tensor)) for tensor in checked]
      return keys, histogram, tf.stack(finite) if finite else tf.ones([0], tf.bool)

    _KEY_PASSES[score_fn] = _xla_for_large_tensors(key_pass)
  return _KEY_PASSES[score_fn]


ScoreKeys = collections.namedtuple('ScoreKeys', ['keys', 'histogram', 'shape'])
ScoreKeys.__doc__ = """The keys of one tensor's scores, ready for `select_top_k`.

Attributes:
  keys: Flat int32 tensor of order-preserving keys (pruned weights lowest).
  histogram: NumPy int64 array of 65,536 counts of the keys' high halves; bin 0
    counts the pruned weights.
  shape: The scores' shape, a tuple.
"""


def _given_scores(scores):
  return scores


def score_keys(score_fn, alive, inputs, checked=()):
  """Scores one tensor and makes its selection keys, in one compiled pass.

  Args:
    score_fn: `score_fn(*inputs) -> scores`, made of TensorFlow ops (it is traced
      and, for large tensors, compiled with XLA together with the keys), or
      None when `inputs` is `(scores,)`. Each distinct function is compiled
      once per input shape.
    alive: Bool tensor, or a mask (non-zero = alive), shaped like the scores.
    inputs: Tuple of the arguments of `score_fn` (tensors or None).
    checked: Tensors to test for NaN and inf in the same pass.

  Returns:
    `(ScoreKeys, finite)`: `finite` is a NumPy bool array, one entry per
    tensor of `checked`, False where that tensor has a NaN or inf value.
  """
  keys, histogram, finite = _key_pass(score_fn or _given_scores)(alive, tuple(inputs), tuple(checked))
  shape = tuple(alive.shape.as_list())
  return ScoreKeys(keys, histogram.numpy().astype(np.int64), shape), finite.numpy()


@_xla_for_large_tensors
def _low_histogram(keys, high_bin):
  """Histogram of the low halves of the keys whose high half falls in `high_bin`."""
  in_bin = _high_bins(keys) == high_bin
  low = tf.bitwise.bitwise_and(keys, _BINS - 1)
  return tf.math.unsorted_segment_sum(tf.cast(in_bin, tf.int32), low, _BINS)


@_xla_for_large_tensors
def _kept_mask(keys, threshold, inclusive, shape, dtype):
  kept = keys >= threshold if inclusive else keys > threshold
  return tf.cast(tf.reshape(kept, shape), dtype)


@_xla_for_large_tensors
def _count_nonzero(tensor):
  return tf.reduce_sum(tf.cast(tf.not_equal(tensor, tf.zeros([], tensor.dtype)), tf.int64))


def count_nonzero(tensor):
  """The number of non-zero (True) entries of a tensor, as an int; one fused pass for large tensors."""
  return int(_count_nonzero(tf.convert_to_tensor(tensor)))


def _pick_bin(histogram, already_above, k):
  """(bin, count of keys above it) for the bin that holds the k-th largest key."""
  from_top = np.cumsum(histogram[::-1])[::-1] + already_above
  chosen = int(np.count_nonzero(from_top >= k)) - 1
  return chosen, int(from_top[chosen] - histogram[chosen])


def select_top_k(score_keys_list, k, dtype=tf.bool):
  """Keeps exactly the `k` highest-keyed alive weights across tensors.

  Args:
    score_keys_list: A list of the `ScoreKeys` (from `score_keys`) of the
      tensors that share one ranking. Each entry's keys are released (the
      entry replaced by one without keys) as soon as its mask is made, so
      that keys and masks never all coexist.
    k: The number of weights to keep, an int. Clamped to [0, number alive].
    dtype: dtype of the returned masks.

  Returns:
    `(masks, counts)`: `dtype` tensors shaped like the scores, 1 where kept,
    and the number kept in each (ints summing to `min(k, number alive)`).
  """
  histograms = [item.histogram for item in score_keys_list]
  alive_counts = [item.keys.shape.num_elements() - int(h[0]) for item, h in zip(score_keys_list, histograms)]
  n_alive = sum(alive_counts)
  k = max(0, min(int(k), n_alive))
  if k == 0:
    score_keys_list[:] = [item._replace(keys=None) for item in score_keys_list]
    return [tf.zeros(item.shape, dtype) for item in score_keys_list], [0] * len(score_keys_list)
  if k == n_alive:
    threshold, ties_to_keep, at_threshold, counts = _DEAD_KEY + 1, 0, [0] * len(histograms), alive_counts
  else:
    high_bin, above_high = _pick_bin(np.sum(histograms, axis=0), 0, k)
    high_bin_tensor = tf.constant(high_bin, tf.int32)
    low_histograms = [_low_histogram(item.keys, high_bin_tensor).numpy().astype(np.int64)
                      for item in score_keys_list]
    low_bin, n_greater = _pick_bin(np.sum(low_histograms, axis=0), above_high, k)
    threshold = ((high_bin - _BINS // 2) << _HALF_BITS) | low_bin
    ties_to_keep = k - n_greater
    at_threshold = [int(low[low_bin]) for low in low_histograms]
    counts = [int(h[high_bin + 1:].sum() + low[low_bin + 1:].sum()) for h, low in zip(histograms, low_histograms)]
  threshold_tensor = tf.constant(threshold, tf.int32)
  masks = []
  for i, item in enumerate(score_keys_list):
    take = min(ties_to_keep, at_threshold[i])
    ties_to_keep -= take
    counts[i] += take
    keys, score_keys_list[i] = item.keys, item._replace(keys=None)
    if take in (0, at_threshold[i]):
      # All of this tensor's ties at the cut-off are kept, or none is.
      masks.append(_kept_mask(keys, threshold_tensor, take == at_threshold[i], item.shape, dtype))
      continue
    # The one tensor whose ties straddle the cut-off keeps its first `take` of them.
    tie_positions = tf.where(keys == threshold_tensor)[:take]
    kept_ties = tf.scatter_nd(tie_positions, tf.ones([take], tf.bool), tf.shape(keys, out_type=tf.int64))
    masks.append(tf.cast(tf.reshape(tf.logical_or(keys > threshold_tensor, kept_ties), item.shape), dtype))
  return masks, counts


def keep_top_k(scores_list, alive_list, k, dtype=tf.bool):
  """Keeps exactly the `k` highest-scoring alive weights across tensors.

  Args:
    scores_list: Float tensors of scores, any shapes. NaN is not allowed.
    alive_list: Bool tensors of the same shapes; only alive weights are kept.
    k: The number of weights to keep, an int. Clamped to [0, number alive].
    dtype: dtype of the returned masks (e.g. a mask variable's, to assign
      them without another pass).

  Returns:
    A list of `dtype` tensors shaped like `scores_list`: True (1) where kept.
    Exactly `min(k, number alive)` entries are kept in total, all of them alive.

  Example:

  >>> keep_top_k([tf.constant([3., 1., 2.])], [tf.constant([True, True, False])], 1)
  [<tf.Tensor: shape=(3,), dtype=bool, numpy=array([ True, False, False])>]
  """
  keyed = [score_keys(None, tf.convert_to_tensor(alive), (tf.convert_to_tensor(scores),))[0]
           for scores, alive in zip(scores_list, alive_list)]
  return select_top_k(keyed, k, dtype)[0]


def keep_count(total, density):
  """Number of weights to keep out of `total` at `density`, rounded half up."""
  return int(math.floor(total * density + 0.5))


def _padded_blocks(tensor, block_size, pad_value):
  """Reshapes a 2-D tensor to [rows/bh, bh, cols/bw, bw], padding the edges."""
  rows, cols = tensor.shape
  bh, bw = block_size
  padded = tf.pad(tensor, [[0, -rows % bh], [0, -cols % bw]], constant_values=pad_value)
  return tf.reshape(padded, [-(-rows // bh), bh, -(-cols // bw), bw])


def block_reduce(tensor, block_size, pooling='AVG'):
  """Pools a 2-D tensor over non-overlapping blocks (edge blocks may be partial).

  Args:
    tensor: A 2-D float or bool tensor. Bool tensors are reduced with "any".
    block_size: (height, width) of a block.
    pooling: 'AVG' (mean of the block's entries) or 'MAX'.

  Returns:
    A tensor of shape [ceil(rows / height), ceil(cols / width)].
  """
  if tensor.dtype == tf.bool:
    return tf.reduce_any(_padded_blocks(tensor, block_size, False), axis=[1, 3])
  tensor = tf.cast(tensor, tf.float32)
  if pooling == 'MAX':
    return tf.reduce_max(_padded_blocks(tensor, block_size, float('-inf')), axis=[1, 3])
  sums = tf.reduce_sum(_padded_blocks(tensor, block_size, 0.0), axis=[1, 3])
  counts = tf.reduce_sum(_padded_blocks(tf.ones_like(tensor), block_size, 0.0), axis=[1, 3])
  return sums / counts


def block_expand(block_tensor, block_size, shape):
  """Repeats each block entry over its block and crops to `shape` (inverse of `block_reduce`)."""
  bh, bw = block_size
  expanded = tf.repeat(tf.repeat(block_tensor, bh, axis=0), bw, axis=1)
  return expanded[:shape[0], :shape[1]]
