"""Which output units of a model are tied together: the Keras-free part of unit grouping, for both front ends.

Structured (unit-granularity) pruning removes whole output units: neurons of
Dense layers, filters of Conv1D/2D/3D layers, channels of DepthwiseConv2D
layers. A unit cannot always be removed on its own: the channels of the
inputs of a residual `Add` are one channel of its output, a
BatchNormalization's channel and a DepthwiseConv2D's channel follow the
channel they are computed from. `plan_units` walks a model's graph once, given
as `GraphNode`s by a front end (`ltp_tfmot.keras2.unit_groups`,
`ltp_tfmot.keras3.unit_groups`) with the layer classes of its Keras
(`LayerKinds`), and returns the groups of layers whose units go together, what
consumes each group (for `shrink`), and why a group cannot be pruned where it
cannot. `unit_settings` turns a plan into each wrapped layer's rate and group.

A removed unit must be exactly 0 wherever it is consumed, so that cutting
it out of its consumers changes nothing: its kernel slice and bias are masked,
a BatchNormalization after it has its gamma and beta masked, and every layer
on the way must map 0 to 0 (ReLU, ReLU6, pooling, padding, Add, ... do;
a sigmoid does not, and is refused).
"""

import collections
import math

import numpy as np
import tensorflow as tf

ROLE_PRODUCER = 'producer'
ROLE_DEPTHWISE = 'depthwise'
ROLE_BATCHNORM = 'batchnorm'

# Layers applied to each channel on its own, which map a zero channel to zero (activations are checked).
_CHANNELWISE = (
    'Activation', 'ReLU', 'LeakyReLU', 'ELU', 'Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'SpatialDropout3D',
    'GaussianNoise', 'ActivityRegularization', 'MaxPooling1D', 'MaxPooling2D', 'MaxPooling3D', 'AveragePooling1D',
    'AveragePooling2D', 'AveragePooling3D', 'GlobalMaxPooling1D', 'GlobalMaxPooling2D', 'GlobalMaxPooling3D',
    'GlobalAveragePooling1D', 'GlobalAveragePooling2D', 'GlobalAveragePooling3D', 'ZeroPadding1D', 'ZeroPadding2D',
    'ZeroPadding3D', 'Cropping1D', 'Cropping2D', 'Cropping3D', 'UpSampling1D', 'UpSampling2D', 'UpSampling3D',
)
# Merges whose output channel c is computed from channel c of every input, 0 from all-zero inputs.
_MERGES = ('Add', 'Subtract', 'Average', 'Maximum', 'Minimum', 'Multiply')
# The convolutions whose filters are units (their transposed subclasses are not: see _NOT_UNIT_CONVS).
_UNIT_CONVS = ('Conv1D', 'Conv2D', 'Conv3D')
# Convolutions whose channels unit pruning cannot follow: it neither removes their outputs nor cuts their inputs.
_NOT_UNIT_CONVS = ('Conv1DTranspose', 'Conv2DTranspose', 'Conv3DTranspose', 'SeparableConv1D', 'SeparableConv2D',
                   'DepthwiseConv1D')
# Layers whose activation is the layer itself (checked by calling it), not an `activation` attribute.
_ACTIVATION_LAYERS = ('ReLU', 'LeakyReLU', 'ELU')


class LayerKinds:
  """The layer classes of one Keras (tf_keras or Keras 3) that unit grouping tells apart.

  Both Keras name their layers alike; a front end makes one of these from its `keras.layers` and `keras.Model`.

  Attributes:
    layers: The Keras's `layers` namespace.
    model: Its `Model` class (a nested model is refused).
    channelwise: Layers applied to each channel on its own that map a zero channel to zero.
    merges: Elementwise merges (Add, Multiply, ...).
    unit_convs: The convolutions whose filters are units (Conv1D/2D/3D).
    not_unit_convs: Convolutions unit pruning cannot follow (transposed, separable, DepthwiseConv1D).
    activation_layers: ReLU, LeakyReLU and ELU.
    unit_layers: The layers granularity='unit' wraps: the producers of units (Dense, `unit_convs`) and the
      layers whose channels follow a producer's (DepthwiseConv2D, BatchNormalization), all masked unit for unit.
  """

  def __init__(self, layers, model):
    self.layers = layers
    self.model = model
    self.channelwise = tuple(getattr(layers, name) for name in _CHANNELWISE)
    self.merges = tuple(getattr(layers, name) for name in _MERGES)
    self.unit_convs = tuple(getattr(layers, name) for name in _UNIT_CONVS)
    self.not_unit_convs = tuple(getattr(layers, name) for name in _NOT_UNIT_CONVS)
    self.activation_layers = tuple(getattr(layers, name) for name in _ACTIVATION_LAYERS)
    self.unit_layers = (layers.Dense,) + self.unit_convs + (layers.DepthwiseConv2D, layers.BatchNormalization)

  def has_units(self, layer):
    """Whether granularity='unit' can wrap `layer`: one of `unit_layers`, and not one of `not_unit_convs`.

    Args:
      layer: An unwrapped layer of this Keras.

    Returns:
      True for a Dense, a Conv1D/2D/3D (not transposed), a DepthwiseConv2D or a BatchNormalization.
    """
    return isinstance(layer, self.unit_layers) and not isinstance(layer, self.not_unit_convs)


