"""Exact-count keep-masks from scores, on whole tensors.

This module is the mask maths of ltp_tfmot and knows nothing about Keras: it
turns per-weight scores into keep-masks that keep exactly the requested number
of weights, never reviving a weight that is already pruned.

Selection works on order-preserving int32 keys of the scores. One compiled
pass per tensor computes its scores (see `score_keys`), their keys and the
alive count. A strided sample of the keys brackets the cut-off; a second pass
marks the few keys inside the bracket, which are gathered and ranked exactly
in NumPy; a third writes the mask. Should the sample mislead (heavy ties, a
layout that follows the stride), a radix select with two 16-bit histogram
passes finds the same cut-off. Either way a mask over millions of weights
costs a few fused passes over memory instead of a sort, and is exact.

Tie-breaking rule: among weights with equal scores at the cut-off, the ones that
come first are kept, in flat (row-major) order within a tensor and in list order
across tensors. The rule is deterministic, so the same scores always give the
same masks.
"""

import collections
import math

import numpy as np
import tensorflow as tf

from ltp_tfmot import validation

_HALF_BITS = 16
_BINS = 1 << _HALF_BITS
_DEAD_KEY = np.iinfo(np.int32).min
_MAX_KEY = np.iinfo(np.int32).max
# Below this many weights, XLA's compile time (once per tensor shape) costs more
# than the fused passes save.
_XLA_MIN_SIZE = 1 << 18
# The cut-off is looked for among this many sampled keys first (all keys of smaller pools) ...
_SAMPLE_SIZE = 1 << 16
# ... and found exactly among the keys near it, unless more than this (plus 1/16 of the pool) are near it.
_MAX_BRACKET = 1 << 16


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


def _columns(tensor):
  """A tensor as a matrix whose column reductions XLA vectorises on CPU (a full reduction it does not)."""
  # The width from the run-time shape: a function traced with relaxed shapes has no static one. Retraced for
  # tensors of several ranks (conv and dense kernels) it has no static rank either: one row then.
  rank = tensor.shape.rank
  return tf.reshape(tensor, [-1, tf.shape(tensor)[-1]] if rank is not None and rank >= 2 else [1, -1])


def _column_counts(bools):
  """Per-column counts of True: summed on the host, they are the count, at a fraction of a full reduction's cost."""
  return tf.reduce_sum(tf.cast(_columns(bools), tf.int32), axis=0)


_KEY_PASSES = {}


def _key_pass(score_fn):
  """The compiled pass of `score_keys` for one score function (compiled once per function and shape)."""
  if score_fn not in _KEY_PASSES:

    def key_pass(alive, inputs, checked):
      if alive.dtype != tf.bool:
        alive = alive > 0
      keys = _keys(score_fn(*inputs), alive)
      finite = [tf.reduce_all(tf.math.is_finite(_columns(tensor)), axis=0) for tensor in checked]
      return keys, _column_counts(alive), finite

    _KEY_PASSES[score_fn] = _xla_for_large_tensors(key_pass)
  return _KEY_PASSES[score_fn]


