"""Round boundaries of Keras 3 models: the next masks, applying them, and the sparsity they leave.

The same rounds as the Keras 2 front end's (`ltp_tfmot.keras2.rounds`), on
the shared selection of `ltp_tfmot.core.selection`: a round reads every
wrapper's weights, masks and snapshots out of its Keras 3 variables (on any
backend) into TensorFlow tensors, ranks them exactly as the Keras 2 front end
does, and assigns the new masks back. None of this runs inside a training
step, so the JAX backend's steps stay free of TensorFlow.
"""

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from ltp_tfmot.core import criteria as criteria_lib
from ltp_tfmot.core import masks as masks_lib
from ltp_tfmot.core import model_walk
from ltp_tfmot.core import rewind as core_rewind
from ltp_tfmot.core import selection
from ltp_tfmot.keras3 import model_scores as model_scores_lib
from ltp_tfmot.keras3 import rewind as rewind_lib
from ltp_tfmot.keras3 import wrapped_model


class TensorView:
  """A Keras 3 wrapper as `selection` reads it: its settings, with its variables read as TensorFlow tensors.

  `layer.weights` holds the read tensors in place of the prunable weights, so
  that a draw's seed finds a weight's index in the layer as for Keras 2.
  """

  def __init__(self, wrapper):
    self.wrapper = wrapper
    self.prunable_weights = [wrapped_model.read(v) for v in wrapper.prunable_weights]
    self.prunable_snapshots = [wrapped_model.read(v) for v in wrapper.prunable_snapshots]
    self.masks = [wrapped_model.read(v) for v in wrapper.masks]
    self.rounds_done = tf.constant(int(wrapped_model.value(wrapper.rounds_done)), tf.int64)
    read = {id(v): t for v, t in zip(wrapper.prunable_weights, self.prunable_weights, strict=True)}
    layer_weights = [read.get(id(v), v) for v in wrapper.layer.weights]
    self.layer = _LayerView(wrapper.layer.name, layer_weights)

  def __getattr__(self, name):
    return getattr(self.wrapper, name)


class _LayerView:

  def __init__(self, name, weights):
    self.name = name
    self.weights = weights


def _model_scores(model, views, pools, data):
  """{(id(view), index): score} of the pools a `ModelCriterion` ranks: one scoring pass per criterion, as Keras 2.

  All the weights a criterion ranks are scored together, whatever their pools:
  GraSP's Hessian-gradient product couples them.
  """
  pairs_of = {}
  for pool, rate, criterion in pools:
    if rate and criterion.needs_model:
      pairs_of.setdefault(criterion.name, (criterion, []))[1].extend(pool)
  if pairs_of and not isinstance(model, keras.Model):
    raise TypeError(f'criterion {next(iter(pairs_of))!r} scores by running the model: pass the whole keras.Model, '
                    f'got {type(model).__name__}')
  del views
  scores = {}
  for criterion, pairs in pairs_of.values():
    kernels = [w.wrapper.prunable_weights[i] for w, i in pairs]
    for (w, i), score in zip(pairs, model_scores_lib.model_scores(model, criterion, kernels, criterion.batch(data)),
                             strict=True):
      scores[(id(w), i)] = score
  return scores


def compute_next_masks(model, data=None):
  """Computes and assigns the masks of the next pruning round of a Keras 3 model.

  The Keras 3 counterpart of `ltp_tfmot.keras2.rounds.compute_next_masks`,
  with the same rules and the same masks for the same weights: each pool (a
  weight tensor in layer scope, all global-scope tensors together) keeps
  `round((1 - rate) ** r * n)` of its `n` weights after round `r`, ranked by
  the wrappers' criterion among the weights still alive.

  Args:
    model: A Keras 3 model, layer or list of layers holding lottery wrappers.
    data: For a criterion that needs data ('snip', 'grasp'): one batch `(x, y)`.

  Returns:
    A dict from layer name to the fraction of its prunable weights now pruned.

  Raises:
    ValueError: if a weight or a score is NaN or inf, if a criterion needs the
      rewind snapshot and none was taken, or if global-scope layers disagree
      on rate or criterion. Nothing is changed then.
  """
  views = [TensorView(w) for w in wrapped_model.built_lottery_wrappers(model)]
  pools = selection.round_pools(views)
  model_scores = _model_scores(model, views, pools, data)
  new_masks, kept = selection.next_masks(views, pools, model_scores)
  variables = {id(t): v for w in views for t, v in zip(w.masks, w.wrapper.masks, strict=True)}
  for mask, value in new_masks:
    variables[id(mask)].assign(np.asarray(value))
  for w in views:
    w.wrapper.rounds_done.assign(int(w.rounds_done) + 1)
  sparsity = selection.sparsity(views, kept)
  logging.info('Pruning round done; sparsity per layer: %s',
               ', '.join(f'{name} {value:.2%}' for name, value in sparsity.items()))
  return sparsity