GraphNode = collections.namedtuple('GraphNode', ['layer', 'raw', 'input_ids', 'output_ids', 'output_shapes',
                                                 'input_shape'])
GraphNode.__doc__ = """One call of a layer in a model's graph, as a front end reads it for `plan_units`.

`layer` is the layer of the model (a pruning wrapper, or not) and `raw` the layer it wraps (or `layer`);
`input_ids` and `output_ids` name the tensors it takes and makes (any hashable keys, one per flat tensor),
`output_shapes` are their shapes and `input_shape` that of its first input (None for an InputLayer).
"""


# A segment of a tensor's channel axis: `size` channels that are the units of group `group` (None: channels no
# unit pruning can remove, such as the model's input).
Segment = collections.namedtuple('Segment', ['group', 'size'])
Segment.__doc__ = """A run of channels: `size` units of the group labelled `group`, or fixed channels (None)."""


class Layout(collections.namedtuple('Layout', ['segments', 'tiles'])):
  """The channel axis of a tensor as segments of groups; `tiles` > 1 after a Flatten of a spatial map.

  A flattened map of `tiles` positions with channels `segments` has its entry `t * channels + c` from position
  t and channel c.
  """

  @property
  def channels(self):
    return sum(segment.size for segment in self.segments)

  @property
  def groups(self):
    return [segment.group for segment in self.segments if segment.group is not None]


def _fixed(size, tiles=1):
  return Layout((Segment(None, int(size)),), tiles)


class UnitGroup:
  """Layers whose output units are pruned together, unit for unit.

  Attributes:
    label: The group's name: the name of its first producer layer.
    size: The number of units.
    members: (layer name, role) pairs: 'producer' (a Dense or Conv whose output units these are),
      'depthwise' (a DepthwiseConv2D whose channels follow them), 'batchnorm' (a BatchNormalization whose
      channels follow them).
    pinned: Why the units are never removed (they are model outputs, or tied to a tensor no unit pruning can
      remove), or None.
    problems: Why the units cannot be removed exactly (a layer that does not map zero to zero, a layer unit
      pruning cannot follow); pruning such a group is refused unless its producers' rates are 0.
  """

  def __init__(self, label, size):
    self.label = label
    self.size = size
    self.members = []
    self.pinned = None
    self.problems = []

  def layer_names(self, role=None):
    return [name for name, member_role in self.members if role is None or member_role == role]

  def __repr__(self):
    return f'UnitGroup({self.label!r}, size={self.size}, members={self.members})'


class UnitPlan:
  """The unit groups of a model and the layout of every layer's input (see `plan_units`).

  Attributes:
    groups: {label: UnitGroup}, in graph order.
    group_of: {layer name: label} for every member layer.
    input_layouts: {layer name: Layout of its (first) input} for the layers with weights.
    unsupported: {layer name: reason} for prunable layers that have no units unit pruning knows.
  """

  def __init__(self, groups, group_of, input_layouts, unsupported):
    self.groups = groups
    self.group_of = group_of
    self.input_layouts = input_layouts
    self.unsupported = unsupported


def _maps_zero_to_zero(fn):
  value = fn(np.zeros([1, 1], np.float32))
  return bool(np.all(np.asarray(value) == 0))


def _activation_problem(layer, kinds):
  """Why a layer's activation does not map 0 to 0, or None."""
  activation = getattr(layer, 'activation', None)
  if isinstance(layer, kinds.layers.Activation) or (activation is not None and not isinstance(
      layer, kinds.activation_layers)):
    if activation is not None and not _maps_zero_to_zero(activation):
      name = getattr(activation, '__name__', type(activation).__name__)
      return f'{layer.name!r} applies {name}, which does not map 0 to 0'
    return None
  if isinstance(layer, kinds.activation_layers):
    if not _maps_zero_to_zero(layer):
      return f'{layer.name!r} ({type(layer).__name__}) does not map 0 to 0'
  return None


