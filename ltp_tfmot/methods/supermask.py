"""Learned supermasks: training a mask over frozen weights instead of the weights.

Two ways to learn which weights of an untrained network to keep, each with a
straight-through gradient from the masked kernel to one score per weight:

- 'bernoulli' (Zhou et al. 2019, "Deconstructing Lottery Tickets"): each
  forward pass samples the mask m ~ Bernoulli(sigmoid(s)); the gradient with
  respect to m is passed to sigmoid(s), so the network learns how likely each
  weight is to be kept (and so its own density).
- 'edge_popup' (Ramanujan et al. 2020, "What's hidden in a randomly weighted
  neural network?"): each layer keeps the k weights of highest score (k =
  `density` times its weights, exactly); the gradient with respect to the
  mask is passed to the scores unchanged.

The weights under the mask are frozen: the model's initial kernels, or their
signed constants (sign(w) times the std of the layer's initial kernel, Zhou et
al.'s "signed constant"); Dynamic Weight Rescaling multiplies the survivors by
n / n_kept per layer. Masks are computed with TensorFlow ops on whole tensors
inside the compiled training step.
"""

import contextlib

from absl import logging
import numpy as np
import tensorflow as tf
import tf_keras as keras

from ltp_tfmot import validation
from ltp_tfmot.core import masks as masks_lib
from ltp_tfmot.keras2 import model_layers
from ltp_tfmot.keras2 import wrapper as wrapper_lib

