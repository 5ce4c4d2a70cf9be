"""The seeds of a round's random draws, derived from a wrapper's seed and position.

Never from layer or variable names: two builds of one architecture, in either
Keras front end, draw the same numbers.
"""

import zlib


def derived_seed(*parts):
  """A deterministic 31-bit seed from ints and strings.

  Args:
    *parts: The ints and strings the seed depends on (a seed, a purpose, a position, ...).

  Returns:
    An int in [0, 2**31).
  """
  return zlib.crc32(repr(parts).encode()) & 0x7FFFFFFF


def wrapper_positions(wrappers):
  """Each wrapper's position: the one `prune_lottery_ticket` stored, else its index in `wrappers`.

  Args:
    wrappers: A list of lottery wrappers.

  Returns:
    A dict from `id(wrapper)` to its position, an int.
  """
  return {id(w): i if w.position is None else w.position for i, w in enumerate(wrappers)}


def draw_seed(w, positions, purpose, weight, round_number):
  """The seed of one random draw for one weight of a wrapper in one round.

  It depends on the wrapper's seed and position, the weight's index in the layer and the round, never on
  layer or variable names, so two builds of the same architecture draw the same numbers.

  Args:
    w: A lottery wrapper (of either Keras front end).
    positions: The `wrapper_positions` of the wrappers it is drawn among.
    purpose: What the draw is for, e.g. 'score' or 'start'.
    weight: One of the wrapped layer's weights.
    round_number: The pruning round the draw belongs to.

  Returns:
    An int in [0, 2**31).
  """
  index = next(i for i, other in enumerate(w.layer.weights) if other is weight)
  return derived_seed(w.seed, purpose, positions[id(w)], index, round_number)
