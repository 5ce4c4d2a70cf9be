"""What a branch's `start` is given: one replicate and level of a run, and the means to build its model.

A `Branch` (`branches`) builds the model it trains from the main run's
outputs of a level; `BranchContext` is its one handle on the run: the run's
model builder and pruning settings, the main run's stored masks, rewind
points and trained weights, and the level's pruning redone with other
settings. It lives apart from the branch registry, which stays pure Python
(the command line checks branch names without TensorFlow), and it reads the
run through the `LevelTrainer` (`level`) that trains the branch.
"""

from ltp_tfmot.core import criteria as criteria_lib
from ltp_tfmot.experiment import branches
from ltp_tfmot.experiment import level_state
from ltp_tfmot.experiment import storage
from ltp_tfmot.keras2 import rewind as rewind_lib
from ltp_tfmot.keras2 import rounds as rounds_lib
from ltp_tfmot.keras2 import wrapped_model

MAIN = branches.MAIN


class BranchContext:
  """What a `Branch` starts from: one replicate and level of a run, and the means to build its model.

  Args:
    trainer: The `level.LevelTrainer` of the run (its factory, settings and
      files).
    replicate: The replicate.
    replicate_seed: The replicate's seed, which its main run's model was
      initialised from.
    level: The level the branch trains at.
    seed: The branch's own seed.

  Attributes:
    level: The level the branch trains at.
    replicate: The replicate.
    seed: The branch's own seed (derived from the replicate, branch and
      level): the wrapper's seed for masks and initial values it draws.
    rewind_step: The run's rewind step, where the branch's training starts.
    run_criterion: The name of the criterion the main run prunes with.
  """

  def __init__(self, trainer, replicate, replicate_seed, level, seed):
    self._trainer = trainer
    self._replicate_seed = replicate_seed
    self.replicate = replicate
    self.level = level
    self.seed = seed
    self.rewind_step = trainer.config.pruning.rewind_step
    self.run_criterion = trainer.config.pruning.criterion

  def build_model(self):
    """A fresh, unwrapped model of the run, initialised as the replicate's main run was."""
    return self._trainer.factory.build_model(self._replicate_seed)

  def wrap(self, model, **overrides):
    """`model` wrapped with the run's pruning settings and the branch's seed; `overrides` replace settings.

    Args:
      model: An unwrapped model (`build_model()`).
      **overrides: `prune_lottery_ticket` arguments to change (criterion,
        scope, layer_rates, mask_1_action, ...).

    Returns:
      The wrapped model.
    """
    return self._trainer.factory.wrap(model, self.seed, **overrides)

  def main_outputs(self, level=None):
    """The main run's stored masks.npz of a level (default: this one), as `storage.load_masks` gives it.

    Returns:
      A dict with 'masks', 'mask_names', 'mask_layer' (the wrapper index of
      each mask), 'snapshots', 'snapshot_names', 'other' (the rewind values
      of the variables outside the wrappers), 'snapshot_step' and
      'rounds_done'.
    """
    level = self.level if level is None else level
    path = self._trainer.read_file(self.replicate, level, MAIN, storage.MASKS)
    return storage.masks_from_arrays(storage.load_arrays(path))

  @staticmethod
  def mask_variables(model):
    """The mask variables of a wrapped model, in wrapper order (as `main_outputs()['masks']`)."""
    return level_state.mask_variables(model)

  @staticmethod
  def set_masks(model, masks):
    """Assigns stored masks (e.g. `main_outputs()['masks']`) to a wrapped model's mask variables."""
    level_state.assign(level_state.mask_variables(model), masks, 'masks')

  def load_rewind_point(self, model, level=None):
    """Sets a wrapped model's rewind snapshot, its step and the other variables to the main run's of a level."""
    outputs = self.main_outputs(level)
    wrappers = wrapped_model.lottery_wrappers(model)
    level_state.assign([s for w in wrappers for s in w.snapshots], outputs['snapshots'], 'snapshots')
    for w in wrappers:
      w.snapshot_step.assign(outputs['snapshot_step'])
    level_state.assign(level_state.other_variables(model), outputs['other'], 'other layers')

  def repruned(self, **overrides):
    """This level's pruning done again with other settings: the model the main run would train, pruned otherwise.

    The model is wrapped with `overrides` (e.g. another `criterion`), set to
    the main run's state after training the previous level, pruned as the
    main run prunes (a `ModelCriterion` scores the rewind point on the
    level's first batch) and rewound to the main run's rewind point.

    Returns:
      The wrapped model, pruned and rewound.

    Raises:
      ValueError: at level 0, which is not pruned.
    """
    if self.level < 1:
      raise ValueError('level 0 is the dense network: repruned() needs a level >= 1')
    trainer = self._trainer
    model = self.wrap(self.build_model(), **overrides)
    level_state.load_state(model, trainer.read_file(self.replicate, self.level - 1, MAIN, storage.WEIGHTS))
    data = None
    if criteria_lib.get_criterion(wrapped_model.lottery_wrappers(model)[0].criterion).needs_model:
      level_state.assign(level_state.other_variables(model), self.main_outputs(self.level - 1)['other'],
                         'other layers')
      data = trainer.scoring_batch(self._replicate_seed)
    rounds_lib.run_lottery_round(model, data=data)
    self.load_rewind_point(model, self.level - 1)
    return model

  def main_ticket(self, level=None):
    """The main run's ticket of a level (default: this one) where its training starts: masks, rewound weights."""
    outputs = self.main_outputs(level)
    model = self.wrap(self.build_model())
    self.load_rewind_point(model, level)
    self.set_masks(model, outputs['masks'])
    rewind_lib.rewind_weights(model)
    return model
