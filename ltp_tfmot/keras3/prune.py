"""Wrapping whole Keras 3 models for lottery-ticket pruning, finding their wrappers, and unwrapping them.

`prune_lottery_ticket` wraps every prunable layer of a Keras 3 Sequential or
functional model (nested models included) in a `PruneLotteryTicket`, with the
Keras 2 front end's arguments and checks: every argument is checked before
any layer is touched, so a bad one changes nothing. Layers whose kernels stay
dense are reported (`unprunable_layers`, and a logged warning).
`strip_pruning` gives the plain model back with the masks applied.
"""

from absl import logging
import keras

from ltp_tfmot import validation
from ltp_tfmot.core import model_walk
from ltp_tfmot.core import unit_plan as unit_plan_lib
from ltp_tfmot.keras3 import unit_groups
from ltp_tfmot.keras3 import wrapped_model
from ltp_tfmot.keras3 import wrapper as wrapper_lib


def check_keras3(obj, name='to_prune'):
  """Raises a clear error for a Keras 2 (tf_keras) object, which this front end does not wrap.

  Args:
    obj: What was passed.
    name: How the message names it.

  Raises:
    TypeError: if `obj` is a tf_keras object.
  """
  module = type(obj).__module__
  if module.split('.')[0] == 'tf_keras':
    raise TypeError(f'{name} is a Keras 2 (tf_keras) object ({module}.{type(obj).__name__}); the Keras 3 front end '
                    'wraps Keras 3 models: build it with `import keras` (Keras 3), or prune it with the Keras 2 '
                    'front end (ltp_tfmot.keras2)')


def _is_sequential_or_functional(model):
  return isinstance(model, keras.Sequential) or any(
      cls.__name__ == 'Functional' and cls.__module__.startswith('keras.') for cls in type(model).__mro__)


def _flat_layers(to_prune):
  """The layers of a model, layer or list of them, nested models expanded, in `lottery_wrappers` order."""
  pending = list(reversed(to_prune)) if isinstance(to_prune, (list, tuple)) else [to_prune]
  layers = []
  while pending:
    item = pending.pop()
    if isinstance(item, keras.Model):
      pending.extend(reversed(item.layers))
    else:
      layers.append(item)
  return layers


def prunable_layer_names(model):
  """Names of the layers `prune_lottery_ticket` would wrap, nested models included, in order.

  In a model wrapped already, the names of the wrapped layers (not their wrappers'): the same list as for
  the model before wrapping. Layers with kernels that stay dense are listed by `unprunable_layers`.

  Args:
    model: A Keras 3 model, a layer, or a list of them.

  Returns:
    A list of layer names.
  """
  return [layer.layer.name if isinstance(layer, wrapper_lib.PruneLotteryTicket) else layer.name
          for layer in _flat_layers(model)
          if isinstance(layer, wrapper_lib.PruneLotteryTicket) or wrapper_lib.is_prunable(layer)]


def unprunable_layers(model):
  """The layers whose kernels `prune_lottery_ticket` leaves dense, and why.

  A kernel is a built weight with at least two axes longer than 1 that is not a bias. Listed are layers
  of a type this front end does not prune (Conv2DTranspose, a TimeDistributed wrapper, a custom layer
  without `get_prunable_weights`); layers with no kernel (BatchNormalization, LayerNormalization, pooling)
  are not: they are expected to stay dense. `prune_lottery_ticket` logs the same list as a warning.

  Args:
    model: A built Keras 3 model, a layer, or a list of layers.

  Returns:
    A dict from layer name to a sentence naming its dense kernels and why they are not pruned; empty if
    every kernel is pruned.
  """
  reasons = {layer.name: wrapper_lib.unpruned_reason(layer) for layer in _flat_layers(model)}
  return {name: reason for name, reason in reasons.items() if reason is not None}