ScoreKeys = collections.namedtuple('ScoreKeys', ['keys', 'n_alive', 'shape'])
ScoreKeys.__doc__ = """The keys of one tensor's scores, ready for `select_top_k`.

Attributes:
  keys: Flat int32 tensor of order-preserving keys (pruned weights lowest).
  n_alive: The number of alive weights, an int.
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
  # Variables are read first: a compiled function retraced for a relaxed shape may keep the static shape of the
  # variable it was first traced with.
  as_tensor = lambda value: None if value is None else tf.convert_to_tensor(value)
  alive, inputs, checked = as_tensor(alive), tuple(map(as_tensor, inputs)), tuple(map(as_tensor, checked))
  keys, alive_counts, finite = _key_pass(score_fn or _given_scores)(alive, inputs, checked)
  finite = np.array([bool(np.all(columns.numpy())) for columns in finite], bool)
  return ScoreKeys(keys, int(np.sum(alive_counts.numpy(), dtype=np.int64)), tuple(alive.shape.as_list())), finite


def _high_bins(keys):
  return tf.bitwise.right_shift(keys, _HALF_BITS) + (_BINS // 2)


@_xla_for_large_tensors
def _high_histogram(keys):
  return tf.math.unsorted_segment_sum(tf.ones_like(keys), _high_bins(keys), _BINS)


@_xla_for_large_tensors
def _low_histogram(keys, high_bin):
  """Histogram of the low halves of the keys whose high half falls in `high_bin`."""
  in_bin = _high_bins(keys) == high_bin
  low = tf.bitwise.bitwise_and(keys, _BINS - 1)
  return tf.math.unsorted_segment_sum(tf.cast(in_bin, tf.int32), low, _BINS)


@_xla_for_large_tensors
def _bracket(keys, low, high, shape):
  """Which keys lie in [low, high], and per-column counts of those and of the keys above `high`."""
  keys = tf.reshape(keys, shape)
  inside = tf.logical_and(keys >= low, keys <= high)
  return tf.reshape(inside, [-1]), _column_counts(inside), _column_counts(keys > high)


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


def _radix_cut(keyed, k):
  """(threshold, per-tensor counts above it, per-tensor counts equal to it) by two 16-bit histogram passes."""
  histograms = [_high_histogram(item.keys).numpy().astype(np.int64) for item in keyed]
  high_bin, above_high = _pick_bin(np.sum(histograms, axis=0), 0, k)
  high_bin_tensor = tf.constant(high_bin, tf.int32)
  low_histograms = [_low_histogram(item.keys, high_bin_tensor).numpy().astype(np.int64) for item in keyed]
  low_bin, _ = _pick_bin(np.sum(low_histograms, axis=0), above_high, k)
  threshold = ((high_bin - _BINS // 2) << _HALF_BITS) | low_bin
  above = [int(h[high_bin + 1:].sum() + low[low_bin + 1:].sum())
           for h, low in zip(histograms, low_histograms, strict=True)]
  return threshold, above, [int(low[low_bin]) for low in low_histograms]


def _next_prime(n):
  n = max(int(n), 2)
  while any(n % d == 0 for d in range(2, math.isqrt(n) + 1)):
    n += 1
  return n


def _cut_among(candidates, rank, above):
  """(threshold, counts above it, counts equal to it) when the cut is the rank-th largest of the candidates."""
  merged = np.concatenate(candidates)
  threshold = int(np.partition(merged, merged.size - rank)[merged.size - rank])
  return (threshold, [a + int(np.count_nonzero(c > threshold)) for a, c in zip(above, candidates, strict=True)],
          [int(np.count_nonzero(c == threshold)) for c in candidates])


def _sampled_cut(keyed, k):
  """`_radix_cut`'s result from a sample of the keys, or None when the sample misleads.

  A strided sample of about `_SAMPLE_SIZE` keys (a prime stride, so that it
  does not follow the columns of a kernel; every key of a small pool)
  brackets the k-th largest key between two of its order statistics, five
  standard deviations of the sample rank to either side. One pass counts the
  keys above the bracket and marks those inside it; those few are gathered
  and the cut found among them exactly. The result is exact whatever the
  sample: when the bracket misses the k-th key, or holds too many keys (heavy
  ties), None tells the caller to fall back to `_radix_cut`.
  """
  total = sum(item.keys.shape.num_elements() for item in keyed)
  stride = 1 if total <= _SAMPLE_SIZE else _next_prime(total / _SAMPLE_SIZE)
  samples, start = [], 0
  for item in keyed:
    samples.append(item.keys[(-start) % stride::stride].numpy())
    start += item.keys.shape.num_elements()
  if stride == 1:
    return _cut_among(samples, k, [0] * len(keyed))
  sample = np.concatenate(samples)
  # The k-th largest key's expected rank in the sample, counted from the top, and its spread.
  fraction = k / total
  center = fraction * sample.size
  margin = 5.0 * math.sqrt(sample.size * fraction * (1.0 - fraction)) + 2.0
  top, bottom = int(center - margin), int(math.ceil(center + margin))
  ranks = [sample.size - 1 - r for r in (top, bottom) if 0 <= r < sample.size]
  ordered = np.partition(sample, ranks)
  high = int(ordered[sample.size - 1 - top]) if top >= 0 else _MAX_KEY
  low = int(ordered[sample.size - 1 - bottom]) if bottom < sample.size else _DEAD_KEY
  # The k-th largest key is alive (k <= number alive), so the pruned weights' key is never inside.
  low_tensor, high_tensor = tf.constant(max(low, _DEAD_KEY + 1), tf.int32), tf.constant(high, tf.int32)
  brackets = [_bracket(item.keys, low_tensor, high_tensor, item.shape) for item in keyed]
  above_high = [int(np.sum(above.numpy(), dtype=np.int64)) for _, _, above in brackets]
  inside = sum(int(np.sum(count.numpy(), dtype=np.int64)) for _, count, _ in brackets)
  if not sum(above_high) < k <= sum(above_high) + inside or inside > _MAX_BRACKET + total // 16:
    return None
  candidates = [tf.gather(item.keys, tf.where(in_bracket)[:, 0]).numpy() for item, (in_bracket, _, _) in
                zip(keyed, brackets, strict=True)]
  return _cut_among(candidates, k - sum(above_high), above_high)


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
  n_alive = sum(item.n_alive for item in score_keys_list)
  k = max(0, min(int(k), n_alive))
  if k == 0:
    shapes = [item.shape for item in score_keys_list]
    score_keys_list[:] = [item._replace(keys=None) for item in score_keys_list]
    return [tf.zeros(shape, dtype) for shape in shapes], [0] * len(shapes)
  if k == n_alive:
    threshold, counts = _DEAD_KEY + 1, [item.n_alive for item in score_keys_list]
    at_threshold = [0] * len(counts)
  else:
    threshold, counts, at_threshold = _sampled_cut(score_keys_list, k) or _radix_cut(score_keys_list, k)
  ties_to_keep = k - sum(counts)
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
  keyed = [score_keys(None, alive, (scores,))[0] for scores, alive in zip(scores_list, alive_list, strict=True)]
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


UNIT_POOLINGS = validation.UNIT_POOLINGS


def _units_last(tensor, axis):
  """The tensor as a matrix [positions, units], the units taken from `axis`."""
  tensor = tf.convert_to_tensor(tensor)
  axis = axis % tensor.shape.rank
  perm = [d for d in range(tensor.shape.rank) if d != axis] + [axis]
  return tf.reshape(tf.transpose(tensor, perm), [-1, tensor.shape[axis]])


def pool_units(scores, axis, pooling='L1'):
  """Pools per-weight scores into one score per unit (a slice along `axis`).

  Poolings keep the sign of the scores, so that criteria scoring small
  weights high (`small_final`'s -|w|) rank units the same way:

  - 'L1': the sum of the unit's scores (under `large_final`, the L1 norm of
    its weights);
  - 'L2': sign(q) * sqrt(|q|) with q the sum of s * |s| (under `large_final`,
    the L2 norm of its weights);
  - 'mean': the mean of the unit's scores.

  Args:
    scores: A float tensor of per-weight scores.
    axis: The axis whose slices are the units (-1: the output units of a
      Dense or Conv kernel).
    pooling: 'L1', 'L2' or 'mean'.

  Returns:
    A float32 vector, one score per unit.

  Raises:
    ValueError: for an unknown pooling.

  Example:

  >>> pool_units(tf.constant([[1., -2.], [3., 4.]]), axis=-1)
  <tf.Tensor: shape=(2,), dtype=float32, numpy=array([4., 2.], dtype=float32)>
  """
  if pooling not in UNIT_POOLINGS:
    raise ValueError(f'unit_pooling must be one of {list(UNIT_POOLINGS)}, got {pooling!r}')
  matrix = tf.cast(_units_last(scores, axis), tf.float32)
  if pooling == 'L1':
    return tf.reduce_sum(matrix, axis=0)
  if pooling == 'mean':
    return tf.reduce_mean(matrix, axis=0)
  squares = tf.reduce_sum(matrix * tf.abs(matrix), axis=0)
  return tf.sign(squares) * tf.sqrt(tf.abs(squares))


def alive_units(mask, axis):
  """Which units (slices along `axis`) of a mask keep at least one weight, as a bool vector."""
  return tf.reduce_any(_units_last(tf.not_equal(mask, 0), axis), axis=0)


def expand_units(kept_units, shape, axis):
  """Broadcasts a bool vector over units to a mask of `shape` (inverse of `alive_units` on whole units)."""
  rank = len(shape)
  axis = axis % rank
  broadcast_shape = [1] * rank
  broadcast_shape[axis] = shape[axis]
  return tf.broadcast_to(tf.reshape(tf.cast(kept_units, tf.bool), broadcast_shape), shape)
