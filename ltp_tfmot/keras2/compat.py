"""The older `lottery_ticket_pruner` API (PyPI 0.8.1) on top of the ltp_tfmot core.

`LotteryTicketPruner` and `PrunerCallback` keep the call signatures of the
`lottery_ticket_pruner` package, so code written for it runs by changing one
import. Underneath, masks are ranked by the core's criteria
(`ltp_tfmot.get_criterion`, `ltp_tfmot.core.criteria.score_pool`) and cut to an exact
count by `ltp_tfmot.core.masks.keep_top_k`, on whole tensors.

This API works on plain (unwrapped) tf_keras models and keeps the masks in the
pruner, not in the model. For new code prefer the tfmot-native API,
`ltp_tfmot.prune_lottery_ticket` with the `UpdateLotteryStep` callback, whose
masks are saved with the model.

Differences from `lottery_ticket_pruner` 0.8.1:

- Exact counts: a call with `prune_percentage` p makes each pool (a weight
  tensor, or all of them for a '_global' strategy) keep exactly
  `round(n_remaining * (1 - p))` of its `n_remaining` unpruned weights, rounded
  half up. Ties at the cut-off keep the earlier weights in flat order. The old
  package pruned `int(n * (1 - c) * p)` more weights of each pool of `n` (c:
  the cumulative rate before the call), the same while all pools are equally
  sparse but not after mixing per-layer and global strategies; it broke ties
  at random ('smallest_weights') or pruned every tied weight
  ('smallest_weights_global', 'large_final').
- `PrunerCallback` re-applies the masks after every training batch (the old one
  did at the start of each epoch), so pruned weights stay zero throughout `fit`.
  With `use_dwr=True` it rescales once, when training begins; the old one
  rescaled again at every epoch, compounding the factor.
- 'large_final_same_sign' works, and every criterion of the core can be named,
  with a '_global' suffix for one ranking across all layers.
- `reset_masks()` also resets `cumulative_pruning_rate` to 0.
- Errors name the argument, its value and what is allowed, and are raised
  before any mask or weight changes.
"""

import collections

from absl import logging
import numpy as np
import tensorflow as tf
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper
import tf_keras as keras

from ltp_tfmot import validation
from ltp_tfmot.core import criteria as criteria_lib
from ltp_tfmot.core import masks as masks_lib
from ltp_tfmot.core import seeds
from ltp_tfmot.keras2 import model_layers

# Layer types whose kernels are pruned; biases never are. Subclasses count too.
PRUNABLE_LAYERS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.Dense,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
)
_KERNEL_NAMES = ('kernel', 'depthwise_kernel', 'pointwise_kernel')

# The old package's strategy names: (core criterion, which weights it ranks, one global ranking).
# 'current': the weights of the model passed to `calc_prune_mask`; 'pretrained': those of
# `set_pretrained_weights`. Any registered criterion also works by name (ranking the pretrained
# weights) and with a '_global' suffix.
_LEGACY_STRATEGIES = {
    'random': ('random', 'current', False),
    'smallest_weights': ('large_final', 'current', False),
    'smallest_weights_global': ('large_final', 'current', True),
    'large_final': ('large_final', 'pretrained', False),
}
_GLOBAL_SUFFIX = '_global'

Prunable = collections.namedtuple(
    'Prunable', ['tpl', 'layer', 'index', 'initial_weights', 'pretrained_weights', 'current_weights', 'mask'])
Prunable.__doc__ = """One prunable weight tensor of a model, as `iterate_prunables` yields it.

It unpacks like the old package's 7-tuple:
`tpl, layer, index, initial_weights, pretrained_weights, current_weights, mask`.
`tpl` is `(layer index, weight indices of that layer that are pruned)`; arrays
are NumPy copies; `pretrained_weights` is None until `set_pretrained_weights`;
`mask` holds 1 where the weight is kept and 0 where it is pruned.
"""

_Entry = collections.namedtuple('_Entry', ['layer_index', 'layer_name', 'index', 'weight_name', 'initial', 'mask'])


def _shape_of(layer, attribute):
  """A layer's input or output shape, or None where Keras has none to give."""
  try:
    return getattr(layer, attribute)
  except (AttributeError, RuntimeError):
    return None


