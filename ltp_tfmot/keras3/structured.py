"""Cutting the removed units out of a structured Keras 3 ticket: a smaller model that runs faster.

The Keras 3 counterpart of `ltp_tfmot.methods.structured` (which serves tf_keras
models), on the same Keras-free slicing (`ltp_tfmot.core.unit_shrink`): the
units a ticket pruned with `granularity='unit'` removed are exactly 0, so a
model without them gives the same outputs. Weights are read as NumPy arrays,
so it works on the TensorFlow and the JAX backend alike.
"""

import keras

from ltp_tfmot.core import unit_shrink
from ltp_tfmot.keras3 import prune as prune_lib
from ltp_tfmot.keras3 import unit_groups
from ltp_tfmot.keras3 import wrapped_model
from ltp_tfmot.keras3 import wrapper as wrapper_lib


def kept_units(model):
  """Which units of each unit group of a stripped Keras 3 model are kept by `shrink`.

  A unit is removed when every layer of its group makes it exactly 0 (see
  `ltp_tfmot.methods.structured.kept_units`: the same rules).

  Args:
    model: A Sequential or functional Keras 3 model without pruning wrappers.

  Returns:
    `(plan, kept)`: the model's `ltp_tfmot.core.unit_plan.UnitPlan` and {group
    label: NumPy bool vector of kept units}.

  Raises:
    ValueError: for a model that is no Sequential or functional model with a
      known input, or has nested models or shared layers.
  """
  plan = unit_groups.unit_plan(model)
  return plan, unit_shrink.kept_units(plan, {layer.name: layer for layer in model.layers})


def shrink(model):
  """Rebuilds a structured Keras 3 ticket as a smaller model with its removed units gone.

  The Keras 3 counterpart of `ltp_tfmot.methods.structured.shrink`: Dense
  layers lose their removed neurons, Convs their filters, and their consumers
  the matching inputs; the outputs equal the masked model's up to float
  rounding. The result is a plain, uncompiled Keras 3 model (no wrappers)
  with the same layer names.

  Args:
    model: A Sequential or functional Keras 3 model, wrapped with
      `prune_lottery_ticket` (its masks are applied first, as by
      `strip_pruning`) or stripped.

  Returns:
    A new, smaller `keras.Model`.

  Raises:
    TypeError: for a model that is no Keras 3 model.
    ValueError: for a model that is no Sequential or functional model with a
      known input, or has nested models or shared layers. The model is not
      changed (a wrapped model only has its masks applied).
  """
  prune_lib.check_keras3(model, 'model')
  if not isinstance(model, keras.Model):
    raise TypeError(f'model must be a Keras 3 Model, got {type(model).__name__}')
  unit_groups.unit_plan(model)  # refuses nested models and shared layers before the masks are applied
  if any(isinstance(layer, wrapper_lib.PruneLotteryTicket) for layer in model.layers):
    wrapped_model.built_lottery_wrappers(model)
    model = prune_lib.strip_pruning(model)
  plan, kept = kept_units(model)
  return unit_shrink.shrunk_model(model, plan, kept, wrapper_lib.UNIT_KINDS, keras.models.clone_model)
