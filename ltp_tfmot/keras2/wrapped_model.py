"""The lottery wrappers of a model, their random draws and the training steps they count.

A model, a layer or a list of layers holding `PruneLotteryTicket` wrappers is what
every round-boundary function (`take_snapshot`, `run_lottery_round`, ...) takes.
This module finds its wrappers (nested models included), derives the seed of each
random draw from a wrapper's seed and position (never from layer names, so two
builds of one architecture draw the same numbers), and keeps the model's
training-step count, which the wrappers hold so that it is saved with the model.
"""

import tf_keras as keras

from ltp_tfmot.core import model_walk
from ltp_tfmot.core import steps as steps_lib
from ltp_tfmot.keras2 import wrapper as wrapper_lib


def lottery_wrappers(model):
  """All `PruneLotteryTicket` wrappers in a model (nested models included), in order.

  Args:
    model: A Keras model, a layer, or a list of them.

  Returns:
    A list of `PruneLotteryTicket` layers.
  """
  return model_walk.lottery_wrappers(model, wrapper_lib.PruneLotteryTicket, keras.Model)


def built_lottery_wrappers(model):
  """`lottery_wrappers(model)`, checked to be non-empty and built.

  Args:
    model: A Keras model, a layer, or a list of them.

  Returns:
    A non-empty list of built `PruneLotteryTicket` layers.

  Raises:
    TypeError: for a Keras 3 object.
    ValueError: if there is no wrapper, or one is not built yet.
  """
  wrapper_lib.check_tf_keras(model, 'model')
  return model_walk.check_built(lottery_wrappers(model))


def read_int(variable):
  """A counter variable's value as an int."""
  return int(variable.numpy())


def model_optimizer(model, optimizer):
  """The optimizer that trains a model: the one given, else the model's own.

  Args:
    model: A model, layer or list of layers holding `PruneLotteryTicket` wrappers.
    optimizer: An optimizer, or None for `model.optimizer`.

  Returns:
    `optimizer`; if it is None, `model.optimizer` for a `keras.Model` that has one, else None.
  """
  if optimizer is None and isinstance(model, keras.Model):
    optimizer = getattr(model, 'optimizer', None)
  return optimizer


def steps_done(model, optimizer=None):
  """The training steps a wrapped model has taken, as its schedule counts them.

  A step is one optimizer step (one `fit` batch), however many times the step
  calls the model or a shared layer. The count is `step_offset +
  optimizer.iterations`, the offset being kept in the wrappers (so saved with
  the model) and moved by `run_lottery_round` when it resets the optimizer;
  it never goes below the count last recorded in `pruning_step` (by
  `UpdateLotteryStep` at the first batch, each round, each epoch end and the
  end of `fit`), which is what a model loaded without its optimizer's state
  resumes from.

  Args:
    model: A model, layer or list of layers holding `PruneLotteryTicket` wrappers.
    optimizer: The optimizer that trains it; defaults to `model.optimizer` if any.

  Returns:
    The number of training steps, an int >= 0.

  Raises:
    ValueError: for a model without built lottery wrappers.
  """
  first = built_lottery_wrappers(model)[0]
  optimizer = model_optimizer(model, optimizer)
  iterations = None if optimizer is None else read_int(optimizer.iterations)
  return steps_lib.steps_done(first, iterations, read_int, wrapper_lib.NOT_COUNTING)


def count_steps_with(model, optimizer, steps=None):
  """Makes the model's step count continue from `steps` with the optimizer's iterations.

  Call it after changing `optimizer.iterations` (a round's reset does) or
  after changing optimizers. `UpdateLotteryStep` does, and records the count
  in `pruning_step`.

  Args:
    model: A model, layer or list of layers holding `PruneLotteryTicket` wrappers.
    optimizer: The optimizer whose steps are counted from now on.
    steps: The steps done now (default: `steps_done(model, optimizer)`).

  Returns:
    The offset: steps done = offset + `optimizer.iterations`.
  """
  wrappers = built_lottery_wrappers(model)
  if steps is None:
    steps = steps_done(wrappers, optimizer)
  return steps_lib.count_steps_with(wrappers, read_int(optimizer.iterations), steps)
