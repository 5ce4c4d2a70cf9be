"""Cutting the removed units out of a structured tf_keras ticket: a smaller model that runs faster.

The slicing itself knows no Keras (`ltp_tfmot.core.unit_shrink`); the Keras 3
front end's counterpart is `ltp_tfmot.keras3.structured`, and `ltp_tfmot.shrink`
goes to the model's front end.
"""

import tf_keras as keras

from ltp_tfmot.core import unit_shrink
from ltp_tfmot.keras2 import prune as prune_lib
from ltp_tfmot.keras2 import unit_groups
from ltp_tfmot.keras2 import wrapped_model
from ltp_tfmot.keras2 import wrapper as wrapper_lib


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
    `(plan, kept)`: the model's `ltp_tfmot.core.unit_plan.UnitPlan` and {group label: NumPy
    bool vector of kept units}.
  """
  plan = unit_groups.unit_plan(model)
  return plan, unit_shrink.kept_units(plan, {layer.name: layer for layer in model.layers})


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
  return unit_shrink.shrunk_model(model, plan, kept, unit_groups.KINDS, keras.models.clone_model)
