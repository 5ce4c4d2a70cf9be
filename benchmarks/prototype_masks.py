"""A prototype of a faster mask step, to size the fix proposed in BENCHMARKS.md (not part of the library).

`compute_next_masks` (see the profile in BENCHMARKS.md) makes, besides the
three XLA passes of `keep_top_k` (keys and high-half histogram, low-half
histogram, masks), further full passes that only check or count:
`_check_finite` over every weight and snapshot, eager `mask > 0` and scores,
and `layer_sparsity` recounting every mask it has just written.

This prototype computes the same masks (`check()` compares them with the
library's over three rounds, with and without tied scores) with:

1. one XLA pass per tensor: score, key (pruned weights lowest) and high-half
   histogram; the alive count and the finiteness check are read off the
   histogram (non-finite scores fall in its outermost bins);
2. the bin pick in NumPy on the 65,536-entry histogram (no eager TF ops);
3. the library's second XLA pass (histogram of the low halves in the chosen
   bin), the low bin picked in NumPy;
4. one XLA pass per tensor writing the new mask in its dtype and its kept
   count, from which the sparsity per layer follows without recounting.

It covers what the benchmark needs (elementwise criteria, no blocks, global or
layer scope). One difference: it checks the alive weights' scores for NaN/inf
instead of every weight and snapshot.
"""

import numpy as np
import tensorflow as tf

from benchmarks import bench_masks
from benchmarks import common
import ltp_tfmot
from ltp_tfmot import criteria as criteria_lib
from ltp_tfmot import masks as masks_lib

_BINS = 1 << 16
_DEAD_KEY = np.iinfo(np.int32).min
# Keys of non-finite scores fall in the outermost 128 high-half bins on either side (-NaN, -inf: 1..127; inf,
# NaN: 65408..65535; bin 0 holds the pruned weights' key); finite scores fill bins 128..65407.
_NON_FINITE_BINS = np.r_[1:128, _BINS - 128:_BINS]
_PASSES = {}


def _passes(criterion):
  """The two compiled per-tensor passes for one criterion."""
  if criterion.name in _PASSES:
    return _PASSES[criterion.name]

  @tf.function(jit_compile=True)
  def first(final, initial, mask):
    """Keys (as in ltp_tfmot.masks: order-preserving int32, pruned weights lowest) and their high-half histogram."""
    bits = tf.bitcast(tf.reshape(tf.cast(criterion.score(initial, final, None, None), tf.float32), [-1]), tf.int32)
    bits = tf.where(bits == _DEAD_KEY, 0, bits)  # -0.0 becomes +0.0
    keys = tf.bitwise.bitwise_xor(bits, tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, 31), 0x7FFFFFFF))
    keys = tf.where(tf.reshape(mask, [-1]) > 0, keys, _DEAD_KEY)
    high = tf.bitwise.right_shift(keys, 16) + _BINS // 2
    return keys, tf.math.unsorted_segment_sum(tf.ones_like(high), high, _BINS)

  @tf.function(jit_compile=True)
  def low_histogram(keys, key_bin):
    """Histogram of the low halves of the keys whose high half is `key_bin` (as the library's)."""
    in_bin = tf.bitwise.right_shift(keys, 16) == key_bin
    return tf.math.unsorted_segment_sum(tf.cast(in_bin, tf.int32), tf.bitwise.bitwise_and(keys, _BINS - 1), _BINS)

  @tf.function(jit_compile=True)
  def last(keys, threshold, mask):
    """The new mask, in the mask's dtype, and its count of kept weights."""
    kept = keys >= threshold
    return tf.cast(tf.reshape(kept, tf.shape(mask)), mask.dtype), tf.reduce_sum(tf.cast(kept, tf.int32))

  _PASSES[criterion.name] = first, low_histogram, last
  return _PASSES[criterion.name]


def _pick_bin(histogram, k, already_above=0):
  """(bin, count of keys above it) for the bin that holds the k-th largest key."""
  from_top = np.cumsum(histogram[::-1])[::-1] + already_above
  chosen = int(np.count_nonzero(from_top >= k)) - 1
  return chosen, int(from_top[chosen] - histogram[chosen])