class _Walk:
  """One pass over a model's graph, building its unit groups."""

  def __init__(self):
    self.groups = {}
    self.parent = {}
    self.group_of = {}
    self.input_layouts = {}
    self.unsupported = {}

  def root(self, label):
    while self.parent[label] != label:
      self.parent[label] = self.parent[self.parent[label]]
      label = self.parent[label]
    return label

  def new_group(self, layer, size):
    label = layer.name
    self.groups[label] = UnitGroup(label, int(size))
    self.parent[label] = label
    return label

  def join(self, layer, role, label):
    self.groups[self.root(label)].members.append((layer.name, role))
    self.group_of[layer.name] = label

  def pin(self, layout, reason):
    for label in layout.groups:
      group = self.groups[self.root(label)]
      group.pinned = group.pinned or reason

  def problem(self, layout, reason):
    for label in layout.groups:
      self.groups[self.root(label)].problems.append(reason)

  def union(self, first, second):
    a, b = self.root(first), self.root(second)
    if a == b:
      return a
    # The group made first stays the root, so labels follow graph order.
    keep, gone = (a, b) if list(self.groups).index(a) < list(self.groups).index(b) else (b, a)
    kept, merged = self.groups[keep], self.groups.pop(gone)
    kept.members.extend(merged.members)
    kept.pinned = kept.pinned or merged.pinned
    kept.problems.extend(merged.problems)
    self.parent[gone] = keep
    return keep

  def merge(self, layer, layouts):
    """The output layout of an elementwise merge of `layouts`; their channels are tied one to one."""
    first = layouts[0]
    sizes = [[s.size for s in layout.segments] for layout in layouts]
    if any(s != sizes[0] for s in sizes) or any(layout.tiles != first.tiles for layout in layouts):
      for layout in layouts:
        self.problem(layout, f'{layer.name!r} ({type(layer).__name__}) merges tensors whose channels come from '
                     'differently split groups')
      return _fixed(first.channels, first.tiles)
    segments = []
    for position, segment in enumerate(first.segments):
      labels = [layout.segments[position].group for layout in layouts]
      if all(label is None for label in labels):
        segments.append(segment)
        continue
      if any(label is None for label in labels):
        self.pin(Layout(tuple(Segment(label, segment.size) for label in labels if label is not None), 1),
                 f'merged by {layer.name!r} with channels that cannot be removed (such as the model input)')
      present = [label for label in labels if label is not None]
      label = present[0]
      for other in present[1:]:
        label = self.union(label, other)
      segments.append(Segment(label, segment.size))
    return Layout(tuple(segments), first.tiles)

  def resolve(self, layout):
    return Layout(tuple(Segment(None if s.group is None else self.root(s.group), s.size) for s in layout.segments),
                  layout.tiles)


def _channels(tensor_shape):
  return int(tensor_shape[-1]) if tensor_shape.rank and tensor_shape[-1] is not None else 0


def _single(layout, layer):
  return layout.tiles == 1 and len(layout.segments) == 1, f'{layer.name!r} ({type(layer).__name__})'


def not_a_graph_error(model_name, how_to_build):
  """The error for a model with no graph to follow (subclassed, or without a known input).

  Args:
    model_name: The model's name.
    how_to_build: How the model's Keras gives a model a known input: 'keras.Input'.

  Returns:
    A ValueError.
  """
  return ValueError(f'model {model_name!r} is not a Sequential or functional model with a known input: '
                    f"granularity='unit' and shrink follow the model's graph; build it with {how_to_build} as a "
                    'Sequential or functional model')


def in_graph_order(nodes_by_depth):
  """The nodes of a Keras model's graph ({depth: nodes}, the model's own table), inputs first."""
  return [node for depth in sorted(nodes_by_depth, reverse=True) for node in nodes_by_depth[depth]]


