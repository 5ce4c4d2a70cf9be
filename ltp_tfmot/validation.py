"""Argument checks shared by the configs, the wrapper, the schedules and the command line, and the name registries.

Pure Python (no TensorFlow import), so that the command line can validate its
flags before TensorFlow loads. Every check raises `TypeError` for a value of
the wrong type and `ValueError` for a value of the right type out of range,
with one message shape: `rate must be in (0, 1), got 1.5`. A `Registry`
(criteria, branches, models, presets) refuses an unknown name with the shape
of `check_choice`: `criterion must be one of [...], got 'largest'; add your
own with ltp_tfmot.register_criterion`.
"""

import numbers
import re
import sys
import types

_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.\-]*$')
_DURATION_RE = re.compile(r'^(?:(\d+)ep)?(?:(\d+)it)?$')


def is_int(value):
  """Whether `value` is an integer (bools are not)."""
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value):
  """Whether `value` is a real number (bools are not)."""
  return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(value, name, minimum=None, maximum=None, optional=False, hint=''):
  """`int(value)`, checked to lie in [minimum, maximum]; None passes if `optional`.

  Args:
    value: The value to check.
    name: How the message names it, e.g. 'training.epochs'.
    minimum: The smallest allowed value, or None.
    maximum: The largest allowed value, or None.
    optional: Whether None is allowed (and returned).
    hint: Words after the range in the message, e.g. ' (0 = the initial weights)'.

  Returns:
    The value as an int, or None.

  Raises:
    TypeError: if `value` is not an integer (nor an allowed None).
    ValueError: if it is out of range.
  """
  if value is None and optional:
    return None
  if minimum is not None and maximum is not None:
    bounds = f' in [{minimum}, {maximum}]'
  elif minimum is not None:
    bounds = f' >= {minimum}'
  elif maximum is not None:
    bounds = f' <= {maximum}'
  else:
    bounds = ''
  wanted = f'{name} must be an integer{bounds}{hint}{" (or None)" if optional and not hint else ""}'
  if not is_int(value):
    raise TypeError(f'{wanted}, got {value!r}')
  if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
    raise ValueError(f'{wanted}, got {value!r}')
  return int(value)


def check_fraction(value, name, allow_zero=False):
  """`float(value)`, checked to lie in (0, 1), or [0, 1) with `allow_zero`.

  Raises:
    TypeError: if `value` is not a number.
    ValueError: if it is out of range.
  """
  interval = '[0, 1)' if allow_zero else '(0, 1)'
  if not is_number(value):
    raise TypeError(f'{name} must be a number in {interval}, got {value!r}')
  if not ((0 <= value if allow_zero else 0 < value) and value < 1):
    raise ValueError(f'{name} must be in {interval}, got {value!r}')
  return float(value)


def check_positive(value, name):
  """`float(value)`, checked to be a finite number > 0."""
  if not is_number(value):
    raise TypeError(f'{name} must be a number > 0, got {value!r}')
  if not 0 < value < float('inf'):
    raise ValueError(f'{name} must be a finite number > 0, got {value!r}')
  return float(value)


def check_non_negative(value, name):
  """`float(value)`, checked to be a finite number >= 0."""
  if not is_number(value):
    raise TypeError(f'{name} must be a number >= 0, got {value!r}')
  if not 0 <= value < float('inf'):
    raise ValueError(f'{name} must be a finite number >= 0, got {value!r}')
  return float(value)


def parse_duration(duration, steps_per_epoch=None, name='duration'):
  """Iterations of a training length written in epochs and/or iterations.

  Args:
    duration: '160ep', '30000it', '2ep100it' (2 epochs and 100 iterations),
      or a whole number of iterations (an int).
    steps_per_epoch: Iterations per epoch; needed when `duration` has 'ep'.
    name: What the duration is, for the error messages.

  Returns:
    The number of iterations, an int >= 0.

  Raises:
    ValueError: for anything else (the message shows the accepted forms), or
      epochs without `steps_per_epoch`.

  Example:

  ```python
  parse_duration('160ep', steps_per_epoch=391)   # 62560
  parse_duration('500it')                        # 500
  ```
  """
  if is_int(duration):
    if duration < 0:
      raise ValueError(f'{name} must be >= 0 iterations, got {duration!r}')
    return int(duration)
  match = _DURATION_RE.match(duration.strip().lower()) if isinstance(duration, str) else None
  if match is None or not any(match.groups()):
    raise ValueError(f"{name} must be written as epochs and/or iterations, e.g. '160ep', '30000it' or '2ep100it' "
                     f'(or an int of iterations), got {duration!r}')
  epochs, iterations = (int(group) if group else 0 for group in match.groups())
  if epochs:
    if not is_int(steps_per_epoch) or steps_per_epoch < 1:
      raise ValueError(f'{name} {duration!r} is in epochs, which needs steps_per_epoch (an int >= 1), '
                       f'got {steps_per_epoch!r}')
    epochs *= int(steps_per_epoch)
  return epochs + iterations


