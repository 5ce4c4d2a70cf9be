"""Lottery-ticket experiments: a resumable IMP runner with registered branches, replicates, reports and plots.

The runner only uses the public functions of `ltp_tfmot` (wrapping, snapshots,
rounds), so what it does a user can do by hand. See `LotteryExperiment` and
the `ltp-tfmot` command line (`ltp_tfmot.cli`).

Its parts each do one thing: `config` (the typed settings, grouped in `ltp_tfmot.settings`, and their hash),
`recipes` (the papers' optimizers and schedules; their set-ups are the
presets of `ltp_tfmot.zoo`),
`factory` (a run's data and models: built, wrapped, compiled), `branches`
(the registry of what trains beside the main run) and `branch_context` (what a
branch builds its model from), `runner` (the resumable level loop), `resume`
(what a run directory tells a run started again), `level` (training one
level), `level_state` (a model's state in a level's files), `platform`
(tf.distribute strategies), `parallel` and `worker` (independent jobs at a
time, on Ray), `storage` (the run directory, manifests) and `run_lock` (one
run at a time in it), `instability` and `instability_report`, `report` and
`plots`.

Names are imported on first use, as in `ltp_tfmot` itself.
"""

import importlib

# Public name -> module that defines it: a module of this package, or a full path (the zoo's registry and presets,
# the run's settings).
_EXPORTS = {
    'Branch': 'branches',
    'branch_names': 'branches',
    'get_branch': 'branches',
    'register_branch': 'branches',
    'unregister_branch': 'branches',
    'BranchContext': 'branch_context',
    'DataConfig': 'config',
    'RunFactory': 'factory',
    'PruningConfig': 'config',
    'RETRAIN_MODES': 'ltp_tfmot.settings',
    'RunConfig': 'config',
    'TrainingConfig': 'config',
    'load_cifar10': 'data',
    'load_data': 'data',
    'model_names': 'ltp_tfmot.zoo.registry',
    'MODELS': 'ltp_tfmot.zoo.registry',
    'plot_accuracy': 'plots',
    'comparison_table': 'report',
    'load_run': 'report',
    'markdown_report': 'report',
    'markdown_table': 'report',
    'short_labels': 'report',
    'summarize': 'report',
    'write_report': 'report',
    'RunHooks': 'hooks',
    'flat_metrics': 'level',
    'load_trained_model': 'level_state',
    'LotteryExperiment': 'runner',
    'run_experiment': 'runner',
    'WorkerLostError': 'platform',
    'TrainingPathChangedError': 'training_path',
    'JobsFailedError': 'parallel',
    'WorkerPool': 'parallel',
    'CorruptFileError': 'storage',
    'find_runs': 'storage',
    'load_level_metrics': 'storage',
    'load_masks': 'storage',
    'StorageError': 'storage',
    'load_tfds': 'data',
    'read_cifar10': 'data',
    'augment_images': 'pipeline',
    'train_dataset': 'pipeline',
    'expand_layer_rates': 'ltp_tfmot.zoo.preset',
    'get_preset': 'ltp_tfmot.zoo.registry',
    'Preset': 'ltp_tfmot.zoo.preset',
    'preset_names': 'ltp_tfmot.zoo.registry',
    'build_training': 'recipes',
    'L2Adam': 'recipes',
    'L2SGD': 'recipes',
    'parse_duration': 'recipes',
    'WarmupDecaySchedule': 'recipes',
    'earliest_stable_rewind_step': 'instability_report',
    'instability_analysis': 'instability',
    'instability_dir': 'instability',
    'interpolate_weights': 'instability',
    'load_copies': 'instability',
    'path_variables': 'instability',
    'instability_table': 'instability_report',
    'load_instability': 'instability',
    'NoStableRewindStepError': 'instability',
    'plot_instability': 'instability_report',
    'write_instability_report': 'instability_report',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
  if name not in _EXPORTS:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  module = _EXPORTS[name]
  value = getattr(importlib.import_module(module if '.' in module else f'{__name__}.{module}'), name)
  globals()[name] = value
  return value


def __dir__():
  return sorted(set(globals()) | set(__all__))