def plan_units(nodes, output_ids, kinds):  # pylint: disable=too-many-branches,too-many-statements
  """The unit groups of a model's graph.

  Args:
    nodes: The model's `GraphNode`s, inputs first (each node after the nodes making its inputs).
    output_ids: The keys of the model's output tensors.
    kinds: The `LayerKinds` of the model's Keras.

  Returns:
    A `UnitPlan`.

  Raises:
    ValueError: for a nested model or a layer of the model with weights called more than once.
  """
  walk = _Walk()
  layouts = {}
  node_counts = collections.Counter(node.layer.name for node in nodes)
  for node in nodes:
    layer, raw = node.layer, node.raw
    if isinstance(raw, kinds.model):
      raise ValueError(f'layer {layer.name!r} is a nested model: structured pruning and shrink follow one graph; '
                       'build the model flat (call the inner model\'s layers directly), or use '
                       "granularity='weight'")
    if node_counts[layer.name] > 1 and raw.weights:
      raise ValueError(f'layer {layer.name!r} is called {node_counts[layer.name]} times: the units of a shared '
                       "layer cannot follow two graphs; use granularity='weight'")
    inputs = [walk.resolve(layouts[tensor_id]) for tensor_id in node.input_ids]
    output_shapes = [tf.TensorShape(shape) for shape in node.output_shapes]
    if not inputs:  # an InputLayer
      out = _fixed(_channels(output_shapes[0]))
    else:
      first = inputs[0]
      if raw.weights:
        walk.input_layouts[raw.name] = first
      out = None
      if isinstance(raw, kinds.layers.DepthwiseConv2D):
        if raw.depth_multiplier != 1 or raw.data_format == 'channels_first':
          walk.problem(first, f'{layer.name!r} is a DepthwiseConv2D with depth_multiplier {raw.depth_multiplier} '
                       f'and data_format {raw.data_format!r}; unit pruning follows depth_multiplier 1, channels_last')
          out = _fixed(_channels(output_shapes[0]))
        elif not first.groups:
          walk.unsupported[raw.name] = 'its channels are those of its input, which no unit pruning removes'
          out = first
        else:
          single, name = _single(first, raw)
          if not single:
            walk.problem(first, f'{name} takes channels from several groups')
            out = _fixed(first.channels)
          else:
            walk.join(raw, ROLE_DEPTHWISE, first.segments[0].group)
            problem = _activation_problem(raw, kinds)
            if problem:
              walk.problem(first, problem)
            out = first
      elif isinstance(raw, kinds.not_unit_convs):
        walk.problem(first, f'{layer.name!r} ({type(raw).__name__}) consumes them, which unit pruning cannot follow')
        walk.unsupported[raw.name] = f'{type(raw).__name__} has no units granularity=\'unit\' prunes'
      elif isinstance(raw, (kinds.layers.Dense,) + kinds.unit_convs):
        if isinstance(raw, kinds.unit_convs) and (raw.groups != 1 or raw.data_format == 'channels_first'):
          walk.problem(first, f'{layer.name!r} is a grouped or channels_first convolution')
          walk.unsupported[raw.name] = 'grouped and channels_first convolutions are not unit-pruned'
          out = _fixed(_channels(output_shapes[0]))
        else:
          if first.tiles > 1 and not isinstance(raw, kinds.layers.Dense):
            walk.problem(first, f'{layer.name!r} convolves a flattened tensor')
          label = walk.new_group(raw, _channels(output_shapes[0]))
          walk.join(raw, ROLE_PRODUCER, label)
          out = Layout((Segment(label, walk.groups[label].size),), 1)
          problem = _activation_problem(raw, kinds)
          if problem:
            walk.problem(out, problem)
      elif isinstance(raw, kinds.layers.BatchNormalization):
        axes = raw.axis if isinstance(raw.axis, (list, tuple)) else [raw.axis]
        rank = output_shapes[0].rank
        single, name = _single(first, raw)
        if first.groups and ([a % rank for a in axes] != [rank - 1] or not single):
          walk.problem(first, f'{name} normalises along axis {raw.axis} or over several groups')
          out = _fixed(first.channels, first.tiles)
        elif first.groups:
          if not (raw.center or raw.scale):
            walk.problem(first, f'{name} has neither center nor scale, so a removed channel is not 0 after it')
          walk.join(raw, ROLE_BATCHNORM, first.segments[0].group)
          out = first
        else:
          out = first
      elif isinstance(raw, kinds.channelwise):
        problem = _activation_problem(raw, kinds)
        if problem:
          walk.problem(first, problem)
        out = first
      elif isinstance(raw, kinds.layers.Flatten) and raw.data_format != 'channels_first':
        shape = tf.TensorShape(node.input_shape)
        positions = math.prod(int(d) for d in shape[1:-1]) if shape.rank > 2 else 1
        if positions > 1 and first.tiles > 1:
          walk.problem(first, f'{layer.name!r} flattens a tensor that was flattened before')
        out = Layout(first.segments, first.tiles * positions)
      elif isinstance(raw, kinds.layers.Concatenate):
        rank = output_shapes[0].rank
        if raw.axis % rank == rank - 1:
          if any(layout.tiles > 1 for layout in inputs):
            for layout in inputs:
              walk.problem(layout, f'{layer.name!r} concatenates flattened tensors')
            out = _fixed(_channels(output_shapes[0]))
          else:
            out = Layout(tuple(s for layout in inputs for s in layout.segments), 1)
        else:
          out = walk.merge(raw, inputs)
      elif isinstance(raw, kinds.merges):
        out = walk.merge(raw, inputs)
      else:
        for layout in inputs:
          walk.problem(layout, f'{layer.name!r} ({type(raw).__name__}) consumes them, which unit pruning cannot '
                       'follow')
        if raw.weights and not isinstance(raw, kinds.layers.InputLayer):
          walk.unsupported[raw.name] = f'{type(raw).__name__} has no units granularity=\'unit\' prunes'
    if out is None:
      out = _fixed(_channels(output_shapes[0]))
    for tensor_id in node.output_ids:
      layouts[tensor_id] = out
  for tensor_id in output_ids:
    walk.pin(walk.resolve(layouts[tensor_id]), 'they are model outputs')
  groups = {label: group for label, group in walk.groups.items()}
  group_of = {name: walk.root(label) for name, label in walk.group_of.items()}
  input_layouts = {name: walk.resolve(layout) for name, layout in walk.input_layouts.items()}
  return UnitPlan(groups, group_of, input_layouts, walk.unsupported)


