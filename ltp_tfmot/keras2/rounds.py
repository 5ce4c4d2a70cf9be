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
from ltp_tfmot.keras2 import initializers
from ltp_tfmot.keras2 import rewind as rewind_lib
from ltp_tfmot.keras2 import wrapped_model
from ltp_tfmot.keras2 import wrapper as wrapper_lib


def _pools(wrappers):
  """Groups (wrapper, weight index) pairs that share one ranking, with their rate.

  Layer scope (and any layer with its own rate): one pool per weight tensor.
  Global scope: one pool for all remaining tensors.
  """
  pools, global_pool = [], []
  for w in wrappers:
    if w.granularity == 'unit':
      continue
    for i in range(len(w.prunable_weights)):
      if w.scope == 'global' and w.layer_rate is None:
        global_pool.append((w, i))
      else:
        pools.append(([(w, i)], w.rate))
  if global_pool:
    rates = {w.rate for w, _ in global_pool}
    criteria = {w.criterion for w, _ in global_pool}
    if len(rates) > 1 or len(criteria) > 1:
      raise ValueError('global-scope layers must share one rate and one criterion, '
                       f'got rates {sorted(rates)} and criteria {sorted(criteria)}')
    pools.append((global_pool, rates.pop()))
  return pools


def _finite_error(w, index, is_snapshot):
  name = w.prunable_weights[index].name
  name = f'the snapshot of {name}' if is_snapshot else name
  return ValueError(f'{name} in layer {w.layer.name!r} has NaN or inf values; '
                    'pruning needs finite weights (lower the learning rate or check the data)')


def _check_finite(pool):
  """Raises for a NaN or inf weight or snapshot of a pool that is not ranked (so not checked while ranking)."""
  checked = [(w, i, tensor) for w, i in pool for tensor in (w.prunable_weights[i], w.prunable_snapshots[i])]
  finite = tf.stack([tf.reduce_all(tf.math.is_finite(tensor)) for _, _, tensor in checked]).numpy()
  for (w, i, tensor), ok in zip(checked, finite, strict=True):
    if not ok:
      raise _finite_error(w, i, tensor is w.prunable_snapshots[i])


def _blocked(tensor, block, pooling):
  return tensor if block is None else masks_lib.block_reduce(tensor, block, pooling)


def _pool_keys(pool, criterion, seed):
  """The selection keys of a pool's tensors; raises if a weight or snapshot is not finite.

  Scores of `fusable` criteria are computed inside the compiled key pass, which
  also reads the mask; other criteria, and block-pooled tensors, are scored
  first. Either way the NaN/inf check of weight and snapshot shares that pass.
  """
  finals = [w.prunable_weights[i] for w, i in pool]
  initials = [w.prunable_snapshots[i] for w, i in pool] if criterion.needs_initial else [None] * len(pool)
  if criterion.fusable and all(w.block_shape(i) is None for w, i in pool):
    return _keyed(pool, [(criterion.score_fn, w.masks[i], (initial, final))
                         for (w, i), initial, final in zip(pool, initials, finals, strict=True)])
  alive = [w.masks[i] > 0 for w, i in pool]
  return pool_keys_from_scores(pool, criteria_lib.score_pool(criterion, initials, finals, alive, seed))


def pool_keys_from_scores(pool, scores):
  """The selection keys of a pool's tensors from their scores, pooled per block where the wrapper has blocks.

  Args:
    pool: (wrapper, prunable weight index) pairs that share one ranking.
    scores: One float tensor per pair, shaped like its weight.

  Returns:
    A list of `masks.ScoreKeys`, for `pool_masks_from_keys`.

  Raises:
    ValueError: if a weight, its snapshot or its score is NaN or inf.
  """
  arguments = []
  for (w, i), score in zip(pool, scores, strict=True):
    block, pooling = w.block_shape(i), w.block_pooling_type
    arguments.append((None, _blocked(w.masks[i] > 0, block, pooling), (_blocked(score, block, pooling),)))
  return _keyed(pool, arguments, scores)


def _keyed(pool, arguments, scores=None):
  """`masks.score_keys` of each tensor from (score_fn, alive, inputs), checking its weight, snapshot and scores."""
  keyed = []
  for j, ((w, i), (score_fn, alive, inputs)) in enumerate(zip(pool, arguments, strict=True)):
    checked = (w.prunable_weights[i], w.prunable_snapshots[i]) + (() if scores is None else (scores[j],))
    keys, finite = masks_lib.score_keys(score_fn, alive, inputs, checked=checked)
    if not finite[:2].all():
      raise _finite_error(w, i, is_snapshot=bool(finite[0]))
    if not finite.all():
      raise ValueError(f'the scores of {w.prunable_weights[i].name} in layer {w.layer.name!r} have NaN or inf '
                       'values: check the weights and the data (SynFlow can overflow float32 in a deep network)')
    keyed.append(keys)
  return keyed