def check_duration(value, name, optional=False):
  """`value`, checked to be a training length `parse_duration` reads ('160ep', '30000it', an int).

  Returns:
    One spelling per length, so that equal lengths compare (and hash) equal:
    an int of iterations when there are no epochs ('500it' -> 500), else
    '<E>ep' or '<E>ep<I>it'; None if `optional` and `value` is None.

  Raises:
    ValueError: for anything else (the message shows the accepted forms).
  """
  if value is None and optional:
    return None
  iterations = parse_duration(value, steps_per_epoch=1, name=name)
  if is_int(value):
    return iterations
  epochs, iterations = (int(group) if group else 0 for group in _DURATION_RE.match(value.strip().lower()).groups())
  if not epochs:
    return iterations
  return f'{epochs}ep' + (f'{iterations}it' if iterations else '')


def check_choice(value, name, choices, fix=''):
  """`value`, checked to be one of `choices`.

  Args:
    value: The value to check.
    name: How the message names it, e.g. 'pruning.scope'.
    choices: The allowed values, in the order the message lists them.
    fix: What to do instead, the end of the message (e.g. 'add your own with
      ltp_tfmot.register_criterion'), or ''.

  Returns:
    `value`.

  Raises:
    ValueError: naming the choices.
  """
  try:
    known = value in choices
  except TypeError:  # an unhashable value asked of a set or dict
    known = False
  if not known:
    raise ValueError(f'{name} must be one of {list(choices)}, got {value!r}' + (f'; {fix}' if fix else ''))
  return value


class Registry:
  """Values by name (the criteria, branches, models and presets), with one message for a wrong name.

  Looking up or removing a name that is not registered raises the message of
  `check_choice` (`branch must be one of ['reinit', ...], got 'replay'; add
  your own with ltp_tfmot.experiment.register_branch`); registering a taken
  name raises `a branch named 'reinit' is already registered; pass
  overwrite=True to replace it`. What a value must be is the owner's to check
  before it registers it. `name in registry` asks whether a name is
  registered; iterating gives the names, as `names` lists them.

  Example:

  ```python
  MODELS = Registry('model', 'or pass model_fn= with a name of your own')
  MODELS.register('conv4', spec)
  MODELS.get('conv5')  # ValueError: model must be one of ['conv4'], got 'conv5'; or pass model_fn= with ...
  ```
  """

  def __init__(self, kind, fix, ordered=False):
    """A registry without values.

    Args:
      kind: What one value is, as the messages name it ('criterion').
      fix: What to do instead of an unknown name, the end of its message
        ('add your own with ltp_tfmot.register_criterion').
      ordered: Whether `names` lists the names in the order they were
        registered (else sorted).
    """
    self.kind = kind
    self._fix = fix
    self._ordered = ordered
    self._values = {}

  def register(self, name, value, overwrite=False):
    """Registers `value` under `name`; returns `value`.

    Raises:
      ValueError: if `name` is taken and `overwrite` is False.
    """
    if name in self._values and not overwrite:
      raise ValueError(f'a {self.kind} named {name!r} is already registered; pass overwrite=True to replace it')
    self._values[name] = value
    return value

  def unregister(self, name):
    """Removes the value registered under `name`.

    Raises:
      ValueError: for a name that is not registered (the message lists those that are).
    """
    del self._values[self._known(name)]

  def get(self, name):
    """The value registered under `name`.

    Raises:
      ValueError: for a name that is not registered (the message lists those that are).
    """
    return self._values[self._known(name)]

  def names(self):
    """The registered names: sorted, or in the order they were registered if the registry is `ordered`."""
    return list(self._values) if self._ordered else sorted(self._values)

  def as_mapping(self):
    """A read-only view of the registry as a dict from name to value, for code that reads it as one."""
    return types.MappingProxyType(self._values)

  def __iter__(self):
    return iter(self.names())

  def __contains__(self, name):
    try:
      return name in self._values
    except TypeError:  # an unhashable name (a list where a name was meant) is no registered name
      return False

  def _known(self, name):
    return check_choice(name, self.kind, self.names(), fix=self._fix)


