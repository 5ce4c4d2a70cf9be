"""The lottery-ticket layer wrapper: a tfmot `PruneLowMagnitude` with a rewind point."""

import inspect

import tensorflow as tf
from tensorflow_model_optimization.python.core.keras import utils as tfmot_utils
from tensorflow_model_optimization.python.core.sparsity.keras import prunable_layer
from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_schedule as tfmot_schedule
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper
import tf_keras as keras
from tf_keras.src.engine import base_layer_utils

from ltp_tfmot import errors
from ltp_tfmot import validation
from ltp_tfmot.core import criteria as criteria_lib
from ltp_tfmot.core import schedule as schedule_lib
from ltp_tfmot.keras2 import masking
from ltp_tfmot.keras2 import unit_groups

SCOPES = validation.SCOPES
MASK_0_ACTIONS = validation.MASK_0_ACTIONS
MASK_1_ACTIONS = validation.MASK_1_ACTIONS
GRANULARITIES = validation.GRANULARITIES
UNIT_POOLINGS = validation.UNIT_POOLINGS
NO_SNAPSHOT = -1
# The lottery schedules know no tfmot (a Keras 3 program uses them too); to tfmot they are PruningSchedules.
tfmot_schedule.PruningSchedule.register(schedule_lib.LotteryTicketSchedule)
# `step_offset` before the model's training steps are counted: neither UpdateLotteryStep nor take_snapshot ran.
NOT_COUNTING = -2**63


def check_rewind_step(rewind_step):
  """`int(rewind_step)`, checked to be a rewind point's training step.

  Raises:
    TypeError: if it is not an integer.
    ValueError: if it is negative.
  """
  return validation.check_int(rewind_step, 'rewind_step', minimum=0, hint=' (0 = the initial weights)')


def check_seed(seed):
  """`int(seed)`, checked to be an integer (the seed of a wrapper's random draws).

  Raises:
    TypeError: if it is not an integer.
  """
  return validation.check_int(seed, 'seed')


def check_tf_keras(obj, name='to_prune'):
  """Raises a clear error for Keras 3 objects, which tfmot cannot wrap."""
  module = type(obj).__module__
  if module.startswith('keras') and not isinstance(obj, (keras.layers.Layer, keras.Model)):
    raise TypeError(f'{name} is a Keras 3 object ({module}.{type(obj).__name__}); tfmot and ltp_tfmot work on '
                     'Keras 2 models: build it with `import tf_keras as keras` instead of `tf.keras` '
                     '(or set TF_USE_LEGACY_KERAS=1 before importing TensorFlow)')


def is_prunable(layer):
  """Whether `prune_lottery_ticket` wraps this layer.

  Prunable layers are those tfmot's registry gives a prunable weight, custom
  layers implementing tfmot's `PrunableLayer` (or `get_prunable_weights`),
  `DepthwiseConv2D` (its depthwise kernel) and `Bidirectional` around RNNs the
  registry prunes (both directions' kernels), which tfmot's registry skips.
  """
  if isinstance(layer, pruning_wrapper.PruneLowMagnitude):
    return False
  if isinstance(layer, keras.layers.DepthwiseConv2D):
    return True
  if isinstance(layer, prunable_layer.PrunableLayer) or hasattr(layer, 'get_prunable_weights'):
    return True
  if isinstance(layer, keras.layers.Bidirectional):
    return is_prunable(layer.forward_layer) and is_prunable(layer.backward_layer)
  registry = prune_registry.PruneRegistry
  if not registry.supports(layer):
    return False
  if registry._is_rnn_layer(layer) or registry._is_mha_layer(layer):  # pylint: disable=protected-access
    return True
  return bool(registry._weight_names(layer))  # pylint: disable=protected-access


