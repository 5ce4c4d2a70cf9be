"""The Keras 3 lottery-ticket layer wrapper: a layer's masks, rewind point and round counters as layer variables.

`PruneLotteryTicket` wraps one prunable Keras 3 layer. Everything a round
needs lives in its variables (so `model.save('x.keras')` keeps it): one mask
per prunable weight, a snapshot of every weight of the layer (the rewind
point) and the counters of snapshots, rounds and training steps. At every call
it applies the masks to the prunable weights before the wrapped layer runs;
the round side (computing the next masks, rewinding) reads and writes these
variables between training steps. This module also says which Keras 3 layers
are pruned and which of their weights (`pruned_weights_of`, `unpruned_reason`),
and names a layer's weights from its structure (`weight_paths`).

What runs inside `call` is made of `keras.ops` only, so a training step on the
JAX backend runs no TensorFlow op. The checks are `ltp_tfmot.validation`'s:
TypeError for a wrong type, ValueError for a bad value, one line each.
"""

import collections

import keras
from keras import ops

from ltp_tfmot import validation
from ltp_tfmot.core import criteria as criteria_lib
from ltp_tfmot.core import schedule as schedule_lib
from ltp_tfmot.core import unit_plan as unit_plan_lib

# `snapshot_step` before any snapshot was taken.
NO_SNAPSHOT = -1
# `step_offset` before the model's training steps are counted (the smallest int32: the counters are int32, which
# the JAX backend holds without 64-bit mode).
NOT_COUNTING = -2**31
COUNTER_DTYPE = 'int32'
BLOCK_POOLING_TYPES = ('AVG', 'MAX')

# Layers whose `kernel` is their one prunable weight (DepthwiseConv2D's is its depthwise kernel).
_KERNEL_LAYERS = (keras.layers.Dense, keras.layers.EinsumDense, keras.layers.Conv1D, keras.layers.Conv2D,
                  keras.layers.Conv3D, keras.layers.DepthwiseConv2D)
_RNN_LAYERS = (keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN)
PRUNED_LAYERS = ('Dense, EinsumDense, Conv1D/2D/3D, DepthwiseConv2D, SeparableConv2D, Embedding, '
                  'LSTM/GRU/SimpleRNN (and Bidirectional around them), MultiHeadAttention')
# The Keras 3 layer classes unit granularity tells apart (`UNIT_KINDS.has_units`: the layers it wraps).
UNIT_KINDS = unit_plan_lib.LayerKinds(keras.layers, keras.Model)


def is_prunable(layer):
  """Whether `prune_lottery_ticket` wraps this layer (decided by its type, so it need not be built).

  Args:
    layer: A Keras 3 layer.

  Returns:
    True for the layer types listed in `PruneLotteryTicket`, a `Bidirectional` around an LSTM, GRU or
    SimpleRNN, and a layer with a `get_prunable_weights` method; False for a wrapper already.
  """
  if isinstance(layer, PruneLotteryTicket):
    return False
  if hasattr(layer, 'get_prunable_weights'):
    return True
  if isinstance(layer, keras.layers.Bidirectional):
    return isinstance(layer.forward_layer, _RNN_LAYERS) and isinstance(layer.backward_layer, _RNN_LAYERS)
  return isinstance(layer, _KERNEL_LAYERS + _RNN_LAYERS + (
      keras.layers.SeparableConv2D, keras.layers.Embedding, keras.layers.MultiHeadAttention))


def pruned_weights_of(layer):
  """The weights of a built layer that a `PruneLotteryTicket` around it prunes ([] if it is not prunable).

  Args:
    layer: A built Keras 3 layer.

  Returns:
    A list of the layer's variables, in the order the wrapper's masks follow.
  """
  if not is_prunable(layer):
    return []
  if hasattr(layer, 'get_prunable_weights'):
    return list(layer.get_prunable_weights())
  if isinstance(layer, keras.layers.Bidirectional):
    return pruned_weights_of(layer.forward_layer) + pruned_weights_of(layer.backward_layer)
  if isinstance(layer, _RNN_LAYERS):
    return [layer.cell.kernel, layer.cell.recurrent_kernel]
  if isinstance(layer, keras.layers.MultiHeadAttention):
    return [dense.kernel for dense in (layer.query_dense, layer.key_dense, layer.value_dense, layer.output_dense)]
  if isinstance(layer, keras.layers.SeparableConv2D):
    return [layer.depthwise_kernel, layer.pointwise_kernel]
  if isinstance(layer, keras.layers.Embedding):
    return [layer.embeddings]
  return [layer.kernel]


