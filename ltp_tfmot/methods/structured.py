"""Cutting the removed units out of a structured ticket: a smaller model that runs faster."""

import numpy as np
import tensorflow as tf
import tf_keras as keras

from ltp_tfmot.keras2 import prune as prune_lib
from ltp_tfmot.keras2 import unit_groups
from ltp_tfmot.keras2 import wrapped_model
from ltp_tfmot.keras2 import wrapper as wrapper_lib


def _nonzero(tensor):
  return tf.not_equal(tf.convert_to_tensor(tensor), 0)


def _batchnorm_output_at_zero(layer):
  """A BatchNormalization's (inference) output for a zero input, per channel."""
  mean = tf.convert_to_tensor(layer.moving_mean)
  gamma = tf.ones_like(mean) if layer.gamma is None else tf.convert_to_tensor(layer.gamma)
  beta = tf.zeros_like(mean) if layer.beta is None else tf.convert_to_tensor(layer.beta)
  return beta - gamma * mean * tf.math.rsqrt(tf.convert_to_tensor(layer.moving_variance) + layer.epsilon)


def _member_alive(layer, role):
  """Which units of a group a member layer keeps alive: those it does not make exactly 0."""
  if role == unit_groups.ROLE_BATCHNORM:
    return _nonzero(_batchnorm_output_at_zero(layer))
  if role == unit_groups.ROLE_DEPTHWISE:
    # A depthwise channel's input is 0 when its unit is removed, so only its bias can make it non-zero.
    alive = tf.zeros([int(layer.depthwise_kernel.shape[2])], tf.bool)
  else:
    alive = tf.reduce_any(tf.reshape(_nonzero(layer.kernel), [-1, layer.kernel.shape[-1]]), axis=0)
  bias = getattr(layer, 'bias', None)
  return alive if bias is None else tf.logical_or(alive, _nonzero(bias))


def kept_units(model):
  """Which units of each unit group of a stripped model are kept by `shrink`.

  A unit is removed when every layer of its group makes it exactly 0: its
  kernel slice and bias are 0 in each producer, each DepthwiseConv2D's bias,
  and each BatchNormalization's output for a zero input (beta - gamma * mean
  / sqrt(variance + epsilon)) is 0. Groups that are model outputs, tied to
  the input or consumed by a layer unit pruning cannot follow are kept whole;
  a group whose units are all removed keeps its first (zero) unit, so that
  every layer keeps a shape.

  Args:
    model: A Sequential or functional tf_keras model without pruning wrappers.

  Returns:
    `(plan, kept)`: the model's `unit_groups.UnitPlan` and {group label: NumPy
    bool vector of kept units}.
  """
  plan = unit_groups.unit_plan(model)
  layers = {layer.name: layer for layer in model.layers}
  kept = {}
  for label, group in plan.groups.items():
    if group.pinned or group.problems:
      kept[label] = np.ones([group.size], bool)
      continue
    alive = tf.zeros([group.size], tf.bool)
    for name, role in group.members:
      alive = tf.logical_or(alive, _member_alive(layers[name], role))
    alive = alive.numpy()
    if not alive.any():
      alive[0] = True
    kept[label] = alive
  return plan, kept


def _input_kept(layout, kept):
  """The kept entries of a layer's input's last axis, as a NumPy bool vector."""
  channels = np.concatenate([np.ones([segment.size], bool) if segment.group is None else kept[segment.group]
                             for segment in layout.segments])
  return np.tile(channels, layout.tiles)


def _gather(value, keep, axis):
  return tf.gather(value, np.flatnonzero(keep), axis=axis).numpy()


