"""Exact-count keep-masks from scores, on whole tensors.

This module is the mask maths of ltp_tfmot and knows nothing about Keras: it
turns per-weight scores into boolean keep-masks that keep exactly the requested
number of weights, never reviving a weight that is already pruned.

Selection is a radix select over order-preserving integer keys of the scores:
two 16-bit histogram passes, compiled with XLA, so a mask over millions of
weights costs a few fused passes over memory instead of a sort.

Tie-breaking rule: among weights with equal scores at the cut-off, the ones that
come first are kept, in flat (row-major) order within a tensor and in list order
across tensors. The rule is deterministic, so the same scores always give the
same masks.
"""

import math

import tensorflow as tf

_HALF_BITS = 16
_BINS = 1 << _HALF_BITS
_DEAD_KEY = tf.int32.min
# Below this many weights, XLA's compile time (once per tensor shape) costs more
# than the fused passes save.
_XLA_MIN_SIZE = 1 << 18


def _xla_for_large_tensors(fn):
  """Runs `fn` compiled with XLA when its first argument is large, else eagerly."""
  compiled = tf.function(fn, jit_compile=True, reduce_retracing=True)

  def run(tensor, *args):
    return (compiled if tensor.shape.num_elements() >= _XLA_MIN_SIZE else fn)(tensor, *args)

  return run


@_xla_for_large_tensors
def _keys_and_high_histogram(scores, alive):
  """Order-preserving int32 keys of the scores, and a histogram of their high halves.

  A float's bits read as int32 sort like the float once the negative ones have
  all bits but the sign flipped. Pruned weights get the smallest int32, which is
  below the key of every score, -inf included, and alone in histogram bin 0.
  """
  bits = tf.bitcast(tf.cast(tf.reshape(scores, [-1]), tf.float32), tf.int32)
  # -0.0 becomes +0.0, so that the two zeros compare equal. (Compared as bits: a float comparison on CPU may
  # flush denormals to zero.)
  bits = tf.where(bits == _DEAD_KEY, 0, bits)
  keys = tf.bitwise.bitwise_xor(bits, tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, 31), 0x7FFFFFFF))
  keys = tf.where(tf.reshape(alive, [-1]), keys, _DEAD_KEY)
  high = tf.bitwise.right_shift(keys, _HALF_BITS) + (_BINS // 2)
  return keys, tf.math.unsorted_segment_sum(tf.ones_like(high), high, _BINS)


@_xla_for_large_tensors
def _low_histogram(keys, high_bin):
  """Histogram of the low halves of the keys whose high half falls in `high_bin`."""
  in_bin = tf.bitwise.right_shift(keys, _HALF_BITS) + (_BINS // 2) == high_bin
  low = tf.bitwise.bitwise_and(keys, _BINS - 1)
  return tf.math.unsorted_segment_sum(tf.cast(in_bin, tf.int32), low, _BINS)


@_xla_for_large_tensors
def _at_least(keys, threshold, shape, dtype):
  return tf.cast(tf.reshape(keys >= threshold, shape), dtype)


@_xla_for_large_tensors
def _count_nonzero(tensor):
  return tf.reduce_sum(tf.cast(tf.not_equal(tensor, tf.zeros([], tensor.dtype)), tf.int64))


def count_nonzero(tensor):
  """The number of non-zero (True) entries of a tensor, as an int; one fused pass for large tensors."""
  return int(_count_nonzero(tf.convert_to_tensor(tensor)))


def _pick_bin(histogram, already_above, k):
  """(bin, count of keys above it) for the bin that holds the k-th largest key."""
  from_top = tf.cumsum(histogram, reverse=True) + already_above
  chosen = int(tf.reduce_sum(tf.cast(from_top >= k, tf.int32))) - 1
  return chosen, int(from_top[chosen] - histogram[chosen])


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
  keys_list, histograms = zip(*[_keys_and_high_histogram(s, a) for s, a in zip(scores_list, alive_list)])
  high_hist = tf.add_n(histograms)
  n_alive = sum(int(tf.size(keys)) for keys in keys_list) - int(high_hist[0])
  k = max(0, min(int(k), n_alive))
  if k == n_alive:
    return [tf.cast(alive, dtype) for alive in alive_list]
  if k == 0:
    return [tf.zeros(tf.shape(alive), dtype) for alive in alive_list]
  high_bin, above_high = _pick_bin(high_hist, 0, k)
  low_hist = tf.add_n([_low_histogram(keys, tf.constant(high_bin, tf.int32)) for keys in keys_list])
  low_bin, n_greater = _pick_bin(low_hist, above_high, k)
  threshold = tf.constant(((high_bin - _BINS // 2) << _HALF_BITS) | low_bin, tf.int32)
  ties_to_keep = k - n_greater
  all_ties_kept = ties_to_keep == int(low_hist[low_bin])
  keys_list = list(keys_list)
  kept = []
  for i, alive in enumerate(alive_list):
    # Each tensor's keys are dropped once its mask exists, so keys and masks never all coexist.
    keys, keys_list[i] = keys_list[i], None
    if all_ties_kept:
      kept.append(_at_least(keys, threshold, tf.shape(alive), dtype))
      continue
    at_threshold = keys == threshold
    tie_positions = tf.where(at_threshold)[:ties_to_keep]
    take = int(tf.shape(tie_positions)[0])
    ties_to_keep -= take
    kept_ties = tf.scatter_nd(tie_positions, tf.ones([take], tf.bool), tf.shape(keys, out_type=tf.int64))
    kept.append(tf.cast(tf.reshape(tf.logical_or(keys > threshold, kept_ties), tf.shape(alive)), dtype))
  return kept


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
