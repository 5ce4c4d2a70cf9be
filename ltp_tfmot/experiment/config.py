"""The settings of a lottery experiment (`RunConfig`), and the stable hash that names its directory.

A run is described by four groups of settings: data, training and pruning
(`DataConfig`, `TrainingConfig`, `PruningConfig`, which live in
`ltp_tfmot.settings` so that the zoo's presets are checked against them; they
are served here too) and the model name and seed at the top. Every value is
checked when the config is built, so a bad setting fails before anything is
loaded or trained, with a `ValueError` naming the field, the value and what is
allowed. Every field documents itself in its metadata (`settings.setting`),
which the command line's flags are made from.

Settings that only say *how much* to run (the number of levels, replicates,
controls and the levels they run at) are not hashed: asking for more levels or
another control later continues the same run instead of starting a new one.
The hash is computed from the settings' values alone (never their metadata).

Example:

```python
config = RunConfig(pruning=PruningConfig(rate=0.2, levels=5), controls=('reinit',))
config.run_name()          # 'lottery_<12 hex digits>', the same on every machine
```
"""

import dataclasses
import hashlib
import json
from typing import Optional
from typing import Tuple

from ltp_tfmot import settings as settings_lib
from ltp_tfmot import validation
from ltp_tfmot.experiment import branches
from ltp_tfmot.zoo import preset as preset_lib
from ltp_tfmot.zoo import registry as zoo_registry

# The groups of `ltp_tfmot.settings` and the constants read with them, under the names this module has served.
DataConfig = settings_lib.DataConfig
TrainingConfig = settings_lib.TrainingConfig
PruningConfig = settings_lib.PruningConfig
LR_DECAYS = settings_lib.LR_DECAYS
MNIST_SOURCES = settings_lib.MNIST_SOURCES