def pool_masks_from_keys(pool, keyed, keep):
  """Masks keeping exactly the `keep` highest-keyed alive weights (or blocks) of a pool, and each tensor's count.

  Args:
    pool: (wrapper, prunable weight index) pairs that share one ranking.
    keyed: Their `masks.ScoreKeys` (from `pool_keys_from_scores`); released as the masks are made.
    keep: The number of weights (of blocks, for block-pruned tensors) to keep; clamped to those alive.

  Returns:
    `(masks, counts)`: tensors in the mask variables' dtype, and the weights each keeps.
  """
  dtype = pool[0][0].masks[pool[0][1]].dtype
  blocks = [w.block_shape(i) for w, i in pool]
  if all(block is None for block in blocks):
    return masks_lib.select_top_k(keyed, keep, dtype=dtype)
  kept, counts = masks_lib.select_top_k(keyed, keep)
  for j, ((w, i), block) in enumerate(zip(pool, blocks, strict=True)):
    mask = w.masks[i]
    if block is not None:
      # Counts in blocks; a partly pruned block (a mask made without blocks) never revives its pruned weights.
      kept[j] = tf.logical_and(masks_lib.block_expand(kept[j], block, mask.shape), mask > 0)
      counts[j] = masks_lib.count_nonzero(kept[j])
  return [tf.cast(k, dtype) for k in kept], counts


def _pool_masks(pool, criterion, rate, positions, model_scores):
  """The next masks of one pool, and the number of weights each keeps (`model_scores` from `_model_scores`)."""
  rounds = max(int(w.rounds_done.numpy()) for w, _ in pool) + 1
  if criterion.needs_model:
    keyed = pool_keys_from_scores(pool, [model_scores[(id(w), i)] for w, i in pool])
  else:
    first, index = pool[0]
    seed = wrapped_model.draw_seed(first, positions, 'score', first.prunable_weights[index], rounds)
    keyed = _pool_keys(pool, criterion, seed)
  keep = masks_lib.keep_count(sum(item.keys.shape.num_elements() for item in keyed), (1.0 - rate) ** rounds)
  return pool_masks_from_keys(pool, keyed, keep)


def _unit_groups(wrappers):
  """Groups the unit-granularity wrappers that prune their units together, with their rate.

  Returns:
    A list of (wrappers of one group, rate, whether it is ranked globally), in wrapper order.
  """
  groups = {}
  for w in wrappers:
    if w.granularity == 'unit':
      groups.setdefault(w.unit_group if w.unit_group is not None else id(w), []).append(w)
  result = []
  for label, members in groups.items():
    ranked = [w for w in members if w.ranked_count]
    if not ranked:
      raise ValueError(f'unit group {label!r} has no Dense, Conv or DepthwiseConv2D layer among the wrappers '
                       'given: run the round on the whole model')
    rates = {w.rate for w in ranked}
    if len(rates) > 1:
      raise ValueError(f'the layers of unit group {label!r} ({[w.layer.name for w in ranked]}) prune the same '
                       f'units, so they need one rate, got {sorted(rates)}: give them the same layer_rates')
    is_global = all(w.scope == 'global' and w.layer_rate is None for w in ranked)
    result.append((members, rates.pop(), is_global))
  return result


def _unit_scores(groups, criterion, positions):
  """Each group's unit scores (summed over its ranked layers) and alive units, as float and bool vectors."""
  ranked = [(w, i) for members, _, _ in groups for w in members for i in range(w.ranked_count)]
  _check_finite(ranked)
  rounds = max(int(w.rounds_done.numpy()) for w, _ in ranked) + 1
  first, index = ranked[0]
  seed = wrapped_model.draw_seed(first, positions, 'score', first.prunable_weights[index], rounds)
  alive = [w.masks[i] > 0 for w, i in ranked]
  initials = [w.prunable_snapshots[i] for w, i in ranked] if criterion.needs_initial else None
  scores = criteria_lib.score_pool(criterion, initials, [w.prunable_weights[i] for w, i in ranked], alive, seed)
  pooled = {(id(w), i): masks_lib.pool_units(score, w.unit_axis(i), w.unit_pooling)
            for (w, i), score in zip(ranked, scores, strict=True)}
  result = []
  for members, _, _ in groups:
    keys = [(id(w), i) for w in members for i in range(w.ranked_count)]
    owner, index = next((w, i) for w in members for i in range(w.ranked_count))
    result.append((tf.add_n([pooled[key] for key in keys]),
                   masks_lib.alive_units(owner.masks[index], owner.unit_axis(index))))
  return result, rounds


