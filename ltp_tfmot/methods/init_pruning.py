"""Pruning at initialization: masks from SNIP, GraSP, SynFlow, magnitude or random scores, before training.

`prune_at_initialization` sets the masks of a model wrapped by
`prune_lottery_ticket` from scores of its current weights (its initialization,
or a rewind point), with the exact-count selection of the pruning rounds: each
pool (a weight tensor in layer scope, all of them in global scope) keeps
`round(weights_remaining * n)` of its `n` weights, ties kept in flat order. The
methods are those compared by Frankle, Dziugaite, Roy and Carbin (2021),
"Pruning Neural Networks at Initialization: Why Are We Missing the Mark?".

One loop serves both Keras front ends: what it needs of a model (its
wrappers, their variables as TensorFlow tensors, a model criterion's scores,
applying the masks) comes from the model's front end, `ltp_tfmot.keras3.init_pruning`
for a Keras 3 model (TensorFlow or JAX backend) and the Keras 2 front end
otherwise, so that the same weights get the same masks in both.
"""

import types

from absl import logging
import numpy as np

from ltp_tfmot import validation
from ltp_tfmot.core import criteria as criteria_lib
from ltp_tfmot.core import masks as masks_lib
from ltp_tfmot.core import seeds
from ltp_tfmot.core import selection
from ltp_tfmot.keras3 import init_pruning as keras3_side


def prune_at_initialization(model, criterion, weights_remaining, data=None, scope='layer', iterations=None):
  """Sets a wrapped model's masks from a criterion's scores of its current weights, before training.

  Scores are those of `criterion` for the weights as they are now (the
  initialization, or a rewind point): a `ModelCriterion` ('snip', 'grasp',
  'synflow') scores from the model's gradients, and a criterion of weight
  values ranks the current weights, which are then both its initial and its
  final ones ('large_init': magnitude at initialization; 'random'). With
  `iterations=T`, iteration t keeps `weights_remaining ** (t / T)` of each
  pool (an exponential schedule), re-scoring the weights still alive; a
  pruned weight is never revived, so a pool that has fewer weights alive than
  a target keeps them all. The wrappers' own rate, layer rates, scope and
  criterion are for the pruning rounds of training and are not used here;
  their block sizes are (a block-pruned kernel keeps whole blocks). When it returns, the pruned
  weights are 0 (held at their snapshot under `mask_0_action='freeze'`).
  Training then goes on as for any wrapped model, e.g. `fit` with
  `UpdateLotteryStep`, which takes the rewind snapshot first if there is none.
  The wrappers' round count is not changed: a later pruning round r keeps
  `(1 - rate) ** r` of each pool, so it prunes only once that is below what
  is alive.

  A Keras 3 model is pruned on its backend, TensorFlow or JAX, with the
  masks a Keras 2 model holding the same weights gets; on JAX the built-in
  model criteria are computed with JAX (`ltp_tfmot.keras3.model_scores`), and
  a `ModelCriterion` of your own, whose scores are TensorFlow code, is refused.

  SNIP and GraSP differentiate the model's compiled loss (a model compiled
  with one loss), else sparse categorical cross-entropy on logits, on the
  batch `data`. Every model criterion runs the model in inference mode
  (BatchNormalization with its moving statistics), so that scoring leaves
  those statistics as they are.

  Args:
    model: A built Keras 2 or Keras 3 model holding `PruneLotteryTicket` wrappers (see
      `prune_lottery_ticket`); a layer or a list of layers for criteria of
      weight values only.
    criterion: A registered criterion's name or a `Criterion`.
    weights_remaining: The fraction of each pool's prunable weights kept, in (0, 1).
    data: For 'snip', 'grasp' and other criteria that need data: one batch
      `(x, y)` (arrays or tensors; `y` the labels the loss takes) or a
      `tf.data.Dataset` of such batches, whose first batch is used. 'synflow'
      takes from it only the shape of an example, and only for a model
      without a fixed input shape; other criteria ignore it.
    scope: 'layer' (each prunable weight tensor keeps `weights_remaining` of
      its weights) or 'global' (one ranking across all of them).
    iterations: The number of pruning iterations, >= 1; None: the
      criterion's default (100 for 'synflow', as in its paper; 1 otherwise).

  Returns:
    A dict from layer name to the fraction of its prunable weights pruned.

  Raises:
    ValueError: for an unknown criterion or scope, a bad `weights_remaining`,
      missing or malformed `data` for a criterion that needs it, a model
      without built lottery wrappers or with unit-granularity ones, or NaN or
      inf scores, or a `ModelCriterion` of your own on a Keras 3 model on JAX.
    TypeError: for a `weights_remaining` or `iterations` of the wrong type,
      or layers where a model criterion needs the model.
    The masks and weights are unchanged when any of them is raised.

  Example:

  ```python
  model = ltp_tfmot.prune_lottery_ticket(model)
  ltp_tfmot.prune_at_initialization(model, 'snip', weights_remaining=0.1, data=(x[:256], y[:256]))
  model.fit(x, y, callbacks=[ltp_tfmot.UpdateLotteryStep()])
  ```
  """
  front_end = _front_end(model)
  wrappers = front_end.built_lottery_wrappers(model)
  units = [w.layer.name for w in wrappers if w.granularity == 'unit']
  if units:
    raise ValueError(f'prune_at_initialization sets masks weight by weight, but layers {units} prune whole units '
                     "(granularity='unit'): wrap the model with granularity='weight'")
  criterion = criteria_lib.get_criterion(criterion)
  weights_remaining = validation.check_fraction(weights_remaining, 'weights_remaining')
  scope = validation.check_choice(scope, 'scope', validation.SCOPES)
  iterations = getattr(criterion, 'iterations', 1) if iterations is None else iterations
  iterations = validation.check_int(iterations, 'iterations', minimum=1)
  batch = None
  if criterion.needs_model:
    if not isinstance(model, front_end.MODEL_CLASS):
      raise TypeError(f'criterion {criterion.name!r} scores by running the model: pass the whole keras.Model, '
                      f'got {type(model).__name__}')
    batch = criterion.batch(data)

  variables = [(w.masks[i], w.prunable_weights[i]) for w in wrappers for i in range(len(w.prunable_weights))]
  mask_variables, kernel_variables = [m for m, _ in variables], [k for _, k in variables]
  pools = [[j] for j in range(len(variables))] if scope == 'layer' else [list(range(len(variables)))]
  saved = [front_end.value(v) for v in mask_variables + kernel_variables]
  try:
    for t in range(1, iterations + 1):
      # The masks and weights as the selection reads them, read again after every iteration's masks.
      views = front_end.views(wrappers)
      pairs = [(w, i) for w in views for i in range(len(w.prunable_weights))]
      if criterion.needs_model:
        scores = front_end.score_model(model, criterion, kernel_variables, batch)
      else:
        scores = _scores_of_values(criterion, views, pairs, pools, t)
      density = weights_remaining ** (t / iterations)
      updates = []
      for pool in pools:
        pool_pairs = [pairs[j] for j in pool]
        keyed = selection.pool_keys_from_scores(pool_pairs, [scores[j] for j in pool])
        keep = masks_lib.keep_count(sum(item.keys.shape.num_elements() for item in keyed), density)
        values, _ = selection.pool_masks_from_keys(pool_pairs, keyed, keep)
        updates.extend(zip([mask_variables[j] for j in pool], values, strict=True))
      for mask, value in updates:
        mask.assign(np.asarray(value))
    front_end.apply_masks(wrappers)
  except Exception:
    for variable, value in zip(mask_variables + kernel_variables, saved, strict=True):
      variable.assign(value)
    raise
  sparsity = front_end.layer_sparsity(wrappers)
  logging.info('Pruned at initialization by %s (%d iterations, %s scope); sparsity per layer: %s', criterion.name,
               iterations, scope, ', '.join(f'{name} {value:.2%}' for name, value in sparsity.items()))
  return sparsity


