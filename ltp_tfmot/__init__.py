"""ltp_tfmot: lottery-ticket pruning for Keras, built on the TensorFlow Model Optimization Toolkit.

The whole public API is re-exported here. Names are imported on first use
(PEP 562), so that `import ltp_tfmot.cli` and the command line's `--help` do not
pay for importing TensorFlow; `from ltp_tfmot import X` and `ltp_tfmot.X` work
as with eager imports.
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = '0.1.0'

# Public name -> module that defines it (or the subpackage whose own table names it: 'export').
_EXPORTS = {
    'ExactStepCallback': 'keras2.callbacks',
    'LotterySummaries': 'keras2.callbacks',
    'UpdateLotteryStep': 'keras2.callbacks',
    'LotteryTicketPruner': 'keras2.compat',
    'PrunerCallback': 'keras2.compat',
    'Criterion': 'core.criteria',
    'criterion_names': 'core.criteria',
    'get_criterion': 'core.criteria',
    'inverted_criterion': 'core.criteria',
    'ModelCriterion': 'core.criteria',
    'register_criterion': 'core.criteria',
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
    'EarlyBirdTicket': 'methods.early_bird',
    'mask_distance': 'methods.early_bird',
    'export_tflite': 'export',
    'ExportReport': 'export',
    'load_tflite': 'export',
    'prune_at_initialization': 'methods.init_pruning',
    'keep_top_k': 'core.masks',
    'custom_objects': 'keras2.prune',
    'prunable_layer_names': 'keras2.prune',
    'prune_lottery_ticket': 'keras2.prune',
    'prune_scope': 'keras2.prune',
    'strip_pruning': 'keras2.prune',
    'unprunable_layers': 'keras2.prune',
    'reset_optimizer': 'keras2.rewind',
    'rewind_weights': 'keras2.rewind',
    'take_snapshot': 'keras2.rewind',
    'unwrapped_layer_weights': 'keras2.rewind',
    'apply_masks': 'keras2.rounds',
    'compute_next_masks': 'keras2.rounds',
    'layer_sparsity': 'keras2.rounds',
    'run_lottery_round': 'keras2.rounds',
    'weights_remaining': 'keras2.rounds',
    'LotteryTicketSchedule': 'core.schedule',
    'kept_units': 'methods.structured',
    'shrink': 'methods.structured',
    'OneShotLotterySchedule': 'core.schedule',
    'Supermask': 'methods.supermask',
    'train_supermask': 'methods.supermask',
    'load_ticket': 'keras2.tickets',
    'read_ticket': 'keras2.tickets',
    'save_ticket': 'keras2.tickets',
    'Ticket': 'keras2.tickets',
    'unit_plan': 'keras2.unit_groups',
    'lottery_wrappers': 'keras2.wrapped_model',
    'steps_done': 'keras2.wrapped_model',
    'PruneLotteryTicket': 'keras2.wrapper',
    'quantize_ticket': 'export',
}
# Modules and subpackages documented as attributes: `ltp_tfmot.datasets.load_mnist()`.
_SUBMODULES = ('datasets', 'experiment', 'models')

__all__ = sorted(_EXPORTS) + list(_SUBMODULES)

# The subpackages, by concept (see each one's docstring).
_PACKAGES = ('core', 'export', 'keras2', 'methods', 'zoo')

# Modules that sat at the top of the package before it had subpackages -> where they live now. The old paths
# (`import ltp_tfmot.rounds`, `from ltp_tfmot import masks`, `ltp_tfmot.prune.strip_pruning`) name the same
# module objects as the new ones.
_MOVED_MODULES = {
    'masks': 'core.masks',
    'callbacks': 'keras2.callbacks',
    'compat': 'keras2.compat',
    'criteria': 'core.criteria',
    'model_layers': 'keras2.model_layers',
    'prune': 'keras2.prune',
    'rounds': 'keras2.rounds',
    'schedule': 'core.schedule',
    'tickets': 'keras2.tickets',
    'unit_groups': 'keras2.unit_groups',
    'wrapper': 'keras2.wrapper',
    'early_bird': 'methods.early_bird',
    'init_pruning': 'methods.init_pruning',
    'structured': 'methods.structured',
    'supermask': 'methods.supermask',
    'kernels': 'export.kernels',
    'latency': 'export.latency',
    'quantize': 'export.quantize',
    'models': 'zoo',
}


class _MovedModuleLoader(importlib.abc.Loader):
  """Serves an old module path with the module that now lives elsewhere (one module object, two names)."""

  def __init__(self, new_name):
    self._new_name = new_name
    self._spec = None

  def create_module(self, spec):
    module = importlib.import_module(self._new_name)
    self._spec = module.__spec__
    return module

  def exec_module(self, module):
    # The import system stamped the old name's spec on the module; it keeps its own.
    module.__spec__ = self._spec


class _MovedModuleFinder(importlib.abc.MetaPathFinder):

  def find_spec(self, fullname, path=None, target=None):
    del path, target  # unused
    package, _, name = fullname.rpartition('.')
    if package != __name__ or name not in _MOVED_MODULES:
      return None
    return importlib.util.spec_from_loader(fullname, _MovedModuleLoader(f'{__name__}.{_MOVED_MODULES[name]}'))


if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
  sys.meta_path.append(_MovedModuleFinder())


def __getattr__(name):
  if name in _EXPORTS:
    value = getattr(importlib.import_module(f'{__name__}.{_EXPORTS[name]}'), name)
  elif name in _SUBMODULES or name in _PACKAGES or name in _MOVED_MODULES:
    value = importlib.import_module(f'{__name__}.{name}')
  else:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  globals()[name] = value
  return value


def __dir__():
  return sorted(set(globals()) | set(__all__))
