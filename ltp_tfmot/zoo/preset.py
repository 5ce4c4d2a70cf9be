"""Presets: the training and pruning set-up of the paper each reference network comes from.

Every registered model has a `Preset` (its family module declares it, the
`registry` finds it by name): the settings of a run's groups
(`ltp_tfmot.settings`: `DataConfig`, `TrainingConfig`, `PruningConfig`) that
the paper changes from their defaults, keyed by the groups' field names, and
where the values come from. `ltp_tfmot.experiment.RunConfig.for_model` merges
them with the settings you give. A preset is checked against the groups when
it is made: a name that is no setting, or a bad value, fails at its family
module's import with one line naming the model.

Layer rates may name layers or give shell-style patterns (`fnmatch`): Conv-4's
`{'conv*': 0.1, 'output': 0.1}` prunes conv1..conv4 at 10% and the output at
10%, the other layers at `rate`. `expand_layer_rates` turns them into the
concrete `layer_rates` that `ltp_tfmot.prune_lottery_ticket` takes.
`frankle_carbin` and `open_lth_cifar` write the two papers' set-ups, which
several families share.

Example:

```python
import ltp_tfmot
from ltp_tfmot import settings
from ltp_tfmot.zoo import conv, preset as preset_lib, registry

preset = registry.get_preset('conv4').replace(pruning={'rate': 0.3})   # any setting overridden
pruning = settings.PruningConfig(**preset.pruning)                       # the defaults, with the preset's changes
model = conv.conv4(seed=0)
rates = preset_lib.expand_layer_rates(pruning.layer_rates, ltp_tfmot.prunable_layer_names(model))
model = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(pruning.rate), scope=pruning.scope,
                                       layer_rates=rates)
```
"""

import dataclasses
import fnmatch
import re
from typing import Any
from typing import Dict

from ltp_tfmot import settings
from ltp_tfmot import validation

SCOPES = validation.SCOPES
_PATTERN_CHARACTERS = '*?['
_WHOLE_EPOCHS = re.compile(r'^(\d+)ep$')
# A preset's training settings that go with its choice of another setting (momentum with SGD, milestones with step
# decay): left out where that setting is overridden with another value.
_GOES_WITH = {'momentum': 'optimizer', 'nesterov': 'optimizer', 'milestones': 'lr_decay'}
# The two ways to give a level's length: an overriding length replaces the preset's, however either is written.
_LENGTH = frozenset({'epochs', 'training_steps'})
# The groups a preset changes: (its field, the settings dataclass whose fields key it).
GROUPS = (('data', settings.DataConfig), ('training', settings.TrainingConfig),
          ('pruning', settings.PruningConfig))

FRANKLE_CARBIN_2019 = ('Frankle & Carbin 2019, "The Lottery Ticket Hypothesis" (arXiv 1803.03635), Figure 2 and '
                       'Appendix')
OPEN_LTH = 'open_lth (github.com/facebookresearch/open_lth)'
FRANKLE_2020 = ('Frankle, Dziugaite, Roy & Carbin 2020, "Linear Mode Connectivity and the Lottery Ticket '
                'Hypothesis" (arXiv 1912.05671)')


