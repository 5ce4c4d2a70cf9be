"""Branches of a lottery run: trainings that start from what a level of the main run (IMP) left.

The main run prunes, rewinds and retrains level after level. A branch trains
once per level it runs at, from that level's outputs (open_lth's
`lottery/branch/` idea): the built-in 'reinit' keeps the level's masks and
draws fresh weights, 'random_prune' keeps the rewind point and draws random
masks with the level's per-layer counts, 'inverted_scores' redoes the level's
round keeping the weights the criterion scores lowest (Frankle et al. 2021's
inversion ablation). `RunConfig(controls=...)` names the
branches a run trains (and `control_levels` the levels); the report's
columns, the plot's lines, the command line's `--branches` and the run
directory's `<branch>/` folders all take their names, titles and styles from
this registry, so a branch you register is one of them everywhere.

Pure Python: the built-in branches import TensorFlow when they train, so the
command line and the configs check branch names without it.

Example, a branch that trains the level's ticket with the sign of every
weight flipped:

```python
from ltp_tfmot import experiment

class FlipSigns(experiment.Branch):
  name = 'flip_signs'
  title = 'Flipped signs'
  label = 'flipped signs'
  description = "the level's ticket with the sign of every weight flipped"

  def start(self, context):
    model = context.main_ticket()  # the main masks at the rewind point, as the main run's level starts
    for variable in model.trainable_weights:
      variable.assign(-variable)
    return model

experiment.register_branch(FlipSigns())
config = experiment.RunConfig(controls=('reinit', 'flip_signs'))
```
"""

import abc

import numpy as np

from ltp_tfmot import validation

MAIN = 'main'
# The main run's title, legend label, line style and marker; a branch carries its own.
MAIN_STYLE = ('Ticket', 'ticket', '-', 'o')

# Built-in branches first, then in the order they were registered.
_REGISTRY = validation.Registry('branch', 'add your own with ltp_tfmot.experiment.register_branch', ordered=True)


class Branch(abc.ABC):
  """A training that starts from one level's outputs of the main run; subclass it and register an instance.

  Class attributes:
    name: How configs, the command line and the run directory name it
      (letters, digits, '_', '.', '-'; not 'main').
    title: Its column in the report's table ('<title> acc.').
    label: Its line in the plot's legend.
    line_style: Its matplotlib line style ('--', ':', '-.').
    marker: Its matplotlib marker ('s', '^', 'v', ...).
    description: One line for `--help` and the docs.

  The runner calls `start(context)` for each level the branch runs at, once
  the main run has finished that level; `start` returns the wrapped model,
  masks set and weights where training starts. The runner then compiles it
  with the run's recipe, starts it at the rewind step (as the main run's
  level does), trains it for the rest of the level's iterations and stores
  its masks, curve and metrics under `replicate_<r>/level_<k>/<name>/`.
  """

  name = None
  title = None
  label = None
  line_style = '--'
  marker = 's'
  description = ''

  def needs(self, level):
    """The main-run levels whose outputs `start` reads at `level` (default: that level)."""
    return (level,)

  @abc.abstractmethod
  def start(self, context):
    """The wrapped model this branch trains at `context.level`.

    Args:
      context: The runner's `BranchContext` of this replicate and level: it
        builds and wraps the run's model, reads the main run's outputs and
        sets masks and rewind points (see `branch_context.BranchContext`).

    Returns:
      A wrapped tf_keras model (`ltp_tfmot.prune_lottery_ticket`) whose
      weights are where training starts and whose masks are set.
    """

  def __repr__(self):
    return f'{type(self).__name__}({self.name!r})'


def register_branch(branch, overwrite=False):
  """Adds a branch to the registry, so that configs, the command line, reports and plots know it.

  Args:
    branch: A `Branch` instance.
    overwrite: Whether to replace a branch registered under that name.

  Returns:
    The branch.

  Raises:
    TypeError: if `branch` is not a `Branch` instance.
    ValueError: for a bad or taken name, or a missing title or label.
  """
  if not isinstance(branch, Branch):
    raise TypeError(f'branch must be an instance of a ltp_tfmot.experiment.Branch subclass, got {branch!r}')
  validation.check_name(branch.name, 'branch.name')
  if branch.name == MAIN:
    raise ValueError(f"branch.name must not be {MAIN!r}: that is the main run's")
  for attribute in ('title', 'label', 'line_style', 'marker'):
    if not isinstance(getattr(branch, attribute), str) or not getattr(branch, attribute):
      raise ValueError(f'branch {branch.name!r} needs a non-empty string {attribute}, got '
                       f'{getattr(branch, attribute)!r}')
  # Built-in branches register without overwrite, before _BUILTIN exists.
  if overwrite and branch.name in _BUILTIN:
    raise ValueError(f'{branch.name!r} is a built-in branch and cannot be replaced; register yours under another name')
  return _REGISTRY.register(branch.name, branch, overwrite=overwrite)


def unregister_branch(name):
  """Removes a registered branch (a run naming it can then no longer be configured in this process).

  Raises:
    ValueError: for a name that is not registered, or a built-in branch.
  """
  if name in _BUILTIN:
    raise ValueError(f'{name!r} is a built-in branch and cannot be removed')
  _REGISTRY.unregister(name)


