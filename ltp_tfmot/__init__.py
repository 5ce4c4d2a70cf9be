"""ltp_tfmot: lottery-ticket pruning for Keras 2 (on the TensorFlow Model Optimization Toolkit) and Keras 3.

The whole public API is re-exported here; the names that take a model go to
its front end (`front_ends`: `keras2` for tf_keras models, `keras3` for
Keras 3 ones). Names are imported on first use
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
    'UpdateLotteryStep': 'front_ends',
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
    'prunable_layer_names': 'front_ends',
    'prune_lottery_ticket': 'front_ends',
    'prune_scope': 'keras2.prune',
    'strip_pruning': 'front_ends',
    'unprunable_layers': 'front_ends',
    'reset_optimizer': 'front_ends',
    'rewind_weights': 'front_ends',
    'take_snapshot': 'front_ends',
    'unwrapped_layer_weights': 'front_ends',
    'apply_masks': 'front_ends',
    'compute_next_masks': 'front_ends',
    'layer_sparsity': 'front_ends',
    'run_lottery_round': 'front_ends',
    'weights_remaining': 'front_ends',
    'LotteryTicketSchedule': 'core.schedule',
    'kept_units': 'front_ends',
    'shrink': 'front_ends',
    'OneShotLotterySchedule': 'core.schedule',
    'Supermask': 'methods.supermask',
    'train_supermask': 'methods.supermask',
    'load_ticket': 'front_ends',
    'read_ticket': 'core.tickets',
    'save_ticket': 'front_ends',
    'Ticket': 'core.tickets',
    'unit_plan': 'front_ends',
    'lottery_wrappers': 'front_ends',
    'steps_done': 'front_ends',
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