def weight_paths(layer):
  """The names of a built layer's weights relative to it, in `layer.weights` order, made unique.

  A weight's path is the chain of sublayers holding it, then its own name: 'kernel' for a Dense,
  'lstm_cell/recurrent_kernel' for an LSTM, 'query/kernel' for a MultiHeadAttention; '#2' is added to a
  repeated one. It is the variable's path with the layer's own path taken off, so it does not depend on
  the model or the wrapper the layer was built in.

  Args:
    layer: A built Keras 3 layer.

  Returns:
    A tuple of strings, one per weight.
  """
  prefix = f'{layer.path}/'
  seen = collections.Counter()
  paths = []
  for weight in layer.weights:
    name = weight.path[len(prefix):] if weight.path.startswith(prefix) else weight.name
    seen[name] += 1
    paths.append(name if seen[name] == 1 else f'{name}#{seen[name]}')
  return tuple(paths)


def variable_suffixes(layer):
  """What the wrapper's variables for each of the layer's weights are named after: 'kernel', 'query_kernel'.

  Each is the shortest tail of the weight's path (see `weight_paths`) that no other weight of the layer
  ends with, its parts joined by '_' ('#' written '_' too): variable names hold no '/'.

  Args:
    layer: A built Keras 3 layer.

  Returns:
    A tuple of strings, one per weight, in `layer.weights` order.
  """
  split = [path.replace('#', '_').split('/') for path in weight_paths(layer)]
  suffixes = []
  for parts in split:
    tails = ['_'.join(parts[-length:]) for length in range(1, len(parts) + 1)]
    others = [other for other in split if other is not parts]
    suffixes.append(next((tail for length, tail in enumerate(tails, 1)
                          if not any(other[-length:] == parts[-length:] for other in others)), tails[-1]))
  return tuple(suffixes)


def unpruned_reason(layer):
  """Why a built layer's kernel-like weights stay dense under `prune_lottery_ticket`, or None.

  Kernel-like means a matrix, not a vector: at least two axes longer than 1, and not named '...bias'
  (MultiHeadAttention's and GRU's biases are 2-D). Layers holding only vectors (BatchNormalization,
  LayerNormalization) or no weight give None, as do layers whose kernels are all pruned.

  Args:
    layer: A Keras 3 layer (not a model).

  Returns:
    A sentence naming the weights left dense and why, or None.
  """
  if isinstance(layer, PruneLotteryTicket):
    return None
  paths = dict(zip(map(id, layer.weights), weight_paths(layer), strict=True))
  kernels = [weight for weight in layer.weights
             if sum(1 for d in weight.shape if d is None or d > 1) >= 2
             and not paths[id(weight)].split('#')[0].endswith('bias')]
  if not kernels:  # no weight yet (not built), or only vectors
    return None
  pruned = pruned_weights_of(layer)
  dense = [weight for weight in kernels if not any(weight is p for p in pruned)]
  if not dense:
    return None
  names = ', '.join(paths[id(weight)] for weight in dense)
  kind = type(layer).__name__
  if pruned:
    return f'{kind} is wrapped, but only {", ".join(paths[id(w)] for w in pruned)} pruned; dense: {names}'
  if isinstance(layer, keras.layers.Wrapper):
    why = (f'a {kind} around a {type(layer.layer).__name__}: of the layer wrappers, only Bidirectional around '
           'an LSTM, GRU or SimpleRNN is pruned')
  else:
    why = f'{kind} is none of the layers pruned ({PRUNED_LAYERS}) and has no get_prunable_weights method'
  return f'{why}; dense: {names}'