def get_branch(name):
  """The registered branch of that name.

  Raises:
    ValueError: for an unknown name (the message lists the known ones).
  """
  return _REGISTRY.get(name)


def branch_names():
  """Names of the registered branches, built-in ones first, then in the order they were registered."""
  return _REGISTRY.names()


def builtin_branch_names():
  """Names of the branches the library registers itself (they cannot be replaced or removed)."""
  return _BUILTIN


def display_order(present=()):
  """'main', every registered branch, then the other names in `present` sorted: the order of columns and lines.

  Args:
    present: Branch names found in results; those not registered here (a
      branch registered in another process) come last.
  """
  order = [MAIN] + branch_names()
  return order + sorted(set(present) - set(order))


def style(name):
  """(title, label, line_style, marker) of 'main' or a branch; a branch not registered here gets a generic one.

  A run directory may hold a branch registered in another process; its results
  still show, under its name.
  """
  if name == MAIN:
    return MAIN_STYLE
  if name not in _REGISTRY:
    return (name, name, '-.', 'v')
  branch = _REGISTRY.get(name)
  return (branch.title, branch.label, branch.line_style, branch.marker)


def random_prune_rates(layer_names, masks, mask_layer):
  """Per-layer rates whose one random round keeps exactly the counts of `masks`.

  Args:
    layer_names: The prunable layers, in the wrapper order of the masks.
    masks: The stored masks (numpy arrays), in order.
    mask_layer: For each mask, the index of its layer in `layer_names`.

  Raises:
    ValueError: if a layer has no mask or no weight left.
  """
  rates = {}
  for index, name in enumerate(layer_names):
    mine = [m for m, owner in zip(masks, mask_layer, strict=True) if owner == index]
    if not mine:
      raise ValueError(f'the saved masks do not fit the model: no mask for layer {name!r}')
    kept, total = int(np.count_nonzero(mine[0])), int(mine[0].size)
    if kept == 0:
      raise ValueError(f'layer {name!r} has no weight left at this level; random_prune cannot match it')
    rates[name] = max(0.0, 1.0 - kept / total)
  return rates


class Reinit(Branch):
  """The main run's masks of the level, with the surviving weights drawn afresh from the initializers."""

  name = 'reinit'
  title = 'Reinit'
  label = 'random reinit'
  line_style = '--'
  marker = 's'
  description = 'same masks, fresh weights (random reinitialisation control)'

  def start(self, context):
    from ltp_tfmot.keras2 import rewind  # pylint: disable=g-import-not-at-top  # TensorFlow loads when a branch trains
    model = context.wrap(context.build_model(), mask_1_action='reinit')
    rewind.take_snapshot(model)
    context.set_masks(model, context.main_outputs()['masks'])
    rewind.rewind_weights(model)  # survivors drawn afresh from the initializers, pruned ones 0
    rewind.take_snapshot(model)  # the snapshot now holds what this branch starts from
    return model


class RandomPrune(Branch):
  """Random masks with the main masks' per-layer counts, at the main run's rewind point."""

  name = 'random_prune'
  title = 'Random prune'
  label = 'random pruning'
  line_style = ':'
  marker = '^'
  description = 'random masks with the same per-layer counts, same rewind point (random pruning control)'

  def start(self, context):
    # pylint: disable=g-import-not-at-top  # TensorFlow loads when a branch trains
    from ltp_tfmot.keras2 import prune
    from ltp_tfmot.keras2 import rewind
    from ltp_tfmot.keras2 import rounds
    outputs = context.main_outputs()
    base = context.build_model()
    layer_rates = random_prune_rates(prune.prunable_layer_names(base), outputs['masks'], outputs['mask_layer'])
    model = context.wrap(base, criterion='random', scope='layer', layer_rates=layer_rates)
    context.load_rewind_point(model)
    rounds.compute_next_masks(model)
    counts = [int(np.count_nonzero(m.numpy())) for m in context.mask_variables(model)]
    expected = [int(np.count_nonzero(m)) for m in outputs['masks']]
    if counts != expected:
      raise ValueError(f'random_prune could not match the per-tensor counts of the main masks ({expected}), got '
                       f'{counts}: a layer whose prunable tensors have different sparsities is not supported')
    rewind.rewind_weights(model)
    return model


class InvertedScores(Branch):
  """The level's pruning with the criterion's scores inverted: it keeps what the main run pruned at this level."""

  name = 'inverted_scores'
  title = 'Inverted scores'
  label = 'inverted scores'
  line_style = '-.'
  marker = 'v'
  description = ("the level's round with the criterion's scores negated, same counts, same rewind point "
                 '(the inversion ablation of pruning at initialization)')

  def needs(self, level):
    return (level - 1, level)

  def start(self, context):
    from ltp_tfmot.core import criteria  # pylint: disable=g-import-not-at-top  # TensorFlow loads when a branch trains
    inverted = criteria.inverted_criterion(context.run_criterion)
    return context.repruned(criterion=inverted.name)


for _branch in (Reinit(), RandomPrune(), InvertedScores()):
  register_branch(_branch)
_BUILTIN = tuple(_REGISTRY)
