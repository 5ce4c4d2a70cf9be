"""Typed, validated settings of a lottery experiment, and the stable hash that names its directory.

A run is described by four groups of settings (data, training, pruning, and
the model name and seed at the top). Every value is checked when the config is
built, so a bad setting fails before anything is loaded or trained, with a
`ValueError` naming the field, the value and what is allowed.

Settings that only say *how much* to run (the number of levels, replicates,
controls and the levels they run at) are not hashed: asking for more levels or
another control later continues the same run instead of starting a new one.

Example:

```python
config = RunConfig(pruning=PruningConfig(rate=0.2, levels=5), controls=('reinit',))
config.run_name()          # 'lottery_<12 hex digits>', the same on every machine
```
"""

import dataclasses
import hashlib
import json
import re
from typing import Dict
from typing import Optional
from typing import Tuple
from typing import Union

from ltp_tfmot import validation
from ltp_tfmot.experiment import branches
from ltp_tfmot.zoo import registry as zoo_registry

OPTIMIZERS = validation.OPTIMIZERS
LR_DECAYS = validation.LR_DECAYS
PRECISIONS = validation.PRECISIONS
RETRAIN_MODES = validation.RETRAIN_MODES
GRANULARITIES = validation.GRANULARITIES
UNIT_POOLINGS = validation.UNIT_POOLINGS
DEFAULT_EPOCHS = 50
# Steps per compiled execution: past a few dozen, the per-execution overhead is lost in the steps' own time.
DEFAULT_STEPS_PER_EXECUTION = 50
MNIST_SOURCES = ('auto', 'keras', 'embedded')
# The TrainingConfig settings a preset gives (its length goes to epochs or training_steps).
_PRESET_TRAINING = ('optimizer', 'learning_rate', 'momentum', 'nesterov', 'weight_decay', 'batch_size', 'warmup_steps',
                    'lr_decay', 'milestones', 'gamma', 'augment')
OUTPUT_LAYER = 'output'  # the layer the default layer_rates prune at half the rate