def check_settings(pruning_schedule=None, criterion='large_final', scope='layer', mask_0_action='zero',
                   mask_1_action='rewind', dynamic_weight_rescaling=False, rewind_step=0, seed=0, granularity='weight',
                   unit_pooling='L1', block_size=(1, 1), block_pooling_type='AVG'):
  """The settings every wrapper of a model shares, checked, before any layer is touched.

  Args:
    pruning_schedule: A `LotteryTicketSchedule`, or None for the default one (rate 0.2, rounds run by hand).
    criterion: Name of a registered criterion (or a `Criterion`, registered on first use).
    scope: 'layer' or 'global'.
    mask_0_action: 'zero' or 'freeze'.
    mask_1_action: 'rewind', 'reinit', 'reshuffle' or 'signed_constant'.
    dynamic_weight_rescaling: A bool.
    rewind_step: An int >= 0, before the end of the schedule's first round.
    seed: An int.
    granularity: 'weight' or 'unit' (with block_size (1, 1), mask_0_action 'zero' and a criterion of weight
      values).
    unit_pooling: 'L1', 'L2' or 'mean'.
    block_size: Two ints >= 1.
    block_pooling_type: 'AVG' or 'MAX'.

  Returns:
    A dict of the settings by argument name, normalized: the schedule made, the criterion's name, ints as
    ints, `block_size` a tuple.

  Raises:
    TypeError: for an argument of the wrong type.
    ValueError: for a bad value (the message names the argument and what it may be), or a setting unit
      granularity cannot follow.
  """
  if pruning_schedule is None:
    pruning_schedule = schedule_lib.LotteryTicketSchedule()
  if not isinstance(pruning_schedule, schedule_lib.LotteryTicketSchedule):
    raise TypeError('pruning_schedule must be a ltp_tfmot.LotteryTicketSchedule, '
                    f'got {type(pruning_schedule).__name__}')
  rewind_step = validation.check_int(rewind_step, 'rewind_step', minimum=0, hint=' (0 = the initial weights)')
  schedule_lib.check_rewind_before_first_round(rewind_step, pruning_schedule)
  validation.check_choice(granularity, 'granularity', validation.GRANULARITIES)
  if (not isinstance(block_size, (tuple, list)) or len(block_size) != 2
      or not all(validation.is_int(b) and b >= 1 for b in block_size)):
    raise ValueError(f'block_size must be two integers >= 1, e.g. (4, 1), got {block_size!r}')
  if granularity == 'unit':
    _check_unit_settings(tuple(block_size), mask_0_action, criteria_lib.get_criterion(criterion))
  return {
      'pruning_schedule': pruning_schedule,
      'criterion': criteria_lib.get_criterion(criterion).name,
      'scope': validation.check_choice(scope, 'scope', validation.SCOPES),
      'mask_0_action': validation.check_choice(mask_0_action, 'mask_0_action', validation.MASK_0_ACTIONS),
      'mask_1_action': validation.check_choice(mask_1_action, 'mask_1_action', validation.MASK_1_ACTIONS),
      'dynamic_weight_rescaling': validation.check_bool(dynamic_weight_rescaling, 'dynamic_weight_rescaling'),
      'rewind_step': rewind_step,
      'seed': validation.check_int(seed, 'seed'),
      'granularity': granularity,
      'unit_pooling': validation.check_choice(unit_pooling, 'unit_pooling', validation.UNIT_POOLINGS),
      'block_size': tuple(int(b) for b in block_size),
      'block_pooling_type': validation.check_choice(block_pooling_type, 'block_pooling_type', BLOCK_POOLING_TYPES),
  }


def _check_unit_settings(block_size, mask_0_action, criterion):
  """Raises for a setting granularity='unit' cannot follow (the Keras 2 front end's rules)."""
  if block_size != (1, 1):
    raise ValueError(f"granularity='unit' removes whole units, so block_size must be (1, 1), got {block_size}: "
                     "use block_size with granularity='weight', or drop it")
  if mask_0_action != 'zero':
    raise ValueError("granularity='unit' needs mask_0_action='zero' (a removed unit is exactly 0, which shrink "
                     f'relies on), got {mask_0_action!r}')
  if criterion.needs_model:
    raise ValueError(f"criterion {criterion.name!r} scores weights by running the model, which granularity='unit' "
                     "does not pool yet: use a criterion of weight values (e.g. 'large_final') with "
                     "granularity='unit'")


# The arguments `get_config` records as they are (besides the layer, the schedule and the block size).
_CONFIG_ATTRIBUTES = ('criterion', 'scope', 'layer_rate', 'mask_0_action', 'mask_1_action', 'dynamic_weight_rescaling',
                      'rewind_step', 'seed', 'position', 'granularity', 'unit_pooling', 'unit_group',
                      'block_pooling_type')