def _registry_prunable_weights(layer):
  """The weights tfmot's registry prunes in a layer it supports, without patching the layer as tfmot does."""
  registry = prune_registry.PruneRegistry
  weights = []
  if registry._is_rnn_layer(layer):  # pylint: disable=protected-access
    for cell in registry._get_rnn_cells(layer):  # pylint: disable=protected-access
      if isinstance(cell, prunable_layer.PrunableLayer):
        weights.extend(cell.get_prunable_weights())
      else:
        names = registry._RNN_CELLS_WEIGHTS_MAP[cell.__class__]  # pylint: disable=protected-access
        weights.extend(getattr(cell, name) for name in names)
    return weights
  for name in registry._weight_names(layer):  # pylint: disable=protected-access
    owner = layer
    for part in name.split('.'):  # MultiHeadAttention's are '_query_dense.kernel', ...
      owner = getattr(owner, part)
    weights.append(owner)
  return weights


def _builtin_prunable_weights(layer):
  """The prunable weights of a prunable Keras layer that has no `get_prunable_weights` of its own."""
  if isinstance(layer, keras.layers.DepthwiseConv2D):
    return [layer.depthwise_kernel]
  if isinstance(layer, keras.layers.Bidirectional):
    return pruned_weights_of(layer.forward_layer) + pruned_weights_of(layer.backward_layer)
  return _registry_prunable_weights(layer)


def pruned_weights_of(layer):
  """The weights of a built layer that a `PruneLotteryTicket` around it prunes ([] if it is not prunable)."""
  if not is_prunable(layer):
    return []
  if hasattr(layer, 'get_prunable_weights'):
    return list(layer.get_prunable_weights())
  return _builtin_prunable_weights(layer)


def unpruned_reason(layer):
  """Why a built layer's kernel-like weights stay dense under `prune_lottery_ticket`, or None.

  Kernel-like means a matrix, not a vector: at least two axes longer than 1, and not named '...bias'
  (MultiHeadAttention's and GRU's biases are 2-D). Biases, BatchNormalization's and LayerNormalization's
  vectors and per-channel PReLU slopes are never pruned, so layers holding only those (or no weight) give
  None, as do layers whose kernels are all pruned.

  Args:
    layer: A Keras layer (not a model).

  Returns:
    A sentence naming the weights left dense and why, or None.
  """
  if isinstance(layer, pruning_wrapper.PruneLowMagnitude):
    return None
  paths = dict(zip([weight.ref() for weight in layer.weights], weight_paths(layer), strict=True))
  kernels = [weight for weight in layer.weights
             if sum(1 for d in weight.shape if d is None or d > 1) >= 2
             and not paths[weight.ref()].split('#')[0].endswith('bias')]
  if not kernels:
    return None
  if not is_prunable(layer):
    names = ', '.join(paths[weight.ref()] for weight in kernels)
    cls = type(layer).__name__
    if isinstance(layer, keras.layers.Wrapper):
      why = (f'a {cls} around a {type(layer.layer).__name__}: of the layer wrappers, only Bidirectional '
             'around RNNs that tfmot\'s prune registry prunes is wrapped')
    elif prune_registry.PruneRegistry._is_rnn_layer(layer):  # pylint: disable=protected-access
      cells = prune_registry.PruneRegistry._get_rnn_cells(layer)  # pylint: disable=protected-access
      why = (f'a {cls} with cell {", ".join(type(cell).__name__ for cell in cells)}, which tfmot\'s prune '
             'registry does not know and which is no tfmot PrunableLayer')
    else:
      why = f'{cls} is not in tfmot\'s prune registry and is no tfmot PrunableLayer (get_prunable_weights)'
    return f'{why}; dense: {names}'
  pruned = pruned_weights_of(layer)
  left = [weight for weight in kernels if not any(weight is p for p in pruned)]
  if not left:
    return None
  return (f'{type(layer).__name__} is wrapped, but only {", ".join(paths[w.ref()] for w in pruned)} '
          f'{"is" if len(pruned) == 1 else "are"} pruned (as in tfmot); dense: '
          f'{", ".join(paths[w.ref()] for w in left)}')