def _unit_masks(wrappers, criterion, positions):
  """The next masks of the unit-granularity wrappers: [(mask variable, value)] and {mask ref: kept count}."""
  groups = [group for group in _unit_groups(wrappers) if group[1] > 0]
  if not groups:
    return [], {}
  kept_units = [None] * len(groups)
  pools = [[j for j, group in enumerate(groups) if group[2]]]
  pools += [[j] for j, group in enumerate(groups) if not group[2]]
  for pool in pools:
    if not pool:
      continue
    rate = groups[pool[0]][1]
    scored, rounds = _unit_scores([groups[j] for j in pool], criterion, positions)
    units = sum(int(scores.shape[0]) for scores, _ in scored)
    keep = masks_lib.keep_count(units, (1.0 - rate) ** rounds)
    kept = masks_lib.keep_top_k([scores for scores, _ in scored], [alive for _, alive in scored], keep)
    for j, value in zip(pool, kept, strict=True):
      kept_units[j] = value
  new_masks, counts = [], {}
  for (members, _, _), kept in zip(groups, kept_units, strict=True):
    for w in members:
      for i, mask in enumerate(w.masks):
        if int(mask.shape[w.unit_axis(i)]) != int(kept.shape[0]):
          raise ValueError(f'layer {w.layer.name!r} has {mask.shape[w.unit_axis(i)]} units, but its unit group '
                           f'{w.unit_group!r} has {kept.shape[0]}: wrap the model with prune_lottery_ticket, '
                           'which finds the groups')
        value = tf.logical_and(masks_lib.expand_units(kept, mask.shape, w.unit_axis(i)), mask > 0)
        new_masks.append((mask, tf.cast(value, mask.dtype)))
        counts[mask.ref()] = masks_lib.count_nonzero(value)
  return new_masks, counts


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
  pools = [(pool, rate, criteria_lib.get_criterion(pool[0][0].criterion)) for pool, rate in _pools(wrappers)]
  batches = {}
  for pool, _, criterion in pools:
    if criterion.needs_model and criterion.name not in batches:
      if not isinstance(model, keras.Model):
        raise TypeError(f'criterion {criterion.name!r} scores by running the model: pass the whole keras.Model, '
                        f'got {type(model).__name__}')
      batches[criterion.name] = criterion.batch(data)
    if criterion.needs_initial and not all(w.has_snapshot for w, _ in pool):
      raise ValueError(f'criterion {criterion.name!r} ranks by the rewind snapshot, and none was taken yet: '
                       'call ltp_tfmot.take_snapshot(model) or train with UpdateLotteryStep first')
  model_scores = _model_scores(model, [(pool, criterion) for pool, rate, criterion in pools if rate], batches)
  new_masks, kept = [], {}
  positions = wrapped_model.wrapper_positions(wrappers)
  unit_wrappers = [w for w in wrappers if w.granularity == 'unit']
  if unit_wrappers:
    criteria = {w.criterion for w in unit_wrappers if w.ranked_count}
    if len(criteria) > 1:
      raise ValueError(f'unit-granularity layers must share one criterion, got {sorted(criteria)}')
    criterion = criteria_lib.get_criterion(criteria.pop() if criteria else unit_wrappers[0].criterion)
    if criterion.needs_model:
      raise ValueError(f'criterion {criterion.name!r} scores weights by running the model, which unit granularity '
                       "does not pool yet: use a criterion of weight values (e.g. 'large_final') with "
                       "granularity='unit'")
    if criterion.needs_initial and not all(w.has_snapshot for w in unit_wrappers):
      raise ValueError(f'criterion {criterion.name!r} ranks by the rewind snapshot, and none was taken yet: '
                       'call ltp_tfmot.take_snapshot(model) or train with UpdateLotteryStep first')
    new_masks, kept = _unit_masks(unit_wrappers, criterion, positions)
  for pool, rate, criterion in pools:
    masks = [w.masks[i] for w, i in pool]
    if rate == 0:
      _check_finite(pool)
      continue
    values, counts = _pool_masks(pool, criterion, rate, positions, model_scores)
    for mask, value, count in zip(masks, values, counts, strict=True):
      new_masks.append((mask, tf.cast(value, mask.dtype)))
      kept[mask.ref()] = count
  for mask, value in new_masks:
    mask.assign(value)
  for w in wrappers:
    w.rounds_done.assign_add(1)
  sparsity = {}
  for w in wrappers:
    masks = w.masks
    total = sum(mask.shape.num_elements() for mask in masks)
    alive = sum(kept[m.ref()] if m.ref() in kept else masks_lib.count_nonzero(m) for m in masks)
    sparsity[w.layer.name] = 1.0 - alive / total if total else 0.0
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
  rewind_lib.check_snapshots(wrappers)
  if rewind_iterations is None:
    rewind_iterations = int(wrappers[0].snapshot_step.numpy())
  rewind_iterations = rewind_lib.check_iterations(rewind_iterations, 'rewind_iterations')
  if keep_weights:
    _check_keeps_weights(wrappers)
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


def _check_keeps_weights(wrappers):
  """Raises unless every wrapper can be pruned without a rewind (`run_lottery_round(keep_weights=True)`)."""
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


def _masks_at_rewind_point(model, data):
  """`compute_next_masks` of the rewound model; every variable as it was if that raises."""
  variables = [v for w in wrapped_model.built_lottery_wrappers(model) for v in w.weights] + [
      weight for _, weight in rewind_lib.unwrapped_layer_weights(model)]
  saved = [(variable, tf.identity(variable)) for variable in variables]
  try:
    rewind_lib.rewind_weights(model)
    return compute_next_masks(model, data)
  except Exception:
    for variable, value in saved:
      variable.assign(value)
    raise


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
