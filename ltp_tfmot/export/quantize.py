"""Quantization-aware training of lottery tickets that keeps their zeros (int8 sparse tickets)."""

from absl import logging
import numpy as np
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from ltp_tfmot.export import tflite as export_lib
from ltp_tfmot.keras2 import model_layers
from ltp_tfmot.keras2 import prune as prune_lib
from ltp_tfmot.keras2 import wrapped_model
from ltp_tfmot.keras2 import wrapper as wrapper_lib


def quantize_ticket(model):
  """A quantization-aware (int8) copy of a lottery ticket whose pruned weights stay exactly 0.

  The ticket is stripped (a wrapped model gets its masks re-applied first,
  in place, as `ltp_tfmot.strip_pruning` does), then annotated and wrapped for
  quantization-aware training with tfmot's pruning-preserving scheme
  (`Default8BitPrunePreserveQuantizeScheme`): each quantized kernel is
  multiplied by the mask of its non-zero weights, so the zeros get no gradient
  and stay 0 through fine-tuning. Compile and fit the returned model briefly
  (its fake-quantizers learn their ranges in training), then export it with
  `ltp_tfmot.export_tflite`, which converts it to int8 weights and activations
  with the weights stored sparse. For a file whose FULLY_CONNECTED ops run on
  TFLite's sparse int8 kernel, prune the ticket with `block_size=(16, 1)` (1x16
  blocks in TFLite's layout); unstructured int8 weights are densified and need
  the 'BUILTIN_WITHOUT_DEFAULT_DELEGATES' resolver (see `ExportReport.kernels`).

  Args:
    model: A built Sequential or functional tf_keras model: a lottery ticket,
      wrapped (`prune_lottery_ticket`) or stripped.

  Returns:
    A new, uncompiled tf_keras model with tfmot QuantizeWrapper layers.

  Raises:
    TypeError: for a Keras 3 model.
    ValueError: for an unbuilt or subclassed model, a model that is already
      quantization-aware, a ticket pruned with mask_0_action='freeze' (its
      pruned weights are not zeros), or layers tfmot cannot quantize.

  Example:

  ```python
  qat = ltp_tfmot.quantize_ticket(ticket)
  qat.compile('adam', keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  qat.fit(x_train, y_train, epochs=1)
  report = ltp_tfmot.export_tflite(qat, 'ticket_int8.tflite')
  ```
  """
  wrapper_lib.check_tf_keras(model, 'model')
  if not isinstance(model, keras.Model):
    raise ValueError(f'model must be a tf_keras Model, got {type(model).__name__}')
  if not model.built:
    raise ValueError(f'model {model.name!r} is not built: call it on data (or model.build) before quantizing')
  if export_lib.is_quantization_aware(model):
    raise ValueError(f'model {model.name!r} is already quantization-aware (it has tfmot QuantizeWrapper layers): '
                     'pass the ticket as it was before quantize_model / quantize_ticket')
  frozen = [w.layer.name for w in wrapped_model.lottery_wrappers(model) if w.mask_0_action == 'freeze']
  if frozen:
    raise ValueError(f"layers {frozen} were pruned with mask_0_action='freeze': their pruned weights keep their "
                     "rewind-point values, so there are no zeros to preserve. Train the ticket with "
                     "mask_0_action='zero' (the default)")
  stripped = prune_lib.strip_pruning(model)
  kernels = [w.numpy() for layer in model_layers.flat_layers(stripped) for w in layer.weights if len(w.shape) >= 2]
  if kernels and not any(np.any(k == 0) for k in kernels):
    logging.warning('model %r has no zero weight: quantize_ticket keeps zeros, and there are none to keep',
                    model.name)
  quantize = tfmot.quantization.keras
  try:
    annotated = quantize.quantize_annotate_model(stripped)
    with quantize.quantize_scope():
      return quantize.quantize_apply(annotated, tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme())
  except (RuntimeError, TypeError, ValueError) as e:
    raise ValueError(f'tfmot cannot make model {model.name!r} quantization-aware ({e}). Its default 8-bit scheme '
                     'covers the common layers (Dense, Conv, DepthwiseConv2D, BatchNormalization after a '
                     'convolution, pooling, activations); quantize a model built from those') from e
