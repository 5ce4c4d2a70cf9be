"""Wrapping whole models for lottery-ticket pruning, and unwrapping them."""

from absl import logging
from tensorflow_model_optimization.python.core.sparsity.keras import prune as tfmot_prune
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper as tfmot_wrapper
import tf_keras as keras

from ltp_tfmot import validation
from ltp_tfmot.core import criteria as criteria_lib
from ltp_tfmot.core import model_walk
from ltp_tfmot.core import schedule as schedule_lib
from ltp_tfmot.core import unit_plan as unit_plan_lib
from ltp_tfmot.keras2 import rounds as rounds_lib
from ltp_tfmot.keras2 import unit_groups
from ltp_tfmot.keras2 import wrapped_model
from ltp_tfmot.keras2 import wrapper as wrapper_lib


def _is_sequential_or_functional(model):
  return isinstance(model, keras.Sequential) or getattr(model, '_is_graph_network', False)


def _layers(to_prune):
  """The layers of a model, layer or list of them, nested models expanded, in `lottery_wrappers` order."""
  if isinstance(to_prune, (list, tuple)):
    return [layer for item in to_prune for layer in _layers(item)]
  if isinstance(to_prune, keras.Model):
    return [layer for item in to_prune.layers for layer in _layers(item)]
  return [to_prune]


def prunable_layer_names(model):
  """Names of the layers `prune_lottery_ticket` would wrap, nested models included, in order.

  In a model wrapped already, the names of the wrapped layers (not their
  wrappers'): the same list as for the model before wrapping. Layers with
  kernels that stay dense are listed by `unprunable_layers`.
  """
  return [layer.layer.name if isinstance(layer, tfmot_wrapper.PruneLowMagnitude) else layer.name
          for layer in _layers(model)
          if isinstance(layer, tfmot_wrapper.PruneLowMagnitude) or wrapper_lib.is_prunable(layer)]


def unprunable_layers(model):
  """The layers whose kernels `prune_lottery_ticket` leaves dense, and why.

  A kernel is a weight with at least two axes longer than 1 that is not a
  bias. Listed are layers tfmot cannot prune (a
  `Bidirectional` or `TimeDistributed` wrapper, a custom layer that is no tfmot
  `PrunableLayer`, an RNN with an unknown cell) and wrapped layers with a
  kernel tfmot does not prune (the depthwise kernel of `SeparableConv2D`).
  Layers with no kernel (BatchNormalization, LayerNormalization, pooling) are
  not: they are expected to stay dense. `prune_lottery_ticket` logs the same
  list as a warning.

  Args:
    model: A built model, a layer, or a list of layers.

  Returns:
    A dict from layer name to a sentence naming its dense kernels and why
    they are not pruned; empty if every kernel is pruned.

  Example:

  ```python
  ltp_tfmot.unprunable_layers(model)
  # {'bidirectional': "a Bidirectional wrapper, which tfmot's prune registry does not know, so its inner
  #  LSTM is not wrapped; dense: forward_lstm/lstm_cell/kernel, ..."}
  ```
  """
  reasons = {}
  for layer in _layers(model):
    reason = wrapper_lib.unpruned_reason(layer)
    if reason is not None:
      reasons[layer.name] = reason
  return reasons


