"""Early-bird tickets (You et al. 2020, "Drawing Early-Bird Tickets"): the mask settles long before training ends.

While the dense network trains, `EarlyBirdTicket` draws at every epoch end
the mask a one-shot magnitude pruning to the target sparsity would give (a
criterion of weight values, per layer or global, exact counts), measures how
far it moved since the previous epoch (the normalised Hamming distance,
`mask_distance`), and declares the ticket found when the last `patience`
distances all lie below `threshold`; training can stop there and the ticket be
retrained, at a fraction of the cost of training the dense network to the end.
"""

import collections

from absl import logging
import tensorflow as tf
import tf_keras as keras

from ltp_tfmot import validation
from ltp_tfmot.core import criteria as criteria_lib
from ltp_tfmot.core import masks as masks_lib
from ltp_tfmot.keras2 import model_layers
from ltp_tfmot.keras2 import rounds as rounds_lib
from ltp_tfmot.keras2 import wrapped_model
from ltp_tfmot.keras2 import wrapper as wrapper_lib


def mask_distance(masks_a, masks_b):
  """The normalised Hamming distance of two masks: the fraction of positions where they differ.

  Args:
    masks_a: A list of masks (bool or 0/1 tensors or arrays), e.g. one per
      layer.
    masks_b: A list of masks of the same shapes.

  Returns:
    A float in [0, 1]: positions that differ / all positions, over the whole list.

  Raises:
    ValueError: for lists of different lengths or shapes, or empty ones.

  Example:

  ```python
  ltp_tfmot.mask_distance([[True, True, False, False]], [[True, False, True, False]])  # 0.5
  ```
  """
  masks_a = [tf.cast(mask, tf.bool) for mask in masks_a]
  masks_b = [tf.cast(mask, tf.bool) for mask in masks_b]
  if len(masks_a) != len(masks_b) or not masks_a:
    raise ValueError(f'mask_distance needs two equally long, non-empty lists of masks, got {len(masks_a)} and '
                     f'{len(masks_b)}')
  shapes_a, shapes_b = [m.shape.as_list() for m in masks_a], [m.shape.as_list() for m in masks_b]
  if shapes_a != shapes_b:
    raise ValueError(f'mask_distance needs masks of the same shapes, got {shapes_a} and {shapes_b}')
  differing = sum(masks_lib.count_nonzero(tf.not_equal(a, b)) for a, b in zip(masks_a, masks_b, strict=True))
  total = sum(m.shape.num_elements() for m in masks_a)
  if total == 0:
    raise ValueError('mask_distance needs masks with at least one position')
  return differing / total


def _watched_weights(model):
  """(name, weight, alive) of each weight a lottery ticket of the model prunes; alive is None when all are."""
  watched = []
  for layer in model_layers.flat_layers(model):
    if isinstance(layer, wrapper_lib.PruneLotteryTicket):
      # A wrapped model trains its masks' survivors: weights it pruned already stay pruned.
      watched.extend((weight.name.split(':')[0], weight, mask) for weight, mask in
                     zip(layer.prunable_weights, layer.masks, strict=True))
    elif isinstance(layer, keras.layers.Wrapper) and type(layer).__name__ == 'PruneLowMagnitude':
      raise ValueError(f'layer {layer.name!r} is a tfmot PruneLowMagnitude wrapper; EarlyBirdTicket watches plain '
                       'models or models wrapped with ltp_tfmot.prune_lottery_ticket')
    else:
      watched.extend((weight.name.split(':')[0], weight, None) for weight in wrapper_lib.pruned_weights_of(layer))
  if not watched:
    raise ValueError('EarlyBirdTicket found no prunable weight (Dense, Conv, ... kernels) in the model')
  return watched


