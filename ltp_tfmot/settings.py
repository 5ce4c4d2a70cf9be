"""The data, training and pruning settings of a run: typed, checked, each documented where it is declared.

`DataConfig`, `TrainingConfig` and `PruningConfig` are the groups of
`ltp_tfmot.experiment.RunConfig`, which adds the model, the seed and how much
to run, and hashes them all. They are pure Python on `validation`, below the
zoo, so that each network's preset (`ltp_tfmot.zoo.preset`), the settings of
these groups that its paper changes, is checked against them when its family
module declares it. Every value is checked when a group is built, with a
`ValueError` (or `TypeError`) naming the field, the value and what is allowed.

Every field is declared with `setting`, which keeps its documentation in the
field's metadata (`metadata['help']`): the command line (`ltp_tfmot.cli.run`)
makes one flag per field from the fields and their metadata, so a new setting
is documented, and gets its flag, in one place. Fields that say how much to
run, not what, are left out of the run's hash (`metadata['hashed']` False).
"""

import dataclasses
from typing import Dict
from typing import Optional
from typing import Tuple
from typing import Union

from ltp_tfmot import validation

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
OUTPUT_LAYER = 'output'  # the layer the default layer_rates prune at half the rate


def setting(default=dataclasses.MISSING, *, help_text, default_factory=dataclasses.MISSING, hashed=True, flag=None,
            alias=None, choices=None, flag_help=None):
  """A dataclass field of a run setting, with its documentation and what its command-line flag needs as metadata.

  Args:
    default: The default value.
    help_text: What the setting is and the values it takes (`metadata['help']`): its documentation, and its flag's
      help.
    default_factory: Makes the default instead of `default` (for a mutable one).
    hashed: Whether the setting is part of the run's hash; False for one that says how much to run, not what
      (`metadata['hashed']`).
    flag: Its flag's name when that is not the field's (`metadata['flag']`).
    alias: An older flag name that still sets it (`metadata['alias']`).
    choices: The only values its flag takes (`metadata['choices']`); without them, the config checks the value.
    flag_help: What its flag's help adds, about the command line (`metadata['flag_help']`).

  Returns:
    The `dataclasses.Field`.
  """
  metadata = {'help': help_text}
  if not hashed:
    metadata['hashed'] = False
  extras = {'flag': flag, 'alias': alias, 'choices': choices, 'flag_help': flag_help}
  metadata.update((key, value) for key, value in extras.items() if value is not None)
  return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def build(cls, values, prefix):
  """A settings dataclass from a dict of its fields, refusing names it does not have.

  Args:
    cls: The dataclass (`TrainingConfig`, ...).
    values: Dict from field name to value.
    prefix: How the messages name the group's fields ('training.'; '' for the top level).

  Returns:
    `cls(**values)`.

  Raises:
    ValueError: for `values` that are no dict, a name that is no field (one line naming the known ones), or a bad
      value.
  """
  if not isinstance(values, dict):
    raise ValueError(f'{prefix.rstrip(".") or cls.__name__} must be a dict of settings, got {values!r}')
  names = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(values) - names)
  if unknown:
    raise ValueError(f'unknown settings {[prefix + k for k in unknown]}; known: {sorted(prefix + n for n in names)}')
  return cls(**values)


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Which data a run trains on, and how it is split (each field's `metadata['help']` documents it)."""
  name: str = setting(
      'mnist', help_text="'mnist', 'cifar10', or a label of your own when you pass arrays to the runner (the label is "
      "part of the run's hash; the arrays are fingerprinted too).", flag='dataset',
      flag_help=" Built in: mnist, cifar10 (from --data_dir, else Keras' cache), tfds.<name> (TensorFlow Datasets, "
      'prepared in --data_dir).')
  source: str = setting(
      'auto', help_text="MNIST only: 'auto' (Keras' MNIST when it can be loaded, else the embedded 5,000 digits), "
      "'keras' or 'embedded'.", flag='dataset_source', choices=MNIST_SOURCES)
  validation_split: float = setting(
      0.1, help_text='Share of the training examples held out for validation (early stopping, best validation '
      'accuracy), in (0, 1).')
  train_size: Optional[int] = setting(
      None, help_text='Use only this many training examples (before the validation split), or None for all.')
  test_size: Optional[int] = setting(None, help_text='Use only this many test examples, or None for all.')
  data_dir: Optional[str] = setting(
      None, hashed=False, help_text="Where the data lie: for CIFAR-10 a folder or tarball holding cifar-10-batches-py "
      "(else Keras' cache), for 'tfds.<name>' the prepared TensorFlow Datasets folder. Not hashed: the data's "
      'fingerprint is checked instead, so the same data moved elsewhere continue the run.')

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
  continues the schedule from k). Each field's `metadata['help']` documents it.
  """
  optimizer: str = setting('adam', help_text="'adam' or 'sgd'.", choices=OPTIMIZERS)
  learning_rate: float = setting(1.2e-3, help_text='The peak learning rate, > 0.')
  momentum: float = setting(0.0, help_text='SGD momentum in [0, 1); must stay 0 with Adam.')
  nesterov: bool = setting(False, help_text='Nesterov momentum (SGD with momentum only).')
  weight_decay: float = setting(0.0, help_text="Coupled L2 coefficient (PyTorch's weight_decay), >= 0.")
  batch_size: int = setting(60, help_text='Examples per step, >= 1.')
  epochs: int = setting(
      DEFAULT_EPOCHS, help_text="Passes over the training examples per level, >= 1 (50 epochs of 55,000 images at "
      "batch 60 is about the paper's 50,000 iterations); used when training_steps is not given.")
  training_steps: Optional[Union[str, int]] = setting(
      None, help_text="Length of a level in epochs and/or iterations ('160ep', '30000it', '2ep100it', or an int of "
      'iterations); None trains `epochs` epochs. Give this or epochs, not both.')
  warmup_steps: Union[str, int] = setting(
      0, help_text='Linear learning-rate warm-up from 0 (a length as training_steps; 0 for none).')
  lr_decay: str = setting(
      'constant', help_text="'constant', 'step' (times gamma at each milestone) or 'cosine' (to 0 at the end of the "
      'level).', choices=LR_DECAYS)
  milestones: Tuple[str, ...] = setting(
      (), help_text="The learning-rate drops of lr_decay='step', as lengths ('80ep', '120ep'); only with 'step'.")
  gamma: float = setting(0.1, help_text='Factor of each drop at a milestone, in (0, 1].')
  augment: bool = setting(
      False, help_text='CIFAR augmentation in the input pipeline (4-pixel pad, random crop, horizontal flip), images '
      'only.')
  data_seed: Optional[int] = setting(
      None, help_text="Seed of the data order and the augmentation, separate from the weights' seed (replicate i "
      "uses data_seed + i); None derives it from the replicate's seed.")
  eval_every: int = setting(
      100, help_text='Evaluate on the validation set every this many iterations (and at the first and last), for the '
      'early-stopping iteration.')
  jit_compile: Optional[bool] = setting(
      None, hashed=False, help_text='Compile each training step with XLA (`compile(jit_compile=)`) or not; None (the '
      'default) lets the runner choose the faster path for the model and device '
      '(`training_path.choose_jit_compile`: XLA on a GPU, and on a CPU for models without convolutions). The two '
      'paths round differently, and training amplifies that: masks at the cut-off and accuracies differ between them '
      "as between two runs of one path from initial weights one ulp apart. Not part of the run's name; every level "
      'records the path it trained on, and a resumed run refuses another one unless told to accept it. Off where XLA '
      "cannot compile the step (a strategy's collective ops on CPUs).")
  steps_per_execution: int = setting(
      DEFAULT_STEPS_PER_EXECUTION, hashed=False, help_text="Training steps per compiled execution (Keras' "
      "`steps_per_execution`), >= 1; 1 is Keras' step-by-step loop. Executions are cut to end at every evaluation "
      'and at the rewind point, so every recorded metric is the same, and the floats are those of 1 step per '
      "execution on the same path. Not part of the run's name.")
  precision: str = setting(
      'float32', help_text="The Keras dtype policy the models are built with: 'float32', or 'mixed_float16' / "
      "'mixed_bfloat16' (16-bit compute, float32 variables: for GPUs and TPUs; on CPUs it is slower). Masks, "
      "snapshots and rewinding stay float32 and exact; the logits are cast to float32 before the loss; "
      "'mixed_float16' trains with Keras' dynamic loss scaling, which starts afresh at every level.",
      choices=PRECISIONS)

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

  Each field's `metadata['help']` documents it.
  """
  criterion: str = setting(
      'large_final', help_text="A registered criterion name (`ltp_tfmot.criterion_names()`); 'snip', 'grasp' and "
      "'synflow' score each level's masks at the rewind point.")
  scope: str = setting('layer', help_text="'layer' or 'global'.")
  rate: float = setting(0.2, help_text='Fraction of the alive weights pruned per level, in (0, 1).')
  layer_rates: Optional[Dict[str, float]] = setting(
      None, help_text="Layer name (or shell-style pattern such as 'conv*', see "
      "`ltp_tfmot.zoo.preset.expand_layer_rates`) -> its own rate in [0, 1). The default (None) prunes the layer "
      "named 'output' at half of `rate`, as in the paper (0.1 with the default rate 0.2), set when the config is "
      'built; use `{}` for a model without such a layer.',
      flag_help=' On the command line: name:rate pairs, comma-separated; empty (--layer_rates=) for none.')
  rewind_step: int = setting(
      0, help_text='0 rewinds to the initial weights; k > 0 to the weights after k training iterations of level 0 '
      '(late rewinding).')
  mask_0_action: str = setting('zero', help_text="'zero' or 'freeze'.")
  mask_1_action: str = setting('rewind', help_text="'rewind', 'reinit', 'reshuffle' or 'signed_constant'.")
  dynamic_weight_rescaling: bool = setting(False, help_text='Rescale survivors by n / n_kept after a rewind.')
  granularity: str = setting(
      'weight', help_text="'weight' (weights are pruned one by one) or 'unit' (whole neurons, filters and channels, "
      'with the units tied by the graph pruned together: a structured ticket that `ltp_tfmot.shrink` turns into a '
      'smaller dense model; see `ltp_tfmot.prune_lottery_ticket`).', choices=GRANULARITIES)
  unit_pooling: str = setting(
      'L1', help_text="How unit granularity pools a unit's weight scores: 'L1', 'L2' or 'mean'.", choices=UNIT_POOLINGS)
  retrain: str = setting(
      'weight_rewind', help_text="How each level after 0 retrains once pruned (Renda, Frankle, Carbin 2020): "
      "'weight_rewind' rewinds the survivors to the rewind point and replays the schedule from `rewind_step` (the "
      "lottery ticket); 'lr_rewind' keeps the trained weights and replays the learning-rate schedule from iteration "
      "T - budget to the end T; 'finetune' keeps the trained weights and trains on for the budget at the final rate "
      "(at iterations T .. T + budget - 1). 'lr_rewind' and 'finetune' need the defaults of mask_0_action, "
      "mask_1_action and dynamic_weight_rescaling (they act at a rewind) and a criterion of the weights' values.",
      choices=RETRAIN_MODES)
  retrain_steps: Optional[int] = setting(
      None, help_text="The retraining budget of each level after 0, in iterations; None: T - rewind_step, the budget "
      "of weight rewinding, which a 'weight_rewind' run always has (set rewind_step to change it).")
  levels: int = setting(
      5, hashed=False, help_text='Pruning levels after the dense level 0 (not hashed: raising it later continues the '
      'run).')

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