METHODS = ('bernoulli', 'edge_popup')
WEIGHTS = ('initial', 'signed_constant')
# Conv1D/2D/3D and their transposes keep their kernel in `kernel`; DepthwiseConv2D and SeparableConv do not.
_MASKED_LAYERS = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_NOT_MASKED = (keras.layers.DepthwiseConv2D, keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_EVAL_BATCH = 1000


def _default_optimizer(method):
  # edge-popup's paper trains scores with SGD, momentum 0.9, learning rate 0.1. Bernoulli scores start at 0
  # (p = 1/2) and need large steps to move the sigmoid; Adam at 0.1 does that on LeNet-300-100 (see README).
  if method == 'edge_popup':
    return keras.optimizers.SGD(learning_rate=0.1, momentum=0.9)
  return keras.optimizers.Adam(learning_rate=0.1)


class Supermask:
  """A learned supermask: per-layer masks over frozen weights, and the model they give.

  Returned by `train_supermask`; not made directly.

  Attributes:
    method: 'bernoulli' or 'edge_popup'.
    weights: 'initial' or 'signed_constant': what the frozen weights are.
    dynamic_weight_rescaling: Whether survivors are multiplied by n / n_kept.
    layer_names: The masked layers (Dense and convolutions), in model order.
    masks: {layer name: float32 NumPy array of 0 and 1}: the final
      deterministic mask (edge-popup: the top-k scores; Bernoulli:
      sigmoid(s) > 0.5, i.e. s > 0).
    scores: {layer name: NumPy array}: the learned scores.
    frozen_weights: {layer name: NumPy array}: the kernels under the mask.
    model: A plain tf_keras model (a clone of the one trained on) whose kernels
      are `frozen_weights * masks` (times n / n_kept with DWR); its other
      weights (biases) are the original model's. Uncompiled.
    history: {'loss': [...], 'accuracy': [...]} per epoch, over the training
      batches with the masks used in training (Bernoulli: sampled); with
      validation data also 'val_accuracy' (the deterministic masks) and, for
      Bernoulli, 'val_sampled_accuracy' (one sampled mask per epoch).
  """

  def __init__(self, method, weights, dynamic_weight_rescaling, layer_names, masks, scores, frozen_weights,
               model, history):
    self.method = method
    self.weights = weights
    self.dynamic_weight_rescaling = dynamic_weight_rescaling
    self.layer_names = layer_names
    self.masks = masks
    self.scores = scores
    self.frozen_weights = frozen_weights
    self.model = model
    self.history = history

  @property
  def density(self):
    """{layer name: fraction of its weights the deterministic mask keeps}."""
    return {name: float(np.mean(self.masks[name])) for name in self.layer_names}

  def sampled_model(self, seed):
    """A plain model with a Bernoulli mask sampled from the learned probabilities (Zhou et al. evaluate these).

    Args:
      seed: An int: the same seed samples the same masks.

    Returns:
      An uncompiled tf_keras model like `model`, with kernels
      `frozen_weights * m`, m ~ Bernoulli(sigmoid(scores)) (times n / n_kept
      with DWR).

    Raises:
      ValueError: for an edge-popup supermask, whose masks are not sampled.
    """
    if self.method != 'bernoulli':
      raise ValueError(f"sampled_model samples Bernoulli masks; this supermask is method={self.method!r}, whose "
                       'mask is deterministic: use .model')
    seed = wrapper_lib.check_seed(seed)
    masks = {}
    for i, name in enumerate(self.layer_names):
      probabilities = tf.sigmoid(tf.constant(self.scores[name]))
      masks[name] = _bernoulli(probabilities, tf.constant([seed, 0], tf.int64), i).numpy()
    return _masked_copy(self.model, self.layer_names, self.frozen_weights, masks, self.dynamic_weight_rescaling)


def _bernoulli(probabilities, seed, index):
  """A 0/1 sample of a tensor of keep probabilities, from a stateless seed folded with the layer's index."""
  layer_seed = tf.random.experimental.stateless_fold_in(seed, index)
  return tf.cast(tf.random.stateless_uniform(tf.shape(probabilities), seed=layer_seed) < probabilities,
                 probabilities.dtype)


def _top_k_mask(scores, k):
  """1 at the k highest scores of a tensor (ties: the first in row-major order), 0 elsewhere."""
  flat = tf.reshape(scores, [-1])
  _, kept = tf.math.top_k(flat, k=k, sorted=False)
  return tf.reshape(tf.scatter_nd(kept[:, None], tf.ones([k], scores.dtype), tf.shape(flat)), tf.shape(scores))


def _rescaled(mask, kept):
  """The mask times n / n_kept (Dynamic Weight Rescaling), `kept` the 0/1 mask that is counted."""
  n_kept = tf.maximum(tf.reduce_sum(kept), 1.0)
  return mask * tf.stop_gradient(tf.cast(tf.size(kept), kept.dtype) / n_kept)


def _masked_copy(model, layer_names, frozen_weights, masks, dynamic_weight_rescaling):
  """A clone of `model` with its weights, the named layers' kernels set to frozen * mask (rescaled with DWR)."""
  copy = keras.models.clone_model(model)
  copy.set_weights(model.get_weights())
  layers = {layer.name: layer for layer in model_layers.flat_layers(copy)}
  for name in layer_names:
    mask = tf.constant(masks[name])
    if dynamic_weight_rescaling:
      mask = _rescaled(mask, mask)
    layer = layers[name]
    layer.kernel.assign(tf.cast(frozen_weights[name] * mask, layer.kernel.dtype))
  return copy


@contextlib.contextmanager
def _kernels_replaced(layers, kernels):
  """Makes each layer compute with a tensor in place of its kernel variable, so that gradients reach the scores.

  `object.__setattr__` bypasses Keras' attribute tracking, which would drop the
  variable from the layer's weights and append it again (reordering them).
  """
  originals = [layer.kernel for layer in layers]
  try:
    for layer, kernel in zip(layers, kernels, strict=True):
      object.__setattr__(layer, 'kernel', tf.cast(kernel, layer.compute_dtype))
    yield
  finally:
    for layer, original in zip(layers, originals, strict=True):
      object.__setattr__(layer, 'kernel', original)


def _kernel_like(weight):
  return sum(1 for d in weight.shape if d is not None and d > 1) >= 2


def _check_model(model):
  """The layers whose kernels a supermask masks; raises for a model it cannot train."""
  wrapper_lib.check_tf_keras(model, 'model')
  if not isinstance(model, keras.Model):
    raise TypeError(f'model must be a tf_keras.Model, got {type(model).__name__}')
  if not (isinstance(model, keras.Sequential) or getattr(model, '_is_graph_network', False)):
    raise ValueError('train_supermask clones the model, so it needs a Sequential or functional model, got a '
                     f'subclassed {type(model).__name__}')
  if not model.built:
    raise ValueError('model is not built: give its first layer an input_shape or call model.build(input_shape)')
  layers = model_layers.flat_layers(model)
  wrapped = [layer.name for layer in layers if isinstance(layer, keras.layers.Wrapper)
             and type(layer).__name__ in ('PruneLowMagnitude', 'PruneLotteryTicket')]
  if wrapped:
    raise ValueError(f'layers {wrapped} are pruning wrappers; train_supermask takes a plain model: unwrap it with '
                     'ltp_tfmot.strip_pruning(model) first')
  masked = [layer for layer in layers if isinstance(layer, _MASKED_LAYERS) and not isinstance(layer, _NOT_MASKED)]
  others = [f'{layer.name} ({type(layer).__name__})' for layer in layers
            if layer not in masked and any(_kernel_like(weight) for weight in layer.weights)]
  if others:
    raise ValueError(f'train_supermask masks the kernels of Dense and Conv1D/2D/3D layers; layers {others} have '
                     'kernels it cannot mask: build the model from those layers only')
  if not masked:
    raise ValueError('model has no Dense or convolution layer to mask')
  names = [layer.name for layer in masked]
  if len(set(names)) != len(names):
    raise ValueError(f'masked layers need distinct names (masks are keyed by name), got {names}')
  return masked


def _check_arrays(x, y, name):
  x, y = np.asarray(x), np.asarray(y)
  if x.ndim == 0 or len(x) == 0:
    raise ValueError(f'{name} needs at least one example, got inputs of shape {x.shape}')
  if len(x) != len(y):
    raise ValueError(f'{name} has {len(x)} inputs but {len(y)} labels')
  if not np.issubdtype(y.dtype, np.integer):
    raise ValueError(f'{name} labels must be integer class indices (sparse labels), got dtype {y.dtype}')
  return x.astype(np.float32), y.astype(np.int64)


def _frozen_kernel(kernel, weights):
  if weights == 'initial':
    return tf.convert_to_tensor(kernel)
  # The std in float64, as the library's signed-constant rewind does: float32 overflows for |w| above ~1.8e19.
  value = tf.cast(kernel, tf.float64)
  return tf.cast(tf.sign(value) * tf.math.reduce_std(value), kernel.dtype)


def _initial_scores(method, kernel, seed, index):
  if method == 'bernoulli':
    # sigmoid(0) = 1/2: every weight starts as likely kept as pruned.
    return tf.zeros(kernel.shape, kernel.dtype)
  # edge-popup's init: uniform in +-1/sqrt(fan_in) (PyTorch's Kaiming-uniform with a = sqrt(5)).
  bound = 1.0 / np.sqrt(np.prod(kernel.shape[:-1]))
  return tf.random.stateless_uniform(kernel.shape, seed=[seed, index], minval=-bound, maxval=bound,
                                     dtype=kernel.dtype)


def train_supermask(model, x, y, method='bernoulli', weights='initial', density=None,
                    dynamic_weight_rescaling=False, epochs=10, batch_size=60, optimizer=None, loss=None,
                    validation_data=None, seed=0):
  """Learns which weights of an untrained network to keep, leaving the weights as they are.

  Every Dense and Conv1D/2D/3D kernel of `model` is frozen (at its current
  values, or their signed constants) and gets a score per weight; only the
  scores are trained. The model runs in inference mode (Dropout off,
  BatchNormalization with its current statistics) and its other weights
  (biases) stay as they are. `model` itself is not changed: training runs on
  a clone.

  Args:
    model: A built Sequential or functional tf_keras model, not wrapped for
      pruning, producing logits (or give `loss`); its kernels are the frozen
      weights. Layers holding other kernels (Embedding, RNNs, DepthwiseConv2D)
      are refused.
    x: Training inputs (a NumPy array).
    y: Integer class labels.
    method: 'bernoulli' (Zhou et al.: masks sampled from sigmoid(scores)) or
      'edge_popup' (Ramanujan et al.: the top `density` of scores per layer).
    weights: 'initial' (the kernels as they are) or 'signed_constant' (sign of
      each weight times the std of its layer's kernel).
    density: edge-popup's fraction of each layer's weights kept, in (0, 1];
      None means 0.5. Bernoulli masks learn their density, so it must be
      None for them.
    dynamic_weight_rescaling: Multiply each layer's kept weights by
      n / n_kept (of the mask used in that pass).
    epochs: Passes over `x`, >= 1.
    batch_size: Examples per step, >= 1.
    optimizer: A tf_keras optimizer (or its name) for the scores; None:
      Adam(0.1) for 'bernoulli', SGD(0.1, momentum=0.9) for 'edge_popup'.
    loss: A tf_keras loss of (labels, outputs); None: sparse categorical
      cross-entropy on logits. Accuracies are argmax accuracies.
    validation_data: Optional (x_val, y_val), evaluated after every epoch.
    seed: Int seed of the shuffling, the Bernoulli samples and edge-popup's
      initial scores.

  Returns:
    A `Supermask` (masks, scores, frozen weights, the masked model, history).

  Raises:
    ValueError: for an unknown method or weights, a density out of range (or
      given with 'bernoulli'), bad arrays, or a model it cannot mask.
    TypeError: for arguments of the wrong type.

  Example:

  ```python
  data = ltp_tfmot.datasets.load_mnist(source='embedded')
  result = ltp_tfmot.train_supermask(ltp_tfmot.models.lenet_300_100(seed=0), data.x_train, data.y_train,
                                     weights='signed_constant', epochs=5)
  sampled = result.sampled_model(seed=0)
  print(np.mean(np.argmax(sampled(data.x_test), axis=-1) == data.y_test))
  ```
  """
  method = validation.check_choice(method, 'method', METHODS)
  weights = validation.check_choice(weights, 'weights', WEIGHTS)
  if method == 'bernoulli' and density is not None:
    raise ValueError(f"density is edge-popup's kept fraction; Bernoulli masks learn their own density, so leave "
                     f"density=None with method='bernoulli' (got {density!r}), or use method='edge_popup'")
  if method == 'edge_popup':
    density = 0.5 if density is None else density
    if not validation.is_number(density):
      raise TypeError(f'density must be a number in (0, 1], got {density!r}')
    if not 0 < density <= 1:
      raise ValueError(f'density must be in (0, 1], got {density!r}')
  validation.check_bool(dynamic_weight_rescaling, 'dynamic_weight_rescaling')
  epochs = validation.check_int(epochs, 'epochs', minimum=1)
  batch_size = validation.check_int(batch_size, 'batch_size', minimum=1)
  seed = wrapper_lib.check_seed(seed)
  layers = _check_model(model)
  x, y = _check_arrays(x, y, 'x, y')
  if validation_data is not None:
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
      raise ValueError(f'validation_data must be a pair (x_val, y_val), got {type(validation_data).__name__}')
    validation_data = _check_arrays(*validation_data, 'validation_data')
  optimizer = _default_optimizer(method) if optimizer is None else keras.optimizers.get(optimizer)
  loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True) if loss is None else keras.losses.get(loss)

  names = [layer.name for layer in layers]
  frozen = [_frozen_kernel(layer.kernel, weights) for layer in layers]
  scores = [tf.Variable(_initial_scores(method, layer.kernel, seed, i), name=f'{layer.name}_scores')
            for i, layer in enumerate(layers)]
  keep = [masks_lib.keep_count(int(np.prod(layer.kernel.shape)), density) if method == 'edge_popup' else None
          for layer in layers]
  # Training runs on a clone, so that the caller's model is never touched.
  working = keras.models.clone_model(model)
  working.set_weights(model.get_weights())
  working_layers = {layer.name: layer for layer in model_layers.flat_layers(working)}
  working_layers = [working_layers[name] for name in names]

  def deterministic_masks():
    if method == 'edge_popup':
      return [_top_k_mask(s, k) for s, k in zip(scores, keep, strict=True)]
    return [tf.cast(s > 0, s.dtype) for s in scores]

  def kernels(sample_seed):
    """The masked kernels of one pass (Bernoulli: sampled); straight-through, the gradient reaches the scores."""
    result = []
    for i, (s, w) in enumerate(zip(scores, frozen, strict=True)):
      if method == 'edge_popup':
        hard = _top_k_mask(s, keep[i])
        # x - stop_gradient(x) is exactly 0 forward and has gradient 1: the forward pass sees 0 and 1 exactly.
        mask = hard + (s - tf.stop_gradient(s))
      else:
        probabilities = tf.sigmoid(s)
        hard = _bernoulli(probabilities, sample_seed, i)
        mask = hard + (probabilities - tf.stop_gradient(probabilities))
      if dynamic_weight_rescaling:
        mask = _rescaled(mask, hard)
      result.append(w * mask)
    return result

  def correct(labels, logits):
    return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=-1), labels), tf.int64))

  @tf.function(reduce_retracing=True)
  def train_step(xb, yb, step):
    with tf.GradientTape() as tape:
      with _kernels_replaced(working_layers, kernels(tf.stack([tf.constant(seed, tf.int64), step]))):
        logits = working(xb, training=False)
      loss_value = loss_fn(yb, logits)
    optimizer.apply_gradients(zip(tape.gradient(loss_value, scores), scores, strict=True))
    return loss_value, correct(yb, logits)

  @tf.function(reduce_retracing=True)
  def correct_deterministic(xb, yb):
    masks = deterministic_masks()
    if dynamic_weight_rescaling:
      masks = [_rescaled(m, m) for m in masks]
    with _kernels_replaced(working_layers, [w * m for w, m in zip(frozen, masks, strict=True)]):
      return correct(yb, working(xb, training=False))

  @tf.function(reduce_retracing=True)
  def correct_sampled(xb, yb, sample_seed):
    with _kernels_replaced(working_layers, kernels(sample_seed)):
      return correct(yb, working(xb, training=False))

  def accuracy(data, sample_seed=None):
    x_eval, y_eval = data
    batches = [(x_eval[i:i + _EVAL_BATCH], y_eval[i:i + _EVAL_BATCH]) for i in range(0, len(x_eval), _EVAL_BATCH)]
    if sample_seed is None:
      return sum(int(correct_deterministic(xb, yb)) for xb, yb in batches) / len(x_eval)
    return sum(int(correct_sampled(xb, yb, sample_seed)) for xb, yb in batches) / len(x_eval)

  history = {'loss': [], 'accuracy': []}
  if validation_data is not None:
    history['val_accuracy'] = []
    if method == 'bernoulli':
      history['val_sampled_accuracy'] = []
  order_rng = np.random.RandomState(seed)
  step = 0
  for epoch in range(epochs):
    order = order_rng.permutation(len(x))
    loss_sum, correct_sum = 0.0, 0
    for start in range(0, len(x), batch_size):
      batch = order[start:start + batch_size]
      loss_value, n_correct = train_step(x[batch], y[batch], tf.constant(step, tf.int64))
      loss_sum += float(loss_value) * len(batch)
      correct_sum += int(n_correct)
      step += 1
    history['loss'].append(loss_sum / len(x))
    history['accuracy'].append(correct_sum / len(x))
    message = f'loss {history["loss"][-1]:.4f}, accuracy {history["accuracy"][-1]:.4f}'
    if validation_data is not None:
      history['val_accuracy'].append(accuracy(validation_data))
      message += f', val_accuracy {history["val_accuracy"][-1]:.4f}'
      if method == 'bernoulli':
        # A seed apart from the training samples' (whose second half is the step, never negative).
        history['val_sampled_accuracy'].append(accuracy(validation_data, tf.constant([seed, -1 - epoch], tf.int64)))
        message += f', val_sampled_accuracy {history["val_sampled_accuracy"][-1]:.4f}'
    logging.info('Supermask (%s) epoch %d/%d: %s', method, epoch + 1, epochs, message)

  masks = {name: m.numpy() for name, m in zip(names, deterministic_masks(), strict=True)}
  frozen_weights = {name: w.numpy() for name, w in zip(names, frozen, strict=True)}
  return Supermask(method, weights, dynamic_weight_rescaling, names, masks,
                   {name: s.numpy() for name, s in zip(names, scores, strict=True)}, frozen_weights,
                   _masked_copy(model, names, frozen_weights, masks, dynamic_weight_rescaling), history)
