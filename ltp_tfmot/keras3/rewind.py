"""The rewind point of a Keras 3 model: snapshots, rewinding its weights, and resetting its optimizer.

The Keras 3 counterpart of `ltp_tfmot.keras2.rewind`, with the same rules:
`take_snapshot` records every wrapped layer's weights in the wrappers (saved
with the model) and the weights outside the wrappers (BatchNormalization's,
LayerNormalization's, ...) in memory; `rewind_weights` gives survivors their
mask-1 action's values (`ltp_tfmot.core.rewind`) and pruned weights 0 or
their snapshot; `reset_optimizer` gives the optimizer a new one's state at the
rewind step.
"""

import weakref

from absl import logging
import keras

from ltp_tfmot import validation
from ltp_tfmot.core import model_walk
from ltp_tfmot.core import rewind as core_rewind
from ltp_tfmot.core import seeds
from ltp_tfmot.core import steps as steps_lib
from ltp_tfmot.keras3 import wrapped_model
from ltp_tfmot.keras3 import wrapper as wrapper_lib

# The rewind point of the weights no lottery wrapper holds, per model: [(variable, value)]. In memory, as in the
# Keras 2 front end: a model rebuilt from a file has the wrappers' own snapshots only.
_UNWRAPPED_SNAPSHOTS = weakref.WeakKeyDictionary()


def unwrapped_layer_weights(model):
  """The weights of a Keras 3 model's layers outside its lottery wrappers, with their layer, in order.

  Args:
    model: A Keras 3 model; a layer or a list of layers has none.

  Returns:
    A list of (layer, weight) pairs, each weight once.
  """
  return model_walk.weights_outside(model, wrapper_lib.PruneLotteryTicket, keras.Model)


def take_snapshot(model, step=0):
  """Records the current weights of every wrapped layer (and, for a model, the others) as the rewind point.

  Args:
    model: A Keras 3 model, layer or list of layers holding lottery wrappers.
    step: The training step the weights belong to, >= 0.

  Raises:
    TypeError: if `step` is not an integer.
    ValueError: for a negative step, or a model without built lottery wrappers.
  """
  step = validation.check_int(step, 'step', minimum=0)
  wrappers = wrapped_model.built_lottery_wrappers(model)
  unwrapped = unwrapped_layer_weights(model)
  if unwrapped:
    _UNWRAPPED_SNAPSHOTS[model] = [(weight, wrapped_model.value(weight)) for _, weight in unwrapped]
  for w in wrappers:
    for snapshot, weight in zip(w.snapshots, w.layer.weights, strict=True):
      snapshot.assign(wrapped_model.value(weight))
    w.snapshot_step.assign(step)
    steps_lib.start_counting(w, wrapped_model.read_int, wrapper_lib.NOT_COUNTING)
  logging.info('Took the rewind snapshot at step %d.', step)


def fresh_value(layer, weight, seed):
  """A fresh draw of one of a Keras 3 layer's weights from its initializer, seeded.

  The initializer is the layer's `<name>_initializer` attribute for a weight
  named `<name>` (kernel, bias, embeddings, depthwise_kernel, gamma, ...), as
  Keras' built-in layers keep them.

  Raises:
    ValueError: if the layer has no initializer for the weight.
  """
  name = weight.path.rsplit('/', 1)[-1]
  candidates = [f'{name}_initializer', f'{name.replace("_kernel", "")}_initializer']
  initializer = next((getattr(layer, c) for c in candidates if getattr(layer, c, None) is not None), None)
  if initializer is None:
    raise ValueError(f"mask_1_action='reinit' needs the initializer of {weight.path}, and layer {layer.name!r} has "
                     f'no {candidates[0]}: use another mask_1_action')
  config = initializer.get_config()
  if 'seed' in config:
    initializer = initializer.__class__.from_config(dict(config, seed=seed))
  return keras.ops.convert_to_numpy(initializer(tuple(weight.shape), dtype=weight.dtype))


