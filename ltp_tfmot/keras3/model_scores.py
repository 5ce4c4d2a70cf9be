"""The scores of model criteria (SNIP, GraSP, SynFlow) for Keras 3 models, on the TensorFlow and JAX backends.

A `ModelCriterion` of `ltp_tfmot.core.criteria` differentiates the model with
a TensorFlow GradientTape, which runs a Keras 3 model on the TensorFlow
backend as it runs a Keras 2 one. On the JAX backend no tape sees the model,
so this module computes the built-in criteria functionally, with the
definitions of the TensorFlow functions (see their docstrings): the model runs
through `stateless_call` on given weight values, in inference mode, and
`jax.grad` differentiates it (GraSP's Hessian-gradient product is a `jax.jvp`
of the gradient). The weights differentiated are those the layers compute
with, masks applied, as the TensorFlow backend's wrappers assign them before
the layer reads them: the scores, and so the masks, are those of the
TensorFlow backend and of Keras 2. A criterion registered by the user scores
with TensorFlow code, which cannot differentiate a JAX model: it is refused
on JAX with the way to run it.
"""

import keras
import numpy as np
import tensorflow as tf

from ltp_tfmot import validation
from ltp_tfmot.core import criteria as criteria_lib
from ltp_tfmot.keras3 import wrapped_model


def model_scores(model, criterion, kernels, batch):
  """Scores the prunable weights of a wrapped Keras 3 model by a `ModelCriterion`, on its backend.

  Args:
    model: A Keras 3 model holding lottery wrappers.
    criterion: A `ModelCriterion` ('snip', 'grasp', 'synflow', their
      inversions, or, on the TensorFlow backend, one of the user's).
    kernels: The prunable weight variables to score.
    batch: `(x, y)` tensors from `criterion.batch(data)`, or None.

  Returns:
    A list of float32 TensorFlow tensors, one per kernel, shaped like it.

  Raises:
    ValueError: for a criterion of the user's on the JAX backend, a backend
      other than TensorFlow and JAX, a model compiled with several losses,
      or, for SynFlow, a model without a fixed input shape and no `batch`.
  """
  backend = keras.backend.backend()
  if backend == 'tensorflow':
    return criterion.score_model(model, kernels, batch)
  base, sign = _builtin_form(criterion)
  if backend != 'jax' or base is None:
    raise ValueError(f'criterion {criterion.name!r} scores with TensorFlow gradients, which do not see a Keras 3 '
                     f'model on the {backend} backend: run it with KERAS_BACKEND=tensorflow (the built-in '
                     f'{", ".join(validation.BUILTIN_MODEL_CRITERIA)} also run on jax)')
  scores = _JAX_SCORES[base](model, kernels, batch)
  return [tf.constant(sign * np.asarray(score, np.float32)) for score in scores]


def _builtin_form(criterion):
  """(built-in criterion name, +1 or -1 for its inversion), or (None, 1) for a criterion of the user's."""
  base = getattr(criterion, 'base', None)
  if base is not None and criterion.name == criteria_lib.inverted_name(base.name):
    name, sign = base.name, -1.0
  else:
    name, sign = criterion.name, 1.0
  return (name, sign) if name in validation.BUILTIN_MODEL_CRITERIA else (None, 1.0)


class _StatelessModel:
  """A wrapped Keras 3 model as a function of its kernels' values (the JAX backend's stateless call).

  Every variable takes its value now, except that each lottery wrapper's
  prunable weights take their masked values and its masks are ones: the call
  then computes with the masked weights, and their gradients are those of the
  weights the layers read, as on the TensorFlow backend.

  Args:
    model: A Keras 3 model holding lottery wrappers.
    kernels: The variables whose values the call takes as its argument.
    transform: A function applied to every variable's value first, or None.
  """

  def __init__(self, model, kernels, transform=None):
    self.model = model
    values = {id(v): v.value for v in model.variables}
    for w in wrapped_model.lottery_wrappers(model):
      values.update((id(weight), value) for weight, value in w.masked_values())
      values.update((id(mask), keras.ops.ones_like(mask.value)) for mask in w.masks)
    if transform is not None:
      values = {key: transform(value) for key, value in values.items()}
    self.values = values
    self.kernel_ids = [id(k) for k in kernels]
    self.kernels = [values[key] for key in self.kernel_ids]

  def __call__(self, kernel_values, inputs):
    """The model's outputs in inference mode with the kernels at `kernel_values`."""
    values = dict(self.values)
    values.update(zip(self.kernel_ids, kernel_values, strict=True))
    outputs, _ = self.model.stateless_call([values[id(v)] for v in self.model.trainable_variables],
                                           [values[id(v)] for v in self.model.non_trainable_variables],
                                           inputs, training=False)
    return outputs


