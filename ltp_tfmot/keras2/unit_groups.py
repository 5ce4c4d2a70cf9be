"""Which output units of a model are tied together, found from its functional graph.

Structured (unit-granularity) pruning removes whole output units: neurons of
Dense layers, filters of Conv1D/2D/3D layers, channels of DepthwiseConv2D
layers. A unit cannot always be removed on its own: the channels of the
inputs of a residual `Add` are one channel of its output, a
BatchNormalization's channel and a DepthwiseConv2D's channel follow the
channel they are computed from. `unit_plan` walks the graph once and returns
the groups of layers whose units go together, what consumes each group (for
`shrink`), and why a group cannot be pruned where it cannot.

A removed unit must be exactly zero wherever it is consumed, so that cutting
it out of its consumers changes nothing: its kernel slice and bias are masked,
a BatchNormalization after it has its gamma and beta masked, and every layer
on the way must map 0 to 0 (ReLU, ReLU6, pooling, padding, Add, ... do;
a sigmoid does not, and is refused).
"""

import collections
import math

import numpy as np
import tensorflow as tf
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper
import tf_keras as keras

ROLE_PRODUCER = 'producer'
ROLE_DEPTHWISE = 'depthwise'
ROLE_BATCHNORM = 'batchnorm'

# Layers applied to each channel on its own, which map a zero channel to zero (activations are checked).
_CHANNELWISE = (
    keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU, keras.layers.Dropout,
    keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D, keras.layers.SpatialDropout3D,
    keras.layers.GaussianNoise, keras.layers.ActivityRegularization,
    keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D, keras.layers.AveragePooling2D, keras.layers.AveragePooling3D,
    keras.layers.GlobalMaxPooling1D, keras.layers.GlobalMaxPooling2D, keras.layers.GlobalMaxPooling3D,
    keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D, keras.layers.GlobalAveragePooling3D,
    keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D, keras.layers.ZeroPadding3D,
    keras.layers.Cropping1D, keras.layers.Cropping2D, keras.layers.Cropping3D,
    keras.layers.UpSampling1D, keras.layers.UpSampling2D, keras.layers.UpSampling3D,
)
# Merges whose output channel c is computed from channel c of every input, 0 from all-zero inputs.
_MERGES = (keras.layers.Add, keras.layers.Subtract, keras.layers.Average, keras.layers.Maximum,
           keras.layers.Minimum, keras.layers.Multiply)
# The convolutions whose filters are units (their transposed subclasses are not: see NOT_UNIT_CONVS).
UNIT_CONVS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
# Convolutions whose channels unit pruning cannot follow: it neither removes their outputs nor cuts their inputs.
NOT_UNIT_CONVS = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose,
                  keras.layers.SeparableConv1D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv1D)
# The layers granularity='unit' wraps: the producers of units (Dense, UNIT_CONVS) and the layers whose channels
# follow a producer's (DepthwiseConv2D, BatchNormalization), all masked unit for unit.
UNIT_LAYERS = (keras.layers.Dense,) + UNIT_CONVS + (keras.layers.DepthwiseConv2D, keras.layers.BatchNormalization)


