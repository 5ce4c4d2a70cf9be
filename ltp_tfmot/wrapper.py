"""The lottery-ticket layer wrapper: a tfmot `PruneLowMagnitude` with a rewind point."""

import inspect
import numbers

import tensorflow as tf
from tensorflow_model_optimization.python.core.keras import utils as tfmot_utils
from tensorflow_model_optimization.python.core.sparsity.keras import prunable_layer
from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_impl
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper
import tf_keras as keras
from tf_keras.src.mixed_precision import autocast_variable

from ltp_tfmot import criteria as criteria_lib
from ltp_tfmot import schedule as schedule_lib

SCOPES = ('layer', 'global')
MASK_0_ACTIONS = ('zero', 'freeze')
MASK_1_ACTIONS = ('rewind', 'reinit', 'reshuffle', 'signed_constant')
NO_SNAPSHOT = -1
# `step_offset` before the model's training steps are counted: neither UpdateLotteryStep nor take_snapshot ran.
NOT_COUNTING = -2**63


def check_choice(value, name, choices):
  if value not in choices:
    raise ValueError(f'{name} must be one of {list(choices)}, got {value!r}')
  return value


def check_rewind_step(rewind_step):
  if isinstance(rewind_step, bool) or not isinstance(rewind_step, numbers.Integral) or rewind_step < 0:
    raise ValueError(f'rewind_step must be an integer >= 0 (0 = the initial weights), got {rewind_step!r}')
  return int(rewind_step)


def check_seed(seed):
  if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
    raise ValueError(f'seed must be an integer, got {seed!r}')
  return int(seed)


def check_tf_keras(obj, name='to_prune'):
  """Raises a clear error for Keras 3 objects, which tfmot cannot wrap."""
  module = type(obj).__module__
  if module.startswith('keras') and not isinstance(obj, (keras.layers.Layer, keras.Model)):
    raise ValueError(f'{name} is a Keras 3 object ({module}.{type(obj).__name__}); tfmot and ltp_tfmot work on '
                     'Keras 2 models: build it with `import tf_keras as keras` instead of `tf.keras` '
                     '(or set TF_USE_LEGACY_KERAS=1 before importing TensorFlow)')


def check_rewind_before_first_round(rewind_step, schedule):
  if schedule.round_steps is not None and rewind_step >= schedule.round_steps:
    raise ValueError(f'rewind_step ({rewind_step}) must come before the end of the first round '
                     f'(round_steps={schedule.round_steps})')


def is_prunable(layer):
  """Whether `prune_lottery_ticket` wraps this layer.

  Prunable layers are those tfmot's registry gives a prunable weight, custom
  layers implementing tfmot's `PrunableLayer` (or `get_prunable_weights`), and
  `DepthwiseConv2D` (its depthwise kernel), which tfmot's registry skips.
  """
  if isinstance(layer, pruning_wrapper.PruneLowMagnitude):
    return False
  if isinstance(layer, keras.layers.DepthwiseConv2D):
    return True
  if isinstance(layer, prunable_layer.PrunableLayer) or hasattr(layer, 'get_prunable_weights'):
    return True
  registry = prune_registry.PruneRegistry
  if not registry.supports(layer):
    return False
  if registry._is_rnn_layer(layer) or registry._is_mha_layer(layer):  # pylint: disable=protected-access
    return True
  return bool(registry._weight_names(layer))  # pylint: disable=protected-access


