"""Which output units of a Keras 3 model are tied together, found from its functional graph.

The Keras 3 counterpart of `ltp_tfmot.keras2.unit_groups`: structured
(unit-granularity) pruning removes whole output units (Dense neurons,
Conv1D/2D/3D filters, DepthwiseConv2D channels), with the units tied by
residual merges, BatchNormalization and DepthwiseConv2D layers pruned
together. The grouping itself knows no Keras (`ltp_tfmot.core.unit_plan`);
this module reads a Keras 3 model's graph (its operations' nodes, on any
backend) into it.
"""

import keras

from ltp_tfmot.core import unit_plan as unit_plan_lib
from ltp_tfmot.keras3 import wrapper as wrapper_lib


def graph_of(model):
  """The functional graph of a Keras 3 Sequential or functional model with a known input, or None.

  Args:
    model: A Keras 3 model.

  Returns:
    The model itself for a functional model, the functional model a Sequential built on its `Input` holds,
    or None (a subclassed model, or a Sequential not built from an input).
  """
  if isinstance(model, keras.Sequential):
    return getattr(model, '_functional', None)
  if any(cls.__name__ == 'Functional' and cls.__module__.startswith('keras.') for cls in type(model).__mro__):
    return model
  return None


def unit_plan(model):
  """The unit groups of a Sequential or functional Keras 3 model.

  Args:
    model: A built Keras 3 Sequential or functional model, wrapped with
      `prune_lottery_ticket` or not. Nested models and layers called more
      than once are refused.

  Returns:
    A `ltp_tfmot.core.unit_plan.UnitPlan`.

  Raises:
    ValueError: for a subclassed model, a Sequential without a known input,
      a nested model or a layer of the model called more than once.

  Example:

  ```python
  model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(300, activation='relu'),
                            keras.layers.Dense(10, name='output')])
  unit_plan(model).groups['output'].pinned   # 'they are model outputs'
  ```
  """
  graph = graph_of(model)
  if graph is None:
    raise unit_plan_lib.not_a_graph_error(model.name, 'keras.Input')
  nodes = []
  for node in unit_plan_lib.in_graph_order(graph._nodes_by_depth):  # pylint: disable=protected-access
    layer = node.operation
    raw = layer.layer if isinstance(layer, wrapper_lib.PruneLotteryTicket) else layer
    inputs = node.input_tensors
    nodes.append(unit_plan_lib.GraphNode(layer, raw, [id(t) for t in inputs], [id(t) for t in node.outputs],
                                         [t.shape for t in node.outputs], inputs[0].shape if inputs else None))
  return unit_plan_lib.plan_units(nodes, [id(tensor) for tensor in graph.outputs], wrapper_lib.UNIT_KINDS)