def _prunable_indices(layer):
  """Indices in `layer.weights` of the kernels the old package pruned."""
  if not isinstance(layer, PRUNABLE_LAYERS):
    return []
  refs = [weight.ref() for weight in layer.weights]
  kernels = [getattr(layer, name, None) for name in _KERNEL_NAMES]
  return sorted(refs.index(k.ref()) for k in kernels if isinstance(k, tf.Variable) and k.ref() in refs)


def _check_model(model, name):
  if not isinstance(model, keras.Model):
    module = type(model).__module__
    hint = (' (a Keras 3 model: build it with `import tf_keras as keras` instead)'
            if module.startswith('keras') else '')
    raise TypeError(f'{name} must be a tf_keras Model, got {module}.{type(model).__name__}{hint}')
  if not model.built:
    raise ValueError(f'{name} ({model.name!r}) is not built yet: give it an input shape or call it on data first')


def _check_percentage(prune_percentage):
  if not validation.is_number(prune_percentage) or not 0.0 < prune_percentage < 1.0:
    raise ValueError('prune_percentage must be a fraction of the remaining weights strictly between 0.0 and 1.0 '
                     f'(0.2 prunes 20% of them), got {prune_percentage!r}')
  return float(prune_percentage)


def _value_criteria():
  """The registered criteria a pruner can rank with: those that score weight values alone."""
  return [name for name in criteria_lib.criterion_names() if not criteria_lib.get_criterion(name).needs_model]


def strategy_names():
  """Names `LotteryTicketPruner.calc_prune_mask` accepts as `prune_strategy`, sorted.

  Returns:
    The old package's strategies ('random', 'smallest_weights',
    'smallest_weights_global', 'large_final'), every registered criterion
    (see `ltp_tfmot.criterion_names()`) that ranks weights by their values
    (not the `ModelCriterion`s, which need the model and data), and each
    criterion with '_global'.
  """
  core = _value_criteria()
  return sorted(set(_LEGACY_STRATEGIES) | set(core) | {name + _GLOBAL_SUFFIX for name in core})


def _resolve_strategy(prune_strategy):
  """(criterion, source of the ranked weights, global) for a strategy name."""
  if isinstance(prune_strategy, str):
    if prune_strategy in _LEGACY_STRATEGIES:
      name, source, is_global = _LEGACY_STRATEGIES[prune_strategy]
      return criteria_lib.get_criterion(name), source, is_global
    core = _value_criteria()
    is_global = prune_strategy not in core and prune_strategy.endswith(_GLOBAL_SUFFIX)
    name = prune_strategy[:-len(_GLOBAL_SUFFIX)] if is_global else prune_strategy
    if name in core:
      return criteria_lib.get_criterion(name), 'current' if name == 'random' else 'pretrained', is_global
  raise ValueError(f'prune_strategy must be one of {strategy_names()}, got {prune_strategy!r}')


