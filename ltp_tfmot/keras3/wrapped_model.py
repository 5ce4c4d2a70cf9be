"""The lottery wrappers of a Keras 3 model, their variables' values and the training steps they count.

A model, a layer or a list of layers holding Keras 3 `PruneLotteryTicket`
wrappers is what every round-boundary function takes. This module finds the
wrappers (nested models included), reads variables on any backend, and keeps
the model's training-step count, which the wrappers hold so that it is saved
with the model.
"""

import keras
import numpy as np
import tensorflow as tf

from ltp_tfmot.core import model_walk
from ltp_tfmot.core import steps as steps_lib
from ltp_tfmot.keras3 import wrapper as wrapper_lib


def lottery_wrappers(model):
  """All lottery wrappers in a Keras 3 model (nested models included), in order.

  Args:
    model: A Keras 3 model, a layer, or a list of them.

  Returns:
    A list of `ltp_tfmot.keras3.wrapper.PruneLotteryTicket` layers.
  """
  return model_walk.lottery_wrappers(model, wrapper_lib.PruneLotteryTicket, keras.Model)


def built_lottery_wrappers(model):
  """`lottery_wrappers(model)`, checked to be non-empty and built.

  Raises:
    ValueError: if there is no wrapper, or one is not built yet.
  """
  return model_walk.check_built(lottery_wrappers(model))


def value(variable):
  """A Keras 3 variable's (or a backend tensor's) value as a NumPy array, on any backend."""
  # The backend's array, not the variable: NumPy 2 warns on every Keras variable it converts (its __array__ takes
  # no `copy` argument).
  return keras.ops.convert_to_numpy(variable.value if isinstance(variable, keras.Variable) else variable)


def read_int(variable):
  """A Keras 3 counter variable's value as an int."""
  return int(value(variable))


def read(variable):
  """A Keras 3 variable's value as a TensorFlow tensor (for the shared mask maths, outside training steps)."""
  return tf.constant(value(variable))


def model_optimizer(model, optimizer):
  """The optimizer that trains a model: the one given, else the model's own (None if it has none)."""
  if optimizer is None and isinstance(model, keras.Model):
    optimizer = getattr(model, 'optimizer', None)
  return optimizer


def steps_done(model, optimizer=None):
  """The training steps a wrapped Keras 3 model has taken, as its schedule counts them.

  The count is `step_offset + optimizer.iterations`, the offset kept in the
  wrappers and moved when a round resets the optimizer; it never goes below
  the count last recorded in `pruning_step`, which a model loaded without its
  optimizer's state resumes from.

  Args:
    model: A Keras 3 model, layer or list of layers holding lottery wrappers.
    optimizer: The optimizer that trains it; defaults to `model.optimizer`.

  Returns:
    The number of training steps, an int >= 0.
  """
  first = built_lottery_wrappers(model)[0]
  optimizer = model_optimizer(model, optimizer)
  iterations = None if optimizer is None else read_int(optimizer.iterations)
  return steps_lib.steps_done(first, iterations, read_int, wrapper_lib.NOT_COUNTING)


def count_steps_with(model, optimizer, steps=None):
  """Makes the model's step count continue from `steps` with the optimizer's iterations.

  Args:
    model: A Keras 3 model, layer or list of layers holding lottery wrappers.
    optimizer: The optimizer whose steps are counted from now on.
    steps: The steps done now (default: `steps_done(model, optimizer)`).

  Returns:
    The offset: steps done = offset + `optimizer.iterations`.
  """
  wrappers = built_lottery_wrappers(model)
  if steps is None:
    steps = steps_done(wrappers, optimizer)
  return steps_lib.count_steps_with(wrappers, read_int(optimizer.iterations), steps)


def as_array(tensor, dtype):
  """A TensorFlow tensor as a NumPy array of a variable's dtype, ready to assign on any backend."""
  return np.asarray(tensor).astype(dtype)