def prune_lottery_ticket(to_prune,
                         pruning_schedule=None,
                         criterion='large_final',
                         scope='layer',
                         rewind_step=0,
                         layer_rates=None,
                         mask_0_action='zero',
                         mask_1_action='rewind',
                         dynamic_weight_rescaling=False,
                         block_size=(1, 1),
                         block_pooling_type='AVG',
                         seed=0,
                         granularity='weight',
                         unit_pooling='L1'):
  """Wraps a layer, a list of layers or a model for lottery-ticket pruning.

  Like `tfmot.sparsity.keras.prune_low_magnitude`: every prunable layer is
  wrapped in a `PruneLotteryTicket` (a tfmot `PruneLowMagnitude`), other
  layers are left as they are, and a model comes back uncompiled. Train it with
  the `UpdateLotteryStep` callback, or run rounds yourself with
  `run_lottery_round`.

  Args:
    to_prune: A tf_keras layer, a list of layers, or a Sequential or
      functional model.
    pruning_schedule: A `LotteryTicketSchedule` (default: rate 0.2, rounds run
      by hand).
    criterion: Name of a registered criterion; see `criterion_names()`. The
      rounds of 'snip' and 'grasp' need data: `run_lottery_round(model,
      data=...)`. (Pruning at initialization: `prune_at_initialization`.)
    scope: 'layer' or 'global' (one ranking across all wrapped layers).
    rewind_step: Training step whose weights survivors are rewound to (0 = the
      initial weights).
    layer_rates: Optional dict from layer name to a rate in [0, 1) used for that
      layer instead of the schedule's; 0 never prunes it. The output layer at
      half rate: `layer_rates={'output': 0.1}`.
    mask_0_action: 'zero' or 'freeze'; see `PruneLotteryTicket`.
    mask_1_action: 'rewind', 'reinit', 'reshuffle' or 'signed_constant'.
    dynamic_weight_rescaling: Rescale survivors by n / n_kept after a rewind.
    block_size: (height, width) of the blocks 2-D kernels are pruned in, as in
      tfmot; e.g. (4, 1) on a Dense kernel is the 1x4 block TFLite's sparse
      FULLY_CONNECTED kernel runs directly. Kernels of other ranks are pruned
      weight by weight; counts are then in blocks.
    block_pooling_type: How a block's weight scores are pooled: 'AVG' or 'MAX'.
    seed: Seed for random criteria and actions.
    granularity: 'weight' (default: weights are pruned one by one) or 'unit'
      (structured tickets: whole output units are removed, Dense neurons,
      Conv1D/2D/3D filters and DepthwiseConv2D channels; `ltp_tfmot.shrink`
      then cuts them out). Units are found from the model's graph: the
      channels a residual `Add` (or Concatenate, Multiply, ...) ties, a
      BatchNormalization's and a DepthwiseConv2D's channels and the Dense
      inputs a Flatten makes of a filter follow their unit. A unit's bias
      and its BatchNormalization's gamma and beta are masked with it, so a
      removed unit is exactly 0 wherever it is used. A group of n tied units
      keeps `round((1 - rate) ** r * n)` of them after round r (rounded half
      up, as weights are counted); in global scope all groups share one
      ranking of units. Units that are model outputs (the output layer) or
      are tied to the model's input are kept whole. Needs a Sequential or
      functional model, `block_size=(1, 1)` and `mask_0_action='zero'`.
    unit_pooling: How a unit's weight scores (by `criterion`) are pooled
      into its score: 'L1' (default: their sum, under 'large_final' the L1
      norm of the unit's weights), 'L2' or 'mean' (see
      `ltp_tfmot.core.masks.pool_units`); tied units add their pooled scores.

  Returns:
    The wrapped layer, list of layers or model.

  Raises:
    ValueError: for a bad argument (the message names it), a subclassed
      model, a model with no prunable layer, or a `layer_rates` name that is
      not a prunable layer of the model; in unit granularity, for a layer
      whose units cannot be removed exactly (a layer between them and their
      consumers that does not map 0 to 0 or that unit pruning cannot follow,
      such as a Reshape or an LSTM), unless its `layer_rates` entry is 0.
      Nothing is changed then.
    TypeError: for a `to_prune` (a Keras 3 object included) or an argument of
      the wrong type.

  Example:

  ```python
  import tf_keras as keras
  import ltp_tfmot

  model = keras.Sequential([keras.layers.Dense(300, activation='relu', input_shape=(784,)),
                            keras.layers.Dense(10, name='output')])
  schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.2, round_steps=1000, rounds=3)
  model = ltp_tfmot.prune_lottery_ticket(model, schedule, layer_rates={'output': 0.1})
  ```
  """
  wrapper_lib.check_tf_keras(to_prune)
  if pruning_schedule is None:
    pruning_schedule = schedule_lib.LotteryTicketSchedule()
  params = dict(
      pruning_schedule=pruning_schedule,
      criterion=criterion,
      scope=scope,
      mask_0_action=mask_0_action,
      mask_1_action=mask_1_action,
      dynamic_weight_rescaling=dynamic_weight_rescaling,
      block_size=block_size,
      block_pooling_type=block_pooling_type,
      rewind_step=rewind_step,
      seed=seed,
      granularity=granularity,
      unit_pooling=unit_pooling,
  )
  _validate_params(params)
  layer_rates = _validated_layer_rates(layer_rates)
  unit_settings = None
  if granularity == 'unit':
    if not isinstance(to_prune, keras.Model) or not _is_sequential_or_functional(to_prune):
      raise ValueError("granularity='unit' needs a Sequential or functional tf_keras model, whose graph ties units "
                       f'together, got {type(to_prune).__name__}: pass the whole model, or use '
                       "granularity='weight'")
    if wrapped_model.lottery_wrappers(to_prune):
      raise ValueError(f'model {to_prune.name!r} is already wrapped with prune_lottery_ticket; wrap the unwrapped '
                       'model (or use ltp_tfmot.strip_pruning first)')
    _check_layer_rate_names(layer_rates, prunable_layer_names(to_prune))
    unit_settings = unit_plan_lib.unit_settings(unit_groups.unit_plan(to_prune), prunable_layer_names(to_prune),
                                                layer_rates)

  def wrap(layer):
    if isinstance(layer, keras.Model):
      return keras.models.clone_model(layer, input_tensors=None, clone_function=wrap)
    arguments = unit_plan_lib.wrapper_arguments(layer.name, wrapper_lib.is_prunable(layer), unit_settings,
                                                layer_rates)
    return layer if arguments is None else wrapper_lib.PruneLotteryTicket(layer, **params, **arguments)

  if isinstance(to_prune, (list, tuple)):
    for i, layer in enumerate(to_prune):
      wrapper_lib.check_tf_keras(layer, f'to_prune[{i}]')
    _check_layer_rate_names(layer_rates, [layer.name for layer in to_prune if wrapper_lib.is_prunable(layer)])
    _warn_unprunable(to_prune)
    return _numbered([wrap(layer) for layer in to_prune])
  if isinstance(to_prune, keras.Model):
    if not _is_sequential_or_functional(to_prune):
      raise model_walk.subclassed_model_error(to_prune)
    if wrapped_model.lottery_wrappers(to_prune):
      raise ValueError(f'model {to_prune.name!r} is already wrapped with prune_lottery_ticket; wrap the unwrapped '
                       'model (or use ltp_tfmot.strip_pruning first)')
    names = prunable_layer_names(to_prune)
    if not names:
      raise ValueError(f'model {to_prune.name!r} has no prunable layer (Dense, Conv, DepthwiseConv2D, '
                       'Embedding, or a tfmot PrunableLayer)')
    _check_layer_rate_names(layer_rates, names)
    _warn_unprunable(to_prune)
    return _numbered(wrap(to_prune))
  if isinstance(to_prune, keras.layers.Layer):
    _check_layer_rate_names(layer_rates, [to_prune.name] if wrapper_lib.is_prunable(to_prune) else [])
    if not wrapper_lib.is_prunable(to_prune):
      raise ValueError(f'layer {to_prune.name!r} ({type(to_prune).__name__}) has no prunable weight')
    _warn_unprunable(to_prune)
    return wrap(to_prune)
  raise TypeError('to_prune must be a tf_keras layer, a list of layers, or a Sequential or functional model, '
                  f'got {type(to_prune).__name__}')