class LotteryTicketPruner:
  """Lottery-ticket pruning of a plain Keras model, as `lottery_ticket_pruner` 0.8.1 did it.

  The pruner records the prunable weights of `initial_model` and their initial
  values, and holds one mask per prunable weight, all ones to begin with. The
  kernels of Dense, Conv1D/2D/3D (and their Transpose forms), DepthwiseConv1D/2D
  and SeparableConv1D/2D layers are prunable (both kernels of a separable
  convolution); biases and all other layers (BatchNormalization, ...) are
  left alone. Layers of nested models count, in order.

  `calc_prune_mask` narrows the masks; `apply_pruning` zeroes the pruned weights
  of a model with the same architecture; `PrunerCallback` keeps them zero while
  training.

  Args:
    initial_model: A built tf_keras model holding the initial weights.
    seed: Seed for the 'random' strategy. None draws a seed from NumPy's global
      generator at each call (so `np.random.seed` makes runs repeatable, as
      with the old package).

  Attributes:
    cumulative_pruning_rate: Fraction of the prunable weights pruned so far by
      `calc_prune_mask` calls: 0.5 then 0.2 gives 0.6 (the masks match it up
      to rounding of the counts).

  Raises:
    TypeError: if `initial_model` is not a tf_keras model.
    ValueError: if it is not built, has no prunable layer, or is already
      wrapped with `ltp_tfmot.prune_lottery_ticket` (use the tfmot-native API).

  Example:

  ```python
  model = make_model()
  initial_weights = model.get_weights()
  pruner = ltp_tfmot.LotteryTicketPruner(model)
  model.fit(x, y, epochs=5)
  pruner.set_pretrained_weights(model)
  model.set_weights(initial_weights)
  pruner.calc_prune_mask(model, 0.5, 'large_final')
  model.fit(x, y, epochs=5, callbacks=[ltp_tfmot.PrunerCallback(pruner)])
  ```
  """

  def __init__(self, initial_model, seed=None):
    _check_model(initial_model, 'initial_model')
    if seed is not None and not validation.is_int(seed):
      raise ValueError(f'seed must be an integer or None, got {seed!r}')
    layers = model_layers.flat_layers(initial_model)
    wrapped = [layer.name for layer in layers if isinstance(layer, pruning_wrapper.PruneLowMagnitude)]
    if wrapped:
      raise ValueError(f'initial_model has layers wrapped for pruning ({wrapped}); LotteryTicketPruner works on '
                       'plain models: use ltp_tfmot.run_lottery_round or UpdateLotteryStep with wrapped models')
    entries = []
    for layer_index, layer in enumerate(layers):
      for index in _prunable_indices(layer):
        weight = layer.weights[index]
        entries.append(_Entry(layer_index, layer.name, index, weight.name, tf.constant(weight.numpy()),
                              tf.Variable(tf.ones(weight.shape, weight.dtype.base_dtype), trainable=False,
                                          name=f'mask_{layer.name}_{index}')))
    if not entries:
      raise ValueError(f'initial_model ({initial_model.name!r}) has no prunable layer; prunable are '
                       f'{sorted(cls.__name__ for cls in PRUNABLE_LAYERS)}')
    self._entries = entries
    self._layer_shapes = [(_shape_of(layer, 'input_shape'), _shape_of(layer, 'output_shape')) for layer in layers]
    self._pretrained = None
    self._seed = None if seed is None else int(seed)
    self._calls = 0
    self.cumulative_pruning_rate = 0.0

  def _variables(self, model, name='model'):
    """The model's variables matching the recorded prunable weights, after checking its architecture."""
    _check_model(model, name)
    layers = model_layers.flat_layers(model)
    # The common layers first; a model with fewer layers is reported below, naming the missing prunable one.
    for i, (layer, (input_shape, output_shape)) in enumerate(zip(layers, self._layer_shapes, strict=False)):
      for kind, recorded, actual in (('input', input_shape, _shape_of(layer, 'input_shape')),
                                     ('output', output_shape, _shape_of(layer, 'output_shape'))):
        if actual != recorded:
          raise ValueError(f'{name} layer {i} ({layer.name!r}) has {kind} shape {actual}, but layer {i} of the '
                           f'initial model has {recorded}: the pruner only works on models with the '
                           'initial model\'s architecture')
    variables = []
    for entry in self._entries:
      if entry.layer_index >= len(layers):
        raise ValueError(f'{name} has {len(layers)} layers, but the initial model has a prunable layer at index '
                         f'{entry.layer_index} ({entry.layer_name!r})')
      layer = layers[entry.layer_index]
      weights = layer.weights
      if entry.index >= len(weights) or weights[entry.index].shape != entry.initial.shape:
        actual = weights[entry.index].shape if entry.index < len(weights) else 'no such weight'
        raise ValueError(f'{name} layer {entry.layer_index} ({layer.name!r}) has weight {entry.index} of shape '
                         f'{actual}, but the initial model\'s ({entry.weight_name}) has shape {entry.initial.shape}')
      variables.append(weights[entry.index])
    return variables

  def set_pretrained_weights(self, pretrained_model):
    """Records the prunable weights of a trained model, for 'large_final' and the core criteria.

    `pretrained_model` should have been trained from the initial weights this
    pruner was created with, or lottery-ticket pruning will not work well.

    Args:
      pretrained_model: A trained model with the initial model's architecture.

    Raises:
      ValueError: if its architecture differs from the initial model's.
    """
    variables = self._variables(pretrained_model, 'pretrained_model')
    self._pretrained = [tf.constant(v.numpy()) for v in variables]

  def reset_masks(self):
    """Resets every mask to all ones (nothing pruned) and `cumulative_pruning_rate` to 0."""
    for entry in self._entries:
      entry.mask.assign(tf.ones_like(entry.mask))
    self.cumulative_pruning_rate = 0.0

  def iterate_prunables(self, model):
    """Lists the prunable weights of `model` with their initial and pretrained values and masks.

    Args:
      model: A model with the initial model's architecture.

    Returns:
      An iterator of `Prunable` named tuples, one per prunable weight tensor, in
      layer order; they unpack like the old package's 7-tuples. The arrays are
      copies: changing them changes neither the model nor the pruner.

    Raises:
      ValueError: if the model's architecture differs from the initial model's.
    """
    variables = self._variables(model)
    indices = collections.defaultdict(list)
    for entry in self._entries:
      indices[entry.layer_index].append(entry.index)
    layers = model_layers.flat_layers(model)

    def generate():
      for i, (entry, variable) in enumerate(zip(self._entries, variables, strict=True)):
        pretrained = None if self._pretrained is None else self._pretrained[i].numpy()
        yield Prunable((entry.layer_index, tuple(indices[entry.layer_index])), layers[entry.layer_index],
                       entry.index, entry.initial.numpy(), pretrained, variable.numpy(), entry.mask.numpy())

    return generate()

  def calc_prune_mask(self, model, prune_percentage, prune_strategy):
    """Prunes a further fraction of the remaining weights: updates the masks, not the model.

    Rates accumulate: 0.5 then 0.2 prunes 0.5 + 0.5 * 0.2 = 60% of the weights.
    Each pool (a weight tensor, or every prunable tensor together for a global
    strategy) keeps exactly `round(n * (1 - prune_percentage))` of its `n`
    unpruned weights (rounded half up), ranked among those; a pruned weight is
    never revived. Call `apply_pruning` (or train with `PrunerCallback`) to
    zero the pruned weights of a model.

    Args:
      model: The model whose current weights the 'smallest_weights' strategies
        rank; its architecture is checked for all strategies.
      prune_percentage: Fraction of the *remaining* weights to prune, strictly
        between 0 and 1.
      prune_strategy: How weights are ranked; see `strategy_names()`.
        'random': at random, per layer.
        'smallest_weights': the smallest magnitudes of `model`'s current
          weights, per layer.
        'smallest_weights_global': the same, ranked across all layers.
        'large_final': keeps the largest pretrained weights, per layer.
        'large_final_same_sign' and any other registered criterion, e.g.
          'magnitude_increase': the criterion's score of (initial, pretrained)
          weights, per layer; add '_global' to rank across all layers.

    Raises:
      ValueError: for a `prune_percentage` outside (0, 1), an unknown
        `prune_strategy`, a strategy ranking pretrained weights before
        `set_pretrained_weights`, a model whose architecture differs from the
        initial model's, or NaN/inf weights. Nothing is changed then.
    """
    prune_percentage = _check_percentage(prune_percentage)
    criterion, source, is_global = _resolve_strategy(prune_strategy)
    variables = self._variables(model)
    if source == 'pretrained' and self._pretrained is None:
      raise ValueError(f'prune_strategy={prune_strategy!r} ranks the pretrained weights, and none were set: call '
                       'pruner.set_pretrained_weights(trained_model) first')
    finals = [tf.convert_to_tensor(v) for v in variables] if source == 'current' else list(self._pretrained)
    for entry, final in zip(self._entries, finals, strict=True):
      if not bool(tf.reduce_all(tf.math.is_finite(final))):
        which = 'model' if source == 'current' else 'pretrained'
        raise ValueError(f'the {which} weight {entry.weight_name} of layer {entry.layer_name!r} has NaN or inf '
                         'values; pruning needs finite weights')
    initials = [entry.initial for entry in self._entries] if criterion.needs_initial else None
    alive = [entry.mask > 0 for entry in self._entries]
    cumulative = self.cumulative_pruning_rate + (1.0 - self.cumulative_pruning_rate) * prune_percentage
    base_seed = self._seed if self._seed is not None else int(np.random.randint(0, 2**31 - 1))
    pools = [list(range(len(self._entries)))] if is_global else [[i] for i in range(len(self._entries))]
    new_masks = []
    for pool_index, pool in enumerate(pools):
      pool_alive = [alive[i] for i in pool]
      n_alive = sum(int(tf.math.count_nonzero(a)) for a in pool_alive)
      keep = masks_lib.keep_count(n_alive, 1.0 - prune_percentage)
      if keep >= n_alive:
        continue
      scores = criteria_lib.score_pool(criterion, None if initials is None else [initials[i] for i in pool],
                                       [finals[i] for i in pool], pool_alive,
                                       seeds.derived_seed(base_seed, self._calls, pool_index))
      kept = masks_lib.keep_top_k(scores, pool_alive, keep)
      new_masks.extend((self._entries[i].mask, k) for i, k in zip(pool, kept, strict=True))
    for mask, kept in new_masks:
      mask.assign(tf.cast(kept, mask.dtype))
    self.cumulative_pruning_rate = cumulative
    self._calls += 1
    logging.info('calc_prune_mask(%s, %s): %.2f%% of the prunable weights pruned.', prune_percentage,
                 prune_strategy, 100 * cumulative)

  def _masking_fn(self, model):
    """A `tf.function` that zeroes the pruned weights of `model` (checked once, here)."""
    pairs = list(zip(self._variables(model), [entry.mask for entry in self._entries], strict=True))

    @tf.function
    def apply_masks():
      for variable, mask in pairs:
        variable.assign(variable * tf.cast(mask, variable.dtype))

    return apply_masks

  def apply_pruning(self, model):
    """Applies the masks to the model's weights: pruned weights become 0.

    Args:
      model: A model with the initial model's architecture.

    Raises:
      ValueError: if its architecture differs from the initial model's.
    """
    for variable, entry in zip(self._variables(model), self._entries, strict=True):
      variable.assign(variable * tf.cast(entry.mask, variable.dtype))

  def apply_dwr(self, model):
    """Applies Dynamic Weight Rescaling (Zhou et al. 2019) to the unpruned weights.

    The unpruned weights of each prunable tensor are multiplied by
    (weights in the tensor / weights kept in it); pruned positions are left as
    they are (0 after `apply_pruning`). Each call rescales again, so call it
    once, right after `apply_pruning`. A tensor with no weight kept is left
    unchanged.

    Args:
      model: A model with the initial model's architecture.

    Raises:
      ValueError: if its architecture differs from the initial model's.
    """
    updates = []
    for variable, entry in zip(self._variables(model), self._entries, strict=True):
      kept = entry.mask > 0
      n_kept = tf.math.count_nonzero(kept, dtype=tf.int64)
      scale = tf.cast(tf.size(kept, out_type=tf.int64), variable.dtype) / tf.cast(
          tf.maximum(n_kept, 1), variable.dtype)
      updates.append((variable, tf.where(kept, variable * scale, variable)))
    for variable, value in updates:
      variable.assign(value)