def _loss(model):
  """`loss(y, outputs)`, a scalar in keras.ops: the model's compiled loss, else cross-entropy on logits; batch mean."""
  loss = getattr(model, 'loss', None)
  if isinstance(loss, (dict, list, tuple)):
    raise ValueError('the model is compiled with one loss per output; data-dependent criteria need one loss: '
                     'compile it with a single loss')
  if loss is None:
    return lambda y, logits: keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
        keras.ops.cast(y, 'int32'), keras.ops.cast(logits, 'float32'), from_logits=True))
  loss = keras.losses.get(loss)
  return lambda y, outputs: keras.ops.mean(loss(y, outputs))


def _as_arrays(tensors):
  return tf.nest.map_structure(np.asarray, tensors)


def _loss_of_kernels(model, kernels, batch):
  """(the model's kernels' masked values, `loss(kernel_values)` on the batch)."""
  stateless = _StatelessModel(model, kernels)
  loss = _loss(model)
  x, y = _as_arrays(batch)
  return stateless.kernels, lambda kernel_values: loss(y, stateless(kernel_values, x))


def _snip_scores(model, kernels, batch):
  """SNIP on JAX: |dL/dw * w| (as `core.criteria`'s TensorFlow SNIP)."""
  import jax  # pylint: disable=g-import-not-at-top  # the JAX backend's own library, there only

  weights, loss = _loss_of_kernels(model, kernels, batch)
  return [abs(g * w) for g, w in zip(jax.grad(loss)(weights), weights, strict=True)]


def _grasp_scores(model, kernels, batch):
  """GraSP on JAX, negated: w * (H g), H g the directional derivative of the gradient along itself."""
  import jax  # pylint: disable=g-import-not-at-top

  weights, loss = _loss_of_kernels(model, kernels, batch)
  gradient = jax.grad(loss)
  _, hessian_gradient = jax.jvp(gradient, (weights,), (gradient(weights),))
  return [w * hg for w, hg in zip(weights, hessian_gradient, strict=True)]


def _ones_input(model, batch):
  """SynFlow's input: one example of ones, shaped as the model's inputs (else as the batch's examples)."""
  inputs = getattr(model, 'inputs', None) or []
  shapes = [(tuple(t.shape[1:]), t.dtype) for t in inputs]
  if shapes and all(None not in shape for shape, _ in shapes):
    ones = [np.ones((1, *shape), dtype) for shape, dtype in shapes]
    return ones[0] if len(ones) == 1 else ones
  if batch is None:
    raise ValueError('synflow feeds an input of all ones shaped like the model\'s input, and this model has no fixed '
                     'input shape: build it with keras.Input(shape) or pass data=(x, y) to take the shape of x')
  return tf.nest.map_structure(lambda x: np.ones_like(x[:1]), _as_arrays(batch[0]))


def _synflow_scores(model, kernels, batch):
  """SynFlow on JAX: |dR/dw * w| with every float variable made positive, R the sum of outputs for ones."""
  import jax  # pylint: disable=g-import-not-at-top

  positive = lambda value: abs(value) if keras.backend.is_float_dtype(value.dtype) else value
  stateless = _StatelessModel(model, kernels, transform=positive)
  inputs = _ones_input(model, batch)

  def flow(kernel_values):
    outputs = tf.nest.flatten(stateless(kernel_values, inputs))
    return sum(keras.ops.sum(keras.ops.cast(out, 'float32')) for out in outputs)

  weights = stateless.kernels
  return [abs(g * w) for g, w in zip(jax.grad(flow)(weights), weights, strict=True)]


_JAX_SCORES = {'snip': _snip_scores, 'grasp': _grasp_scores, 'synflow': _synflow_scores}