@dataclasses.dataclass(frozen=True)
class Preset:
  """The paper's set-up for one model: the settings it changes from a run's defaults.

  Each group is a dict from a field name of its settings dataclass to the
  value, checked (and written as the dataclass writes it: '20000it' is 20000)
  when the preset is made. Two spellings are made one, so that a preset equal
  to the defaults is the default config: a length in whole epochs
  (`training_steps='160ep'`) is kept as `epochs`, and `layer_rates` equal to
  the default ones (the output layer at half the rate) are left out, so that
  they follow a `rate` given later.

  Attributes:
    model: The registered model name.
    source: Where these values come from.
    data: `DataConfig` settings, e.g. `{'name': 'cifar10'}`.
    training: `TrainingConfig` settings, e.g. `{'optimizer': 'sgd', 'learning_rate': 0.1}`.
    pruning: `PruningConfig` settings, e.g. `{'scope': 'global', 'rewind_step': 2000}`.
  """
  model: str
  source: str
  data: Dict[str, Any] = dataclasses.field(default_factory=dict)
  training: Dict[str, Any] = dataclasses.field(default_factory=dict)
  pruning: Dict[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    validation.check_name(self.model, 'preset model')
    if not isinstance(self.source, str) or not self.source:
      raise ValueError(f'preset {self.model!r} must name its source, got {self.source!r}')
    for group, cls in GROUPS:
      values = getattr(self, group)
      try:
        config = settings.build(cls, values, f'{group}.')
      except (TypeError, ValueError) as error:
        raise ValueError(f'preset {self.model!r}: {error}') from None
      object.__setattr__(self, group, {name: getattr(config, name) for name in values})
    whole_epochs = _WHOLE_EPOCHS.match(str(self.training.get('training_steps')))
    if whole_epochs:
      del self.training['training_steps']
      self.training['epochs'] = int(whole_epochs.group(1))
    if self.pruning.get('layer_rates') == settings.PruningConfig(**dict(self.pruning, layer_rates=None)).layer_rates:
      del self.pruning['layer_rates']

  def overridden(self, group, given):
    """A group's settings: the preset's, overridden by `given`, without those only the preset's choices meant.

    A preset setting that only means something with a choice `given`
    overrides is left out: momentum and Nesterov with another optimizer,
    milestones with another lr_decay, and the preset's length (`epochs` or
    `training_steps`) when `given` has either.

    Args:
      group: 'data', 'training' or 'pruning'.
      given: Dict of settings of the group that win over the preset's.

    Returns:
      The merged dict of settings (not checked: build the group from it).
    """
    preset = getattr(self, group)
    # The names are the training group's (no other group has them).
    dropped = _LENGTH if _LENGTH & given.keys() else frozenset()
    dropped |= {name for name, choice in _GOES_WITH.items() if choice in given and given[choice] != preset.get(choice)}
    return dict({name: value for name, value in preset.items() if name not in dropped}, **given)

  def replace(self, **groups):
    """A copy with some settings overridden, as `overridden` merges them.

    Args:
      **groups: 'data', 'training' or 'pruning': a dict of that group's settings, e.g.
        `replace(training={'learning_rate': 0.05})`.

    Returns:
      The new `Preset`, checked as any.

    Raises:
      ValueError: for a name that is no group or no setting, or a bad value.
    """
    names = [group for group, _ in GROUPS]
    unknown = sorted(set(groups) - set(names))
    if unknown:
      raise ValueError(f'unknown preset groups {unknown}; known: {names}')
    return dataclasses.replace(self, **{group: self.overridden(group, dict(given)) for group, given in groups.items()})


def frankle_carbin(model, dataset, learning_rate, length, layer_rates):
  """Frankle & Carbin's (2019) set-up: Adam, batch 60, layer-wise pruning at 20%, `layer_rates` as given.

  Args:
    model: The registered model name.
    dataset: 'mnist' or 'cifar10'.
    learning_rate: Adam's learning rate.
    length: The training length ('50ep', '25000it').
    layer_rates: Layer name or pattern -> its own rate.

  Returns:
    The `Preset`.
  """
  iterations = '50,000 iterations as 50 epochs' if length == '50ep' else f'{length[:-2]} iterations'
  return Preset(
      model=model, data={'name': dataset},
      training={'optimizer': 'adam', 'learning_rate': learning_rate, 'batch_size': 60, 'training_steps': length},
      pruning={'scope': 'layer', 'rate': 0.2, 'layer_rates': layer_rates},
      source=f'{FRANKLE_CARBIN_2019}: Adam {learning_rate:g}, batch 60, {iterations}, layer-wise pruning, the output '
             'layer at 10%')


def open_lth_cifar(model, family, pruned_output, rewind_step):
  """open_lth's CIFAR-10 defaults for a network family: SGD with step decay over 160 epochs, global pruning at 20%.

  Args:
    model: The registered model name.
    family: open_lth's module of the family ('cifar_resnet', 'cifar_vgg'), for the source.
    pruned_output: Whether the output layer is pruned (else its rate is 0).
    rewind_step: Where survivors are rewound to (Frankle et al. 2020's stable step), in iterations ('2000it').

  Returns:
    The `Preset`.
  """
  ignore = '' if pruned_output else ', the output layer not pruned (pruning_layers_to_ignore=fc.weight)'
  return Preset(
      model=model, data={'name': 'cifar10'},
      training={'optimizer': 'sgd', 'learning_rate': 0.1, 'momentum': 0.9, 'weight_decay': 1e-4, 'batch_size': 128,
                'training_steps': '160ep', 'lr_decay': 'step', 'milestones': ('80ep', '120ep'), 'gamma': 0.1,
                'augment': True},
      pruning={'scope': 'global', 'rate': 0.2, 'layer_rates': {} if pruned_output else {'output': 0.0},
               'rewind_step': validation.parse_duration(rewind_step, name=f'{model} preset rewind_step')},
      source=(f"{OPEN_LTH} models/{family}.py default_hparams: SGD 0.1, momentum 0.9, weight decay 1e-4, batch 128, "
              f"160ep, drops x0.1 at 80ep and 120ep, no warm-up, augmentation, sparse_global 20%{ignore}; rewind "
              f'step {rewind_step} from {FRANKLE_2020} (where IMP subnetworks of this network become stable and '
              'matching)'))


def _is_pattern(key):
  return any(c in key for c in _PATTERN_CHARACTERS)


def expand_layer_rates(layer_rates, layer_names):
  """Concrete per-layer rates from names and shell-style patterns.

  A layer named exactly takes that rate; otherwise the patterns it matches
  must agree on one rate (the order of the keys never matters, so a config
  that sorts them means the same). Layers nothing matches are left out (they
  take the schedule's rate).

  Args:
    layer_rates: Dict from a layer name or an `fnmatch` pattern ('conv*',
      '*shortcut*', 'fc[12]') to a rate.
    layer_names: The model's prunable layer names, e.g.
      `ltp_tfmot.prunable_layer_names(model)`.

  Returns:
    A dict from layer name to rate, in the order of `layer_names`.

  Raises:
    ValueError: for a name or pattern that matches no layer (a typo would
      silently prune at the wrong rate), or a layer two patterns give
      different rates.

  Example:

  ```python
  expand_layer_rates({'conv*': 0.1, 'output': 0.1}, ['conv1', 'conv2', 'fc1', 'output'])
  # {'conv1': 0.1, 'conv2': 0.1, 'output': 0.1}
  ```
  """
  layer_names = list(layer_names)
  exact = {k: v for k, v in layer_rates.items() if not _is_pattern(k)}
  patterns = {k: v for k, v in layer_rates.items() if _is_pattern(k)}
  unmatched = sorted(set(exact) - set(layer_names)) + sorted(
      p for p in patterns if not fnmatch.filter(layer_names, p))
  if unmatched:
    raise ValueError(f'layer_rates {unmatched} match no prunable layer; the prunable layers are {layer_names}')
  result = {}
  for name in layer_names:
    if name in exact:
      result[name] = exact[name]
      continue
    matches = {p: r for p, r in patterns.items() if fnmatch.fnmatchcase(name, p)}
    if len(set(matches.values())) > 1:
      raise ValueError(f'layer {name!r} matches layer_rates patterns {dict(sorted(matches.items()))} with different '
                       f'rates: give the layer its own entry ({name!r}: rate) to choose')
    if matches:
      result[name] = next(iter(matches.values()))
  return result
