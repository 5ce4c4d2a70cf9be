"""Cutting removed units out of a model's layers: the Keras-free part of `shrink`, for both front ends.

A unit is removed when every layer of its unit group makes it exactly 0
(`kept_units`); the shrunk model keeps the layer configs and weights that
`shrunk_layer` slices, and `shrunk_model` rebuilds a model of them with the
front end's `clone_model`. Weights are read as NumPy arrays (`get_weights`,
`np.asarray` of a variable), which tf_keras and Keras 3 layers give alike.
"""

import numpy as np

from ltp_tfmot.core import unit_plan as unit_plan_lib


def _batchnorm_output_at_zero(layer):
  """A BatchNormalization's (inference) output for a zero input, per channel."""
  mean = np.asarray(layer.moving_mean)
  gamma = np.ones_like(mean) if layer.gamma is None else np.asarray(layer.gamma)
  beta = np.zeros_like(mean) if layer.beta is None else np.asarray(layer.beta)
  return beta - gamma * mean / np.sqrt(np.asarray(layer.moving_variance) + layer.epsilon)


def _depthwise_kernel(layer):
  """A DepthwiseConv2D's kernel: `depthwise_kernel` in tf_keras, `kernel` in Keras 3."""
  kernel = getattr(layer, 'depthwise_kernel', None)
  return layer.kernel if kernel is None else kernel


def _member_alive(layer, role):
  """Which units of a group a member layer keeps alive: those it does not make exactly 0."""
  if role == unit_plan_lib.ROLE_BATCHNORM:
    return _batchnorm_output_at_zero(layer) != 0
  if role == unit_plan_lib.ROLE_DEPTHWISE:
    # A depthwise channel's input is 0 when its unit is removed, so only its bias can make it non-zero.
    alive = np.zeros([int(_depthwise_kernel(layer).shape[2])], bool)
  else:
    kernel = np.asarray(layer.kernel)
    alive = np.any(kernel.reshape([-1, kernel.shape[-1]]) != 0, axis=0)
  bias = getattr(layer, 'bias', None)
  return alive if bias is None else np.logical_or(alive, np.asarray(bias) != 0)


def kept_units(plan, layers):
  """Which units of each unit group are kept: those some layer of the group does not make exactly 0.

  Groups that are pinned or have problems are kept whole; a group whose units are all removed keeps its
  first (zero) unit, so that every layer keeps a shape.

  Args:
    plan: The model's `unit_plan.UnitPlan`.
    layers: {layer name: unwrapped layer} of the model.

  Returns:
    {group label: NumPy bool vector of kept units}.
  """
  kept = {}
  for label, group in plan.groups.items():
    if group.pinned or group.problems:
      kept[label] = np.ones([group.size], bool)
      continue
    alive = np.zeros([group.size], bool)
    for name, role in group.members:
      alive = np.logical_or(alive, _member_alive(layers[name], role))
    if not alive.any():
      alive[0] = True
    kept[label] = alive
  return kept


def _input_kept(layout, kept):
  """The kept entries of a layer's input's last axis, as a NumPy bool vector."""
  channels = np.concatenate([np.ones([segment.size], bool) if segment.group is None else kept[segment.group]
                             for segment in layout.segments])
  return np.tile(channels, layout.tiles)


def _gather(value, keep, axis):
  return np.take(value, np.flatnonzero(keep), axis=axis)


def shrunk_layer(layer, plan, kept, kinds):
  """The config and weights of a layer of the shrunk model.

  Args:
    layer: An unwrapped layer of the model.
    plan: The model's `unit_plan.UnitPlan`.
    kept: {group label: kept units} (from `kept_units`).
    kinds: The `unit_plan.LayerKinds` of the model's Keras.

  Returns:
    `(config, weights)`: the layer's config with its units counted anew, and its weights without the
    removed units (as inputs or outputs).

  Raises:
    ValueError: for a layer that consumes removed units and is no Dense, Conv, DepthwiseConv2D or
      BatchNormalization.
  """
  config = layer.get_config()
  weights = layer.get_weights()
  if not layer.weights or layer.name not in plan.input_layouts:
    return config, weights
  keep_in = _input_kept(plan.input_layouts[layer.name], kept)
  group = plan.group_of.get(layer.name)
  is_producer = group is not None and (layer.name, unit_plan_lib.ROLE_PRODUCER) in plan.groups[group].members
  if is_producer:
    keep_out = kept[group]
    config['units' if isinstance(layer, kinds.layers.Dense) else 'filters'] = int(keep_out.sum())
    sliced = []
    for weight, value in zip(layer.weights, weights, strict=True):
      if weight is layer.kernel:
        sliced.append(_gather(_gather(value, keep_in, value.ndim - 2), keep_out, value.ndim - 1))
      else:
        sliced.append(_gather(value, keep_out, 0))
    return config, sliced
  if keep_in.all():
    return config, weights
  if isinstance(layer, kinds.layers.DepthwiseConv2D):
    kernel = _depthwise_kernel(layer)
    return config, [_gather(value, keep_in, 2 if weight is kernel else 0)
                    for weight, value in zip(layer.weights, weights, strict=True)]
  if isinstance(layer, kinds.layers.BatchNormalization):
    return config, [_gather(value, keep_in, 0) for value in weights]
  raise ValueError(f'layer {layer.name!r} ({type(layer).__name__}) consumes removed units and shrink cannot cut '
                   'them out of it')


def shrunk_model(model, plan, kept, kinds, clone_model):
  """A new model of the same graph as `model` with the removed units cut out of its layers.

  Args:
    model: An unwrapped Sequential or functional model.
    plan: Its `unit_plan.UnitPlan`.
    kept: {group label: kept units} (from `kept_units`).
    kinds: The `unit_plan.LayerKinds` of the model's Keras.
    clone_model: The Keras's `keras.models.clone_model`.

  Returns:
    The smaller model, uncompiled, with the same layer names.

  Raises:
    ValueError: as `shrunk_layer`.
  """
  shrunk = {layer.name: shrunk_layer(layer, plan, kept, kinds) for layer in model.layers}

  def clone(layer):
    return layer.__class__.from_config(shrunk[layer.name][0])

  small = clone_model(model, clone_function=clone)
  for layer in small.layers:
    if layer.name in shrunk and layer.weights:
      layer.set_weights(shrunk[layer.name][1])
  return small
