"""Which output units of a tf_keras model are tied together, found from its functional graph.

Structured (unit-granularity) pruning removes whole output units: neurons of
Dense layers, filters of Conv1D/2D/3D layers, channels of DepthwiseConv2D
layers, with the units tied by residual merges, BatchNormalization and
DepthwiseConv2D layers pruned together. The grouping itself knows no Keras
(`ltp_tfmot.core.unit_plan`); this module reads a tf_keras model's graph into
it and says which tf_keras layers have units.
"""

import tensorflow as tf
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper
import tf_keras as keras

from ltp_tfmot.core import unit_plan as unit_plan_lib

# The tf_keras layer classes unit grouping tells apart.
KINDS = unit_plan_lib.LayerKinds(keras.layers, keras.Model)


def has_units(layer):
  """Whether granularity='unit' can wrap `layer`: a Dense, Conv1D/2D/3D, DepthwiseConv2D or BatchNormalization.

  Args:
    layer: An unwrapped tf_keras layer.

  Returns:
    True for a Dense, a Conv1D/2D/3D (not transposed), a DepthwiseConv2D or a BatchNormalization.
  """
  return KINDS.has_units(layer)


def unwrapped(layer):
  """The layer inside a pruning wrapper (ours or tfmot's), or the layer itself."""
  return layer.layer if isinstance(layer, pruning_wrapper.PruneLowMagnitude) else layer


def unit_plan(model):
  """The unit groups of a Sequential or functional tf_keras model.

  Args:
    model: A built Sequential or functional model, wrapped or not. Nested
      models and layers called more than once are refused.

  Returns:
    A `ltp_tfmot.core.unit_plan.UnitPlan`.

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
    raise unit_plan_lib.not_a_graph_error(model.name, 'keras.Input (or input_shape=)')
  nodes = []
  for node in unit_plan_lib.in_graph_order(model._nodes_by_depth):  # pylint: disable=protected-access
    input_shape = tf.nest.flatten(node.input_tensors)[0].shape if node.flat_input_ids else None
    nodes.append(unit_plan_lib.GraphNode(node.layer, unwrapped(node.layer), node.flat_input_ids,
                                         node.flat_output_ids, [t.shape for t in tf.nest.flatten(node.outputs)],
                                         input_shape))
  return unit_plan_lib.plan_units(nodes, [str(id(tensor)) for tensor in model.outputs], KINDS)
