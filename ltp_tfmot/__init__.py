"""ltp_tfmot: lottery-ticket pruning for Keras, built on the TensorFlow Model Optimization Toolkit.

The whole public API is re-exported here. Names are imported on first use
(PEP 562), so that `import ltp_tfmot.cli` and the command line's `--help` do not
pay for importing TensorFlow; `from ltp_tfmot import X` and `ltp_tfmot.X` work
as with eager imports.
"""

import importlib
import importlib.util

__version__ = '0.1.0'

# Public name -> module that defines it.
_EXPORTS = {
    'ExactStepCallback': 'callbacks',
    'LotterySummaries': 'callbacks',
    'UpdateLotteryStep': 'callbacks',
    'LotteryTicketPruner': 'compat',
    'PrunerCallback': 'compat',
    'Criterion': 'criteria',
    'criterion_names': 'criteria',
    'get_criterion': 'criteria',
    'inverted_criterion': 'criteria',
    'ModelCriterion': 'criteria',
    'register_criterion': 'criteria',
    'CorruptFileError': 'errors',
    'ExportError': 'errors',
    'JobsFailedError': 'errors',
    'LtpError': 'errors',
    'MissingDependencyError': 'errors',
    'RunLockedError': 'errors',
    'StorageError': 'errors',
    'TicketFileError': 'errors',
    'TrainingDivergedError': 'errors',
    'TrainingPathChangedError': 'errors',
    'TrainingSetupError': 'errors',
    'WorkerLostError': 'errors',
    'EarlyBirdTicket': 'early_bird',
    'mask_distance': 'early_bird',
    'export_tflite': 'export',
    'ExportReport': 'export',
    'load_tflite': 'export',
    'prune_at_initialization': 'init_pruning',
    'keep_top_k': 'masks',
    'custom_objects': 'prune',
    'prunable_layer_names': 'prune',
    'prune_lottery_ticket': 'prune',
    'prune_scope': 'prune',
    'strip_pruning': 'prune',
    'unprunable_layers': 'prune',
    'apply_masks': 'rounds',
    'compute_next_masks': 'rounds',
    'layer_sparsity': 'rounds',
    'lottery_wrappers': 'rounds',
    'reset_optimizer': 'rounds',
    'rewind_weights': 'rounds',
    'run_lottery_round': 'rounds',
    'steps_done': 'rounds',
    'take_snapshot': 'rounds',
    'unwrapped_layer_weights': 'rounds',
    'weights_remaining': 'rounds',
    'LotteryTicketSchedule': 'schedule',
    'kept_units': 'structured',
    'shrink': 'structured',
    'OneShotLotterySchedule': 'schedule',
    'Supermask': 'supermask',
    'train_supermask': 'supermask',
    'load_ticket': 'tickets',
    'read_ticket': 'tickets',
    'save_ticket': 'tickets',
    'Ticket': 'tickets',
    'unit_plan': 'unit_groups',
    'PruneLotteryTicket': 'wrapper',
    'quantize_ticket': 'quantize',
}
# Subpackages and modules documented as attributes: `ltp_tfmot.datasets.load_mnist()`.
_SUBMODULES = ('datasets', 'experiment', 'models')

__all__ = sorted(_EXPORTS) + list(_SUBMODULES)


def __getattr__(name):
  if name in _EXPORTS:
    value = getattr(importlib.import_module(f'{__name__}.{_EXPORTS[name]}'), name)
  elif importlib.util.find_spec(f'{__name__}.{name}') is not None:
    # Any module of the package, as an eager import of all of them used to make reachable.
    value = importlib.import_module(f'{__name__}.{name}')
  else:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  globals()[name] = value
  return value


def __dir__():
  return sorted(set(globals()) | set(__all__))
