"""Presets: the training and pruning set-up of the paper each reference network comes from.

Every registered model has a `Preset` (its family module declares it, the
`registry` finds it by name): optimizer, learning rate and its schedule,
weight decay, batch size, training length, augmentation, pruning scope and
rates, rewind step, and where the values come from. Lengths are
written as in open_lth ('160ep', '30000it'; see `validation.parse_duration`).

Layer rates may name layers or give shell-style patterns (`fnmatch`): Conv-4's
`{'conv*': 0.1, 'output': 0.1}` prunes conv1..conv4 at 10% and the output at
10%, the other layers at `rate`. `expand_layer_rates` turns them into the
concrete `layer_rates` that `ltp_tfmot.prune_lottery_ticket` takes.
`frankle_carbin` and `open_lth_cifar` write the two papers' set-ups, which
several families share.

Example:

```python
import ltp_tfmot
from ltp_tfmot.zoo import conv, preset as preset_lib, registry

preset = registry.get_preset('conv4').replace(learning_rate=1e-4)   # any setting overridden
model = conv.conv4(seed=0)
rates = preset_lib.expand_layer_rates(preset.layer_rates, ltp_tfmot.prunable_layer_names(model))
model = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(preset.rate), scope=preset.scope,
                                       layer_rates=rates)
```
"""

import dataclasses
import fnmatch
from typing import Dict
from typing import Tuple

from ltp_tfmot import validation

SCOPES = validation.SCOPES
_PATTERN_CHARACTERS = '*?['

FRANKLE_CARBIN_2019 = ('Frankle & Carbin 2019, "The Lottery Ticket Hypothesis" (arXiv 1803.03635), Figure 2 and '
                       'Appendix')
OPEN_LTH = 'open_lth (github.com/facebookresearch/open_lth)'
FRANKLE_2020 = ('Frankle, Dziugaite, Roy & Carbin 2020, "Linear Mode Connectivity and the Lottery Ticket '
                'Hypothesis" (arXiv 1912.05671)')


@dataclasses.dataclass(frozen=True)
class Preset:
  """The paper's set-up for one model; `replace(**changes)` overrides any of it.

  Attributes:
    model: The registered model name.
    dataset: The dataset the paper trains it on ('mnist', 'cifar10').
    optimizer: 'sgd' or 'adam'.
    learning_rate: The peak learning rate.
    momentum: SGD momentum (0 with Adam).
    nesterov: Nesterov momentum (SGD).
    weight_decay: Coupled L2 coefficient (see `recipes`).
    batch_size: Examples per iteration.
    training_steps: Length of one level ('160ep', '50000it').
    warmup_steps: Linear learning-rate warm-up ('0it' for none).
    lr_decay: 'constant', 'step' or 'cosine'.
    milestones: Learning-rate drops ('step'), e.g. ('80ep', '120ep').
    gamma: Factor of each drop.
    augment: CIFAR augmentation (4-pixel pad, random crop, flip).
    scope: 'layer' or 'global' pruning.
    rate: Fraction of the alive weights pruned per level.
    layer_rates: Layer name or pattern -> its own rate (see the module docs).
    rewind_step: Where survivors are rewound to ('0it': initialisation).
    source: Where these values come from.
  """
  model: str
  dataset: str
  optimizer: str
  learning_rate: float
  batch_size: int
  training_steps: str
  source: str
  momentum: float = 0.0
  nesterov: bool = False
  weight_decay: float = 0.0
  warmup_steps: str = '0it'
  lr_decay: str = 'constant'
  milestones: Tuple[str, ...] = ()
  gamma: float = 0.1
  augment: bool = False
  scope: str = 'layer'
  rate: float = 0.2
  layer_rates: Dict[str, float] = dataclasses.field(default_factory=dict)
  rewind_step: str = '0it'

  def __post_init__(self):
    if self.scope not in SCOPES:
      raise ValueError(f'preset scope must be one of {list(SCOPES)}, got {self.scope!r}')
    if not validation.is_int(self.batch_size) or self.batch_size < 1:
      raise ValueError(f'preset batch_size must be an integer >= 1, got {self.batch_size!r}')
    if not validation.is_number(self.rate) or not 0 < self.rate < 1:
      raise ValueError(f'preset rate must be a number in (0, 1), got {self.rate!r}')
    if not isinstance(self.layer_rates, dict) or not all(
        isinstance(k, str) and k and validation.is_number(v) and 0 <= v < 1 for k, v in self.layer_rates.items()):
      raise ValueError(f'preset layer_rates must map layer names or patterns to rates in [0, 1), got '
                       f'{self.layer_rates!r}')
    milestones = self.milestones
    if isinstance(milestones, str):
      milestones = [m.strip() for m in milestones.split(',') if m.strip()]
    object.__setattr__(self, 'milestones', tuple(milestones))
    # The syntax of every length now; how they compare (milestones before the end, ...) depends on the epoch
    # length, so `recipes.build_training` checks that with the data's steps per epoch.
    for name in ('training_steps', 'warmup_steps', 'rewind_step'):
      validation.parse_duration(getattr(self, name), steps_per_epoch=1, name=f'preset {name}')
    milestones = [validation.parse_duration(m, steps_per_epoch=1, name='preset milestone') for m in self.milestones]
    validation.check_schedule_settings(self.learning_rate, decay=self.lr_decay, milestones=sorted(set(milestones)),
                                       gamma=self.gamma, decay_steps=1 if self.lr_decay == 'cosine' else None)
    validation.check_optimizer_settings(self.optimizer, momentum=self.momentum, nesterov=self.nesterov,
                                        weight_decay=self.weight_decay)

  def replace(self, **changes):
    """A copy with some settings changed (e.g. from command-line flags).

    Raises:
      ValueError: for a name that is not a preset setting, or a bad value.
    """
    names = {field.name for field in dataclasses.fields(self)}
    unknown = sorted(set(changes) - names)
    if unknown:
      raise ValueError(f'unknown preset settings {unknown}; known: {sorted(names)}')
    return dataclasses.replace(self, **changes)

  def to_dict(self):
    """All settings as a JSON-ready dict."""
    values = dataclasses.asdict(self)
    values['milestones'] = list(self.milestones)
    return values


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
  return Preset(model=model, dataset=dataset, optimizer='adam', learning_rate=learning_rate, batch_size=60,
                training_steps=length, layer_rates=layer_rates,
                source=f'{FRANKLE_CARBIN_2019}: Adam {learning_rate:g}, batch 60, {iterations}, '
                       'layer-wise pruning, the output layer at 10%')


def open_lth_cifar(model, family, pruned_output, rewind_step):
  """open_lth's CIFAR-10 defaults for a network family: SGD with step decay over 160 epochs, global pruning at 20%.

  Args:
    model: The registered model name.
    family: open_lth's module of the family ('cifar_resnet', 'cifar_vgg'), for the source.
    pruned_output: Whether the output layer is pruned (else its rate is 0).
    rewind_step: Where survivors are rewound to (Frankle et al. 2020's stable step).

  Returns:
    The `Preset`.
  """
  ignore = '' if pruned_output else ', the output layer not pruned (pruning_layers_to_ignore=fc.weight)'
  return Preset(
      model=model, dataset='cifar10', optimizer='sgd', learning_rate=0.1, momentum=0.9, weight_decay=1e-4,
      batch_size=128, training_steps='160ep', lr_decay='step', milestones=('80ep', '120ep'), gamma=0.1, augment=True,
      scope='global', rate=0.2, layer_rates={} if pruned_output else {'output': 0.0}, rewind_step=rewind_step,
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