def has_units(layer):
  """Whether granularity='unit' can wrap `layer`: one of UNIT_LAYERS, and not one of NOT_UNIT_CONVS.

  Args:
    layer: An unwrapped tf_keras layer.

  Returns:
    True for a Dense, a Conv1D/2D/3D (not transposed), a DepthwiseConv2D or a BatchNormalization.
  """
  return isinstance(layer, UNIT_LAYERS) and not isinstance(layer, NOT_UNIT_CONVS)


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
  """The unit groups of a model and the layout of every layer's input (see `unit_plan`).

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


def unwrapped(layer):
  """The layer inside a pruning wrapper (ours or tfmot's), or the layer itself."""
  return layer.layer if isinstance(layer, pruning_wrapper.PruneLowMagnitude) else layer


def _maps_zero_to_zero(fn):
  value = fn(tf.zeros([1, 1], tf.float32))
  return bool(np.all(np.asarray(value) == 0))


def _activation_problem(layer):
  """Why a layer's activation does not map 0 to 0, or None."""
  activation = getattr(layer, 'activation', None)
  if isinstance(layer, keras.layers.Activation) or (activation is not None and not isinstance(layer, (
      keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU))):
    if activation is not None and not _maps_zero_to_zero(activation):
      name = getattr(activation, '__name__', type(activation).__name__)
      return f'{layer.name!r} applies {name}, which does not map 0 to 0'
    return None
  if isinstance(layer, (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU)):
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


def unit_plan(model):  # pylint: disable=too-many-branches,too-many-statements
  """The unit groups of a Sequential or functional tf_keras model.

  Args:
    model: A built Sequential or functional model, wrapped or not. Nested
      models and layers called more than once are refused.

  Returns:
    A `UnitPlan`.

  Raises:
    ValueError: for a subclassed model, a nested model or a layer of the
      model called more than once.

  Example:

  ```python
  plan = unit_plan(ltp_tfmot.models.cifar_resnet(20, seed=0))
  plan.groups['conv0'].members   # conv0, bn0 and every block's conv2/bn2 of stage 1
  ```
  """
  if not getattr(model, '_is_graph_network', False):
    raise ValueError(f'model {model.name!r} is not a Sequential or functional model with a known input: '
                     "granularity='unit' and shrink follow the model's graph; build it with keras.Input (or "
                     'input_shape=) as a Sequential or functional model')
  walk = _Walk()
  layouts = {}
  node_counts = collections.Counter()
  nodes = [node for depth in sorted(model._nodes_by_depth, reverse=True)  # pylint: disable=protected-access
           for node in model._nodes_by_depth[depth]]  # pylint: disable=protected-access
  for node in nodes:
    node_counts[node.layer.name] += 1
  for node in nodes:
    layer = node.layer
    raw = unwrapped(layer)
    if isinstance(raw, keras.Model):
      raise ValueError(f'layer {layer.name!r} is a nested model: structured pruning and shrink follow one graph; '
                       'build the model flat (call the inner model\'s layers directly), or use '
                       "granularity='weight'")
    if node_counts[layer.name] > 1 and raw.weights:
      raise ValueError(f'layer {layer.name!r} is called {node_counts[layer.name]} times: the units of a shared '
                       "layer cannot follow two graphs; use granularity='weight'")
    inputs = [layouts[tensor_id] for tensor_id in node.flat_input_ids]
    inputs = [walk.resolve(layout) for layout in inputs]
    output_shapes = [tf.TensorShape(t.shape) for t in tf.nest.flatten(node.outputs)]
    if not inputs:  # an InputLayer
      out = _fixed(_channels(output_shapes[0]))
    else:
      first = inputs[0]
      if raw.weights:
        walk.input_layouts[raw.name] = first
      out = None
      if isinstance(raw, keras.layers.DepthwiseConv2D):
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
            problem = _activation_problem(raw)
            if problem:
              walk.problem(first, problem)
            out = first
      elif isinstance(raw, NOT_UNIT_CONVS):
        walk.problem(first, f'{layer.name!r} ({type(raw).__name__}) consumes them, which unit pruning cannot follow')
        walk.unsupported[raw.name] = f'{type(raw).__name__} has no units granularity=\'unit\' prunes'
      elif isinstance(raw, (keras.layers.Dense,) + UNIT_CONVS):
        if isinstance(raw, UNIT_CONVS) and (raw.groups != 1 or raw.data_format == 'channels_first'):
          walk.problem(first, f'{layer.name!r} is a grouped or channels_first convolution')
          walk.unsupported[raw.name] = 'grouped and channels_first convolutions are not unit-pruned'
          out = _fixed(_channels(output_shapes[0]))
        else:
          if first.tiles > 1 and not isinstance(raw, keras.layers.Dense):
            walk.problem(first, f'{layer.name!r} convolves a flattened tensor')
          label = walk.new_group(raw, _channels(output_shapes[0]))
          walk.join(raw, ROLE_PRODUCER, label)
          out = Layout((Segment(label, walk.groups[label].size),), 1)
          problem = _activation_problem(raw)
          if problem:
            walk.problem(out, problem)
      elif isinstance(raw, keras.layers.BatchNormalization):
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
      elif isinstance(raw, _CHANNELWISE):
        problem = _activation_problem(raw)
        if problem:
          walk.problem(first, problem)
        out = first
      elif isinstance(raw, keras.layers.Flatten) and raw.data_format != 'channels_first':
        shape = tf.TensorShape(tf.nest.flatten(node.input_tensors)[0].shape)
        positions = math.prod(int(d) for d in shape[1:-1]) if shape.rank > 2 else 1
        if positions > 1 and first.tiles > 1:
          walk.problem(first, f'{layer.name!r} flattens a tensor that was flattened before')
        out = Layout(first.segments, first.tiles * positions)
      elif isinstance(raw, keras.layers.Concatenate):
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
      elif isinstance(raw, _MERGES):
        out = walk.merge(raw, inputs)
      else:
        for layout in inputs:
          walk.problem(layout, f'{layer.name!r} ({type(raw).__name__}) consumes them, which unit pruning cannot '
                       'follow')
        if raw.weights and not isinstance(raw, keras.layers.InputLayer):
          walk.unsupported[raw.name] = f'{type(raw).__name__} has no units granularity=\'unit\' prunes'
    outputs = node.flat_output_ids
    if out is None:
      out = _fixed(_channels(output_shapes[0]))
    for tensor_id in outputs:
      layouts[tensor_id] = out
  for tensor in model.outputs:
    walk.pin(walk.resolve(layouts[str(id(tensor))]), 'they are model outputs')
  groups = {label: group for label, group in walk.groups.items()}
  group_of = {name: walk.root(label) for name, label in walk.group_of.items()}
  input_layouts = {name: walk.resolve(layout) for name, layout in walk.input_layouts.items()}
  return UnitPlan(groups, group_of, input_layouts, walk.unsupported)
