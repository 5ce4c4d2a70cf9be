"""Pruning at initialization: masks from SNIP, GraSP, SynFlow, magnitude or random scores, before training.

`prune_at_initialization` sets the masks of a model wrapped by
`prune_lottery_ticket` from scores of its current weights (its initialization,
or a rewind point), with the exact-count selection of the pruning rounds: each
pool (a weight tensor in layer scope, all of them in global scope) keeps
`round(weights_remaining * n)` of its `n` weights, ties kept in flat order. The
methods are those compared by Frankle, Dziugaite, Roy and Carbin (2021),
"Pruning Neural Networks at Initialization: Why Are We Missing the Mark?".
"""

from absl import logging
import tensorflow as tf
import tf_keras as keras

from ltp_tfmot import validation
from ltp_tfmot.core import criteria as criteria_lib
from ltp_tfmot.core import masks as masks_lib
from ltp_tfmot.core import seeds
from ltp_tfmot.core import selection
from ltp_tfmot.keras2 import rounds as rounds_lib
from ltp_tfmot.keras2 import wrapped_model
from ltp_tfmot.keras2 import wrapper as wrapper_lib


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

  SNIP and GraSP differentiate the model's compiled loss (a model compiled
  with one loss), else sparse categorical cross-entropy on logits, on the
  batch `data`. Every model criterion runs the model in inference mode
  (BatchNormalization with its moving statistics), so that scoring leaves
  those statistics as they are.

  Args:
    model: A built Keras model holding `PruneLotteryTicket` wrappers (see
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
      inf scores.
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
  wrappers = wrapped_model.built_lottery_wrappers(model)
  units = [w.layer.name for w in wrappers if w.granularity == 'unit']
  if units:
    raise ValueError(f'prune_at_initialization sets masks weight by weight, but layers {units} prune whole units '
                     "(granularity='unit'): wrap the model with granularity='weight'")
  criterion = criteria_lib.get_criterion(criterion)
  weights_remaining = validation.check_fraction(weights_remaining, 'weights_remaining')
  scope = validation.check_choice(scope, 'scope', wrapper_lib.SCOPES)
  iterations = getattr(criterion, 'iterations', 1) if iterations is None else iterations
  iterations = validation.check_int(iterations, 'iterations', minimum=1)
  batch = None
  if criterion.needs_model:
    if not isinstance(model, keras.Model):
      raise TypeError(f'criterion {criterion.name!r} scores by running the model: pass the whole keras.Model, '
                      f'got {type(model).__name__}')
    batch = criterion.batch(data)

  pairs = [(w, i) for w in wrappers for i in range(len(w.prunable_weights))]
  pools = [[j] for j in range(len(pairs))] if scope == 'layer' else [list(range(len(pairs)))]
  masks = [w.masks[i] for w, i in pairs]
  kernels = [w.prunable_weights[i] for w, i in pairs]
  positions = seeds.wrapper_positions(wrappers)
  saved = [tf.identity(v) for v in masks + kernels]
  try:
    for t in range(1, iterations + 1):
      if criterion.needs_model:
        scores = criterion.score_model(model, kernels, batch)
      else:
        scores = [None] * len(pairs)
        for pool in pools:
          first, index = pairs[pool[0]]
          seed = seeds.draw_seed(first, positions, 'initialization', first.prunable_weights[index], t)
          pool_kernels = [kernels[j] for j in pool]
          pool_scores = criteria_lib.score_pool(
              criterion, pool_kernels if criterion.needs_initial else None, pool_kernels,
              [masks[j] > 0 for j in pool], seed)
          for j, score in zip(pool, pool_scores, strict=True):
            scores[j] = score
      density = weights_remaining ** (t / iterations)
      updates = []
      for pool in pools:
        pool_pairs = [pairs[j] for j in pool]
        keyed = selection.pool_keys_from_scores(pool_pairs, [scores[j] for j in pool])
        keep = masks_lib.keep_count(sum(item.keys.shape.num_elements() for item in keyed), density)
        values, _ = selection.pool_masks_from_keys(pool_pairs, keyed, keep)
        updates.extend(zip([masks[j] for j in pool], values, strict=True))
      for mask, value in updates:
        mask.assign(value)
    rounds_lib.apply_masks(wrappers)
  except Exception:
    for variable, value in zip(masks + kernels, saved, strict=True):
      variable.assign(value)
    raise
  sparsity = rounds_lib.layer_sparsity(wrappers)
  logging.info('Pruned at initialization by %s (%d iterations, %s scope); sparsity per layer: %s', criterion.name,
               iterations, scope, ', '.join(f'{name} {value:.2%}' for name, value in sparsity.items()))
  return sparsity
