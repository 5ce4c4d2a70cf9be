"""Training recipes: optimizer, learning-rate schedule, weight decay and training length from plain settings.

The semantics are open_lth's (PyTorch), so that its recipes carry over:

- Lengths are written as in open_lth: '160ep' (epochs), '30000it'
  (iterations) or '2ep100it'; `parse_duration` turns them into iterations.
- The learning rate at iteration t (the optimizer's `iterations` before the
  update, so the first update uses t = 0) is
  `learning_rate * min(1, t / warmup_steps) * decay(t)`, where decay is 1
  ('constant'), `gamma ** (number of milestones <= t)` ('step') or
  `0.5 * (1 + cos(pi * min(t, T) / T))` ('cosine' over the T training
  iterations). A warm-up therefore makes the first update a no-op, as in
  open_lth.
- Weight decay is coupled L2, as `torch.optim.SGD(weight_decay=...)`: the
  gradient of every trainable variable gets `weight_decay * variable` added
  before the update (BatchNorm scales and biases included, as open_lth does).
  Keras' own `weight_decay=` is decoupled (`w -= lr * wd * w` beside the
  update), which differs once momentum or Adam's scaling is involved.
- SGD momentum is PyTorch's: the buffer accumulates gradients and the
  current learning rate scales the whole buffer, so a drop at a milestone
  acts at once (Keras' SGD keeps the old rate inside its velocity).

The schedule is a `keras.optimizers.schedules.LearningRateSchedule` of the
optimizer's iteration count: set `optimizer.iterations` to k (a rewind to
iteration k) and the schedule continues from k.

Example:

```python
steps = 391  # 50,000 images at batch 128
training = recipes.build_training(RunConfig.for_model('resnet20').training, steps_per_epoch=steps)
model.compile(optimizer=training.optimizer, loss=...)
model.fit(dataset, steps_per_epoch=steps, epochs=training.iterations // steps)
```
"""

import collections
import math

import tensorflow as tf
import tf_keras as keras

from ltp_tfmot import validation

# Pure Python, so that configs and presets check recipes without TensorFlow; re-exported here with the recipes.
OPTIMIZERS = validation.OPTIMIZERS
LR_DECAYS = validation.LR_DECAYS
parse_duration = validation.parse_duration
parse_milestones = validation.parse_milestones
check_optimizer_settings = validation.check_optimizer_settings

Training = collections.namedtuple('Training', ['optimizer', 'schedule', 'iterations'])
Training.__doc__ = """What `build_training` makes: the optimizer, its learning-rate schedule, the training length."""


@keras.utils.register_keras_serializable(package='ltp_tfmot')
class WarmupDecaySchedule(keras.optimizers.schedules.LearningRateSchedule):
  """Linear warm-up, then constant, step drops at milestones or cosine decay (see the module docs).

  Args:
    learning_rate: The peak rate, > 0.
    warmup_steps: Iterations of linear warm-up from 0 (0 for none).
    decay: 'constant', 'step' (times `gamma` at each milestone) or 'cosine'
      (to 0 at `decay_steps`, then held there).
    milestones: Iterations of the drops ('step' only), increasing.
    gamma: Factor of each drop, in (0, 1].
    decay_steps: Length of the cosine ('cosine' only), >= 1.
    final_step: None, or the last iteration of training: later iterations
      keep its rate, so that fine-tuning (training on past the end) runs at
      the final rate.

  Raises:
    ValueError: for a bad or inconsistent setting.

  Example:

  ```python
  schedule = WarmupDecaySchedule(0.1, decay='step', milestones=(31280, 46920), gamma=0.1)
  optimizer = L2SGD(schedule, momentum=0.9, l2=1e-4)
  ```
  """

  def __init__(self, learning_rate, warmup_steps=0, decay='constant', milestones=(), gamma=0.1, decay_steps=None,
               final_step=None):
    super().__init__()
    (self.learning_rate, self.warmup_steps, self.milestones, self.gamma,
     self.decay_steps) = validation.check_schedule_settings(learning_rate, warmup_steps, decay, milestones, gamma,
                                                            decay_steps)
    self.final_step = validation.check_int(final_step, 'final_step', 0, optional=True)
    self.decay = decay

  def __call__(self, step):
    with tf.name_scope('warmup_decay_schedule'):
      step = tf.cast(step, tf.float32)
      if self.final_step is not None:
        step = tf.minimum(step, float(self.final_step))
      rate = tf.constant(self.learning_rate, tf.float32)
      if self.warmup_steps:
        rate *= tf.minimum(1.0, step / float(self.warmup_steps))
      if self.decay == 'step':
        passed = tf.reduce_sum(tf.cast(step >= tf.constant(self.milestones, tf.float32), tf.float32))
        rate *= tf.pow(self.gamma, passed)
      elif self.decay == 'cosine':
        progress = tf.minimum(step, float(self.decay_steps)) / float(self.decay_steps)
        rate *= 0.5 * (1.0 + tf.cos(math.pi * progress))
      return rate

  def get_config(self):
    return {'learning_rate': self.learning_rate, 'warmup_steps': self.warmup_steps, 'decay': self.decay,
            'milestones': list(self.milestones), 'gamma': self.gamma, 'decay_steps': self.decay_steps,
            'final_step': self.final_step}