def _unhashed(**kwargs):
  """A field that says how much to run, not what: left out of the run's hash."""
  return dataclasses.field(metadata={'hashed': False}, **kwargs)


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Which data a run trains on, and how it is split.

  Attributes:
    name: 'mnist', 'cifar10', or a label of your own when you pass arrays to
      the runner (the label is part of the run's hash; the arrays are
      fingerprinted too).
    source: MNIST only: 'auto' (Keras' MNIST when it can be loaded, else the
      embedded 5,000 digits), 'keras' or 'embedded'.
    validation_split: Share of the training examples held out for validation
      (early stopping, best validation accuracy), in (0, 1).
    train_size: Use only this many training examples (before the validation
      split), or None for all.
    test_size: Use only this many test examples, or None for all.
    data_dir: Where the data lie: for CIFAR-10 a folder or tarball holding
      cifar-10-batches-py (else Keras' cache), for 'tfds.<name>' the prepared
      TensorFlow Datasets folder. Not hashed: the data's fingerprint is
      checked instead, so the same data moved elsewhere continue the run.
  """
  name: str = 'mnist'
  source: str = 'auto'
  validation_split: float = 0.1
  train_size: Optional[int] = None
  test_size: Optional[int] = None
  data_dir: Optional[str] = _unhashed(default=None)

  def __post_init__(self):
    validation.check_name(self.name, 'data.name')
    validation.check_choice(self.source, 'data.source', MNIST_SOURCES)
    object.__setattr__(self, 'validation_split',
                       validation.check_fraction(self.validation_split, 'data.validation_split'))
    object.__setattr__(self, 'train_size', validation.check_int(self.train_size, 'data.train_size', 2, optional=True))
    object.__setattr__(self, 'test_size', validation.check_int(self.test_size, 'data.test_size', 1, optional=True))
    if self.data_dir is not None and (not isinstance(self.data_dir, str) or not self.data_dir):
      raise TypeError(f'data.data_dir must be a non-empty path (or None), got {self.data_dir!r}')


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
  """How each level is trained (the defaults are Frankle & Carbin's LeNet set-up).

  The recipe settings follow open_lth (see `ltp_tfmot.experiment.recipes`):
  coupled L2 weight decay, PyTorch's momentum, a learning rate of the
  optimizer's iteration count (so a level that resumes at a rewind step k
  continues the schedule from k).

  Attributes:
    optimizer: 'adam' or 'sgd'.
    learning_rate: The peak learning rate, > 0.
    momentum: SGD momentum in [0, 1); must stay 0 with Adam.
    nesterov: Nesterov momentum (SGD with momentum only).
    weight_decay: Coupled L2 coefficient (PyTorch's weight_decay), >= 0.
    batch_size: Examples per step, >= 1.
    epochs: Passes over the training examples per level, >= 1 (50 epochs of
      55,000 images at batch 60 is about the paper's 50,000 iterations); used
      when training_steps is not given.
    training_steps: Length of a level in epochs and/or iterations ('160ep',
      '30000it', '2ep100it', or an int of iterations); None trains `epochs`
      epochs. Give this or epochs, not both.
    warmup_steps: Linear learning-rate warm-up from 0 (a length as
      training_steps; 0 for none).
    lr_decay: 'constant', 'step' (times gamma at each milestone) or 'cosine'
      (to 0 at the end of the level).
    milestones: The learning-rate drops of lr_decay='step', as lengths
      ('80ep', '120ep'); only with 'step'.
    gamma: Factor of each drop at a milestone, in (0, 1].
    augment: CIFAR augmentation in the input pipeline (4-pixel pad, random
      crop, horizontal flip), images only.
    data_seed: Seed of the data order and the augmentation, separate from the
      weights' seed (replicate i uses data_seed + i); None derives it from the
      replicate's seed.
    eval_every: Evaluate on the validation set every this many iterations (and
      at the first and last), for the early-stopping iteration.
    jit_compile: Compile each training step with XLA (`compile(jit_compile=)`)
      or not; None (the default) lets the runner choose the faster path for
      the model and device (`training_path.choose_jit_compile`: XLA on a GPU,
      and on a CPU for models without convolutions). The two paths round
      differently, and training amplifies that: masks at the cut-off and
      accuracies differ between them as between two runs of one path from
      initial weights one ulp apart. Not part of the run's name; every level
      records the path it trained on, and a resumed run refuses another one
      unless told to accept it. Off where XLA cannot compile the step (a
      strategy's collective ops on CPUs).
    steps_per_execution: Training steps per compiled execution (Keras'
      `steps_per_execution`), >= 1; 1 is Keras' step-by-step loop.
      Executions are cut to end at every evaluation and at the rewind point,
      so every recorded metric is the same, and the floats are those of 1
      step per execution on the same path. Not part of the run's name.
    precision: The Keras dtype policy the models are built with: 'float32',
      or 'mixed_float16' / 'mixed_bfloat16' (16-bit compute, float32
      variables: for GPUs and TPUs; on CPUs it is slower). Masks, snapshots
      and rewinding stay float32 and exact; the logits are cast to float32
      before the loss; 'mixed_float16' trains with Keras' dynamic loss
      scaling, which starts afresh at every level.
  """
  optimizer: str = 'adam'
  learning_rate: float = 1.2e-3
  momentum: float = 0.0
  nesterov: bool = False
  weight_decay: float = 0.0
  batch_size: int = 60
  epochs: int = DEFAULT_EPOCHS
  training_steps: Optional[Union[str, int]] = None
  warmup_steps: Union[str, int] = 0
  lr_decay: str = 'constant'
  milestones: Tuple[str, ...] = ()
  gamma: float = 0.1
  augment: bool = False
  data_seed: Optional[int] = None
  eval_every: int = 100
  jit_compile: Optional[bool] = _unhashed(default=None)
  steps_per_execution: int = _unhashed(default=DEFAULT_STEPS_PER_EXECUTION)
  precision: str = 'float32'

  def __post_init__(self):
    validation.check_choice(self.optimizer, 'training.optimizer', OPTIMIZERS)
    object.__setattr__(self, 'learning_rate', validation.check_positive(self.learning_rate, 'training.learning_rate'))
    object.__setattr__(self, 'momentum', validation.check_fraction(self.momentum, 'training.momentum', allow_zero=True))
    validation.check_bool(self.nesterov, 'training.nesterov')
    for name in ('momentum', 'nesterov'):
      if self.optimizer != 'sgd' and getattr(self, name):
        raise ValueError(f"training.{name} applies to optimizer 'sgd' only, got {name}={getattr(self, name)!r} "
                         f'with optimizer {self.optimizer!r}')
    if self.nesterov and not self.momentum:
      raise ValueError('training.nesterov needs training.momentum > 0')
    object.__setattr__(self, 'weight_decay',
                       validation.check_non_negative(self.weight_decay, 'training.weight_decay'))
    object.__setattr__(self, 'batch_size', validation.check_int(self.batch_size, 'training.batch_size', 1))
    object.__setattr__(self, 'epochs', validation.check_int(self.epochs, 'training.epochs', 1))
    object.__setattr__(self, 'training_steps',
                       validation.check_duration(self.training_steps, 'training.training_steps', optional=True))
    if self.training_steps is not None:
      if validation.parse_duration(self.training_steps, steps_per_epoch=1) < 1:
        raise ValueError(f'training.training_steps must be at least 1 iteration, got {self.training_steps!r}')
      if self.epochs != DEFAULT_EPOCHS:
        raise ValueError(f'give training.epochs ({self.epochs}) or training.training_steps '
                         f'({self.training_steps!r}), not both')
    object.__setattr__(self, 'warmup_steps', validation.check_duration(self.warmup_steps, 'training.warmup_steps'))
    validation.check_choice(self.lr_decay, 'training.lr_decay', LR_DECAYS)
    milestones = self.milestones
    if isinstance(milestones, str):
      milestones = [m for m in milestones.split(',') if m.strip()]
    if not isinstance(milestones, (list, tuple)):
      raise TypeError(f"training.milestones must be a list of lengths like ['80ep', '120ep'], got {milestones!r}")
    milestones = tuple(validation.check_duration(m, 'training.milestones') for m in milestones)
    object.__setattr__(self, 'milestones', milestones)
    if (self.lr_decay == 'step') != bool(milestones):
      raise ValueError(f"training.milestones go with training.lr_decay='step' and only with it, got "
                       f'lr_decay={self.lr_decay!r} and milestones {list(milestones)}')
    if not validation.is_number(self.gamma):
      raise TypeError(f'training.gamma must be a number in (0, 1], got {self.gamma!r}')
    if not 0 < self.gamma <= 1:
      raise ValueError(f'training.gamma must be in (0, 1], got {self.gamma!r}')
    object.__setattr__(self, 'gamma', float(self.gamma))
    validation.check_bool(self.augment, 'training.augment')
    object.__setattr__(self, 'data_seed',
                       validation.check_int(self.data_seed, 'training.data_seed', 0, 2**31 - 2**16 - 1, optional=True))
    object.__setattr__(self, 'eval_every', validation.check_int(self.eval_every, 'training.eval_every', 1))
    if self.jit_compile is not None:
      validation.check_bool(self.jit_compile, 'training.jit_compile')
    object.__setattr__(self, 'steps_per_execution',
                       validation.check_int(self.steps_per_execution, 'training.steps_per_execution', 1))
    validation.check_choice(self.precision, 'training.precision', PRECISIONS)

  def length(self):
    """The training length of a level as `parse_duration` reads it: training_steps, else `epochs` epochs."""
    return self.training_steps if self.training_steps is not None else f'{self.epochs}ep'


@dataclasses.dataclass(frozen=True)
class PruningConfig:
  """How each level is pruned and rewound (see `ltp_tfmot.prune_lottery_ticket`).

  Attributes:
    criterion: A registered criterion name (`ltp_tfmot.criterion_names()`);
      'snip', 'grasp' and 'synflow' score each level's masks at the rewind point.
    scope: 'layer' or 'global'.
    rate: Fraction of the alive weights pruned per level, in (0, 1).
    layer_rates: Layer name (or shell-style pattern such as 'conv*', see
      `ltp_tfmot.zoo.preset.expand_layer_rates`) -> its own rate in [0, 1). The default (None)
      prunes the layer named 'output' at half of `rate`, as in the paper
      (0.1 with the default rate 0.2), set when the config is built; use `{}`
      for a model without such a layer.
    rewind_step: 0 rewinds to the initial weights; k > 0 to the weights after
      k training iterations of level 0 (late rewinding).
    mask_0_action: 'zero' or 'freeze'.
    mask_1_action: 'rewind', 'reinit', 'reshuffle' or 'signed_constant'.
    dynamic_weight_rescaling: Rescale survivors by n / n_kept after a rewind.
    granularity: 'weight' (weights are pruned one by one) or 'unit' (whole
      neurons, filters and channels, with the units tied by the graph pruned
      together: a structured ticket that `ltp_tfmot.shrink` turns into a
      smaller dense model; see `ltp_tfmot.prune_lottery_ticket`).
    unit_pooling: How unit granularity pools a unit's weight scores: 'L1',
      'L2' or 'mean'.
    retrain: How each level after 0 retrains once pruned (Renda, Frankle,
      Carbin 2020): 'weight_rewind' rewinds the survivors to the rewind point
      and replays the schedule from `rewind_step` (the lottery ticket);
      'lr_rewind' keeps the trained weights and replays the learning-rate
      schedule from iteration T - budget to the end T; 'finetune' keeps the
      trained weights and trains on for the budget at the final rate (at
      iterations T .. T + budget - 1). 'lr_rewind' and 'finetune' need the
      defaults of mask_0_action, mask_1_action and dynamic_weight_rescaling
      (they act at a rewind) and a criterion of the weights' values.
    retrain_steps: The retraining budget of each level after 0, in
      iterations; None: T - rewind_step, the budget of weight rewinding,
      which a 'weight_rewind' run always has (set rewind_step to change it).
    levels: Pruning levels after the dense level 0 (not hashed: raising it
      later continues the run).
  """
  criterion: str = 'large_final'
  scope: str = 'layer'
  rate: float = 0.2
  layer_rates: Optional[Dict[str, float]] = None
  rewind_step: int = 0
  mask_0_action: str = 'zero'
  mask_1_action: str = 'rewind'
  dynamic_weight_rescaling: bool = False
  granularity: str = 'weight'
  unit_pooling: str = 'L1'
  retrain: str = 'weight_rewind'
  retrain_steps: Optional[int] = None
  levels: int = _unhashed(default=5)

  def __post_init__(self):
    validation.check_choice(self.criterion, 'pruning.criterion', validation.criterion_names())
    validation.check_choice(self.scope, 'pruning.scope', validation.SCOPES)
    object.__setattr__(self, 'rate', validation.check_fraction(self.rate, 'pruning.rate'))
    if self.layer_rates is None:
      # Resolved here, so that hashes compare the rates a run uses: the default config hashes as it always did.
      object.__setattr__(self, 'layer_rates', {OUTPUT_LAYER: self.rate / 2})
    if not isinstance(self.layer_rates, dict):
      raise TypeError('pruning.layer_rates must be a dict from layer name to a rate in [0, 1), '
                       f'got {self.layer_rates!r}')
    rates = {}
    for name, rate in sorted(self.layer_rates.items()):
      if not isinstance(name, str) or not name:
        raise ValueError(f'pruning.layer_rates keys must be layer names, got {name!r}')
      rates[name] = validation.check_fraction(rate, f'pruning.layer_rates[{name!r}]', allow_zero=True)
    object.__setattr__(self, 'layer_rates', rates)
    object.__setattr__(self, 'rewind_step', validation.check_int(self.rewind_step, 'pruning.rewind_step', 0))
    validation.check_choice(self.mask_0_action, 'pruning.mask_0_action', validation.MASK_0_ACTIONS)
    validation.check_choice(self.mask_1_action, 'pruning.mask_1_action', validation.MASK_1_ACTIONS)
    validation.check_bool(self.dynamic_weight_rescaling, 'pruning.dynamic_weight_rescaling')
    validation.check_choice(self.granularity, 'pruning.granularity', validation.GRANULARITIES)
    validation.check_choice(self.unit_pooling, 'pruning.unit_pooling', validation.UNIT_POOLINGS)
    if self.granularity == 'unit' and validation.is_model_criterion(self.criterion):
      raise ValueError(f"pruning.criterion={self.criterion!r} scores single weights from the model's gradients, which "
                       "granularity='unit' does not pool: use a criterion of the weights' values, or "
                       "granularity='weight'")
    validation.check_choice(self.retrain, 'pruning.retrain', RETRAIN_MODES)
    object.__setattr__(self, 'retrain_steps',
                       validation.check_int(self.retrain_steps, 'pruning.retrain_steps', 1, optional=True))
    self._check_retrain()
    object.__setattr__(self, 'levels', validation.check_int(self.levels, 'pruning.levels', 0))

  def _check_retrain(self):
    if self.retrain == 'weight_rewind':
      if self.retrain_steps is not None:
        raise ValueError(f'pruning.retrain_steps={self.retrain_steps} does not apply to retrain=\'weight_rewind\', '
                         'whose budget is the iterations after the rewind step: set pruning.rewind_step instead, or '
                         "retrain='lr_rewind' or 'finetune'")
      return
    defaults = {'mask_0_action': 'zero', 'mask_1_action': 'rewind', 'dynamic_weight_rescaling': False}
    for name, default in defaults.items():
      if getattr(self, name) != default:
        raise ValueError(f'pruning.{name}={getattr(self, name)!r} acts when survivors are rewound, which '
                         f'retrain={self.retrain!r} does not do: use {name}={default!r} or retrain=\'weight_rewind\'')
    if validation.is_model_criterion(self.criterion):
      raise ValueError(f'pruning.criterion={self.criterion!r} scores the rewind point, but retrain={self.retrain!r} '
                       "keeps the trained weights: use a criterion of the weights' values (such as 'large_final') "
                       "or retrain='weight_rewind'")

  def retrain_span(self, iterations):
    """(first, end) iterations that a level after 0 trains, for levels of `iterations` iterations.

    Raises:
      ValueError: if the budget does not fit the training length.
    """
    if self.retrain == 'weight_rewind':
      return self.rewind_step, iterations
    budget = self.retrain_steps if self.retrain_steps is not None else iterations - self.rewind_step
    if self.retrain == 'finetune':
      return iterations, iterations + budget
    if budget > iterations:
      raise ValueError(f'pruning.retrain_steps ({budget}) is longer than a level ({iterations} iterations): '
                       'learning-rate rewinding replays at most the whole schedule')
    return iterations - budget, iterations


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """Everything that defines a lottery experiment.

  Attributes:
    model: A registered model name (`ltp_tfmot.experiment.model_names()`), or
      a label of your own when you pass `model_fn` to the runner.
    data: A `DataConfig`.
    training: A `TrainingConfig`.
    pruning: A `PruningConfig`.
    seed: Seed of replicate 0 (initial weights, data order, random masks);
      replicate i uses seed + i.
    replicates: How many seeds to run (not hashed).
    controls: Branches trained from the main run's levels, by registered
      name (`branch_names()`): 'reinit' (same masks, fresh weights),
      'random_prune' (random masks with the same per-layer counts, same
      rewind point), or one of your own (`register_branch`). Not hashed.
    control_levels: The levels (1..levels) controls run at; None = every
      level from 1. Not hashed.
  """
  model: str = 'lenet_300_100'
  data: DataConfig = dataclasses.field(default_factory=DataConfig)
  training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
  pruning: PruningConfig = dataclasses.field(default_factory=PruningConfig)
  seed: int = 0
  replicates: int = _unhashed(default=1)
  controls: Tuple[str, ...] = _unhashed(default=())
  control_levels: Optional[Tuple[int, ...]] = _unhashed(default=None)

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

    The preset gives the dataset, the training recipe (optimizer, learning
    rate and schedule, weight decay, batch size, length, augmentation) and the
    pruning scope, rate, layer rates and rewind step; every setting you pass
    wins over it. A preset setting that only means something with a choice you
    overrode is left out: momentum and Nesterov when you choose Adam,
    milestones when you choose another lr_decay, the preset's length when you
    give `epochs` or `training_steps`. Preset layer rates equal to the
    default (the output layer at half the rate) are left to the default, so
    they follow a `rate` you give. LeNet-300-100's preset is the default config, so
    `RunConfig.for_model('lenet_300_100') == RunConfig()`.

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
    data, training, pruning = dict(data or {}), dict(training or {}), dict(pruning or {})
    preset_training = {name: getattr(preset, name) for name in _PRESET_TRAINING}
    if training.get('optimizer', preset.optimizer) != 'sgd':
      del preset_training['momentum'], preset_training['nesterov']
    if training.get('lr_decay', preset.lr_decay) != 'step':
      del preset_training['milestones']
    if 'epochs' not in training and 'training_steps' not in training:
      whole_epochs = re.match(r'^(\d+)ep$', preset.training_steps)
      # A length in whole epochs goes to `epochs`, so a preset equal to the defaults hashes as the defaults.
      if whole_epochs:
        preset_training['epochs'] = int(whole_epochs.group(1))
      else:
        preset_training['training_steps'] = preset.training_steps
    preset_pruning = {'scope': preset.scope, 'rate': preset.rate,
                      'rewind_step': validation.parse_duration(preset.rewind_step, name=f'{model} preset rewind_step')}
    if preset.layer_rates != {OUTPUT_LAYER: preset.rate / 2}:  # the default's rates are left to follow the rate
      preset_pruning['layer_rates'] = dict(preset.layer_rates)
    return cls(model=model, data=_build(DataConfig, dict({'name': preset.dataset}, **data), 'data.'),
               training=_build(TrainingConfig, dict(preset_training, **training), 'training.'),
               pruning=_build(PruningConfig, dict(preset_pruning, **pruning), 'pruning.'), **settings)

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
        values[key] = _build(sub, values[key], key + '.')
    for key in ('controls', 'control_levels'):
      if isinstance(values.get(key), list):
        values[key] = tuple(values[key])
    return _build(cls, values, '')

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


def _build(cls, values, prefix):
  if not isinstance(values, dict):
    raise ValueError(f'{prefix.rstrip(".") or cls.__name__} must be a dict of settings, got {values!r}')
  names = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(values) - names)
  if unknown:
    raise ValueError(f'unknown settings {[prefix + k for k in unknown]}; known: {sorted(prefix + n for n in names)}')
  return cls(**values)


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
