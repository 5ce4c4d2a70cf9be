"""The models and data of a run: its data split, its models (built, wrapped, compiled), their evaluation.

`RunFactory` is what every job of a lottery experiment builds from, so that
the level loop (`runner`, `level`), the branches (`branch_context.BranchContext`)
and `load_trained_model` make the same models from the same settings: the run's
model builder, the pruning settings of its config (layer-rate patterns of the
presets expanded for the model), the recipe's optimizer and learning-rate
schedule, and the training batches in the run's data order.
"""

import contextlib

import tensorflow as tf
import tf_keras as keras

from ltp_tfmot.core import schedule as schedule_lib
from ltp_tfmot.core import seeds
from ltp_tfmot.experiment import data as data_lib
from ltp_tfmot.experiment import pipeline
from ltp_tfmot.experiment import recipes
from ltp_tfmot.experiment import training_path
from ltp_tfmot.keras2 import prune as prune_lib
from ltp_tfmot.keras2 import rounds as rounds_lib
from ltp_tfmot.keras2 import wrapped_model
from ltp_tfmot.keras2 import wrapper as wrapper_lib
from ltp_tfmot.zoo import preset as preset_lib
from ltp_tfmot.zoo import registry as zoo_registry

_EVAL_BATCH = 1000


class Evaluator:
  """Mean loss and accuracy of a (wrapped) model on arrays, masks applied first."""

  def __init__(self, model, example_shape):
    self.model = model
    signature = (tf.TensorSpec((None,) + tuple(example_shape), tf.float32), tf.TensorSpec((None,), tf.int64))

    @tf.function(input_signature=signature)
    def batch_stats(x, y):
      logits = model(x, training=False)
      losses = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
      hits = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int64), y)
      return tf.reduce_sum(tf.cast(losses, tf.float64)), tf.reduce_sum(tf.cast(hits, tf.float64))

    self._batch_stats = batch_stats

  def __call__(self, x, y):
    rounds_lib.apply_masks(self.model)
    loss = correct = 0.0
    for start in range(0, len(x), _EVAL_BATCH):
      batch_loss, batch_correct = self._batch_stats(x[start:start + _EVAL_BATCH], y[start:start + _EVAL_BATCH])
      loss += float(batch_loss)
      correct += float(batch_correct)
    return loss / len(x), correct / len(x)