def _with_l2(optimizer, gradient, variable):
  """The gradient plus the coupled L2 term, for the variables weight decay applies to."""
  if isinstance(gradient, tf.IndexedSlices):
    gradient = tf.convert_to_tensor(gradient)  # the decay term touches every row
  if optimizer.l2 and optimizer._use_weight_decay(variable):  # pylint: disable=protected-access
    gradient += tf.cast(optimizer.l2, variable.dtype) * variable
  return gradient


@keras.utils.register_keras_serializable(package='ltp_tfmot')
class L2SGD(keras.optimizers.SGD):
  """SGD as `torch.optim.SGD`: coupled L2 weight decay and PyTorch's momentum (see the module docs).

  Per variable w with gradient g: `g += l2 * w`; with momentum,
  `buf = momentum * buf + g` and `g = buf` (Nesterov: `g += momentum * buf`);
  then `w -= lr * g`. `exclude_from_weight_decay` (Keras') exempts variables
  from the L2 term.

  Args:
    learning_rate: A float or a `LearningRateSchedule`.
    momentum: In [0, 1).
    nesterov: Nesterov momentum (needs momentum > 0).
    l2: The L2 coefficient (PyTorch's `weight_decay`), >= 0.
    **kwargs: Other `keras.optimizers.SGD` arguments, except `weight_decay`
      (Keras' decoupled decay).

  Raises:
    ValueError: for a bad setting.
  """

  def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, l2=0.0, name='L2SGD', **kwargs):
    if kwargs.get('weight_decay') is not None:
      raise ValueError('L2SGD takes coupled weight decay as l2=; Keras\' decoupled weight_decay= is not combined '
                       'with it')
    kwargs.pop('weight_decay', None)
    momentum, nesterov = validation.check_momentum(momentum, nesterov)
    super().__init__(learning_rate, momentum=momentum, nesterov=nesterov, name=name, **kwargs)
    self.l2 = validation.check_l2(l2)

  def update_step(self, gradient, variable):
    gradient = _with_l2(self, gradient, variable)
    lr = tf.cast(self.learning_rate, variable.dtype)
    if self.momentum:
      buffer = self.momentums[self._index_dict[self._var_key(variable)]]
      buffer.assign(tf.cast(self.momentum, variable.dtype) * buffer + gradient)
      gradient = gradient + tf.cast(self.momentum, variable.dtype) * buffer if self.nesterov else buffer
    variable.assign_sub(lr * gradient)

  def get_config(self):
    config = super().get_config()
    config.pop('weight_decay', None)
    config['l2'] = self.l2
    return config


@keras.utils.register_keras_serializable(package='ltp_tfmot')
class L2Adam(keras.optimizers.Adam):
  """Adam with coupled L2 weight decay, as `torch.optim.Adam(weight_decay=...)`: `g += l2 * w`, then Adam.

  Args:
    learning_rate: A float or a `LearningRateSchedule`.
    l2: The L2 coefficient (PyTorch's `weight_decay`), >= 0.
    **kwargs: Other `keras.optimizers.Adam` arguments, except `weight_decay`.

  Raises:
    ValueError: for a bad setting.
  """

  def __init__(self, learning_rate=0.001, l2=0.0, name='L2Adam', **kwargs):
    if kwargs.get('weight_decay') is not None:
      raise ValueError('L2Adam takes coupled weight decay as l2=; use keras.optimizers.AdamW for decoupled decay')
    kwargs.pop('weight_decay', None)
    super().__init__(learning_rate, name=name, **kwargs)
    self.l2 = validation.check_l2(l2)

  def update_step(self, gradient, variable):
    super().update_step(_with_l2(self, gradient, variable), variable)

  def get_config(self):
    config = super().get_config()
    config.pop('weight_decay', None)
    config['l2'] = self.l2
    return config


