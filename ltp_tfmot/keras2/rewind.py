"""The rewind point: taking it, and setting a model's weights and optimizer back to it.

`take_snapshot` records the weights a ticket's survivors start from (the
wrappers keep theirs as layer weights, saved with the model; the weights of
the layers outside them, such as BatchNormalization's, are kept in memory);
`rewind_weights` applies the wrappers' mask actions to start the next round
from it; `reset_optimizer` gives the optimizer a new one's state at the rewind
point's step. `run_lottery_round` (in `rounds`) calls them at each round
boundary. Every function validates before it changes a variable.
"""

import weakref

from absl import logging
import tensorflow as tf
import tf_keras as keras

from ltp_tfmot import validation
from ltp_tfmot.core import model_walk
from ltp_tfmot.core import rewind as core_rewind
from ltp_tfmot.core import seeds
from ltp_tfmot.core import steps as steps_lib
from ltp_tfmot.keras2 import initializers
from ltp_tfmot.keras2 import wrapped_model
from ltp_tfmot.keras2 import wrapper as wrapper_lib

# The rewind point of the weights no lottery wrapper holds (BatchNormalization's gamma, beta and moving
# statistics, LayerNormalization's, ...), per model: [(variable, value)]. It is kept in memory, not in the
# model: a variable tracked on the model is a top-level weight that the model rebuilt from a .keras or h5
# file lacks (loading fails with a weight-count mismatch), and the wrappers' variables depend on their own
# layer only, so that weights load into a freshly wrapped model.
_UNWRAPPED_SNAPSHOTS = weakref.WeakKeyDictionary()


def unwrapped_layer_weights(model):
  """The weights of a model's layers outside its lottery wrappers, with their layer, in order.

  These are BatchNormalization's gamma, beta and moving statistics, LayerNormalization's, PReLU's slopes and
  those of any other layer `prune_lottery_ticket` leaves unwrapped, in nested models too; each once.

  Args:
    model: A Keras model; a layer or a list of layers has none (their wrappers are all there is).

  Returns:
    A list of (layer, weight) pairs.
  """
  return model_walk.weights_outside(model, wrapper_lib.PruneLotteryTicket, keras.Model)


def take_snapshot(model, step=0):
  """Records the current weights of every wrapped layer as the rewind point.

  Given a `keras.Model`, it also records the weights of the layers outside
  the wrappers (BatchNormalization's gamma, beta and moving statistics,
  LayerNormalization's, ...; see `unwrapped_layer_weights`), which
  `rewind_weights` restores with the kernels. The wrappers' snapshots are
  layer weights, saved with the model; that of the other layers is kept in
  memory, so a model loaded from a file rewinds them only after a new
  `take_snapshot`. Given a layer or a list of layers, only the wrappers have
  a rewind point.

  A model whose steps are not counted yet starts counting them (as
  `optimizer.iterations`), as `UpdateLotteryStep` would at the start of
  `fit`, so that a custom training loop can call it with `training=True`
  without that callback.

  Args:
    model: A model, layer or list of layers holding `PruneLotteryTicket` wrappers.
    step: The training step the weights belong to (kept with the snapshot), >= 0.

  Raises:
    TypeError: if `step` is not an integer.
    ValueError: for a negative step, or a model without built lottery wrappers.

  Example:

  ```python
  model = ltp_tfmot.prune_lottery_ticket(model)
  ltp_tfmot.take_snapshot(model)   # rewind point = the initial weights
  ```
  """
  step = validation.check_int(step, 'step', minimum=0)
  wrappers = wrapped_model.built_lottery_wrappers(model)
  unwrapped = unwrapped_layer_weights(model)
  if unwrapped:
    _UNWRAPPED_SNAPSHOTS[model] = [(weight, tf.identity(weight)) for _, weight in unwrapped]
  for w in wrappers:
    for snapshot, weight in zip(w.snapshots, w.layer.weights, strict=True):
      snapshot.assign(weight)
    w.snapshot_step.assign(step)
    steps_lib.start_counting(w, wrapped_model.read_int, wrapper_lib.NOT_COUNTING)
  logging.info('Took the rewind snapshot at step %d.', step)