def rewind_weights(model):
  """Sets every wrapped layer's weights of a Keras 3 model for the next round's training.

  Kept weights start from the wrapper's mask-1 action ('rewind' = the
  snapshot); pruned weights are 0 ('zero') or their snapshot ('freeze'); with
  dynamic weight rescaling kept weights are multiplied by n / n_kept. The
  layers' other weights, and given a model the weights outside the wrappers,
  go back to the snapshot ('reinit': drawn afresh).

  Args:
    model: A Keras 3 model, layer or list of layers holding lottery wrappers.

  Raises:
    ValueError: if no snapshot was taken yet, or 'reinit' finds no
      initializer. Nothing is changed then.
  """
  wrappers = wrapped_model.built_lottery_wrappers(model)
  core_rewind.check_snapshots(wrappers)
  updates = _unwrapped_updates(model, wrappers)
  positions = seeds.wrapper_positions(wrappers)
  for w in wrappers:
    round_number = int(wrapped_model.value(w.rounds_done))
    prunable = {id(weight): i for i, weight in enumerate(w.prunable_weights)}
    for weight, snapshot_variable in zip(w.layer.weights, w.snapshots, strict=True):
      i = prunable.get(id(weight))
      seed = seeds.draw_seed(w, positions, 'start', weight, round_number)
      snapshot = wrapped_model.read(snapshot_variable)
      if i is None:
        value = fresh_value(w.layer, weight, seed) if w.mask_1_action == 'reinit' else snapshot
        updates.append((weight, value))
        continue
      mask = wrapped_model.read(w.masks[i])
      fresh = fresh_value(w.layer, weight, seed) if w.mask_1_action == 'reinit' else None
      kept = core_rewind.survivor_values(w.mask_1_action, snapshot, mask, seed, fresh)
      updates.append((weight, core_rewind.start_values(kept, snapshot, mask, w.mask_0_action,
                                                       w.dynamic_weight_rescaling, snapshot.dtype)))
  for weight, value in updates:
    weight.assign(wrapped_model.as_array(value, weight.dtype))
  logging.info('Rewound %d layers (%s).', len(wrappers), ', '.join(sorted({w.mask_1_action for w in wrappers})))


def _unwrapped_updates(model, wrappers):
  """(variable, value) for the weights outside the wrappers at a rewind; raises before any change."""
  unwrapped = unwrapped_layer_weights(model)
  if not unwrapped:
    return []
  if all(w.mask_1_action == 'reinit' for w in wrappers):
    first = wrappers[0]
    round_number = int(wrapped_model.value(first.rounds_done))
    return [(weight, fresh_value(layer, weight, seeds.derived_seed(first.seed, 'start-unwrapped', i, round_number)))
            for i, (layer, weight) in enumerate(unwrapped)]
  snapshot = _UNWRAPPED_SNAPSHOTS.get(model)
  if snapshot is None:
    logging.warning('Layers %s keep their current weights: their rewind point is kept in memory by '
                    'take_snapshot, not saved with the model; call ltp_tfmot.take_snapshot(model) after '
                    'loading a model to rewind them too.', sorted({layer.name for layer, _ in unwrapped}))
    return []
  return list(snapshot)


def check_iterations(value, name):
  """`int(value)`, checked to be an optimizer step count (an integer >= 0)."""
  return validation.check_int(value, name, minimum=0, hint=' (an optimizer step count)')


def reset_optimizer(optimizer, iterations=0):
  """Resets a Keras 3 optimizer's state (its slots) to that of a new one, at `iterations` steps.

  Args:
    optimizer: A Keras 3 optimizer, built (it has trained or `build` ran).
    iterations: What `optimizer.iterations` is set to: 0, or the step of a
      late rewind point, so that a learning-rate schedule continues from there.

  Raises:
    TypeError: if `optimizer` is not a Keras 3 optimizer, or `iterations` not an integer.
    ValueError: if `iterations` is negative.
  """
  if not isinstance(optimizer, keras.optimizers.Optimizer):
    raise TypeError(f'optimizer must be a Keras 3 optimizer (e.g. model.optimizer), got {type(optimizer).__name__}')
  iterations = check_iterations(iterations, 'iterations')
  for variable in optimizer.variables:
    # Keras 3 optimizers hold their learning rate as a variable too: it is a setting, not state.
    if variable.path.rsplit('/', 1)[-1] != 'learning_rate':
      variable.assign(keras.ops.zeros(variable.shape, variable.dtype))
  optimizer.iterations.assign(iterations)