def unit_settings(plan, prunable_names, layer_rates):
  """{layer name: {'layer_rate', 'unit_group'}} for the layers unit granularity wraps; raises before any change.

  Layers whose units cannot be removed exactly are refused unless their rate is 0. Groups that are model
  outputs or tied to the model's input are kept whole (rate 0). A BatchNormalization is wrapped (its gamma
  and beta masked) only where its channels are pruned.

  Args:
    plan: The model's `UnitPlan`.
    prunable_names: The names of the model's prunable layers, in order.
    layer_rates: {layer name: rate} given by the user (checked names).

  Returns:
    {layer name: {'layer_rate': rate or None, 'unit_group': the group's label}}, the wrapper arguments of
    each layer to wrap.

  Raises:
    ValueError: for tied layers given different rates, a rate for units that are kept whole, units that
      cannot be removed exactly (unless their rate is 0), or a prunable layer unit pruning cannot prune.
  """
  settings = {}
  for group in plan.groups.values():
    ranked = group.layer_names(ROLE_PRODUCER) + group.layer_names(ROLE_DEPTHWISE)
    rates = {layer_rates.get(name) for name in ranked}
    if len(rates) > 1:
      raise ValueError(f'layers {ranked} prune the same units (they are tied, e.g. by a residual Add), so they need '
                       f'one rate; layer_rates gives {sorted(rates, key=str)}: give them all the same rate')
    rate = rates.pop()
    if group.pinned:
      if rate not in (None, 0):
        raise ValueError(f'the units of layers {ranked} cannot be removed ({group.pinned}), so they are kept whole '
                         "in granularity='unit': drop them from layer_rates (or set 0)")
      rate = 0.0
    elif group.problems and rate != 0:
      raise ValueError(f'the units of layers {ranked} cannot be removed exactly: {group.problems[0]}. Give them '
                       f'layer_rates={{{ranked[0]!r}: 0.0, ...}} to keep them whole, or use granularity=\'weight\'')
    for name in ranked + (group.layer_names(ROLE_BATCHNORM) if rate != 0 else []):
      settings[name] = {'layer_rate': rate, 'unit_group': group.label}
  for name in prunable_names:
    if name in settings:
      continue
    if layer_rates.get(name) != 0:
      reason = plan.unsupported.get(name, 'it has no units unit pruning knows')
      raise ValueError(f"granularity='unit' cannot prune layer {name!r}: {reason}. Give it layer_rates "
                       f"{{{name!r}: 0.0}} to leave it dense and unwrapped, or use granularity='weight'")
  return settings


def wrapper_arguments(name, is_prunable, settings, layer_rates):
  """The rate (and unit group) arguments of a layer's wrapper when a model is wrapped, or None: left unwrapped.

  Args:
    name: The layer's name.
    is_prunable: Whether granularity='weight' wraps the layer.
    settings: `unit_settings` in unit granularity (it alone says what is wrapped), else None.
    layer_rates: {layer name: rate} given by the user.

  Returns:
    A dict of `PruneLotteryTicket` arguments ('layer_rate', and 'unit_group' in unit granularity), or None.
  """
  if settings is not None:
    return settings.get(name)
  return {'layer_rate': layer_rates.get(name)} if is_prunable else None
