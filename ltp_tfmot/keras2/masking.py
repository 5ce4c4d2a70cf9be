"""Applying a wrapper's masks to its weights: tfmot's pruning implementation with lottery-ticket masking.

Each `PruneLotteryTicket` holds one `LotteryPruning`, which its training calls
run before the wrapped layer (so the layer computes with its masked weights)
and `apply_masks` runs outside training. It masks in the variables' own dtype
(float32 under a mixed-precision policy) and, under a distribution strategy,
assigns the replicas' mean through a cross-replica merge.
"""

import tensorflow as tf
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_impl
from tf_keras.src.mixed_precision import autocast_variable


class LotteryPruning(pruning_impl.Pruning):
  """tfmot's pruning implementation with lottery-ticket masking.

  Masks change only at round boundaries, where all wrappers of a model are
  pruned together (global scope needs every layer at once), so
  `PruneLotteryTicket.call` never asks it for tfmot's per-step conditional
  update. Applying the mask either zeroes pruned weights or holds them at
  their rewind-point value ('freeze').

  Args:
    snapshots: The rewind-point variables of the prunable weights, in `pruning_vars` order.
    freeze: Whether pruned weights are held at their snapshot ('freeze') rather than 0.
    **kwargs: tfmot's `Pruning` arguments: `pruning_vars`, `training_step_fn`,
      `pruning_schedule`, `block_size`, `block_pooling_type`.
  """

  def __init__(self, snapshots, freeze, **kwargs):
    super().__init__(**kwargs)
    self._snapshots = snapshots
    self._freeze = freeze

  def _validate_block(self):
    # Blocks apply to 2-D weights only; others are pruned weight by weight.
    pass

  def masked_values(self):
    """(masked value, weight variable) for each prunable weight, in the variables' own dtype."""
    pairs = []
    # Under a mixed-precision policy the layer's call reads variables cast to
    # float16/bfloat16; masking in that dtype would round the float32 weights.
    with autocast_variable.enable_auto_cast_variables(None):
      for (weight, mask, _), snapshot in zip(self._pruning_vars, self._snapshots, strict=True):
        value = weight * mask
        if self._freeze:
          value += snapshot * (1 - mask)
        pairs.append((tf.cast(value, weight.dtype), weight))
    return pairs

  def _weight_assign_objs(self):
    pairs = self.masked_values()
    context = tf.distribute.get_replica_context()
    # Without a strategy, `fit` runs in the default replica context, whose
    # copies need no cross-replica mean: assign directly.
    if context is None or not tf.distribute.has_strategy() or not pairs:
      return [weight.assign(value) for value, weight in pairs]

    def update(strategy, pairs):
      reduced = strategy.extended.batch_reduce_to(tf.distribute.ReduceOp.MEAN, pairs)
      return tf.group([
          strategy.extended.update(weight, lambda var, value: var.assign(value), args=(value,))
          for value, (_, weight) in zip(reduced, pairs, strict=True)
      ])

    return [context.merge_call(update, args=(pairs,))]