def rewind_weights(model):
  """Sets every wrapped layer's weights for the next round's training.

  Kept weights start from the wrapper's mask-1 action ('rewind' = the
  snapshot); pruned weights are 0 ('zero') or their snapshot ('freeze'); with
  dynamic weight rescaling, kept weights are multiplied by n / n_kept. The
  layers' other weights (biases) are rewound to the snapshot ('reinit': drawn
  afresh).

  Given a `keras.Model`, the weights outside the wrappers
  (BatchNormalization's gamma, beta and moving statistics, ...; see
  `unwrapped_layer_weights`) go back to their values at `take_snapshot`, or,
  when every wrapper's mask-1 action is 'reinit' (the random-reinitialisation
  control, which reinitialises the whole network), are drawn afresh from
  their layers' initializers (`gamma_initializer`, ...). A model loaded from
  a file keeps those values (with a warning) until `take_snapshot` is called
  again: that part of the rewind point is kept in memory. Given a layer or a
  list of layers, only the wrapped layers change.

  Args:
    model: A model, layer or list of layers holding `PruneLotteryTicket` wrappers.

  Raises:
    ValueError: if no snapshot was taken yet, or 'reinit' finds no initializer.
      Nothing is changed then.
  """
  wrappers = wrapped_model.built_lottery_wrappers(model)
  core_rewind.check_snapshots(wrappers)
  updates = _unwrapped_updates(model, wrappers)
  positions = seeds.wrapper_positions(wrappers)
  for w in wrappers:
    round_number = int(w.rounds_done.numpy())
    prunable = {weight.ref(): i for i, weight in enumerate(w.prunable_weights)}
    for weight, snapshot in zip(w.layer.weights, w.snapshots, strict=True):
      i = prunable.get(weight.ref())
      seed = seeds.draw_seed(w, positions, 'start', weight, round_number)
      if i is None:
        value = initializers.fresh_value(w.layer, weight, seed) if w.mask_1_action == 'reinit' else snapshot
        updates.append((weight, tf.convert_to_tensor(value)))
        continue
      mask = w.masks[i]
      if i >= w.ranked_count:
        # A unit's bias (BatchNormalization's gamma, beta) starts as other biases do, masked with its unit.
        value = initializers.fresh_value(w.layer, weight, seed) if w.mask_1_action == 'reinit' else snapshot
        updates.append((weight, tf.cast(tf.where(mask > 0, value, tf.zeros([], snapshot.dtype)), weight.dtype)))
        continue
      fresh = initializers.fresh_value(w.layer, weight, seed) if w.mask_1_action == 'reinit' else None
      kept = core_rewind.survivor_values(w.mask_1_action, w.prunable_snapshots[i], mask, seed, fresh)
      updates.append((weight, core_rewind.start_values(kept, snapshot, mask, w.mask_0_action,
                                                       w.dynamic_weight_rescaling, weight.dtype)))
  for weight, value in updates:
    weight.assign(value)
  logging.info('Rewound %d layers (%s).', len(wrappers), ', '.join(sorted({w.mask_1_action for w in wrappers})))


def reinitialises_unwrapped(wrappers):
  """Whether a rewind draws the weights outside the wrappers afresh: only for the whole-network reinit control.

  Args:
    wrappers: The model's `PruneLotteryTicket` layers.

  Returns:
    True when every wrapper's `mask_1_action` is 'reinit'.
  """
  return all(w.mask_1_action == 'reinit' for w in wrappers)


def _unwrapped_updates(model, wrappers):
  """(variable, value) for the weights outside the wrappers at a rewind; raises before any change."""
  unwrapped = unwrapped_layer_weights(model)
  if not unwrapped:
    return []
  if reinitialises_unwrapped(wrappers):
    first = wrappers[0]
    round_number = int(first.rounds_done.numpy())
    draws = []
    for i, (layer, weight) in enumerate(unwrapped):
      seed = seeds.derived_seed(first.seed, 'start-unwrapped', i, round_number)
      draws.append((weight, initializers.fresh_value(layer, weight, seed)))
    return draws
  snapshot = _UNWRAPPED_SNAPSHOTS.get(model)
  if snapshot is None:
    logging.warning('Layers %s keep their current weights: their rewind point is kept in memory by '
                    'take_snapshot, not saved with the model; call ltp_tfmot.take_snapshot(model) after '
                    'loading a model to rewind them too.', sorted({layer.name for layer, _ in unwrapped}))
    return []
  return [(weight, value) for weight, value in snapshot]


def optimizer_variables(optimizer):
  """An optimizer's variables (its slots and iterations), checked to be those of a tf_keras optimizer.

  Args:
    optimizer: A tf_keras optimizer.

  Returns:
    A list of its variables.

  Raises:
    TypeError: if `optimizer` is not an optimizer.
  """
  if not hasattr(optimizer, 'variables'):
    raise TypeError(f'optimizer must be a tf_keras optimizer (e.g. model.optimizer), got {type(optimizer).__name__}')
  return optimizer.variables() if callable(optimizer.variables) else optimizer.variables


def check_iterations(value, name):
  """`int(value)`, checked to be an optimizer step count (an integer >= 0).

  Args:
    value: The value to check.
    name: How the message names it, e.g. 'rewind_iterations'.

  Returns:
    The value as an int.

  Raises:
    TypeError: if `value` is not an integer.
    ValueError: if it is negative.
  """
  return validation.check_int(value, name, minimum=0, hint=' (an optimizer step count)')


def reset_optimizer(optimizer, iterations=0):
  """Resets an optimizer's state (slots such as momentum and Adam's moments) to that of a new one.

  Args:
    optimizer: A tf_keras optimizer.
    iterations: What `optimizer.iterations` is set to: 0 (a new optimizer's)
      or the step of a late rewind point, so that a learning-rate schedule
      continues from there.

  Raises:
    TypeError: if `optimizer` is not an optimizer, or `iterations` not an integer.
    ValueError: if `iterations` is negative.
  """
  variables = optimizer_variables(optimizer)
  iterations = check_iterations(iterations, 'iterations')
  for variable in variables:
    variable.assign(tf.zeros_like(variable))
  if iterations:
    optimizer.iterations.assign(iterations)