class PrunerCallback(keras.callbacks.Callback):
  """Keeps the pruned weights of a `LotteryTicketPruner` at zero during `fit`.

  The masks are applied when training begins, at the start of every epoch,
  after every training batch and when training ends, so every forward pass and
  the trained model see the pruned weights as 0. Masks changed during training
  (e.g. by `calc_prune_mask` in another callback) apply from the next batch.

  Args:
    pruner: A `LotteryTicketPruner` whose masks were computed with
      `calc_prune_mask`.
    use_dwr: Whether to apply Dynamic Weight Rescaling (`apply_dwr`) once, when
      training begins, after the masks.

  Raises:
    TypeError: if `pruner` is not a `LotteryTicketPruner`.
    ValueError: when training begins, if the model's architecture differs from
      the pruner's initial model.

  Example:

  ```python
  pruner.calc_prune_mask(model, 0.5, 'smallest_weights_global')
  model.fit(x, y, epochs=5, callbacks=[ltp_tfmot.PrunerCallback(pruner)])
  ```
  """

  def __init__(self, pruner, use_dwr=False):
    super().__init__()
    if not isinstance(pruner, LotteryTicketPruner):
      raise TypeError(f'pruner must be a LotteryTicketPruner, got {type(pruner).__name__}')
    self.pruner = pruner
    self.use_dwr = bool(use_dwr)
    self._apply_masks = None

  def on_train_begin(self, logs=None):
    self._apply_masks = self.pruner._masking_fn(self.model)  # pylint: disable=protected-access
    self._apply_masks()
    if self.use_dwr:
      self.pruner.apply_dwr(self.model)

  def on_epoch_begin(self, epoch, logs=None):
    self._apply_masks()

  def on_train_batch_end(self, batch, logs=None):
    self._apply_masks()

  def on_train_end(self, logs=None):
    self._apply_masks()