def apply_masks(model):
  """Applies the masks to the stored weights now: pruned weights become 0 (or frozen).

  Args:
    model: A Keras 3 model, layer or list of layers holding lottery wrappers.
  """
  for w in wrapped_model.built_lottery_wrappers(model):
    for weight, value in w.masked_values():
      weight.assign(value)


def run_lottery_round(model, optimizer=None, rewind_iterations=None, data=None, keep_weights=False):
  """One round boundary of a Keras 3 model: prune by the criterion, rewind, reset the optimizer.

  The Keras 3 counterpart of `ltp_tfmot.keras2.rounds.run_lottery_round`,
  with the same arguments and effects.

  Args:
    model: A Keras 3 model, layer or list of layers holding lottery wrappers.
    optimizer: The optimizer to reset; defaults to `model.optimizer` if any.
    rewind_iterations: What `optimizer.iterations` is set to; None: the
      step of the rewind snapshot.
    data: The batch a criterion that needs data scores on.
    keep_weights: Prune without rewinding (learning-rate rewinding, fine-tuning).

  Returns:
    The sparsity per layer after the round.

  Raises:
    ValueError: as `compute_next_masks` and `rewind_weights`.
    TypeError: for an `optimizer` that is not one, or a `rewind_iterations`
      that is not an integer. The model is left unchanged when any is raised.
  """
  wrappers = wrapped_model.built_lottery_wrappers(model)
  core_rewind.check_snapshots(wrappers)
  if rewind_iterations is None:
    rewind_iterations = int(wrapped_model.value(wrappers[0].snapshot_step))
  rewind_iterations = rewind_lib.check_iterations(rewind_iterations, 'rewind_iterations')
  optimizer = wrapped_model.model_optimizer(model, optimizer)
  steps = wrapped_model.steps_done(wrappers, optimizer)
  if keep_weights:
    core_rewind.check_keeps_weights(wrappers)
    sparsity = compute_next_masks(wrappers)
    apply_masks(wrappers)
  else:
    sparsity = _masks_at_rewind_point(model, wrappers, data)
    rewind_lib.rewind_weights(model)
  if optimizer is not None:
    rewind_lib.reset_optimizer(optimizer, rewind_iterations)
    wrapped_model.count_steps_with(wrappers, optimizer, steps)
  return sparsity


def _masks_at_rewind_point(model, wrappers, data):
  """The next masks; a criterion that scores the model scores it rewound (every variable restored if that raises)."""
  if not any(criteria_lib.get_criterion(w.criterion).needs_model for w in wrappers):
    return compute_next_masks(model)
  variables = [v for w in wrappers for v in w.weights] + [v for _, v in rewind_lib.unwrapped_layer_weights(model)]
  with model_walk.restored_on_error(variables, wrapped_model.value):
    rewind_lib.rewind_weights(model)
    return compute_next_masks(model, data)


def layer_sparsity(model):
  """Fraction of each wrapped layer's prunable weights that are pruned, by the wrapped layer's name."""
  result = {}
  for w in wrapped_model.built_lottery_wrappers(model):
    masks = [wrapped_model.read(m) for m in w.masks]
    total = sum(int(tf.size(m)) for m in masks)
    result[w.layer.name] = 1.0 - sum(masks_lib.count_nonzero(m) for m in masks) / total if total else 0.0
  return result


def weights_remaining(model):
  """Fraction of all prunable weights of the model that are still alive."""
  masks = [wrapped_model.read(m) for w in wrapped_model.built_lottery_wrappers(model) for m in w.masks]
  total = sum(int(tf.size(m)) for m in masks)
  return sum(masks_lib.count_nonzero(m) for m in masks) / total