def _pool_masks(pool, rate, rounds):
  """New masks (or None: nothing to prune) and kept counts of one pool, with the library's semantics."""
  first, low_histogram, last = _passes(criteria_lib.get_criterion(pool[0][0].criterion))
  masks = [w.pruning_vars[i][1] for w, i in pool]
  total = sum(int(m.shape.num_elements()) for m in masks)
  keep = masks_lib.keep_count(total, (1.0 - rate) ** rounds)
  if rate == 0:
    return None
  outputs = [first(w.pruning_vars[i][0], w.prunable_snapshots[i], w.pruning_vars[i][1]) for w, i in pool]
  keys_list = [keys for keys, _ in outputs]
  histogram = np.sum([hist.numpy() for _, hist in outputs], axis=0)
  if histogram[_NON_FINITE_BINS].any():
    raise ValueError('NaN or inf scores: pruning needs finite weights')
  if keep >= total - int(histogram[0]):
    return None
  high_bin, above = _pick_bin(histogram, keep)
  key_bin = tf.constant(high_bin - _BINS // 2, tf.int32)
  low_hist = np.sum([low_histogram(keys, key_bin).numpy() for keys in keys_list], axis=0)
  low_bin, greater = _pick_bin(low_hist, keep, above)
  threshold = ((high_bin - _BINS // 2) << 16) | low_bin
  if greater + int(low_hist[low_bin]) != keep:
    # Weights on both sides of the cut-off share its key: keep the first ones, as the library does.
    ties, result = keep - greater, []
    for mask, keys in zip(masks, keys_list):
      positions = tf.where(keys == threshold)[:ties]
      ties -= int(positions.shape[0])
      kept = tf.logical_or(keys > threshold, tf.scatter_nd(positions, tf.ones([positions.shape[0]], tf.bool),
                                                           tf.shape(keys, out_type=tf.int64)))
      result.append((mask, tf.cast(tf.reshape(kept, mask.shape), mask.dtype), int(tf.math.count_nonzero(kept))))
    return result
  threshold = tf.constant(threshold, tf.int32)
  return [(m, *last(keys, threshold, m)) for m, keys in zip(masks, keys_list)]


def compute_next_masks(model):
  """`ltp_tfmot.compute_next_masks` for elementwise criteria without blocks, made of the passes above."""
  wrappers = ltp_tfmot.lottery_wrappers(model)
  new_masks = []
  for pool, rate in ltp_tfmot.rounds._pools(wrappers):  # pylint: disable=protected-access
    rounds = max(int(w.rounds_done.numpy()) for w, _ in pool) + 1
    new_masks += _pool_masks(pool, rate, rounds) or []
  for mask, value, _ in new_masks:
    mask.assign(value)
  for w in wrappers:
    w.rounds_done.assign_add(1)
  kept = {mask.ref(): int(count) for mask, _, count in new_masks}
  sparsity = {}
  for w in wrappers:
    counts = [(kept.get(m.ref()), int(m.shape.num_elements())) for _, m, _ in w.pruning_vars]
    sparsity[w.layer.name] = 1 - sum(n if c is None else c for c, n in counts) / sum(n for _, n in counts)
  return sparsity


def check(width=256):
  """Whether the prototype gives the library's masks over three rounds, also with many tied scores."""
  initial, final = bench_masks.make_weights(width)
  tied = [np.round(w * 200) / 200 for w in final]  # a few hundred distinct values: ties at every cut-off
  for weights in (final, tied):
    for scope in bench_masks.SCOPES:
      for criterion in bench_masks.CRITERIA:
        library = bench_masks.Ours(width, scope, criterion, initial, weights)
        prototype = bench_masks.Ours(width, scope, criterion, initial, weights)
        for _ in range(3):
          ltp_tfmot.compute_next_masks(library.model)
          compute_next_masks(prototype.model)
          for a, b in zip(library.wrappers, prototype.wrappers):
            if not np.array_equal(a.pruning_vars[0][1].numpy(), b.pruning_vars[0][1].numpy()):
              return False
  return True


def bench(width, reps):
  """Times the library's compute_next_masks and the prototype side by side; checks the masks are identical."""
  initial, final = bench_masks.make_weights(width)
  rows = []
  for scope in bench_masks.SCOPES:
    for criterion in bench_masks.CRITERIA:
      ours = bench_masks.Ours(width, scope, criterion, initial, final)
      masks = [m for w in ours.wrappers for _, m, _ in w.pruning_vars]
      ours.reset()
      ours.run()
      expected = [m.numpy() for m in masks]
      ours.reset()
      compute_next_masks(ours.model)  # also compiles
      identical = all(np.array_equal(e, m.numpy()) for e, m in zip(expected, masks))
      prototype = lambda ours=ours: compute_next_masks(ours.model)
      times = common.interleaved({'library': (ours.run, ours.reset), 'prototype': (prototype, ours.reset)}, reps)
      row = {'scope': scope, 'criterion': criterion, 'weights': sum(w.size for w in final), 'identical': identical}
      row.update({name: common.summary(values) for name, values in times.items()})
      row['speedup'] = common.paired_ratio(times['library'], times['prototype'])
      if scope == 'global' and criterion == 'large_final':
        ours.reset()
        row['profile'] = common.profile_call(prototype, package='benchmarks')
      rows.append(row)
      print(f"prototype {scope:6s} {criterion:18s} library {row['library']['median']:.4f}s  prototype "
            f"{row['prototype']['median']:.4f}s  identical masks: {identical}", flush=True)
      del ours
  return rows


def main():
  args = common.parse_args(__doc__.splitlines()[0])
  common.quiet_logs()
  width = bench_masks.WIDTHS['1M' if args.quick else '12M']
  checked = check()
  print(f'prototype masks equal to the library\'s over 3 rounds, with and without ties: {checked}', flush=True)
  common.write_results({'prototype': bench(width, 2 if args.quick else 7), 'checked': checked}, args.out)


if __name__ == '__main__':
  main()