class _LotteryPruning(pruning_impl.Pruning):
  """tfmot's pruning implementation with lottery-ticket masking.

  Masks change only at round boundaries, where all wrappers of a model are
  pruned together (global scope needs every layer at once), so
  `PruneLotteryTicket.call` never asks it for tfmot's per-step conditional
  update. Applying the mask either zeroes pruned weights or holds them at
  their rewind-point value ('freeze').
  """

  def __init__(self, snapshots, freeze, **kwargs):
    super().__init__(**kwargs)
    self._snapshots = snapshots
    self._freeze = freeze

  def _validate_block(self):
    # Blocks apply to 2-D weights only; others are pruned weight by weight.
    pass

  def masked_values(self):
    """(masked value, weight variable) for each prunable weight, in the variables' own dtype."""
    pairs = []
    # Under a mixed-precision policy the layer's call reads variables cast to
    # float16/bfloat16; masking in that dtype would round the float32 weights.
    with autocast_variable.enable_auto_cast_variables(None):
      for (weight, mask, _), snapshot in zip(self._pruning_vars, self._snapshots):
        value = weight * mask
        if self._freeze:
          value += snapshot * (1 - mask)
        pairs.append((tf.cast(value, weight.dtype), weight))
    return pairs

  def _weight_assign_objs(self):
    pairs = self.masked_values()
    context = tf.distribute.get_replica_context()
    # Without a strategy, `fit` runs in the default replica context, whose
    # copies need no cross-replica mean: assign directly.
    if context is None or not tf.distribute.has_strategy() or not pairs:
      return [weight.assign(value) for value, weight in pairs]

    def update(strategy, pairs):
      reduced = strategy.extended.batch_reduce_to(tf.distribute.ReduceOp.MEAN, pairs)
      return tf.group([
          strategy.extended.update(weight, lambda var, value: var.assign(value), args=(value,))
          for value, (_, weight) in zip(reduced, pairs)
      ])

    return [context.merge_call(update, args=(pairs,))]


