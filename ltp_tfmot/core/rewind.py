"""What a round's survivors and pruned weights start from at a rewind, for both Keras front ends.

The mask-1 actions of Zhou et al. (2019), "Deconstructing Lottery Tickets"
(survivors rewound, reinitialised, reshuffled or set to a signed constant),
the mask-0 actions (pruned weights zero or frozen at their snapshot) and
dynamic weight rescaling, on whole TensorFlow tensors.
"""

import tensorflow as tf

from ltp_tfmot.core import criteria as criteria_lib


def survivor_values(action, snapshot, mask, seed, fresh=None):
  """The values the kept weights of one prunable tensor start from.

  Args:
    action: The wrapper's mask-1 action: 'rewind', 'reinit', 'reshuffle' or 'signed_constant'.
    snapshot: The tensor's rewind-point values.
    mask: Its mask (> 0 where kept).
    seed: An int seed for 'reshuffle'.
    fresh: Values drawn afresh from the layer's initializer, for 'reinit'.

  Returns:
    A tensor shaped like `snapshot` (only its kept positions matter).
  """
  if action == 'rewind':
    return snapshot
  if action == 'reinit':
    return fresh
  if action == 'signed_constant':
    # The std in float64: float32 overflows for |w| above about 1.8e19.
    std = tf.math.reduce_std(tf.cast(snapshot, tf.float64))
    return tf.cast(tf.sign(tf.cast(snapshot, tf.float64)) * std, snapshot.dtype)
  positions = tf.where(mask > 0)
  shuffled = tf.random.experimental.stateless_shuffle(tf.gather_nd(snapshot, positions), seed=[seed, 0])
  return tf.scatter_nd(positions, shuffled, tf.shape(snapshot, out_type=tf.int64))


def start_values(kept, snapshot, mask, mask_0_action, dynamic_weight_rescaling, dtype):
  """A prunable tensor's values for the next round: survivors from `kept`, pruned weights 0 or frozen.

  Args:
    kept: The survivors' values (`survivor_values`).
    snapshot: The tensor's rewind-point values.
    mask: Its mask (> 0 where kept).
    mask_0_action: 'zero' or 'freeze' (pruned weights held at their snapshot).
    dynamic_weight_rescaling: Whether survivors are multiplied by (weights / weights kept).
    dtype: The weight variable's dtype.

  Returns:
    A tensor of `dtype` shaped like `snapshot`.
  """
  if dynamic_weight_rescaling:
    n_kept = tf.maximum(tf.reduce_sum(mask), 1.0)
    kept = kept * (tf.cast(tf.size(mask), mask.dtype) / n_kept)
  pruned = snapshot if mask_0_action == 'freeze' else tf.zeros([], snapshot.dtype)
  return tf.cast(tf.where(mask > 0, kept, pruned), dtype)


def check_snapshots(wrappers):
  """Raises unless every wrapper has a rewind snapshot.

  Args:
    wrappers: A list of built lottery wrappers (either front end).

  Raises:
    ValueError: naming the layers without one.
  """
  missing = [w.layer.name for w in wrappers if not w.has_snapshot]
  if missing:
    raise ValueError(f'layers {missing} have no rewind snapshot yet: call ltp_tfmot.take_snapshot(model) '
                     'or train with UpdateLotteryStep first')


def check_keeps_weights(wrappers):
  """Raises unless every wrapper (of either front end) can be pruned without a rewind (`keep_weights=True`)."""
  for w in wrappers:
    if criteria_lib.get_criterion(w.criterion).needs_model:
      raise ValueError(f'layer {w.layer.name!r} is pruned by {w.criterion!r}, which scores the rewind point, so it '
                       "cannot prune with keep_weights=True: use a criterion of the weights' values such as "
                       "'large_final'")
    for attribute, default in (('mask_1_action', 'rewind'), ('mask_0_action', 'zero')):
      if getattr(w, attribute) != default:
        raise ValueError(f'layer {w.layer.name!r} has {attribute}={getattr(w, attribute)!r}, which acts at a rewind, '
                         f'so it cannot prune with keep_weights=True: wrap it with {attribute}={default!r}')
    if w.dynamic_weight_rescaling:
      raise ValueError(f'layer {w.layer.name!r} rescales survivors at a rewind (dynamic_weight_rescaling), so it '
                       'cannot prune with keep_weights=True: wrap it without dynamic_weight_rescaling')