def make_optimizer(name, learning_rate, momentum=0.0, nesterov=False, weight_decay=0.0):
  """An `L2SGD` or `L2Adam` from plain settings.

  Args:
    name: 'sgd' or 'adam'.
    learning_rate: A float or a `LearningRateSchedule`.
    momentum: SGD momentum in [0, 1); must be 0 with Adam.
    nesterov: SGD only.
    weight_decay: Coupled L2 coefficient, >= 0.

  Returns:
    The optimizer.

  Raises:
    ValueError: as `validation.check_optimizer_settings`.
  """
  check_optimizer_settings(name, momentum, nesterov, weight_decay)
  if name == 'sgd':
    return L2SGD(learning_rate, momentum=momentum, nesterov=nesterov, l2=weight_decay)
  return L2Adam(learning_rate, l2=weight_decay)


def make_schedule(learning_rate, training_steps, steps_per_epoch=None, warmup_steps=0, lr_decay='constant',
                  milestones=(), gamma=0.1):
  """A `WarmupDecaySchedule` from settings written as durations.

  Args:
    learning_rate: The peak rate.
    training_steps: Training length ('160ep', '30000it', an int); the cosine
      decays over it.
    steps_per_epoch: Iterations per epoch, for durations in epochs.
    warmup_steps: Warm-up length (a duration; 0 for none).
    lr_decay: 'constant', 'step' or 'cosine'.
    milestones: 'step' only: '80ep,120ep' or a list of durations.
    gamma: 'step' only: factor of each drop.

  Returns:
    (schedule, iterations): the schedule, which keeps its final rate past the end (for fine-tuning), and
    the training iterations.

  Raises:
    ValueError: for a bad duration, a warm-up longer than training, or
      inconsistent settings.
  """
  iterations = parse_duration(training_steps, steps_per_epoch, name='training_steps')
  if iterations < 1:
    raise ValueError(f'training_steps must be at least 1 iteration, got {training_steps!r}')
  warmup = parse_duration(warmup_steps, steps_per_epoch, name='warmup_steps')
  if warmup > iterations:
    raise ValueError(f'warmup_steps ({warmup_steps!r} = {warmup} iterations) is longer than training '
                     f'({training_steps!r} = {iterations} iterations)')
  # Milestones at or past the end never act (as in open_lth), so a shortened trial keeps the preset's milestones.
  steps = parse_milestones(milestones, steps_per_epoch)
  schedule = WarmupDecaySchedule(learning_rate, warmup_steps=warmup, decay=lr_decay, milestones=steps, gamma=gamma,
                                 decay_steps=iterations if lr_decay == 'cosine' else None, final_step=iterations - 1)
  return schedule, iterations


def build_training(settings, steps_per_epoch):
  """The optimizer, schedule and length of a recipe: a `TrainingConfig`, or any object with the recipe's attributes.

  Reads `optimizer`, `learning_rate`, the length (a `TrainingConfig`'s
  `length()`, else `training_steps`) and, where present, `momentum`,
  `nesterov`, `weight_decay`, `warmup_steps`, `lr_decay`, `milestones` and
  `gamma` (defaults: 0, False, 0, 0, 'step' when milestones are given else
  'constant', (), 0.1).

  Args:
    settings: The recipe (e.g. `RunConfig.for_model('resnet20').training`).
    steps_per_epoch: Iterations per epoch of the training data.

  Returns:
    A `Training` (optimizer, schedule, iterations).

  Raises:
    ValueError: as `make_schedule` and `make_optimizer`, or a missing
      required attribute.
  """
  missing = [name for name in ('optimizer', 'learning_rate', 'training_steps') if not hasattr(settings, name)]
  if missing:
    raise ValueError(f'the recipe {settings!r} has no {missing}')
  milestones = getattr(settings, 'milestones', ())
  lr_decay = getattr(settings, 'lr_decay', None) or ('step' if milestones else 'constant')
  # A TrainingConfig's length is training_steps or, when that is None, its epochs.
  length = settings.length() if callable(getattr(settings, 'length', None)) else settings.training_steps
  schedule, iterations = make_schedule(settings.learning_rate, length, steps_per_epoch,
                                       warmup_steps=getattr(settings, 'warmup_steps', 0), lr_decay=lr_decay,
                                       milestones=milestones, gamma=getattr(settings, 'gamma', 0.1))
  optimizer = make_optimizer(settings.optimizer, schedule, momentum=getattr(settings, 'momentum', 0.0),
                             nesterov=getattr(settings, 'nesterov', False),
                             weight_decay=getattr(settings, 'weight_decay', 0.0))
  return Training(optimizer, schedule, iterations)