def prune_lottery_ticket(to_prune, pruning_schedule=None, criterion='large_final', scope='layer', rewind_step=0,
                         layer_rates=None, mask_0_action='zero', mask_1_action='rewind', dynamic_weight_rescaling=False,
                         block_size=(1, 1), block_pooling_type='AVG', seed=0, granularity='weight', unit_pooling='L1'):
  """Wraps a Keras 3 layer, list of layers or model for lottery-ticket pruning.

  Every prunable layer is wrapped in a `PruneLotteryTicket`, other layers are
  left as they are, and a model comes back as a new, uncompiled model (built
  with `keras.models.clone_model`) around the same layers, so it starts from
  the original weights. Wrappers are numbered in `lottery_wrappers` order
  (their `position`).

  Args:
    to_prune: A Keras 3 layer, a list of layers, or a Sequential or
      functional model (nested models included).
    pruning_schedule: A `LotteryTicketSchedule` (default: rate 0.2, rounds run
      by hand).
    criterion: Name of a registered criterion; see `criterion_names()`.
    scope: 'layer' or 'global' (one ranking across all wrapped layers).
    rewind_step: Training step whose weights survivors are rewound to (0 = the
      initial weights).
    layer_rates: Optional dict from layer name to a rate in [0, 1) used for that
      layer instead of the schedule's; 0 never prunes it.
    mask_0_action: 'zero' or 'freeze'; see `PruneLotteryTicket`.
    mask_1_action: 'rewind', 'reinit', 'reshuffle' or 'signed_constant'.
    dynamic_weight_rescaling: Rescale survivors by n / n_kept after a rewind.
    block_size: (height, width) of the blocks 2-D kernels are pruned in.
    block_pooling_type: How a block's weight scores are pooled: 'AVG' or 'MAX'.
    seed: Seed for random criteria and actions.
    granularity: 'weight' (weights are pruned one by one) or 'unit'
      (structured tickets: whole output units are removed, as in the Keras 2
      front end: Dense neurons, Conv1D/2D/3D filters and DepthwiseConv2D
      channels, with the units tied by the graph, residual merges,
      BatchNormalization and DepthwiseConv2D layers, pruned together; a
      unit's bias and its BatchNormalization's gamma and beta are masked with
      it; `ltp_tfmot.shrink` then cuts them out). Needs a Sequential or
      functional model with a known input, `block_size=(1, 1)`,
      `mask_0_action='zero'` and a criterion of weight values.
    unit_pooling: How a unit's weight scores are pooled into its score: 'L1'
      (default), 'L2' or 'mean'; tied units add their pooled scores.

  Returns:
    The wrapped layer, list of layers or model.

  Raises:
    ValueError: for a bad argument (the message names it), a subclassed
      model, a model wrapped already or with no prunable layer, or a
      `layer_rates` name that is not a prunable layer; in unit granularity,
      for a layer whose units cannot be removed exactly, unless its
      `layer_rates` entry is 0. Nothing is changed then.
    TypeError: for a `to_prune` that is no Keras 3 layer or model (a Keras 2
      one included) or an argument of the wrong type.

  Example:

  ```python
  import keras
  from ltp_tfmot.core import schedule
  from ltp_tfmot.keras3 import prune

  model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(300, activation='relu'),
                            keras.layers.Dense(10, name='output')])
  model = prune.prune_lottery_ticket(model, schedule.LotteryTicketSchedule(rate=0.2), layer_rates={'output': 0.1})
  ```
  """
  items = list(to_prune) if isinstance(to_prune, (list, tuple)) else [to_prune]
  for i, item in enumerate(items):
    check_keras3(item, f'to_prune[{i}]' if isinstance(to_prune, (list, tuple)) else 'to_prune')
    if not isinstance(item, keras.layers.Layer):
      raise TypeError('to_prune must be a Keras 3 layer, a list of layers, or a Sequential or functional model, '
                      f'got {type(item).__name__}')
  settings = wrapper_lib.check_settings(
      pruning_schedule=pruning_schedule, criterion=criterion, scope=scope, mask_0_action=mask_0_action,
      mask_1_action=mask_1_action, dynamic_weight_rescaling=dynamic_weight_rescaling, rewind_step=rewind_step,
      seed=seed, granularity=granularity, unit_pooling=unit_pooling, block_size=block_size,
      block_pooling_type=block_pooling_type)
  if layer_rates is not None and not isinstance(layer_rates, dict):
    raise TypeError(f'layer_rates must be a dict from layer name to rate, got {type(layer_rates).__name__}')
  layer_rates = {name: validation.check_fraction(rate, f'layer_rates[{name!r}]', allow_zero=True)
                 for name, rate in (layer_rates or {}).items()}
  if isinstance(to_prune, keras.Model):
    _check_model(to_prune)
  elif isinstance(to_prune, keras.layers.Layer) and not wrapper_lib.is_prunable(to_prune):
    raise ValueError(f'layer {to_prune.name!r} ({type(to_prune).__name__}) has no prunable weight')
  names = prunable_layer_names(to_prune)
  unknown = sorted(set(layer_rates) - set(names))
  if unknown:
    raise ValueError(f'layer_rates names {unknown}, which are not prunable layers here; prunable layers: {names}')
  unit_settings = None
  if settings['granularity'] == 'unit':
    if not isinstance(to_prune, keras.Model):
      raise ValueError("granularity='unit' needs a Sequential or functional Keras 3 model, whose graph ties units "
                       f'together, got {type(to_prune).__name__}: pass the whole model, or use '
                       "granularity='weight'")
    unit_settings = unit_plan_lib.unit_settings(unit_groups.unit_plan(to_prune), names, layer_rates)
  reasons = unprunable_layers(to_prune)
  if reasons:
    logging.warning('prune_lottery_ticket leaves the kernels of %d layers dense: %s. To prune one, give it a '
                    'get_prunable_weights method; unprunable_layers(model) lists them.', len(reasons),
                    '; '.join(f'{name!r}: {reason}' for name, reason in reasons.items()))

  def wrap(layer):
    if isinstance(layer, keras.Model):
      return keras.models.clone_model(layer, clone_function=wrap)
    arguments = unit_plan_lib.wrapper_arguments(layer.name, wrapper_lib.is_prunable(layer), unit_settings,
                                                layer_rates)
    return layer if arguments is None else wrapper_lib.PruneLotteryTicket(layer, **settings, **arguments)

  wrapped = [wrap(item) for item in items] if isinstance(to_prune, (list, tuple)) else wrap(to_prune)
  for position, w in enumerate(wrapped_model.lottery_wrappers(wrapped)):
    w.position = position
  return wrapped