def _numbered(wrapped):
  """Stores each wrapper's position in `lottery_wrappers` order, the root of its random draws."""
  for position, w in enumerate(wrapped_model.lottery_wrappers(wrapped)):
    w.position = position
  return wrapped


def _warn_unprunable(to_prune):
  reasons = unprunable_layers(to_prune)
  if reasons:
    logging.warning('prune_lottery_ticket leaves the kernels of %d layers dense: %s. To prune one, give it a '
                    "tfmot get_prunable_weights method (see tfmot's PrunableLayer); "
                    'ltp_tfmot.unprunable_layers(model) lists them.', len(reasons),
                    '; '.join(f'{name!r}: {reason}' for name, reason in reasons.items()))


def _validate_params(params):
  """Raises for a bad parameter before any layer is touched."""
  if not isinstance(params['pruning_schedule'], schedule_lib.LotteryTicketSchedule):
    raise TypeError('pruning_schedule must be a ltp_tfmot.LotteryTicketSchedule, '
                    f'got {type(params["pruning_schedule"]).__name__}')
  criteria_lib.get_criterion(params['criterion'])
  validation.check_choice(params['scope'], 'scope', wrapper_lib.SCOPES)
  validation.check_choice(params['mask_0_action'], 'mask_0_action', wrapper_lib.MASK_0_ACTIONS)
  validation.check_choice(params['mask_1_action'], 'mask_1_action', wrapper_lib.MASK_1_ACTIONS)
  wrapper_lib.check_rewind_step(params['rewind_step'])
  wrapper_lib.check_seed(params['seed'])
  schedule_lib.check_rewind_before_first_round(params['rewind_step'], params['pruning_schedule'])
  validation.check_bool(params['dynamic_weight_rescaling'], 'dynamic_weight_rescaling')
  block = params['block_size']
  if (not isinstance(block, (tuple, list)) or len(block) != 2
      or not all(validation.is_int(b) and b >= 1 for b in block)):
    raise ValueError(f'block_size must be two integers >= 1, e.g. (4, 1), got {block!r}')
  params['block_size'] = tuple(int(b) for b in block)
  validation.check_choice(params['block_pooling_type'], 'block_pooling_type', ('AVG', 'MAX'))
  validation.check_choice(params['granularity'], 'granularity', wrapper_lib.GRANULARITIES)
  validation.check_choice(params['unit_pooling'], 'unit_pooling', wrapper_lib.UNIT_POOLINGS)
  if params['granularity'] == 'unit':
    if params['block_size'] != (1, 1):
      raise ValueError(f"granularity='unit' removes whole units, so block_size must be (1, 1), got "
                       f"{params['block_size']}: use block_size with granularity='weight', or drop it")
    if params['mask_0_action'] != 'zero':
      raise ValueError("granularity='unit' needs mask_0_action='zero' (a removed unit is exactly 0, which shrink "
                       f"relies on), got {params['mask_0_action']!r}")
    if criteria_lib.get_criterion(params['criterion']).needs_model:
      raise ValueError(f"criterion {params['criterion']!r} scores weights by running the model, which "
                       "granularity='unit' does not pool yet: use a criterion of weight values (e.g. "
                       "'large_final') with granularity='unit'")


