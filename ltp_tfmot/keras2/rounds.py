"""Round boundaries: computing the next masks, applying them, and the sparsity they leave.

`run_lottery_round` is what `UpdateLotteryStep` calls at the end of each round
of the schedule: it prunes by the wrappers' criterion (`compute_next_masks`),
rewinds (see `rewind`) and resets the optimizer. Call these functions yourself
in a custom training loop or an experiment runner. All of them work on whole
tensors with TensorFlow ops, validate everything before changing any
variable, and accept a model, a layer, or a list of layers.
"""

from absl import logging
import tensorflow as tf
import tf_keras as keras

from ltp_tfmot.core import criteria as criteria_lib
from ltp_tfmot.core import masks as masks_lib
from ltp_tfmot.core import model_walk
from ltp_tfmot.core import rewind as core_rewind
from ltp_tfmot.core import selection
from ltp_tfmot.keras2 import initializers
from ltp_tfmot.keras2 import rewind as rewind_lib
from ltp_tfmot.keras2 import wrapped_model
from ltp_tfmot.keras2 import wrapper as wrapper_lib


def compute_next_masks(model, data=None):
  """Computes and assigns the masks of the next pruning round.

  Each pool (a weight tensor in layer scope, all global-scope tensors together)
  keeps `round((1 - rate) ** r * n)` of its `n` weights after round `r`,
  ranked by the wrappers' criterion among the weights still alive; pruned
  weights are never revived. With a `block_size`, 2-D kernels are ranked and
  counted in whole blocks (scores pooled per block). In unit granularity a
  pool is a group of tied units (all global-scope groups together): each
  unit's score is its weights' scores pooled (`unit_pooling`), summed over
  the layers of its group, and a group of n units keeps
  `round((1 - rate) ** r * n)` of them. Weights are not changed: call
  `rewind_weights` (or `run_lottery_round`) next.

  A `ModelCriterion` ('snip', 'grasp', 'synflow') scores the weights as they
  are now, by running the model in inference mode (on `data` for those that
  need it); the forward pass applies the current masks to the weights, as
  every forward pass of the wrappers does. `run_lottery_round` rewinds first,
  so that they score the rewind point.

  Args:
    model: A model, layer or list of layers holding `PruneLotteryTicket`
      wrappers (a `keras.Model` for a `ModelCriterion`).
    data: For a criterion that needs data ('snip', 'grasp'): one batch `(x,
      y)` or a `tf.data.Dataset` of batches (the first is used); see
      `ModelCriterion.batch`. Other criteria ignore it.

  Returns:
    A dict from layer name to the fraction of its prunable weights now pruned.

  Raises:
    ValueError: if a weight or a score is NaN or inf, if a criterion needs the
      rewind snapshot and none was taken, if a criterion needs data and
      `data` is missing or malformed, or if global-scope layers disagree on
      rate or criterion. Nothing is changed then.
    TypeError: if a `ModelCriterion` is given layers instead of a model.
  """
  wrappers = wrapped_model.built_lottery_wrappers(model)
  pools = selection.round_pools(wrappers)
  batches = {}
  for _, _, criterion in pools:
    if criterion.needs_model and criterion.name not in batches:
      if not isinstance(model, keras.Model):
        raise TypeError(f'criterion {criterion.name!r} scores by running the model: pass the whole keras.Model, '
                        f'got {type(model).__name__}')
      batches[criterion.name] = criterion.batch(data)
  model_scores = _model_scores(model, [(pool, criterion) for pool, rate, criterion in pools if rate], batches)
  new_masks, kept = selection.next_masks(wrappers, pools, model_scores)
  for mask, value in new_masks:
    mask.assign(value)
  for w in wrappers:
    w.rounds_done.assign_add(1)
  sparsity = selection.sparsity(wrappers, kept)
  logging.info('Pruning round done; sparsity per layer: %s',
               ', '.join(f'{name} {value:.2%}' for name, value in sparsity.items()))
  return sparsity


def _model_scores(model, pools, batches):
  """{(id(wrapper), index): score} of every pool ranked by a `ModelCriterion`: one scoring pass per criterion."""
  pairs_of = {}
  for pool, criterion in pools:
    if criterion.needs_model:
      pairs_of.setdefault(criterion.name, (criterion, []))[1].extend(pool)
  scores = {}
  for criterion, pairs in pairs_of.values():
    kernels = [w.prunable_weights[i] for w, i in pairs]
    for (w, i), score in zip(pairs, criterion.score_model(model, kernels, batches[criterion.name]), strict=True):
      scores[(id(w), i)] = score
  return scores


def apply_masks(model):
  """Applies the masks to the weights now: pruned weights become 0 (or frozen).

  Training applies masks at every step, before the forward pass; call this
  after a custom loop's last optimizer step, before stripping or exporting.

  Args:
    model: A model, layer or list of layers holding `PruneLotteryTicket` wrappers.
  """
  for w in wrapped_model.built_lottery_wrappers(model):
    for value, weight in w.pruning_obj.masked_values():
      weight.assign(value)