def check_bool(value, name):
  """`value`, checked to be True or False.

  Raises:
    TypeError: for anything else (1 and 'yes' included).
  """
  if not isinstance(value, bool):
    raise TypeError(f'{name} must be True or False, got {value!r}')
  return value


def check_str(value, name, optional=False, non_empty=False):
  """`value`, checked to be a string; None passes if `optional`.

  Args:
    value: The value to check.
    name: How the message names it, e.g. 'log_dir'.
    optional: Whether None is allowed (and returned).
    non_empty: Whether the empty string is refused.

  Returns:
    `value`.

  Raises:
    TypeError: if `value` is not a string (nor an allowed None).
    ValueError: if it is empty and `non_empty` is set.
  """
  if value is None and optional:
    return None
  wanted = f'{name} must be a {"non-empty " if non_empty else ""}string{" or None" if optional else ""}'
  if not isinstance(value, str):
    raise TypeError(f'{wanted}, got {value!r}')
  if non_empty and not value:
    raise ValueError(f'{wanted}, got {value!r}')
  return value


def check_name(value, name):
  """`value`, checked to be a name of letters, digits, '_', '.' or '-' (file-name safe).

  Raises:
    TypeError: if `value` is not a string.
    ValueError: if it is empty or holds other characters.
  """
  wanted = f'{name} must be a non-empty name of letters, digits, "_", "." or "-"'
  if not isinstance(value, str):
    raise TypeError(f'{wanted}, got {value!r}')
  if not _NAME_RE.match(value):
    raise ValueError(f'{wanted}, got {value!r}')
  return value


# The choices of the wrapper's and the recipes' settings, here so that configs check them without TensorFlow.
SCOPES = ('layer', 'global')
MASK_0_ACTIONS = ('zero', 'freeze')
MASK_1_ACTIONS = ('rewind', 'reinit', 'reshuffle', 'signed_constant')
GRANULARITIES = ('weight', 'unit')
UNIT_POOLINGS = ('L1', 'L2', 'mean')
OPTIMIZERS = ('adam', 'sgd')
LR_DECAYS = ('constant', 'step', 'cosine')
PRECISIONS = ('float32', 'mixed_float16', 'mixed_bfloat16')
# How a lottery run retrains each level after pruning (Renda, Frankle, Carbin 2020).
RETRAIN_MODES = ('weight_rewind', 'lr_rewind', 'finetune')
# The criteria `ltp_tfmot.core.criteria` registers as it loads, in its order (it refuses to load if they differ),
# here so that the command line checks `--criterion` without TensorFlow.
BUILTIN_CRITERIA = ('large_final', 'small_final', 'large_init', 'small_init', 'large_init_large_final',
                    'small_init_small_final', 'magnitude_increase', 'movement', 'random', 'large_final_same_sign',
                    'large_final_diff_sign', 'snip', 'grasp', 'synflow')
# The built-in criteria that score from the model's gradients (`ltp_tfmot.ModelCriterion`).
BUILTIN_MODEL_CRITERIA = ('snip', 'grasp', 'synflow')


def criterion_names():
  """Names of the registered criteria, sorted, without loading TensorFlow where it is not loaded yet.

  Registering a criterion imports `ltp_tfmot.core.criteria` (and TensorFlow); until
  that module is loaded, the registry can hold only the built-in criteria.
  """
  registry = sys.modules.get('ltp_tfmot.core.criteria')
  return registry.criterion_names() if registry is not None else sorted(BUILTIN_CRITERIA)


def is_model_criterion(name):
  """Whether a criterion name is a `ModelCriterion` (it scores the rewind point from the model's gradients)."""
  registry = sys.modules.get('ltp_tfmot.core.criteria')
  if registry is not None and name in registry.criterion_names():
    return registry.get_criterion(name).needs_model
  return name in BUILTIN_MODEL_CRITERIA


