"""Exact-count keep-masks from scores, on whole tensors.

This module is the mask maths of ltp_tfmot and knows nothing about Keras: it
turns per-weight scores into boolean keep-masks that keep exactly the requested
number of weights, never reviving a weight that is already pruned.

Selection is a radix select over order-preserving integer keys of the scores
(two 16-bit histogram passes), so a mask over millions of weights costs a few
elementwise passes instead of a sort.

Tie-breaking rule: among weights with equal scores at the cut-off, the ones that
come first are kept, in flat (row-major) order within a tensor and in list order
across tensors. The rule is deterministic, so the same scores always give the
same masks.
"""

import math

import tensorflow as tf

_SIGN_BIT = 0x80000000
_HALF_BITS = 16
_HALF_BINS = 1 << _HALF_BITS
_LOW_MASK = _HALF_BINS - 1


def order_keys(scores, alive):
  """Maps float scores to uint32 keys that sort like the scores.

  Pruned weights (where `alive` is False) get key 0, which is below the key of
  every finite or infinite score, so they can never be selected.

  Args:
    scores: A float tensor. NaN scores are not allowed.
    alive: A bool tensor of the same shape: the weights that may be kept.

  Returns:
    A uint32 tensor of the same shape as `scores`.
  """
  # Adding 0.0 turns -0.0 into +0.0, so that the two zeros compare equal.
  bits = tf.bitcast(tf.cast(scores, tf.float32) + 0.0, tf.uint32)
  sign = tf.constant(_SIGN_BIT, tf.uint32)
  keys = tf.where(bits >= sign, tf.bitwise.invert(bits), tf.bitwise.bitwise_or(bits, sign))
  return tf.where(alive, keys, tf.zeros_like(keys))


def _high_half(keys):
  return tf.cast(tf.bitwise.right_shift(keys, tf.constant(_HALF_BITS, tf.uint32)), tf.int32)


def _low_half(keys):
  return tf.cast(tf.bitwise.bitwise_and(keys, tf.constant(_LOW_MASK, tf.uint32)), tf.int32)


def _pick_bin(histogram, already_above, k):
  """Returns (bin, count above bin) where the k-th largest element falls."""
  from_top = tf.cumsum(histogram, reverse=True) + already_above
  chosen = tf.reduce_sum(tf.cast(from_top >= k, tf.int32)) - 1
  above = tf.gather(from_top, chosen) - tf.gather(histogram, chosen)
  return chosen, above


def kth_largest_key(keys_list, k):
  """Finds the k-th largest key across a list of key tensors.

  Args:
    keys_list: uint32 tensors from `order_keys`.
    k: How many keys to keep, 1 <= k <= the number of non-zero keys.

  Returns:
    (threshold, n_greater): the k-th largest key as a uint32 scalar and the
    number of keys strictly greater than it, as an int32 scalar.
  """
  k = tf.constant(k, tf.int32)
  high_hist = tf.add_n([
      tf.math.bincount(_high_half(tf.reshape(keys, [-1])), minlength=_HALF_BINS, maxlength=_HALF_BINS)
      for keys in keys_list
  ])
  high_bin, above_high = _pick_bin(high_hist, 0, k)
  # Second pass: low halves of the keys in the chosen high bin only, shifted by
  # one so that bin 0 collects every key outside it.
  low_hist = tf.add_n([
      tf.math.bincount(
          tf.where(_high_half(flat) == high_bin, _low_half(flat) + 1, 0),
          minlength=_HALF_BINS + 1, maxlength=_HALF_BINS + 1)[1:]
      for flat in (tf.reshape(keys, [-1]) for keys in keys_list)
  ])
  low_bin, n_greater = _pick_bin(low_hist, above_high, k)
  threshold = tf.bitwise.bitwise_or(
      tf.bitwise.left_shift(tf.cast(high_bin, tf.uint32), tf.constant(_HALF_BITS, tf.uint32)),
      tf.cast(low_bin, tf.uint32))
  return threshold, n_greater


def keep_top_k(scores_list, alive_list, k):
  """Keeps exactly the `k` highest-scoring alive weights across tensors.

  Args:
    scores_list: Float tensors of scores, any shapes.
    alive_list: Bool tensors of the same shapes; only alive weights are kept.
    k: The number of weights to keep, an int. Clamped to [0, number alive].

  Returns:
    A list of bool tensors shaped like `scores_list`: True where kept. Exactly
    `min(k, number alive)` entries are True in total, all of them alive.

  Example:

  >>> keep_top_k([tf.constant([3., 1., 2.])], [tf.constant([True, True, False])], 1)
  [<tf.Tensor: shape=(3,), dtype=bool, numpy=array([ True, False, False])>]
  """
  n_alive = sum(int(tf.math.count_nonzero(alive)) for alive in alive_list)
  k = max(0, min(int(k), n_alive))
  if k == n_alive:
    return [tf.identity(alive) for alive in alive_list]
  if k == 0:
    return [tf.zeros_like(alive) for alive in alive_list]
  keys_list = [order_keys(scores, alive) for scores, alive in zip(scores_list, alive_list)]
  threshold, n_greater = kth_largest_key(keys_list, k)
  ties_to_keep = k - int(n_greater)
  kept = []
  for keys in keys_list:
    at_threshold = keys == threshold
    n_ties = int(tf.math.count_nonzero(at_threshold))
    take = min(ties_to_keep, n_ties)
    ties_to_keep -= take
    if take == n_ties:
      kept.append(tf.logical_or(keys > threshold, at_threshold))
    else:
      tie_positions = tf.where(at_threshold)[:take]
      kept_ties = tf.scatter_nd(tie_positions, tf.ones([take], tf.bool), tf.shape(keys, out_type=tf.int64))
      kept.append(tf.logical_or(keys > threshold, kept_ties))
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