def _shrunk_layer(layer, plan, kept):
  """(config, weights) of a layer of the shrunk model."""
  config = layer.get_config()
  weights = layer.get_weights()
  if not layer.weights or layer.name not in plan.input_layouts:
    return config, weights
  keep_in = _input_kept(plan.input_layouts[layer.name], kept)
  group = plan.group_of.get(layer.name)
  is_producer = group is not None and (layer.name, unit_groups.ROLE_PRODUCER) in plan.groups[group].members
  if is_producer:
    keep_out = kept[group]
    config['units' if isinstance(layer, keras.layers.Dense) else 'filters'] = int(keep_out.sum())
    sliced = []
    for weight, value in zip(layer.weights, weights, strict=True):
      if weight is layer.kernel:
        sliced.append(_gather(_gather(value, keep_in, value.ndim - 2), keep_out, value.ndim - 1))
      else:
        sliced.append(_gather(value, keep_out, 0))
    return config, sliced
  if keep_in.all():
    return config, weights
  if isinstance(layer, keras.layers.DepthwiseConv2D):
    return config, [_gather(value, keep_in, 2 if weight is layer.depthwise_kernel else 0)
                    for weight, value in zip(layer.weights, weights, strict=True)]
  if isinstance(layer, keras.layers.BatchNormalization):
    return config, [_gather(value, keep_in, 0) for value in weights]
  raise ValueError(f'layer {layer.name!r} ({type(layer).__name__}) consumes removed units and shrink cannot cut '
                   'them out of it')


def shrink(model):
  """Rebuilds a structured ticket as a smaller model with its removed units gone.

  The removed units of a ticket pruned with `prune_lottery_ticket(...,
  granularity='unit')` (or of any model whose units are exactly 0, see
  `kept_units`) are cut out: a Dense layer loses the neurons, a Conv the
  filters, and their consumers the matching inputs (Dense kernel rows, the
  rows a Flatten made of a filter, conv input channels, BatchNormalization
  parameters, DepthwiseConv2D channels). A removed unit is exactly 0 where
  it is consumed (its bias and BatchNormalization gamma and beta are masked
  with it), so the shrunk model's outputs equal the masked model's, up to
  float rounding. The result is a plain, uncompiled tf_keras model (no
  wrappers, no custom layers) with the same layer names; train, save or
  export it like any model.

  Args:
    model: A Sequential or functional tf_keras model, wrapped with
      `prune_lottery_ticket` (its masks are applied first, as by
      `strip_pruning`) or stripped.

  Returns:
    A new, smaller `keras.Model`.

  Raises:
    ValueError: for a model that is no Sequential or functional tf_keras
      model, or has nested models or shared layers. The model is not
      changed (a wrapped model only has its masks applied).

  Example:

  ```python
  model = ltp_tfmot.prune_lottery_ticket(ltp_tfmot.models.lenet_300_100(seed=0),
                                         ltp_tfmot.LotteryTicketSchedule(rate=0.5), granularity='unit')
  ltp_tfmot.take_snapshot(model)
  ltp_tfmot.run_lottery_round(model)
  small = ltp_tfmot.shrink(model)   # 150 and 50 hidden units
  ```
  """
  wrapper_lib.check_tf_keras(model, 'model')
  if not isinstance(model, keras.Model) or not getattr(model, '_is_graph_network', False):
    raise ValueError(f'shrink needs a Sequential or functional tf_keras model with a known input, got '
                     f'{type(model).__name__}: build it with keras.Input (or input_shape=)')
  unit_groups.unit_plan(model)  # refuses nested models and shared layers before the masks are applied
  if any(isinstance(layer, wrapper_lib.pruning_wrapper.PruneLowMagnitude) for layer in model.layers):
    if wrapped_model.lottery_wrappers(model):
      wrapped_model.built_lottery_wrappers(model)
    model = prune_lib.strip_pruning(model)
  plan, kept = kept_units(model)
  shrunk = {layer.name: _shrunk_layer(layer, plan, kept) for layer in model.layers}

  def clone(layer):
    return layer.__class__.from_config(shrunk[layer.name][0])

  small = keras.models.clone_model(model, clone_function=clone)
  for layer in small.layers:
    if layer.name in shrunk and layer.weights:
      layer.set_weights(shrunk[layer.name][1])
  return small
