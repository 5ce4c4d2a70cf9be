"""Argument checks shared by the configs, the wrapper, the schedules and the command line.

Pure Python (no TensorFlow import), so that the command line can validate its
flags before TensorFlow loads. Every check raises `TypeError` for a value of
the wrong type and `ValueError` for a value of the right type out of range,
with one message shape: `rate must be in (0, 1), got 1.5`.
"""

import numbers
import re

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


def check_choice(value, name, choices):
  """`value`, checked to be one of `choices`.

  Raises:
    ValueError: naming the choices.
  """
  try:
    known = value in choices
  except TypeError:  # an unhashable value asked of a set or dict
    known = False
  if not known:
    raise ValueError(f'{name} must be one of {list(choices)}, got {value!r}')
  return value


def check_bool(value, name):
  """`value`, checked to be True or False.

  Raises:
    TypeError: for anything else (1 and 'yes' included).
  """
  if not isinstance(value, bool):
    raise TypeError(f'{name} must be True or False, got {value!r}')
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


# The choices of the wrapper's settings, here so that configs check them without importing the wrapper.
SCOPES = ('layer', 'global')
MASK_0_ACTIONS = ('zero', 'freeze')
MASK_1_ACTIONS = ('rewind', 'reinit', 'reshuffle', 'signed_constant')