class EarlyBirdTicket(keras.callbacks.Callback):
  """A `fit` callback that finds an early-bird ticket and (optionally) stops training there.

  At every epoch end it draws the mask that pruning the model's prunable
  weights (those `prune_lottery_ticket` would prune) to `target_sparsity` by
  `criterion` would give, with the weights at the start of training as the
  criterion's initial weights, and measures its `mask_distance` to the
  previous epoch's mask. The ticket is found at the first epoch whose last
  `patience` distances are all below `threshold` (You et al.: 5 and 0.1).
  Masks keep exact counts (`round((1 - target_sparsity) * n)` per pool, ties
  to the first weight, as in the rest of ltp_tfmot). A model wrapped with
  `prune_lottery_ticket` can be watched too: its pruned weights stay pruned.

  Args:
    target_sparsity: The fraction of the weights the ticket prunes, in (0, 1).
    criterion: A registered criterion of weight values (name or `Criterion`);
      model criteria (SNIP, GraSP, SynFlow) are refused.
    scope: 'layer' (each weight tensor pruned to the target) or 'global' (one
      ranking across all of them).
    threshold: The distance below which the mask counts as settled, in (0, 1].
    patience: How many consecutive distances must be below `threshold`, >= 1.
    stop_training: Stop `fit` when the ticket is found. With False, training
      goes on and `latest_masks` ends as the fully trained network's mask.
    seed: Int seed of the 'random' criterion.

  Attributes:
    found_epoch: Epochs trained when the ticket was found (1 = after the
      first epoch), or None.
    masks: The early-bird ticket's masks (bool tensors, one per entry of
      `weight_names`), or None until found.
    latest_masks: The masks of the latest epoch end.
    distances: The distance of each epoch's mask to the previous epoch's:
      `distances[i]` is between the masks after epochs i + 1 and i + 2.
    weight_names: Names of the pruned weights, in model order.

  Example:

  ```python
  early_bird = ltp_tfmot.EarlyBirdTicket(target_sparsity=0.8)
  model.fit(x, y, epochs=30, callbacks=[early_bird])
  ticket = ltp_tfmot.prune_lottery_ticket(fresh_model_with_the_same_init)
  early_bird.apply_to(ticket)   # then train it, e.g. with UpdateLotteryStep
  ```
  """

  def __init__(self, target_sparsity, criterion='large_final', scope='layer', threshold=0.1, patience=5,
               stop_training=True, seed=0):
    super().__init__()
    self.target_sparsity = validation.check_fraction(target_sparsity, 'target_sparsity')
    self.criterion = criteria_lib.get_criterion(criterion)
    if self.criterion.needs_model:
      raise ValueError(f'criterion {self.criterion.name!r} scores from the model\'s gradients or outputs; '
                       'EarlyBirdTicket ranks weight values: use a criterion such as large_final')
    self.scope = validation.check_choice(scope, 'scope', validation.SCOPES)
    if not validation.is_number(threshold):
      raise TypeError(f'threshold must be a number in (0, 1], got {threshold!r}')
    if not 0 < threshold <= 1:
      raise ValueError(f'threshold must be in (0, 1], got {threshold!r}')
    self.threshold = float(threshold)
    self.patience = validation.check_int(patience, 'patience', minimum=1)
    self.stop_training = validation.check_bool(stop_training, 'stop_training')
    self.seed = wrapper_lib.check_seed(seed)
    self.found_epoch = None
    self.masks = None
    self.latest_masks = None
    self.distances = []
    self.weight_names = []
    self._watched = None
    self._initial = None
    self._recent = collections.deque(maxlen=self.patience)
    self._epochs = 0

  def on_train_begin(self, logs=None):
    # A second fit of the same model goes on from where the first stopped: same initial weights, same history.
    if self._watched is not None and self._watched[0] is self.model:
      return
    watched = _watched_weights(self.model)
    self._watched = (self.model, watched)
    self.weight_names = [name for name, _, _ in watched]
    self._initial = [tf.identity(weight) for _, weight, _ in watched] if self.criterion.needs_initial else None
    self.found_epoch, self.masks, self.latest_masks, self._epochs = None, None, None, 0
    self.distances = []
    self._recent.clear()

  def _current_masks(self):
    _, watched = self._watched
    finals = [tf.convert_to_tensor(weight) for _, weight, _ in watched]
    for (name, _, _), final in zip(watched, finals, strict=True):
      if not bool(tf.reduce_all(tf.math.is_finite(final))):
        raise ValueError(f'{name} has NaN or inf values after epoch {self._epochs}; an early-bird mask needs finite '
                         'weights (lower the learning rate or check the data)')
    alives = [tf.ones(final.shape, tf.bool) if alive is None else alive > 0
              for final, (_, _, alive) in zip(finals, watched, strict=True)]
    initials = self._initial or [None] * len(finals)
    if self.scope == 'global' or self.criterion.elementwise:
      scores = criteria_lib.score_pool(self.criterion, initials, finals, alives, self.seed)
    else:
      # A criterion ranking over its pool (the percentile ones) scores each layer's tensor on its own.
      scores = [criteria_lib.score_pool(self.criterion, [initial], [final], [alive], self.seed)[0]
                for initial, final, alive in zip(initials, finals, alives, strict=True)]
    pools = [[i] for i in range(len(finals))] if self.scope == 'layer' else [list(range(len(finals)))]
    masks = [None] * len(finals)
    for pool in pools:
      keep = masks_lib.keep_count(sum(finals[i].shape.num_elements() for i in pool), 1.0 - self.target_sparsity)
      kept = masks_lib.keep_top_k([scores[i] for i in pool], [alives[i] for i in pool], keep)
      for i, mask in zip(pool, kept, strict=True):
        masks[i] = mask
    return masks

  def on_epoch_end(self, epoch, logs=None):
    self._epochs += 1
    masks = self._current_masks()
    if self.latest_masks is not None:
      distance = mask_distance(self.latest_masks, masks)
      self.distances.append(distance)
      self._recent.append(distance)
      logging.info('Early-bird mask distance after epoch %d: %.4f', self._epochs, distance)
    self.latest_masks = masks
    if (self.found_epoch is None and len(self._recent) == self.patience
        and max(self._recent) < self.threshold):
      self.found_epoch, self.masks = self._epochs, masks
      logging.info('Early-bird ticket found after epoch %d: the last %d mask distances are below %g (%s).',
                   self._epochs, self.patience, self.threshold, ', '.join(f'{d:.4f}' for d in self._recent))
      if self.stop_training:
        self.model.stop_training = True

  def apply_to(self, model, masks=None):
    """Gives a wrapped model of the same architecture the ticket's masks, and zeroes its pruned weights.

    The surviving weights are left as they are (e.g. the initialization of a
    model built like the watched one, with the same seed); training the
    wrapped model with `UpdateLotteryStep` then retrains the ticket from them.

    Args:
      model: A built model wrapped with `prune_lottery_ticket`, whose prunable
        weights match `weight_names` in order and shape.
      masks: The masks to apply (e.g. `latest_masks`, the fully trained
        network's after `stop_training=False`); None: the early-bird ticket's.

    Raises:
      ValueError: if no ticket was found yet (and no masks are given), or the
        model's prunable weights do not match. The model is unchanged then.
    """
    if masks is None:
      if self.masks is None:
        raise ValueError('no early-bird ticket was found yet: train with this callback until found_epoch is set, '
                         'or pass masks=')
      masks = self.masks
    wrappers = wrapped_model.built_lottery_wrappers(model)
    targets = [mask for w in wrappers for mask in w.masks]
    shapes = [tuple(mask.shape) for mask in targets]
    wanted = [tuple(tf.convert_to_tensor(mask).shape) for mask in masks]
    if shapes != wanted:
      raise ValueError(f'the model\'s prunable weights have shapes {shapes}, the ticket\'s masks {wanted}: wrap a '
                       'model of the watched architecture')
    for target, mask in zip(targets, masks, strict=True):
      target.assign(tf.cast(mask, target.dtype))
    rounds_lib.apply_masks(wrappers)
