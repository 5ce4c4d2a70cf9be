"""Walking a Keras model for both front ends: its lottery wrappers, the weights outside them, a model check.

A Keras 2 and a Keras 3 model have the same shape to walk (`layers`,
`weights`, nested models), so one walk serves both: each front end gives its
wrapper and model classes. Variables are told apart by `id` (a TensorFlow
variable is not hashable), which holds while the walk keeps them alive.
"""

import contextlib


def lottery_wrappers(model, wrapper_type, model_type):
  """All wrappers of `wrapper_type` in a model (nested models included), a layer or a list of them, in order."""
  if isinstance(model, (list, tuple)):
    return [w for item in model for w in lottery_wrappers(item, wrapper_type, model_type)]
  if isinstance(model, wrapper_type):
    return [model]
  if isinstance(model, model_type):
    return [w for layer in model.layers for w in lottery_wrappers(layer, wrapper_type, model_type)]
  return []


def check_built(wrappers):
  """Returns `wrappers`, checked to be non-empty and built.

  Raises:
    ValueError: if there is no wrapper, or one is not built yet.
  """
  if not wrappers:
    raise ValueError('model has no PruneLotteryTicket layer: wrap it with ltp_tfmot.prune_lottery_ticket first')
  unbuilt = [w.name for w in wrappers if not w.built]
  if unbuilt:
    raise ValueError(f'layers {unbuilt} are not built yet: call the model on data (or model.build) first')
  return wrappers


def weights_outside(model, wrapper_type, model_type):
  """The weights of a model's layers outside its lottery wrappers, with their layer, in order, each once.

  These are BatchNormalization's gamma, beta and moving statistics, LayerNormalization's and those of any
  other layer left unwrapped, in nested models too. A layer or a list of layers has none.

  Returns:
    A list of (layer, weight) pairs.
  """
  if not isinstance(model, model_type):
    return []
  inside = {id(v) for w in lottery_wrappers(model, wrapper_type, model_type) for v in w.weights}
  pairs, seen = [], set()

  def visit(container):
    for layer in container.layers:
      if isinstance(layer, wrapper_type):
        continue
      if isinstance(layer, model_type):
        visit(layer)
        continue
      for weight in layer.weights:
        if id(weight) not in inside and id(weight) not in seen:
          seen.add(id(weight))
          pairs.append((layer, weight))

  visit(model)
  return pairs


def subclassed_model_error(model):
  """The error for a subclassed model given to `prune_lottery_ticket`, whose layers cannot be replaced."""
  return ValueError(f'to_prune is a subclassed model ({type(model).__name__}), whose layers cannot be replaced '
                    'from outside: wrap its prunable layers with prune_lottery_ticket(layer) inside its __init__, '
                    'or build it as a Sequential or functional model')


@contextlib.contextmanager
def restored_on_error(variables, read):
  """Puts every variable back to its value (`read(variable)`) if the block raises."""
  saved = [(variable, read(variable)) for variable in variables]
  try:
    yield
  except Exception:
    for variable, value in saved:
      variable.assign(value)
    raise
