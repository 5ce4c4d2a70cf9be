"""Which weights a round keeps: pools, exact-count selection, blocks and units, for both Keras front ends.

A round ranks weights in pools (one weight tensor in layer scope, all global
tensors together), by the wrappers' criterion, and keeps an exact count of
each pool; in unit granularity it ranks whole units of tied layers. These
functions read a wrapper's settings and its weights, masks and snapshots as
TensorFlow tensors (the Keras 2 wrapper's variables, or the tensors a Keras 3
front end reads out of its variables) and return the new masks: the front
end assigns them.
"""

import tensorflow as tf

from ltp_tfmot.core import criteria as criteria_lib
from ltp_tfmot.core import masks as masks_lib
from ltp_tfmot.core import seeds


def _rate_pools(wrappers):
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


def round_pools(wrappers):
  """The pools of a round: `(pool, rate, criterion)` for each group of weights ranked together.

  Args:
    wrappers: The built lottery wrappers of a model.

  Returns:
    A list of `(pool, rate, criterion)`: `pool` lists (wrapper, prunable
    weight index) pairs, `criterion` is a `Criterion`.

  Raises:
    ValueError: if global-scope layers disagree on rate or criterion, or a
      criterion needs the rewind snapshot and none was taken.
  """
  pools = [(pool, rate, criteria_lib.get_criterion(pool[0][0].criterion)) for pool, rate in _rate_pools(wrappers)]
  for pool, _, criterion in pools:
    if criterion.needs_initial and not all(w.has_snapshot for w, _ in pool):
      raise ValueError(f'criterion {criterion.name!r} ranks by the rewind snapshot, and none was taken yet: '
                       'call ltp_tfmot.take_snapshot(model) or train with UpdateLotteryStep first')
  return pools


def _finite_error(w, index, is_snapshot):
  name = w.prunable_weight_names[index]
  name = f'the snapshot of {name}' if is_snapshot else name
  return ValueError(f'{name} in layer {w.layer.name!r} has NaN or inf values; '
                    'pruning needs finite weights (lower the learning rate or check the data)')


def check_finite(pool):
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
      raise ValueError(f'the scores of {w.prunable_weight_names[i]} in layer {w.layer.name!r} have NaN or inf '
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
    seed = seeds.draw_seed(first, positions, 'score', first.prunable_weights[index], rounds)
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
  check_finite(ranked)
  rounds = max(int(w.rounds_done.numpy()) for w, _ in ranked) + 1
  first, index = ranked[0]
  seed = seeds.draw_seed(first, positions, 'score', first.prunable_weights[index], rounds)
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


def next_masks(wrappers, pools, model_scores):
  """The masks of the next round of every wrapper, and the weights each keeps (nothing is assigned).

  Args:
    wrappers: The built lottery wrappers of a model (either Keras front end),
      whose weights, masks and snapshots read as TensorFlow tensors.
    pools: `(pool, rate, criterion)` triples from `round_pools`.
    model_scores: `{(id(wrapper), index): score}` for the pools a
      `ModelCriterion` ranks (see `Criterion.needs_model`); {} when none.

  Returns:
    `(new_masks, kept)`: `(mask, value)` pairs, the value in the mask's dtype,
    and `{mask.ref(): weights kept}` for each mask in them.

  Raises:
    ValueError: for a weight, snapshot or score that is NaN or inf, a unit
      criterion that scores from the model or needs a snapshot not taken, or
      unit groups that disagree on criterion, rate or units.
  """
  new_masks, kept = [], {}
  positions = seeds.wrapper_positions(wrappers)
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
      check_finite(pool)
      continue
    values, counts = _pool_masks(pool, criterion, rate, positions, model_scores)
    for mask, value, count in zip(masks, values, counts, strict=True):
      new_masks.append((mask, tf.cast(value, mask.dtype)))
      kept[mask.ref()] = count
  return new_masks, kept


def sparsity(wrappers, kept):
  """Each wrapper's fraction of prunable weights pruned, by layer name (`kept`: counts of masks just made)."""
  result = {}
  for w in wrappers:
    masks = w.masks
    total = sum(mask.shape.num_elements() for mask in masks)
    alive = sum(kept[m.ref()] if m.ref() in kept else masks_lib.count_nonzero(m) for m in masks)
    result[w.layer.name] = 1.0 - alive / total if total else 0.0
  return result