@keras.utils.register_keras_serializable(package='ltp_tfmot')
class PruneLotteryTicket(pruning_wrapper.PruneLowMagnitude):
  """Wraps a Keras layer for lottery-ticket pruning (a tfmot `PruneLowMagnitude`).

  Besides tfmot's mask variables, the wrapper keeps a snapshot of all the
  layer's weights at the rewind point, the number of pruning rounds done and
  the model's training-step count (`step_offset`, see `steps_done`), all as
  layer weights, so they are saved and loaded with the model (h5,
  SavedModel, .keras). They are named after the weight they belong to (see
  `variable_suffixes`): `snapshot_kernel`, `mask_recurrent_kernel`; a layer
  with one prunable weight keeps tfmot's `mask` and `threshold`. Masks are
  changed by `ltp_tfmot.run_lottery_round` (called by `UpdateLotteryStep` at
  the end of each round of the schedule), never during a training step.

  Most users call `ltp_tfmot.prune_lottery_ticket` rather than this class.

  Args:
    layer: The layer to wrap; it must have a prunable weight.
    pruning_schedule: A `LotteryTicketSchedule` (rate and round length).
    criterion: Name of a registered criterion (see `criterion_names()`).
    scope: 'layer' (each weight tensor loses `rate` of its alive weights) or
      'global' (one ranking across every global-scope wrapper of the model).
    layer_rate: A rate for this layer in [0, 1) instead of the schedule's
      (pruned on its own, also in global scope); 0 never prunes it.
    mask_0_action: 'zero' (pruned weights are 0) or 'freeze' (held at their
      rewind-point value and not trained).
    mask_1_action: What survivors start from after a round: 'rewind' (their
      snapshot values: the lottery ticket), 'reinit' (fresh values from the
      layer's initializers), 'reshuffle' (the snapshot values of the kept
      weights permuted among them) or 'signed_constant' (sign of the snapshot
      times the standard deviation of the layer's snapshot).
    dynamic_weight_rescaling: Multiply survivors by (weights in the tensor /
      weights kept) after a rewind.
    rewind_step: The training step whose weights are the rewind point (0 =
      the initial weights; k > 0 = late rewinding).
    seed: Seed for the random criterion and the random mask-1 actions.
    granularity: 'weight' (weights are pruned one by one) or 'unit' (whole
      output units: a Dense neuron, a Conv filter, a DepthwiseConv2D channel,
      or the channels of a BatchNormalization that follows them). In 'unit'
      granularity the unit's bias (BatchNormalization: gamma and beta) is
      masked with it, so that a removed unit outputs exactly 0.
      `prune_lottery_ticket(model, granularity='unit')` sets the groups.
    unit_pooling: How a unit's weight scores are pooled into its score:
      'L1' (sum), 'L2' or 'mean'; see `ltp_tfmot.core.masks.pool_units`.
    unit_group: The label of the group of wrappers whose units are pruned
      together, unit for unit (the channels tied by a residual Add, a
      BatchNormalization and its convolution); None: the layer alone.
    position: The wrapper's index among the model's lottery wrappers (in
      `lottery_wrappers(model)` order), which `prune_lottery_ticket` sets:
      random draws derive from the seed, this position and the weight's index
      in the layer, never from layer names, so the same architecture draws the
      same numbers. None: the wrapper's index among the wrappers a round
      function is given.
    **kwargs: Passed to tfmot's `PruneLowMagnitude`: `block_size` (e.g.
      (4, 1): masks of whole blocks of 2-D kernels, scores pooled per block
      with `block_pooling_type` 'AVG' or 'MAX'; other kernels are pruned
      weight by weight) and Keras layer arguments. tfmot's `sparsity_m_by_n`
      is refused.

  Raises:
    ValueError: for an unknown criterion, scope or action, a bad rate,
      rewind step or position, a layer without a prunable weight, or
      `sparsity_m_by_n`; when built, for a MultiHeadAttention wrapped before
      its first call.
    TypeError: if `pruning_schedule` is not a `LotteryTicketSchedule`, or
      for an argument of the wrong type (a rewind step, seed or position
      that is not an integer, a `dynamic_weight_rescaling` that is not a
      bool, a `unit_group` that is not a string).
  """

  _PRUNE_CALLBACK_ERROR_MSG = (
      'PruneLotteryTicket wrappers need the UpdateLotteryStep callback during training: '
      'model.fit(..., callbacks=[ltp_tfmot.UpdateLotteryStep()]); tfmot\'s UpdatePruningStep runs no lottery '
      'round, so it is not enough. In a custom training loop, call ltp_tfmot.take_snapshot(model) first.')

  def __init__(self,
               layer,
               pruning_schedule=None,
               criterion='large_final',
               scope='layer',
               layer_rate=None,
               mask_0_action='zero',
               mask_1_action='rewind',
               dynamic_weight_rescaling=False,
               rewind_step=0,
               seed=0,
               position=None,
               granularity='weight',
               unit_pooling='L1',
               unit_group=None,
               **kwargs):
    if pruning_schedule is None:
      pruning_schedule = schedule_lib.LotteryTicketSchedule()
    if not isinstance(pruning_schedule, schedule_lib.LotteryTicketSchedule):
      raise TypeError('pruning_schedule must be a ltp_tfmot.LotteryTicketSchedule, '
                      f'got {type(pruning_schedule).__name__}')
    if not isinstance(layer, keras.layers.Layer):
      raise TypeError(f'layer must be a tf_keras layer, got {type(layer).__module__}.{type(layer).__name__}')
    self.granularity = validation.check_choice(granularity, 'granularity', GRANULARITIES)
    self.unit_pooling = validation.check_choice(unit_pooling, 'unit_pooling', UNIT_POOLINGS)
    self.unit_group = validation.check_str(unit_group, 'unit_group', optional=True)
    if self.granularity == 'unit':
      _check_unit_layer(layer, kwargs, mask_0_action)
      if isinstance(layer, keras.layers.BatchNormalization) and not hasattr(layer, 'get_prunable_weights'):
        # A BatchNormalization is wrapped only to mask its gamma and beta with the units it follows.
        layer.get_prunable_weights = lambda: []
    if not is_prunable(layer):
      raise ValueError(f'layer {layer.name!r} ({type(layer).__name__}) has no prunable weight')
    self.criterion = criteria_lib.get_criterion(criterion).name
    self.scope = validation.check_choice(scope, 'scope', SCOPES)
    self.layer_rate = None if layer_rate is None else validation.check_fraction(
        layer_rate, f'layer_rates[{layer.name!r}]', allow_zero=True)
    self.mask_0_action = validation.check_choice(mask_0_action, 'mask_0_action', MASK_0_ACTIONS)
    self.mask_1_action = validation.check_choice(mask_1_action, 'mask_1_action', MASK_1_ACTIONS)
    self.dynamic_weight_rescaling = validation.check_bool(dynamic_weight_rescaling, 'dynamic_weight_rescaling')
    self.rewind_step = check_rewind_step(rewind_step)
    schedule_lib.check_rewind_before_first_round(self.rewind_step, pruning_schedule)
    self.seed = check_seed(seed)
    self.position = validation.check_int(position, 'position', minimum=0, optional=True)
    if kwargs.get('sparsity_m_by_n') is not None:
      raise ValueError(f'sparsity_m_by_n={kwargs["sparsity_m_by_n"]!r} is not supported by lottery-ticket pruning, '
                       'whose rounds prune a rate of the weights still alive: use block_size for structured '
                       'tickets, or tfmot.sparsity.keras.prune_low_magnitude(..., sparsity_m_by_n=(2, 4)) for '
                       'M-by-N sparsity')
    if (isinstance(layer, (keras.layers.DepthwiseConv2D, keras.layers.Bidirectional))
        and not hasattr(layer, 'get_prunable_weights')):
      # tfmot's registry lists DepthwiseConv2D with no prunable weight, and does not know Bidirectional.
      layer.get_prunable_weights = lambda: _builtin_prunable_weights(layer)
    super().__init__(layer, pruning_schedule=pruning_schedule, **kwargs)
    # Whether this wrapper refused a training step whose steps nobody counted: Keras then holds a train function
    # whose trace failed, which UpdateLotteryStep has it make anew.
    self.refused_training = False

  @property
  def rate(self):
    """The fraction of alive weights this layer loses per round."""
    return self.pruning_schedule.rate if self.layer_rate is None else self.layer_rate

  def build(self, input_shape):
    # tfmot's build names every mask 'mask' and every threshold 'threshold', which a layer with several
    # prunable weights cannot save to h5 (one dataset per name); this one names them after their weights.
    keras.layers.Wrapper.build(self, input_shape)
    _build_attention_projections(self.layer)
    self.prunable_weights = list(self.layer.get_prunable_weights())
    # The weights ranked by the criterion; in unit granularity the unit's bias (or a BatchNormalization's
    # gamma and beta) follow, masked with their unit.
    self.ranked_count = len(self.prunable_weights)
    if self.granularity == 'unit':
      self.prunable_weights += _unit_companions(self.layer)
    names = dict(zip([weight.ref() for weight in self.layer.weights], variable_suffixes(self.layer), strict=True))
    single = len(self.prunable_weights) == 1
    self.pruning_vars = []
    for weight in self.prunable_weights:
      # Under a mixed precision policy, variables report their cast dtype; masks keep the variable's own.
      dtype = getattr(weight, 'true_dtype', weight.dtype)
      suffix = '' if single else '_' + names[weight.ref()]
      mask = self.add_weight('mask' + suffix, shape=weight.shape, initializer='ones', dtype=dtype, trainable=False,
                             aggregation=tf.VariableAggregation.MEAN)
      threshold = self.add_weight('threshold' + suffix, shape=[], initializer='zeros', dtype=dtype, trainable=False,
                                  aggregation=tf.VariableAggregation.MEAN)
      self.pruning_vars.append((weight, mask, threshold))
    self.pruning_step = self.add_weight(
        'pruning_step', shape=[], initializer=keras.initializers.Constant(-1), dtype=tf.int64, trainable=False)
    self.snapshots = [
        self.add_weight(
            'snapshot_' + names[weight.ref()],
            shape=weight.shape,
            initializer='zeros',
            dtype=getattr(weight, 'true_dtype', weight.dtype),  # float32 under a mixed-precision policy
            trainable=False,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        ) for weight in self.layer.weights
    ]
    self.snapshot_step = self.add_weight(
        'snapshot_step', shape=[], initializer=keras.initializers.Constant(NO_SNAPSHOT), dtype=tf.int64,
        trainable=False, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    self.rounds_done = self.add_weight(
        'rounds_done', shape=[], initializer='zeros', dtype=tf.int64, trainable=False,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    # The model's training steps are step_offset + optimizer.iterations (see wrapped_model.steps_done), the
    # same in every wrapper; pruning_step holds the count as last recorded.
    self.step_offset = self.add_weight(
        'step_offset', shape=[], initializer=keras.initializers.Constant(NOT_COUNTING), dtype=tf.int64,
        trainable=False, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    refs = [weight.ref() for weight in self.layer.weights]
    self.prunable_snapshots = [self.snapshots[refs.index(weight.ref())] for weight in self.prunable_weights]
    self.pruning_obj = masking.LotteryPruning(
        snapshots=self.prunable_snapshots,
        freeze=self.mask_0_action == 'freeze',
        training_step_fn=lambda: self.pruning_step,
        pruning_vars=self.pruning_vars,
        pruning_schedule=self.pruning_schedule,
        block_size=self.block_size,
        block_pooling_type=self.block_pooling_type)

  def call(self, inputs, training=None, **kwargs):
    """Applies the masks, then the wrapped layer.

    Unlike tfmot's, it evaluates no pruning schedule and counts no step:
    lottery masks change only at round boundaries, outside the training step,
    and the model's training steps are its optimizer's steps (counted by
    `UpdateLotteryStep`), however often a step calls the layer. A training
    call only checks that the steps are counted.

    Args:
      inputs: The wrapped layer's inputs.
      training: Whether the call is a training step (default: Keras's
        learning phase); passed on to the wrapped layer if it takes it.
      **kwargs: Passed on to the wrapped layer.

    Returns:
      The wrapped layer's outputs.
    """
    if training is None:
      training = keras.backend.learning_phase()
    if tf.get_static_value(training):
      self._refuse_uncounted_steps()
    self.add_update(tfmot_utils.smart_cond(training, self._check_steps_counted, lambda: tf.no_op('no_update')))
    self.add_update(self.pruning_obj.weight_mask_op())
    if 'training' in inspect.getfullargspec(self.layer.call).args:
      return self.layer.call(inputs, training=training, **kwargs)
    return self.layer.call(inputs, **kwargs)

  def _refuse_uncounted_steps(self):
    # In Python, when a training step is traced: before its first run, and also under XLA (jit_compile=True),
    # which drops the graph's Assert below. The step count's variable is read outside the graph being traced.
    # A SavedModel export traces training calls of models never trained: those are no steps.
    if base_layer_utils.call_context().saving:
      return
    with tf.init_scope():
      counted = int(self.step_offset.numpy()) > NOT_COUNTING
    if not counted:
      self.refused_training = True
      raise errors.TrainingSetupError(self._PRUNE_CALLBACK_ERROR_MSG)

  def _check_steps_counted(self):
    # UpdateLotteryStep (or take_snapshot) starts the step count. tfmot's
    # UpdatePruningStep sets only pruning_step, so alone it fails here. A plain
    # Assert on a string message costs a handful of ops per step; tfmot's
    # `assert_greater_equal` builds a guarded cond of about 25.
    counted = self.step_offset > NOT_COUNTING
    with tf.control_dependencies([tf.debugging.Assert(counted, [self._PRUNE_CALLBACK_ERROR_MSG])]):
      return tf.no_op('update')

  @property
  def masks(self):
    """The mask variables, one per prunable weight (`prunable_weights[i]` is masked by `masks[i]`)."""
    return [mask for _, mask, _ in self.pruning_vars]

  def unit_axis(self, index):
    """The axis of prunable weight `index` along which its units lie (unit granularity)."""
    if index >= self.ranked_count:
      return 0
    if isinstance(self.layer, keras.layers.DepthwiseConv2D):
      return 2
    return self.prunable_weights[index].shape.rank - 1

  def block_shape(self, index):
    """The block of prunable weight `index`, or None if it is pruned weight by weight."""
    block = tuple(int(b) for b in self.block_size)
    if block == (1, 1) or self.prunable_weights[index].shape.rank != 2:
      return None
    return block

  @property
  def prunable_weight_names(self):
    """The variable names of the prunable weights (`prunable_weights` order), as messages name them."""
    return tuple(weight.name for weight in self.prunable_weights)

  @property
  def prunable_weight_paths(self):
    """The `weight_paths` of the prunable weights, in `prunable_weights` order."""
    paths = dict(zip([weight.ref() for weight in self.layer.weights], weight_paths(self.layer), strict=True))
    return tuple(paths[weight.ref()] for weight in self.prunable_weights)

  @property
  def has_snapshot(self):
    return self.built and int(self.snapshot_step.numpy()) != NO_SNAPSHOT

  def get_config(self):
    config = super().get_config()
    config.update({
        'criterion': self.criterion,
        'scope': self.scope,
        'layer_rate': self.layer_rate,
        'mask_0_action': self.mask_0_action,
        'mask_1_action': self.mask_1_action,
        'dynamic_weight_rescaling': self.dynamic_weight_rescaling,
        'rewind_step': self.rewind_step,
        'seed': self.seed,
        'position': self.position,
        'granularity': self.granularity,
        'unit_pooling': self.unit_pooling,
        'unit_group': self.unit_group,
    })
    return config

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    config['pruning_schedule'] = schedule_lib.deserialize_schedule(config['pruning_schedule'])
    config['layer'] = keras.layers.deserialize(config.pop('layer'))
    return cls(**config)


def _check_unit_layer(layer, kwargs, mask_0_action):
  """Raises for a layer or an option that unit granularity cannot prune."""
  if not unit_groups.has_units(layer):
    raise ValueError(f"granularity='unit' prunes the units of Dense, Conv1D/2D/3D and DepthwiseConv2D layers; "
                     f'layer {layer.name!r} is a {type(layer).__name__}: wrap it with granularity=\'weight\'')
  block = tuple(kwargs.get('block_size', (1, 1)))
  if block != (1, 1):
    raise ValueError(f"granularity='unit' removes whole units, so block_size must be (1, 1), got {block}: "
                     "use block_size with granularity='weight', or drop it")
  if mask_0_action != 'zero':
    raise ValueError(f"granularity='unit' needs mask_0_action='zero' (a removed unit is 0), got {mask_0_action!r}")


def _unit_companions(layer):
  """The weights masked with a layer's units besides its kernel: its bias, a BatchNormalization's gamma and beta."""
  if isinstance(layer, keras.layers.BatchNormalization):
    return [weight for weight in (layer.gamma, layer.beta) if weight is not None]
  bias = getattr(layer, 'bias', None)
  return [] if bias is None else [bias]


def weight_paths(layer):
  """The names of a layer's weights relative to it, in `layer.weights` order, made unique.

  A weight's path is the chain of sublayers holding it, then its own name: 'kernel' for a Dense,
  'lstm_cell/recurrent_kernel' for an LSTM, 'query/kernel' for a MultiHeadAttention; '#2' is added to a
  repeated one. Paths come from the layer's structure, not from variable names, which depend on the name
  scope a layer was built in (a loaded model builds its layers inside their wrappers). Ticket files name
  their arrays with these.

  Args:
    layer: A built Keras layer.

  Returns:
    A tuple of strings, one per weight.
  """
  sublayers = [sub for sub in layer.submodules if isinstance(sub, keras.layers.Layer)]
  paths = []
  for weight in layer.weights:
    holders = [sub for sub in sublayers if any(w is weight for w in sub.weights)]
    holders.sort(key=lambda sub: -len(sub.weights))  # outermost first
    name = '/'.join([sub.name for sub in holders] + [weight.name.rsplit(':', 1)[0].rsplit('/', 1)[-1]])
    unique, n = name, 1
    while unique in paths:
      n += 1
      unique = f'{name}#{n}'
    paths.append(unique)
  return tuple(paths)


def variable_suffixes(layer):
  """What the wrapper's variables for each of the layer's weights are named after: 'kernel', 'query_kernel'.

  Each is the shortest tail of the weight's path (see `weight_paths`) that no other weight of the layer
  shares, with '/' written '_' and '#' written '_' (variable names must be valid h5 dataset and
  checkpoint names). The tail keeps the names of single-kernel layers ('snapshot_kernel') as they were.
  """
  parts = [path.replace('#', '_').split('/') for path in weight_paths(layer)]
  suffixes = []
  for i, path in enumerate(parts):
    others = [other for j, other in enumerate(parts) if j != i]
    length = 1
    while length < len(path) and any(other[-length:] == path[-length:] for other in others):
      length += 1
    suffixes.append('_'.join(path[-length:]))
  return tuple(suffixes)


def _build_attention_projections(layer):
  """Builds a deserialized MultiHeadAttention's four projections, which Keras builds only at their first call.

  The wrapper needs their kernels before that call (to make their masks and snapshots); the shapes come
  from the layer's config, which records them once the layer has been built.
  """
  if type(layer) is not keras.layers.MultiHeadAttention:  # pylint: disable=unidiomatic-typecheck
    return
  # pylint: disable=protected-access
  if not layer._built_from_signature:
    raise ValueError(f'MultiHeadAttention layer {layer.name!r} must be called once before it is wrapped (its '
                     'kernels are made at its first call): wrap the model after building it')
  projections = (layer._query_dense, layer._key_dense, layer._value_dense, layer._output_dense)
  if all(projection.built for projection in projections):
    return
  attended = layer._query_shape[:-1].concatenate([layer._num_heads, layer._value_dim])
  shapes = (layer._query_shape, layer._key_shape, layer._value_shape, attended)
  for projection, shape in zip(projections, shapes, strict=True):
    if not projection.built:
      projection.build(shape)
  # pylint: enable=protected-access