def _scores_of_values(criterion, views, pairs, pools, iteration):
  """The scores of a criterion of weight values: the current weights are both its initial and its final ones.

  Args:
    criterion: A `Criterion` that is no `ModelCriterion`.
    views: The wrappers as the selection reads them.
    pairs: (view, prunable weight index) of every weight tensor, in order.
    pools: Lists of indices into `pairs` that share one ranking.
    iteration: The iteration, from 1, which random draws derive from.

  Returns:
    One float tensor per pair, shaped like its weight.
  """
  positions = seeds.wrapper_positions(views)
  kernels = [w.prunable_weights[i] for w, i in pairs]
  scores = [None] * len(pairs)
  for pool in pools:
    first, index = pairs[pool[0]]
    seed = seeds.draw_seed(first, positions, 'initialization', first.prunable_weights[index], iteration)
    pool_kernels = [kernels[j] for j in pool]
    pool_scores = criteria_lib.score_pool(
        criterion, pool_kernels if criterion.needs_initial else None, pool_kernels,
        [w.masks[i] > 0 for w, i in (pairs[j] for j in pool)], seed)
    for j, score in zip(pool, pool_scores, strict=True):
      scores[j] = score
  return scores


def _front_end(model):
  """The parts of the model's front end that pruning at initialization uses (`keras3.init_pruning`'s, or Keras 2's).

  The Keras 2 front end is imported only for a model that is not Keras 3: it
  loads tf_keras and tfmot, which would make `tf.keras` Keras 2 in a Keras 3
  program.

  Args:
    model: What `prune_at_initialization` was given.

  Returns:
    A namespace of the names `keras3.init_pruning.front_end_parts` lists.
  """
  if keras3_side.holds_keras3(model):
    return keras3_side.front_end_parts()
  import tf_keras  # pylint: disable=g-import-not-at-top

  from ltp_tfmot.keras2 import rounds as rounds_lib  # pylint: disable=g-import-not-at-top
  from ltp_tfmot.keras2 import wrapped_model  # pylint: disable=g-import-not-at-top
  return types.SimpleNamespace(
      MODEL_CLASS=tf_keras.Model, built_lottery_wrappers=wrapped_model.built_lottery_wrappers,
      views=list, value=lambda variable: variable.numpy(), apply_masks=rounds_lib.apply_masks,
      layer_sparsity=rounds_lib.layer_sparsity,
      score_model=lambda model, criterion, kernels, batch: criterion.score_model(model, kernels, batch))