@keras.saving.register_keras_serializable(package='ltp_tfmot')
class PruneLotteryTicket(keras.layers.Wrapper):
  """Wraps a Keras 3 layer for lottery-ticket pruning: its masks, rewind point and round counters.

  The Keras 3 counterpart of the Keras 2 wrapper, with the same arguments and
  attributes. Pruned are the kernels of Dense, EinsumDense, Conv1D/2D/3D and
  DepthwiseConv2D (its depthwise kernel), SeparableConv2D's depthwise and
  pointwise kernels, Embedding's embeddings, the kernel and recurrent kernel of
  LSTM, GRU and SimpleRNN (both directions' in a Bidirectional around one),
  MultiHeadAttention's query, key, value and output kernels, and the weights a
  custom layer's `get_prunable_weights()` returns.

  Its variables, all non-trainable and saved with the model, are named after
  the weight they belong to (see `variable_suffixes`): `masks` (one per
  prunable weight, ones at the start; a layer with one prunable weight names
  it 'mask', else 'mask_<weight>'), `snapshots` (one per weight of the layer,
  'snapshot_<weight>': the rewind point), and the int32 counters
  `snapshot_step` (the training step of the snapshot, `NO_SNAPSHOT` before
  one), `rounds_done`, `step_offset` (the model's training steps are
  `step_offset` + the optimizer's iterations; `NOT_COUNTING` before they are
  counted) and `pruning_step` (the step count as last recorded, -1 before).
  The masks and snapshots have their weight's own dtype (float32 under a
  mixed-precision policy), and masking runs in it.

  At every call the prunable weights are assigned `weight * mask` ('freeze':
  `+ snapshot * (1 - mask)`), then the wrapped layer runs. On the TensorFlow
  backend the variables themselves change, as in Keras 2; on the JAX backend
  `fit`, `evaluate` and `predict` call the model in a stateless scope, so the
  masked values hold for that step's forward pass and the stored weights keep
  their trained values (which `masked_values()` masks outside training).

  Args:
    layer: The Keras 3 layer to wrap, of a prunable kind (see above).
    pruning_schedule: The `LotteryTicketSchedule` giving the rate per round
      and the round length (default: rate 0.2, rounds run by hand).
    criterion: The name of a registered criterion (`criterion_names()`).
    scope: 'layer' (every weight tensor loses `rate` of its alive weights)
      or 'global' (the global-scope wrappers of a model share one ranking).
    layer_rate: This layer's rate in [0, 1), instead of the schedule's; the
      layer is then pruned on its own, also in global scope; 0: never.
    mask_0_action: 'zero' (pruned weights are 0) or 'freeze' (they keep
      their rewind-point value and are not trained).
    mask_1_action: What survivors start a round from: 'rewind', 'reinit',
      'reshuffle' or 'signed_constant' (as in the Keras 2 wrapper).
    dynamic_weight_rescaling: Multiply survivors by (weights in the tensor /
      weights kept) after a rewind.
    rewind_step: The training step whose weights are the rewind point (0 =
      the initial weights; k > 0 = late rewinding).
    seed: Seed for the random criterion and the random mask-1 actions.
    position: The wrapper's index among the model's lottery wrappers, which
      `prune_lottery_ticket` sets (random draws derive from the seed and
      this position, never from layer names); None: its index among the
      wrappers a round function is given.
    granularity: 'weight' (weights are pruned one by one) or 'unit': whole
      Dense neurons, Conv filters, DepthwiseConv2D channels, and the channels
      of the BatchNormalization after them, whose gamma and beta (as a
      unit's bias) are then masked with their unit, so that a removed unit
      is exactly 0; the groups come from `prune_lottery_ticket`.
    unit_pooling: 'L1' (sum), 'L2' or 'mean': how a unit's weight scores
      make its score (`ltp_tfmot.core.masks.pool_units`).
    unit_group: The label of the group of wrappers whose units are pruned
      together, unit for unit, or None.
    block_size: (height, width) of the blocks 2-D kernels are pruned in, as
      in tfmot; other kernels are pruned weight by weight.
    block_pooling_type: How a block's weight scores are pooled: 'AVG' or 'MAX'.
    **kwargs: Keras layer arguments (`name`, default 'prune_lottery_ticket_'
      + the layer's name; `dtype`, default the layer's dtype policy).

  Raises:
    TypeError: for a layer that is no Keras 3 layer, a schedule that is no
      `LotteryTicketSchedule`, or an argument of the wrong type.
    ValueError: for an unknown criterion, scope or action, a bad rate,
      rewind step, position or block, a layer with no prunable weight (in
      'unit' granularity: a layer with no units, or a setting units cannot
      follow); when built, for a MultiHeadAttention that was never called.
  """

  def __init__(self, layer, pruning_schedule=None, criterion='large_final', scope='layer', layer_rate=None,
               mask_0_action='zero', mask_1_action='rewind', dynamic_weight_rescaling=False, rewind_step=0, seed=0,
               position=None, granularity='weight', unit_pooling='L1', unit_group=None, block_size=(1, 1),
               block_pooling_type='AVG', **kwargs):
    if not isinstance(layer, keras.layers.Layer):
      raise TypeError(f'layer must be a Keras 3 layer, got {type(layer).__module__}.{type(layer).__name__}')
    if granularity == 'unit' and not UNIT_KINDS.has_units(layer):
      raise ValueError(f"granularity='unit' prunes the units of Dense, Conv1D/2D/3D and DepthwiseConv2D layers; "
                       f'layer {layer.name!r} is a {type(layer).__name__}: wrap it with granularity=\'weight\'')
    if not is_prunable(layer) and granularity != 'unit':
      raise ValueError(f'layer {layer.name!r} ({type(layer).__name__}) has no prunable weight: wrap one of '
                       f'{PRUNED_LAYERS}, or give it a get_prunable_weights method')
    settings = check_settings(
        pruning_schedule=pruning_schedule, criterion=criterion, scope=scope, mask_0_action=mask_0_action,
        mask_1_action=mask_1_action, dynamic_weight_rescaling=dynamic_weight_rescaling, rewind_step=rewind_step,
        seed=seed, granularity=granularity, unit_pooling=unit_pooling, block_size=block_size,
        block_pooling_type=block_pooling_type)
    layer_rate = None if layer_rate is None else validation.check_fraction(
        layer_rate, f'layer_rates[{layer.name!r}]', allow_zero=True)
    position = validation.check_int(position, 'position', minimum=0, optional=True)
    if unit_group is not None and not isinstance(unit_group, str):
      raise TypeError(f'unit_group must be a string or None, got {unit_group!r}')
    kwargs.setdefault('name', f'prune_lottery_ticket_{layer.name}')
    kwargs.setdefault('dtype', layer.dtype_policy)
    # The wrapper reads its variables without autocasting (masking in float16 would round float32 weights); the
    # wrapped layer autocasts its own reads when it runs.
    super().__init__(layer, autocast=False, **kwargs)
    self.layer_rate = layer_rate
    self.position = position
    self.unit_group = unit_group
    for name, value in settings.items():
      setattr(self, name, value)

  @property
  def rate(self):
    """The fraction of alive weights this layer loses per round."""
    return self.pruning_schedule.rate if self.layer_rate is None else self.layer_rate

  @property
  def prunable_weights(self):
    """The wrapped layer's variables that are masked, in `masks` order: the `ranked_count` ranked ones first.

    In unit granularity the ranked kernel is followed by the weights masked with its units (its bias; a
    BatchNormalization, which has no ranked weight, its gamma and beta).
    """
    ranked = pruned_weights_of(self.layer)
    if self.granularity != 'unit':
      return ranked
    if isinstance(self.layer, keras.layers.BatchNormalization):
      return [weight for weight in (self.layer.gamma, self.layer.beta) if weight is not None]
    bias = getattr(self.layer, 'bias', None)
    return ranked + ([] if bias is None else [bias])

  def build(self, input_shape=None):
    """Builds the wrapped layer if needed, then the masks, snapshots and counters.

    Args:
      input_shape: The shape of the wrapped layer's (first) input.

    Raises:
      ValueError: for a MultiHeadAttention never called, whose kernels' shapes its first call decides.
    """
    if not self.layer.built:
      if isinstance(self.layer, keras.layers.MultiHeadAttention):
        raise ValueError(f'MultiHeadAttention layer {self.layer.name!r} must be called once before it is wrapped '
                         '(its kernels are made at its first call): wrap the model after building it')
      self.layer.build(input_shape)
    prunable = self.prunable_weights
    suffixes = dict(zip(map(id, self.layer.weights), variable_suffixes(self.layer), strict=True))
    single = len(prunable) == 1
    self.masks = [
        self.add_weight(name='mask' if single else f'mask_{suffixes[id(weight)]}', shape=weight.shape,
                        initializer='ones', dtype=weight.dtype, trainable=False, autocast=False, aggregation='mean')
        for weight in prunable
    ]
    self.snapshots = [
        self.add_weight(name=f'snapshot_{suffixes[id(weight)]}', shape=weight.shape, initializer='zeros',
                        dtype=weight.dtype, trainable=False, autocast=False, aggregation='only_first_replica')
        for weight in self.layer.weights
    ]
    positions = {id(weight): i for i, weight in enumerate(self.layer.weights)}
    self.prunable_snapshots = [self.snapshots[positions[id(weight)]] for weight in prunable]
    # The weights the criterion ranks; in unit granularity the companions masked with the units follow them.
    self.ranked_count = len(pruned_weights_of(self.layer))
    self.snapshot_step = self._counter('snapshot_step', NO_SNAPSHOT)
    self.rounds_done = self._counter('rounds_done', 0)
    self.step_offset = self._counter('step_offset', NOT_COUNTING)
    self.pruning_step = self._counter('pruning_step', -1)

  def _counter(self, name, start):
    """A new int32 scalar variable of the wrapper, starting at `start`, that only the first replica updates."""
    return self.add_weight(name=name, shape=(), initializer=keras.initializers.Constant(start), dtype=COUNTER_DTYPE,
                           trainable=False, aggregation='only_first_replica')

  def masked_values(self):
    """Each prunable weight with its masked value: `weight * mask` ('freeze': `+ snapshot * (1 - mask)`).

    Assigning the values applies the masks to the stored weights (between training steps, before saving or
    stripping); `call` does so at every call.

    Returns:
      A list of (variable, tensor) pairs in `prunable_weights` order, each tensor in its variable's dtype.
    """
    pairs = []
    for weight, mask, snapshot in zip(self.prunable_weights, self.masks, self.prunable_snapshots, strict=True):
      value = ops.multiply(weight, mask)
      if self.mask_0_action == 'freeze':
        value = ops.add(value, ops.multiply(snapshot, ops.subtract(1, mask)))
      pairs.append((weight, ops.cast(value, weight.dtype)))
    return pairs

  def call(self, inputs, *args, **kwargs):
    """Applies the masks to the prunable weights, then calls the wrapped layer.

    Args:
      inputs: The wrapped layer's first input.
      *args: Its other positional inputs (MultiHeadAttention's value, key).
      **kwargs: Its keyword arguments (Keras passes `training` and masks on by the call context).

    Returns:
      The wrapped layer's outputs.
    """
    for weight, value in self.masked_values():
      weight.assign(value)
    return self.layer(inputs, *args, **kwargs)

  def unit_axis(self, index):
    """The axis of prunable weight `index` along which its output units lie (a DepthwiseConv2D's channels: 2)."""
    if index >= self.ranked_count:  # a bias, gamma or beta: a vector of units
      return 0
    if isinstance(self.layer, keras.layers.DepthwiseConv2D):
      return 2
    return len(self.prunable_weights[index].shape) - 1

  def block_shape(self, index):
    """The block of prunable weight `index`, or None if it is pruned weight by weight."""
    if self.block_size == (1, 1) or len(self.prunable_weights[index].shape) != 2:
      return None
    return self.block_size

  @property
  def prunable_weight_names(self):
    """The variable paths of the prunable weights (`prunable_weights` order), as messages name them."""
    return tuple(weight.path for weight in self.prunable_weights)

  @property
  def prunable_weight_paths(self):
    """The `weight_paths` of the prunable weights, in `prunable_weights` order."""
    paths = dict(zip(map(id, self.layer.weights), weight_paths(self.layer), strict=True))
    return tuple(paths[id(weight)] for weight in self.prunable_weights)

  @property
  def has_snapshot(self):
    """Whether a rewind point has been taken."""
    return self.built and int(ops.convert_to_numpy(self.snapshot_step)) != NO_SNAPSHOT

  def get_config(self):
    """The wrapper's arguments, the wrapped layer's config and the schedule's, for `from_config`."""
    config = super().get_config()
    config.update({name: getattr(self, name) for name in _CONFIG_ATTRIBUTES})
    config.update(pruning_schedule=self.pruning_schedule.get_config(), block_size=list(self.block_size))
    return config

  @classmethod
  def from_config(cls, config, custom_objects=None):
    """The wrapper of a `get_config()` output, around its layer rebuilt from its config."""
    config = dict(config)
    config['pruning_schedule'] = schedule_lib.deserialize_schedule(config['pruning_schedule'])
    return super().from_config(config, custom_objects=custom_objects)