def parse_milestones(milestones, steps_per_epoch=None):
  """Iterations of learning-rate milestones, strictly increasing.

  Args:
    milestones: A comma-separated string ('80ep,120ep') or a sequence of
      durations (see `parse_duration`); '' or () for none.
    steps_per_epoch: Iterations per epoch, for milestones in epochs.

  Returns:
    A tuple of ints.

  Raises:
    ValueError: for a bad duration or milestones that do not increase.
  """
  if isinstance(milestones, str):
    milestones = [part for part in milestones.split(',') if part.strip()]
  if not isinstance(milestones, (list, tuple)):
    raise ValueError(f"milestones must be a string like '80ep,120ep' or a list of durations, got {milestones!r}")
  steps = tuple(parse_duration(m, steps_per_epoch, name='milestone') for m in milestones)
  if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):  # neighbours: the second list is one shorter
    raise ValueError(f'milestones must increase, got {list(milestones)} = iterations {list(steps)}')
  return steps


def check_momentum(momentum, nesterov):
  """`(float(momentum), nesterov)`, checked as SGD takes them.

  Raises:
    ValueError: for momentum outside [0, 1), a nesterov that is not a bool,
      or nesterov without momentum.
  """
  if not is_number(momentum) or not 0 <= momentum < 1:
    raise ValueError(f'momentum must be a number in [0, 1), got {momentum!r}')
  if not isinstance(nesterov, bool):
    raise ValueError(f'nesterov must be True or False, got {nesterov!r}')
  if nesterov and not momentum:
    raise ValueError('nesterov=True needs momentum > 0')
  return float(momentum), nesterov


def check_l2(l2):
  """`float(l2)`, checked to be a coupled weight-decay coefficient (a finite number >= 0).

  Raises:
    ValueError: for anything else.
  """
  if not is_number(l2) or not 0 <= l2 < float('inf'):
    raise ValueError(f'weight decay (l2) must be a number >= 0, got {l2!r}')
  return float(l2)


def check_optimizer_settings(name, momentum=0.0, nesterov=False, weight_decay=0.0):
  """Checks the settings of a recipe's optimizer without building it.

  Raises:
    ValueError: for an unknown optimizer or a setting it does not take.
  """
  if name not in OPTIMIZERS:
    raise ValueError(f'optimizer must be one of {list(OPTIMIZERS)}, got {name!r}')
  check_momentum(momentum, nesterov)
  if name == 'adam' and (momentum or nesterov):
    raise ValueError(f"momentum and nesterov apply to optimizer 'sgd' only, got momentum={momentum!r}, "
                     f'nesterov={nesterov!r} with {name!r}')
  check_l2(weight_decay)


def check_schedule_settings(learning_rate, warmup_steps=0, decay='constant', milestones=(), gamma=0.1,
                            decay_steps=None):
  """The settings of a warm-up and decay schedule, checked and in iterations.

  Args:
    learning_rate: The peak rate, > 0.
    warmup_steps: Iterations of linear warm-up (a duration without epochs).
    decay: One of `LR_DECAYS`.
    milestones: Iterations of the drops ('step' only), increasing.
    gamma: Factor of each drop, in (0, 1] ('step' only).
    decay_steps: Length of the cosine ('cosine' only), >= 1.

  Returns:
    (learning_rate, warmup_steps, milestones, gamma, decay_steps): a float,
    an int, a tuple of ints, a float and an int or None.

  Raises:
    ValueError: for a bad or inconsistent setting.
  """
  if not is_number(learning_rate) or not 0 < learning_rate < float('inf'):
    raise ValueError(f'learning_rate must be a number > 0, got {learning_rate!r}')
  warmup_steps = parse_duration(warmup_steps, name='warmup_steps')
  if decay not in LR_DECAYS:
    raise ValueError(f'decay must be one of {list(LR_DECAYS)}, got {decay!r}')
  milestones = parse_milestones(milestones)
  if (decay == 'step') != bool(milestones):
    raise ValueError(f"milestones go with decay='step' and only with it, got decay={decay!r} and milestones "
                     f'{list(milestones)}')
  if decay == 'step' and (not is_number(gamma) or not 0 < gamma <= 1):
    raise ValueError(f'gamma must be a number in (0, 1], got {gamma!r}')
  if decay == 'cosine':
    decay_steps = parse_duration(decay_steps if decay_steps is not None else -1, name='decay_steps')
    if decay_steps < 1:
      raise ValueError(f"decay='cosine' needs decay_steps >= 1 (the training iterations), got {decay_steps!r}")
  elif decay_steps is not None:
    raise ValueError(f"decay_steps goes with decay='cosine' only, got decay={decay!r}")
  return float(learning_rate), warmup_steps, milestones, 0.1 if gamma is None else float(gamma), decay_steps