def _check_model(model):
  """Raises for a model `prune_lottery_ticket` cannot wrap: subclassed, wrapped already, or nothing to prune."""
  if not _is_sequential_or_functional(model):
    raise model_walk.subclassed_model_error(model)
  if wrapped_model.lottery_wrappers(model):
    raise ValueError(f'model {model.name!r} is already wrapped with prune_lottery_ticket; wrap the unwrapped model '
                     '(or strip_pruning it first)')
  if not prunable_layer_names(model):
    raise ValueError(f'model {model.name!r} has no prunable layer ({wrapper_lib.PRUNED_LAYERS})')


def strip_pruning(model):
  """The plain Keras 3 model under a wrapped one, with the masks applied to its weights.

  Each built wrapper's masked values are first assigned to its prunable weights (pruned weights exactly 0,
  or their frozen values under 'freeze'), then every wrapper is replaced by the layer it wraps.

  Args:
    model: A wrapped Keras 3 Sequential or functional model.

  Returns:
    A new model of the same layers without wrappers, sharing their weights.

  Raises:
    TypeError: if `model` is not a Keras 3 model.
    ValueError: for a subclassed model.
  """
  check_keras3(model, 'model')
  if not isinstance(model, keras.Model):
    raise TypeError(f'model must be a Keras 3 Model, got {type(model).__name__}')
  if not _is_sequential_or_functional(model):
    raise ValueError(f'model is a subclassed model ({type(model).__name__}), whose layers cannot be replaced from '
                     'outside: strip a Sequential or functional model, or unwrap its layers yourself (wrapper.layer)')
  for w in wrapped_model.lottery_wrappers(model):
    if w.built:
      for weight, value in w.masked_values():
        weight.assign(value)

  def unwrap(layer):
    if isinstance(layer, keras.Model):
      return keras.models.clone_model(layer, clone_function=unwrap)
    return layer.layer if isinstance(layer, wrapper_lib.PruneLotteryTicket) else layer

  return unwrap(model)
