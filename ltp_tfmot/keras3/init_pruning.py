"""The Keras 3 side of pruning at initialization: a Keras 3 model's wrappers, scores and masks.

`ltp_tfmot.prune_at_initialization` (`ltp_tfmot.methods.init_pruning`) sets
masks from scores with the selection both front ends share; this module is
what it asks of a Keras 3 model, on the TensorFlow or JAX backend, by the
names of the Keras 2 side that `methods.init_pruning` makes, so that one loop
serves both: the wrappers, their variables read as TensorFlow tensors
(`rounds.TensorView`, as a round reads them), the scores of a model
criterion on the model's backend (`model_scores`), and applying the masks.
"""

import types

import keras

from ltp_tfmot.keras3 import model_scores
from ltp_tfmot.keras3 import rounds
from ltp_tfmot.keras3 import wrapped_model


def front_end_parts():
  """What `methods.init_pruning` uses of the Keras 3 front end, by the names the Keras 2 side has too.

  Returns:
    A namespace: `MODEL_CLASS`, `built_lottery_wrappers(model)`,
    `views(wrappers)`, `score_model(model, criterion, kernels, batch)`,
    `value(variable)` (NumPy), `apply_masks(wrappers)` and
    `layer_sparsity(wrappers)`.
  """
  return types.SimpleNamespace(
      MODEL_CLASS=keras.Model, built_lottery_wrappers=wrapped_model.built_lottery_wrappers, views=views,
      value=wrapped_model.value, apply_masks=rounds.apply_masks, layer_sparsity=rounds.layer_sparsity,
      score_model=model_scores.model_scores)


def holds_keras3(model):
  """Whether `model` is a Keras 3 layer (a model is one), or a list or tuple holding one.

  Args:
    model: What `prune_at_initialization` was given.

  Returns:
    True for a Keras 3 model, layer, or list of layers.
  """
  return any(isinstance(item, keras.layers.Layer) for item in (model if isinstance(model, (list, tuple)) else [model]))


def views(wrappers):
  """The wrappers as the shared selection reads them: their variables' values now, as TensorFlow tensors.

  Args:
    wrappers: Built Keras 3 lottery wrappers.

  Returns:
    One `rounds.TensorView` per wrapper, in order.
  """
  return [rounds.TensorView(w) for w in wrappers]