def _validated_layer_rates(layer_rates):
  if layer_rates is None:
    return {}
  if not isinstance(layer_rates, dict):
    raise TypeError(f'layer_rates must be a dict from layer name to rate, got {type(layer_rates).__name__}')
  return {name: validation.check_fraction(rate, f'layer_rates[{name!r}]', allow_zero=True)
          for name, rate in layer_rates.items()}


def _check_layer_rate_names(layer_rates, prunable_names):
  unknown = sorted(set(layer_rates) - set(prunable_names))
  if unknown:
    raise ValueError(f'layer_rates names {unknown}, which are not prunable layers here; '
                     f'prunable layers: {prunable_names}')


def strip_pruning(model):
  """Removes the pruning wrappers, keeping the sparsity.

  Masks are applied first (so pruned weights are exactly 0, or frozen), then
  tfmot's `strip_pruning` unwraps every wrapper, ours and tfmot's.

  Args:
    model: A tf_keras model.

  Returns:
    A model with the same layers and no pruning wrapper.

  Raises:
    ValueError: if `model` is not a tf_keras model.
  """
  wrapper_lib.check_tf_keras(model, 'model')
  if not isinstance(model, keras.Model):
    raise ValueError(f'model must be a tf_keras Model, got {type(model).__name__}')
  if not _is_sequential_or_functional(model):
    raise ValueError(f'model is a subclassed model ({type(model).__name__}), whose layers cannot be replaced from '
                     'outside: strip a Sequential or functional model, or unwrap its layers yourself (wrapper.layer)')
  if any(w.built for w in wrapped_model.lottery_wrappers(model)):
    rounds_lib.apply_masks(model)
  return tfmot_prune.strip_pruning(model)


def prune_scope():
  """A custom-object scope in which wrapped models load (h5, SavedModel, .keras).

  Example:

  ```python
  with ltp_tfmot.prune_scope():
    model = tf_keras.models.load_model('ticket.h5')
  ```
  """
  return keras.utils.custom_object_scope(custom_objects())


def custom_objects():
  """The classes needed to load a wrapped model, as a dict for `custom_objects=`."""
  objects = {
      'PruneLotteryTicket': wrapper_lib.PruneLotteryTicket,
      'ltp_tfmot>PruneLotteryTicket': wrapper_lib.PruneLotteryTicket,
      'PruneLowMagnitude': tfmot_prune.pruning_wrapper.PruneLowMagnitude,
  }
  objects.update(schedule_lib.SCHEDULES)
  return objects