def _group(cls, description):
  """A `RunConfig` field holding a group of settings, by default the group's defaults."""
  return settings_lib.setting(default_factory=cls, help_text=f'{description} (a `{cls.__name__}`).')


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """Everything that defines a lottery experiment (each field's `metadata['help']` documents it)."""
  model: str = settings_lib.setting(
      'lenet_300_100', help_text='A registered model name (`ltp_tfmot.experiment.model_names()`), or a label of your '
      'own when you pass `model_fn` to the runner.', choices=zoo_registry.model_names())
  data: DataConfig = _group(DataConfig, 'Which data the run trains on, and how they are split')
  training: TrainingConfig = _group(TrainingConfig, 'How each level is trained')
  pruning: PruningConfig = _group(PruningConfig, 'How each level is pruned and rewound')
  seed: int = settings_lib.setting(
      0, help_text='Seed of replicate 0 (initial weights, data order, random masks); replicate i uses seed + i.')
  replicates: int = settings_lib.setting(1, hashed=False, help_text='How many seeds to run (not hashed).')
  controls: Tuple[str, ...] = settings_lib.setting(
      (), hashed=False, help_text="Branches trained from the main run's levels, by registered name "
      "(`branch_names()`): 'reinit' (same masks, fresh weights), 'random_prune' (random masks with the same "
      'per-layer counts, same rewind point), or one of your own (`register_branch`). Not hashed.', flag='branches',
      alias='controls', flag_help=' Registered: ' + '; '.join(
          f'{name} ({branches.get_branch(name).description})' for name in branches.branch_names()) + '.')
  control_levels: Optional[Tuple[int, ...]] = settings_lib.setting(
      None, hashed=False, help_text='The levels (1..levels) controls run at; None = every level from 1. Not hashed.',
      flag_help=' On the command line: the levels --branches run at, comma-separated.')

  def __post_init__(self):
    validation.check_name(self.model, 'model')
    for field, cls in (('data', DataConfig), ('training', TrainingConfig), ('pruning', PruningConfig)):
      if not isinstance(getattr(self, field), cls):
        arrays = ' (arrays or a dataset go to run_experiment(config, data=...))' if field == 'data' else ''
        raise TypeError(f'{field} must be a {cls.__name__}{arrays}, got {getattr(self, field)!r}')
    validation.check_int(self.seed, 'seed', 0, 2**31 - 2**16 - 1)
    object.__setattr__(self, 'replicates', validation.check_int(self.replicates, 'replicates', 1))
    controls = (self.controls,) if isinstance(self.controls, str) else self.controls
    if not isinstance(controls, (list, tuple)):
      raise ValueError(f'controls must be a list of branch names from {branches.branch_names()}, got {self.controls!r}')
    for control in controls:
      validation.check_choice(control, 'controls', branches.branch_names())
    if len(set(controls)) != len(controls):
      raise ValueError(f'controls must not repeat a name, got {list(controls)}')
    object.__setattr__(self, 'controls', tuple(controls))
    if self.control_levels is not None:
      levels = self.control_levels
      if not isinstance(levels, (list, tuple)) or not all(validation.is_int(v) for v in levels):
        raise ValueError(f'control_levels must be a list of integers (or None for every level), got {levels!r}')
      bad = [v for v in levels if not 1 <= v <= self.pruning.levels]
      if bad:
        raise ValueError(f'control_levels must lie in 1..{self.pruning.levels} (pruning.levels), got {bad}')
      object.__setattr__(self, 'control_levels', tuple(sorted(set(int(v) for v in levels))))

  @classmethod
  def for_model(cls, model, data=None, training=None, pruning=None, **settings):
    """The config of a registered model with its paper's set-up (`zoo.registry.get_preset`), overridden where given.

    The preset (`zoo.preset.Preset`) holds the settings of each group that
    the model's paper changes from their defaults; the settings you pass win
    over them. A preset setting that only means something with a choice you
    overrode is left out: momentum and Nesterov when you choose another
    optimizer, milestones when you choose another lr_decay, the preset's length
    when you give `epochs` or `training_steps`. (A preset keeps a length in
    whole epochs as `epochs` and leaves default layer rates to the default, so
    they follow a `rate` you give.) LeNet-300-100's preset is the default
    config, so `RunConfig.for_model('lenet_300_100') == RunConfig()`.

    Args:
      model: A model with a preset (`ltp_tfmot.experiment.preset_names()`).
      data: Dict of `DataConfig` settings you give.
      training: Dict of `TrainingConfig` settings you give.
      pruning: Dict of `PruningConfig` settings you give.
      **settings: Other `RunConfig` settings (seed, replicates, controls,
        control_levels).

    Returns:
      The `RunConfig`.

    Raises:
      ValueError: for a model without a preset, an unknown setting or a bad
        value.

    Example:

    ```python
    config = RunConfig.for_model('resnet20', training={'training_steps': '2000it'}, pruning={'levels': 3})
    ```
    """
    preset = zoo_registry.get_preset(model)
    given = {'data': data, 'training': training, 'pruning': pruning}
    groups = {group: settings_lib.build(group_cls, preset.overridden(group, dict(given[group] or {})), f'{group}.')
              for group, group_cls in preset_lib.GROUPS}
    return cls(model=model, **groups, **settings)

  def levels_with_controls(self):
    """The levels at which the controls run."""
    if not self.controls:
      return ()
    if self.control_levels is None:
      return tuple(range(1, self.pruning.levels + 1))
    return self.control_levels

  def to_dict(self):
    """All settings as a JSON-ready nested dict."""
    result = dataclasses.asdict(self)
    result['controls'] = list(self.controls)
    result['control_levels'] = None if self.control_levels is None else list(self.control_levels)
    return result

  @classmethod
  def from_dict(cls, values):
    """The inverse of `to_dict`; unknown keys raise ValueError."""
    values = dict(values)
    nested = {'data': DataConfig, 'training': TrainingConfig, 'pruning': PruningConfig}
    for key, sub in nested.items():
      if key in values:
        values[key] = settings_lib.build(sub, values[key], key + '.')
    for key in ('controls', 'control_levels'):
      if isinstance(values.get(key), list):
        values[key] = tuple(values[key])
    return settings_lib.build(cls, values, '')

  def hashed_settings(self):
    """{'group.field': value} of every setting that defines the run (flattened)."""
    return dict(_flatten(self))

  def non_default_settings(self):
    """The hashed settings that differ from their defaults."""
    defaults = RunConfig().hashed_settings()
    return {k: v for k, v in self.hashed_settings().items() if defaults.get(k, object()) != v}

  def hash(self):
    """A stable 12-hex-digit hash of the non-default settings.

    Adding a setting to a future version (with a default) does not change the
    hash of existing runs, and the same settings hash the same everywhere.
    """
    text = json.dumps(self.non_default_settings(), sort_keys=True, separators=(',', ':'))
    return hashlib.sha256(text.encode()).hexdigest()[:12]

  def run_name(self):
    """The directory name of this run: 'lottery_' + `hash()`."""
    return 'lottery_' + self.hash()

  def describe(self):
    """A short human-readable line: model, data and the non-default settings."""
    others = {k: v for k, v in self.non_default_settings().items() if k not in ('model', 'data.name')}
    extra = ', '.join(f'{k}={v}' for k, v in sorted(others.items()))
    return f'{self.model} on {self.data.name}' + (f' ({extra})' if extra else '')


def _flatten(config, prefix=''):
  for field in dataclasses.fields(config):
    if not field.metadata.get('hashed', True):
      continue
    value = getattr(config, field.name)
    if dataclasses.is_dataclass(value):
      yield from _flatten(value, prefix + field.name + '.')
    elif isinstance(value, dict):
      yield prefix + field.name, {k: value[k] for k in sorted(value)}
    else:
      yield prefix + field.name, value