@keras.utils.register_keras_serializable(package='ltp_tfmot')
class PruneLotteryTicket(pruning_wrapper.PruneLowMagnitude):
  """Wraps a Keras layer for lottery-ticket pruning (a tfmot `PruneLowMagnitude`).

  Besides tfmot's mask variables, the wrapper keeps a snapshot of all the
  layer's weights at the rewind point, the number of pruning rounds done and
  the model's training-step count (`step_offset`, see `steps_done`), all as
  layer weights, so they are saved and loaded with the model. Masks are
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
    **kwargs: Passed to tfmot's `PruneLowMagnitude`: `block_size` (e.g.
      (4, 1): masks of whole blocks of 2-D kernels, scores pooled per block
      with `block_pooling_type` 'AVG' or 'MAX'; other kernels are pruned
      weight by weight) and Keras layer arguments. tfmot's `sparsity_m_by_n`
      is refused.

  Raises:
    ValueError: for an unknown criterion, scope or action, a bad rate or
      rewind step, a layer without a prunable weight, or `sparsity_m_by_n`.
    TypeError: if `pruning_schedule` is not a `LotteryTicketSchedule`.
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
               **kwargs):
    if pruning_schedule is None:
      pruning_schedule = schedule_lib.LotteryTicketSchedule()
    if not isinstance(pruning_schedule, schedule_lib.LotteryTicketSchedule):
      raise TypeError('pruning_schedule must be a ltp_tfmot.LotteryTicketSchedule, '
                      f'got {type(pruning_schedule).__name__}')
    if not isinstance(layer, keras.layers.Layer):
      raise TypeError(f'layer must be a tf_keras layer, got {type(layer).__module__}.{type(layer).__name__}')
    if not is_prunable(layer):
      raise ValueError(f'layer {layer.name!r} ({type(layer).__name__}) has no prunable weight')
    self.criterion = criteria_lib.get_criterion(criterion).name
    self.scope = check_choice(scope, 'scope', SCOPES)
    self.layer_rate = None if layer_rate is None else schedule_lib.check_rate(
        layer_rate, f'layer_rates[{layer.name!r}]', allow_zero=True)
    self.mask_0_action = check_choice(mask_0_action, 'mask_0_action', MASK_0_ACTIONS)
    self.mask_1_action = check_choice(mask_1_action, 'mask_1_action', MASK_1_ACTIONS)
    if not isinstance(dynamic_weight_rescaling, bool):
      raise ValueError(f'dynamic_weight_rescaling must be True or False, got {dynamic_weight_rescaling!r}')
    self.dynamic_weight_rescaling = dynamic_weight_rescaling
    self.rewind_step = check_rewind_step(rewind_step)
    check_rewind_before_first_round(self.rewind_step, pruning_schedule)
    self.seed = check_seed(seed)
    if kwargs.get('sparsity_m_by_n') is not None:
      raise ValueError(f'sparsity_m_by_n={kwargs["sparsity_m_by_n"]!r} is not supported by lottery-ticket pruning, '
                       'whose rounds prune a rate of the weights still alive: use block_size for structured '
                       'tickets, or tfmot.sparsity.keras.prune_low_magnitude(..., sparsity_m_by_n=(2, 4)) for '
                       'M-by-N sparsity')
    if isinstance(layer, keras.layers.DepthwiseConv2D) and not hasattr(layer, 'get_prunable_weights'):
      # tfmot's registry lists DepthwiseConv2D with no prunable weight.
      layer.get_prunable_weights = lambda: [layer.depthwise_kernel]
    super().__init__(layer, pruning_schedule=pruning_schedule, **kwargs)

  @property
  def rate(self):
    """The fraction of alive weights this layer loses per round."""
    return self.pruning_schedule.rate if self.layer_rate is None else self.layer_rate

  def build(self, input_shape):
    # tfmot's build makes a Pruning object that refuses blocks on non-2-D
    # weights; it is replaced below by one that prunes those weight by weight.
    block_size, self.block_size = self.block_size, (1, 1)
    super().build(input_shape)
    self.block_size = block_size
    self.snapshots = [
        self.add_weight(
            'snapshot_' + _short_name(weight),
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
    # The model's training steps are step_offset + optimizer.iterations (see rounds.steps_done), the
    # same in every wrapper; pruning_step holds the count as last recorded.
    self.step_offset = self.add_weight(
        'step_offset', shape=[], initializer=keras.initializers.Constant(NOT_COUNTING), dtype=tf.int64,
        trainable=False, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    refs = [weight.ref() for weight in self.layer.weights]
    self.prunable_snapshots = [self.snapshots[refs.index(weight.ref())] for weight in self.prunable_weights]
    self.pruning_obj = _LotteryPruning(
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
    self.add_update(tfmot_utils.smart_cond(training, self._check_steps_counted, lambda: tf.no_op('no_update')))
    self.add_update(self.pruning_obj.weight_mask_op())
    if 'training' in inspect.getfullargspec(self.layer.call).args:
      return self.layer.call(inputs, training=training, **kwargs)
    return self.layer.call(inputs, **kwargs)

  def _check_steps_counted(self):
    # UpdateLotteryStep (or take_snapshot) starts the step count. tfmot's
    # UpdatePruningStep sets only pruning_step, so alone it fails here. A plain
    # Assert on a string message costs a handful of ops per step; tfmot's
    # `assert_greater_equal` builds a guarded cond of about 25.
    counted = self.step_offset > NOT_COUNTING
    with tf.control_dependencies([tf.debugging.Assert(counted, [self._PRUNE_CALLBACK_ERROR_MSG])]):
      return tf.no_op('update')

  def block_shape(self, index):
    """The block of prunable weight `index`, or None if it is pruned weight by weight."""
    block = tuple(int(b) for b in self.block_size)
    if block == (1, 1) or self.prunable_weights[index].shape.rank != 2:
      return None
    return block

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
    })
    return config

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    config['pruning_schedule'] = schedule_lib.deserialize_schedule(config['pruning_schedule'])
    config['layer'] = keras.layers.deserialize(config.pop('layer'))
    return cls(**config)


def _short_name(weight):
  """'dense/kernel:0' -> 'kernel'."""
  return weight.name.split('/')[-1].split(':')[0]


def initializer_for(layer, weight):
  """The layer's initializer for one of its weights, e.g. `kernel_initializer`.

  Raises:
    ValueError: if the layer has no such initializer attribute.
  """
  name = _short_name(weight)
  initializer = getattr(layer, name + '_initializer', None)
  if initializer is None:
    raise ValueError(f"mask_1_action='reinit' needs layer {layer.name!r} to have an attribute "
                     f'{name}_initializer to draw fresh values of {weight.name!r} from')
  return initializer