def run_lottery_round(model, optimizer=None, rewind_iterations=None, data=None, keep_weights=False):
  """One round boundary: prune by the criterion, rewind, reset the optimizer.

  After it the weights are those of the rewind point (see `rewind_weights`;
  given a `keras.Model`, BatchNormalization's and the other unwrapped layers'
  too) and the optimizer is as it was there: its slots are reset and
  `optimizer.iterations` is the rewind point's step (`rewind_step=k`: k), so
  a learning-rate schedule continues from step k, as in Frankle et al.'s
  late rewinding. The model's step count (`steps_done`), which the lottery
  schedule's rounds follow, goes on counting up through the reset.

  Args:
    model: A model, layer or list of layers holding `PruneLotteryTicket` wrappers.
    optimizer: The optimizer to reset; defaults to `model.optimizer` if any.
    rewind_iterations: What `optimizer.iterations` is set to; None (default):
      the step the rewind snapshot was taken at (see `take_snapshot`); 0
      restarts the learning-rate schedule. Keras' Adam counts its bias
      correction with the same iterations, so after a late rewind it starts
      at k + 1 with fresh moments.
    data: The batch a `ModelCriterion` that needs data ('snip', 'grasp')
      scores on (see `compute_next_masks`). A model criterion scores the
      rewind point: the weights are rewound (with the masks so far) before
      the masks are computed.
    keep_weights: Prune without rewinding: the trained survivors keep their
      values and the pruned weights become 0, for learning-rate rewinding
      (`rewind_iterations` = where its schedule replays from) and
      fine-tuning (Renda et al. 2020). Needs a criterion of the weights'
      values, `mask_1_action='rewind'` and `mask_0_action='zero'`.

  Returns:
    The sparsity per layer after the round (see `compute_next_masks`).

  Raises:
    ValueError: as `compute_next_masks` and `rewind_weights`, or for a
      negative `rewind_iterations`.
    TypeError: if `optimizer` is not an optimizer, or `rewind_iterations` not
      an integer.
    The model is left unchanged when any of them is raised.

  Example:

  ```python
  ltp_tfmot.take_snapshot(model, step=500)  # after 500 steps of your loop
  for level in range(5):
    train(model)                            # your own loop
    ltp_tfmot.run_lottery_round(model, optimizer)  # optimizer.iterations is 500 again
  ```
  """
  wrappers = wrapped_model.built_lottery_wrappers(model)
  core_rewind.check_snapshots(wrappers)
  if rewind_iterations is None:
    rewind_iterations = int(wrappers[0].snapshot_step.numpy())
  rewind_iterations = rewind_lib.check_iterations(rewind_iterations, 'rewind_iterations')
  if keep_weights:
    core_rewind.check_keeps_weights(wrappers)
  if any(w.mask_1_action == 'reinit' for w in wrappers) and not keep_weights:
    for w in wrappers:
      for weight in w.layer.weights:
        initializers.initializer_for(w.layer, weight)
    if rewind_lib.reinitialises_unwrapped(wrappers):
      for layer, weight in rewind_lib.unwrapped_layer_weights(model):
        initializers.initializer_for(layer, weight)
  optimizer = wrapped_model.model_optimizer(model, optimizer)
  if optimizer is not None:
    rewind_lib.optimizer_variables(optimizer)
  steps = wrapped_model.steps_done(wrappers, optimizer)
  if any(criteria_lib.get_criterion(w.criterion).needs_model for w in wrappers):
    sparsity = _masks_at_rewind_point(model, data)
  else:
    sparsity = compute_next_masks(wrappers)
  if keep_weights:
    apply_masks(wrappers)
  else:
    rewind_lib.rewind_weights(model)
  if optimizer is not None:
    rewind_lib.reset_optimizer(optimizer, rewind_iterations)
    if int(wrappers[0].step_offset.numpy()) != wrapper_lib.NOT_COUNTING:
      # The reset moved optimizer.iterations, not the steps done.
      wrapped_model.count_steps_with(wrappers, optimizer, steps)
  return sparsity


def _masks_at_rewind_point(model, data):
  """`compute_next_masks` of the rewound model; every variable as it was if that raises."""
  variables = [v for w in wrapped_model.built_lottery_wrappers(model) for v in w.weights] + [
      weight for _, weight in rewind_lib.unwrapped_layer_weights(model)]
  with model_walk.restored_on_error(variables, tf.identity):
    rewind_lib.rewind_weights(model)
    return compute_next_masks(model, data)


def layer_sparsity(model):
  """Fraction of each wrapped layer's prunable weights that are pruned.

  Args:
    model: A model, layer or list of layers holding `PruneLotteryTicket` wrappers.

  Returns:
    A dict from layer name (the wrapped layer's) to sparsity in [0, 1].
  """
  result = {}
  for w in wrapped_model.built_lottery_wrappers(model):
    masks = w.masks
    total = sum(int(tf.size(m)) for m in masks)
    alive = sum(masks_lib.count_nonzero(m) for m in masks)
    result[w.layer.name] = 1.0 - alive / total if total else 0.0
  return result


def weights_remaining(model):
  """Fraction of all prunable weights of the model that are still alive."""
  masks = [mask for w in wrapped_model.built_lottery_wrappers(model) for mask in w.masks]
  total = sum(int(tf.size(m)) for m in masks)
  return sum(masks_lib.count_nonzero(m) for m in masks) / total