class RunFactory:
  """Builds the data and the models of one run's config.

  Args:
    config: The run's `RunConfig`.
    model_fn: The model builder `(input_shape, num_classes, seed) -> tf_keras
      model` producing logits, or None for the registered `config.model`.
    data: Arrays (x_train, y_train, x_test, y_test) or a
      `ltp_tfmot.datasets.Dataset`, or None for `config.data`.
    strategy: The run's `tf.distribute.Strategy`, or None.

  Attributes (set by `load_data`):
    split: The data split (`x_train`, `y_train`, `x_val`, ..., `source`).
    num_classes: The number of classes.
    steps_per_epoch: Training iterations per pass over `split.x_train`.
    iterations: Training iterations per level (`training.length()`).

  Raises:
    TypeError: if `model_fn` is not callable.
    ValueError: if `config.model` is not registered and no `model_fn` is given.
  """

  def __init__(self, config, model_fn=None, data=None, strategy=None):
    if model_fn is not None and not callable(model_fn):
      raise TypeError(f'model_fn must be callable (input_shape, num_classes, seed) -> model, got {model_fn!r}')
    self.config = config
    self.spec = None if model_fn is not None else zoo_registry.get_model_spec(config.model)
    self.model_fn = model_fn if model_fn is not None else self.spec.build
    self.data = data
    self.strategy = strategy
    self.split = None
    self.num_classes = None
    self.steps_per_epoch = None
    self.iterations = None
    self._train_tensors = None
    self._jit = None
    self.jit_compile_reason = None

  def load_data(self):
    """Loads the split and checks the recipe against it (batch size, length, rewind step, augmentation).

    Raises:
      ValueError: for data that do not fit the config.
    """
    cfg, t = self.config, self.config.training
    flat = self.spec.flat_input if self.spec is not None else False
    self.split = data_lib.load_data(cfg.data, flatten=flat, arrays=self.data, data_dir=cfg.data.data_dir)
    self.num_classes = data_lib.num_classes(self.split)
    if len(self.split.x_train) < t.batch_size:
      raise ValueError(f'training.batch_size ({t.batch_size}) is larger than the {len(self.split.x_train)} training '
                       'examples')
    self.steps_per_epoch = len(self.split.x_train) // t.batch_size
    self.make_optimizer()  # checks the recipe against the length (warm-up, milestones); sets self.iterations
    if cfg.pruning.rewind_step >= self.iterations:
      raise ValueError(f'pruning.rewind_step ({cfg.pruning.rewind_step}) must be smaller than the iterations of a '
                       f'level ({self.iterations} = {t.length()!r} at {self.steps_per_epoch} steps per epoch)')
    cfg.pruning.retrain_span(self.iterations)  # checks the retraining budget against the length
    if t.augment and self.split.x_train.ndim != 4:
      raise ValueError(f'training.augment needs images (examples, height, width, channels), but the training inputs '
                       f'have shape {self.split.x_train.shape} (model {cfg.model!r} takes flattened inputs?)')

  @contextlib.contextmanager
  def precision_scope(self):
    """Makes `training.precision` Keras' global dtype policy while models are built, wrapped and compiled."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(self.config.training.precision)
    try:
      yield
    finally:
      keras.mixed_precision.set_global_policy(previous)

  def build_model(self, seed):
    """A fresh, unwrapped model of the run, initialised from `seed`, checked against the data."""
    with self.precision_scope():
      model = self._build_model(seed)
      if self.config.training.precision != 'float32':
        if not model.outputs:
          raise ValueError(f'training.precision={self.config.training.precision!r} needs a functional or Sequential '
                           f'model (its logits are cast to float32), got a subclassed {type(model).__name__}')
        # 16-bit logits lose the loss' precision: Keras' mixed-precision guide ends models in float32.
        logits = keras.layers.Activation('linear', dtype='float32', name='logits_float32')(model.outputs[0])
        model = keras.Model(model.inputs, logits, name=model.name)
    return model

  def _build_model(self, seed):
    model = self.model_fn(tuple(self.split.x_train.shape[1:]), self.num_classes, seed)
    wrapper_lib.check_tf_keras(model, 'the model built by model_fn')
    if not isinstance(model, keras.Model):
      raise ValueError(f'model_fn must return a tf_keras Model, got {type(model).__name__}')
    if not model.built:
      model(self.split.x_train[:1])
    outputs = model.output_shape[-1] if hasattr(model, 'output_shape') else None
    if outputs is not None and outputs != self.num_classes:
      raise ValueError(f'the model outputs {outputs} values per example, but the data have {self.num_classes} '
                       'classes (the model must output one logit per class)')
    return model

  def wrap(self, model, seed, **overrides):
    """`model` wrapped with the run's pruning settings and `seed`; `overrides` replace settings."""
    p = self.config.pruning
    # Presets name layers by pattern ('conv*'): the wrapper takes the names they match in this model.
    layer_rates = preset_lib.expand_layer_rates(p.layer_rates, prune_lib.prunable_layer_names(model))
    kwargs = dict(criterion=p.criterion, scope=p.scope, rewind_step=p.rewind_step, layer_rates=layer_rates,
                  mask_0_action=p.mask_0_action, mask_1_action=p.mask_1_action,
                  dynamic_weight_rescaling=p.dynamic_weight_rescaling, granularity=p.granularity,
                  unit_pooling=p.unit_pooling, seed=seed)
    kwargs.update(overrides)
    with self.precision_scope():
      wrapped = prune_lib.prune_lottery_ticket(model, pruning_schedule=schedule_lib.LotteryTicketSchedule(p.rate),
                                               **kwargs)
      if not all(w.built for w in wrapped_model.lottery_wrappers(wrapped)):
        wrapped(self.split.x_train[:1])
    return wrapped

  def make_optimizer(self):
    """The recipe's optimizer with its learning-rate schedule of the iteration count; sets `self.iterations`."""
    t = self.config.training
    schedule, self.iterations = recipes.make_schedule(
        t.learning_rate, t.length(), self.steps_per_epoch, warmup_steps=t.warmup_steps, lr_decay=t.lr_decay,
        milestones=t.milestones, gamma=t.gamma)
    return recipes.make_optimizer(t.optimizer, schedule, momentum=t.momentum, nesterov=t.nesterov,
                                  weight_decay=t.weight_decay)

  def jit_compile(self, model=None):
    """Whether the run's steps compile with XLA: training.jit_compile, or the faster path for `model` if None.

    The choice is made once, for the first model asked about (every model of
    a run has the same layers), and `jit_compile_reason` says why. Off where
    the strategy's collective ops run on CPUs, which XLA cannot compile.
    """
    if self._jit is None:
      if self.config.training.jit_compile is not None:
        self._jit, self.jit_compile_reason = self.config.training.jit_compile, 'set by training.jit_compile'
      else:
        if model is None:
          raise ValueError('training.jit_compile=None is chosen for a model: pass the run\'s model')
        self._jit, self.jit_compile_reason = training_path.choose_jit_compile(model)
      if self._jit and self.strategy is not None and any(
          'CPU' in device.upper() for device in self.strategy.extended.worker_devices):
        self._jit, self.jit_compile_reason = False, 'off: XLA cannot compile the collective ops of a strategy on CPUs'
    return self._jit

  def training_path(self, thread_counts=None):
    """The path record (`training_path.current`) of this run's trainings, `thread_counts` (intra, inter) or ours."""
    t = self.config.training
    return training_path.current(self.jit_compile(), t.steps_per_execution, t.precision, thread_counts,
                                 self.jit_compile_reason)

  def compile(self, model):
    """Compiles `model` with the recipe; returns its optimizer and an `Evaluator` of it."""
    optimizer = self.make_optimizer()
    with self.precision_scope():  # under mixed_float16 Keras wraps the optimizer in its LossScaleOptimizer
      model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=['accuracy'], jit_compile=self.jit_compile(model),
                    steps_per_execution=self.config.training.steps_per_execution)
    return optimizer, Evaluator(model, self.split.x_train.shape[1:])

  @staticmethod
  def reset_loss_scale(model):
    """Starts mixed_float16's dynamic loss scale afresh, as a level rebuilt from its files does."""
    optimizer = model.optimizer
    if isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer) and optimizer.dynamic:
      # tf_keras exposes the counter but not the scale variable; both live in its loss-scale state.
      state = optimizer._loss_scale  # pylint: disable=protected-access
      state._current_loss_scale.assign(optimizer.initial_scale)  # pylint: disable=protected-access
      optimizer.dynamic_counter.assign(0)

  def data_seed(self, seed):
    """The data-order seed of the replicate whose weights' seed is `seed`."""
    t, base = self.config.training, self.config.seed
    return t.data_seed + seed - base if t.data_seed is not None else seeds.derived_seed(seed, 'data')

  def train_dataset(self, seed, start_step, end_step=None):
    """The batches of iterations start_step..end_step-1 (default: to the end T), in the replicate's one order.

    Every level, its controls and a resume see the same batch at the same
    iteration; fine-tuning's iterations past T continue the order.
    """
    t = self.config.training
    if self._train_tensors is None:
      self._train_tensors = (tf.constant(self.split.x_train), tf.constant(self.split.y_train))
    x, y = self._train_tensors
    pad_value = data_lib.CIFAR10_BLACK if self.split.source.startswith('cifar10') else 0.0
    return pipeline.train_dataset(x, y, t.batch_size, self.data_seed(seed), augment=t.augment, start_step=start_step,
                                  steps=(self.iterations if end_step is None else end_step) - start_step,
                                  pad_value=pad_value)
