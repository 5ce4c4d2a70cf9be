"""A wrapped model's state as a level's files hold it, and the model of a finished level loaded back.

A level's masks.npz holds its masks, the rewind snapshot of the wrapped
layers and the rewind values of the variables outside the wrappers
(BatchNormalization's, layers left unwrapped); a main level's weights.npz
holds every variable of the trained model, which the next level (or
`load_trained_model`) starts from. The runner writes them (`level`), the
branches read them (`branch_context`), and both go through the functions here.
"""

import numpy as np

from ltp_tfmot import files
from ltp_tfmot.experiment import branches
from ltp_tfmot.experiment import config as config_lib
from ltp_tfmot.experiment import factory as factory_lib
from ltp_tfmot.experiment import storage
from ltp_tfmot.keras2 import wrapped_model
from ltp_tfmot.keras2 import wrapper as wrapper_lib

MAIN = branches.MAIN


def mask_variables(model):
  """The mask variables of a wrapped model, in wrapper order (as masks.npz stores them)."""
  return [mask for w in wrapped_model.lottery_wrappers(model) for mask in w.masks]


def other_variables(model):
  """The model's variables outside the lottery wrappers (e.g. BatchNormalization's), in order."""
  inside = {v.ref() for w in wrapped_model.lottery_wrappers(model) for v in w.weights}
  return [v for v in model.weights if v.ref() not in inside]


def assign(variables, values, what):
  """Assigns stored `values` to `variables`, in order.

  Args:
    variables: The model's variables.
    values: The stored arrays.
    what: What they are, for the error ('masks', 'other layers', ...).

  Raises:
    ValueError: if the counts or shapes differ (the model builder changed).
  """
  if len(variables) != len(values) or any(
      tuple(v.shape) != tuple(a.shape) for v, a in zip(variables, values, strict=True)):
    raise ValueError(f'the saved {what} do not fit the model ({len(values)} saved, {len(variables)} in the model, '
                     'or shapes differ): was the model builder changed?')
  for variable, value in zip(variables, values, strict=True):
    variable.assign(value)


def mask_arrays(model, other_values):
  """The arrays of a level's masks.npz: masks, the rewind snapshot, the other variables' rewind values, counters.

  Args:
    model: The wrapped model the level trained.
    other_values: The rewind values of `other_variables(model)`.

  Returns:
    A dict of arrays (`storage.masks_from_arrays` reads it back).
  """
  wrappers = wrapped_model.lottery_wrappers(model)
  arrays = {}
  arrays.update(storage.pack('mask', [m.numpy() for m in mask_variables(model)],
                             [f'{w.layer.name}/{path}' for w in wrappers for path in w.prunable_weight_paths]))
  arrays['mask_layer'] = np.array([i for i, w in enumerate(wrappers) for _ in w.masks], np.int64)
  snapshot_names = [f'{w.layer.name}/{path}' for w in wrappers for path in wrapper_lib.weight_paths(w.layer)]
  arrays.update(storage.pack('snapshot', [s.numpy() for w in wrappers for s in w.snapshots], snapshot_names))
  arrays.update(storage.pack('other', list(other_values), [v.name for v in other_variables(model)]))
  arrays['snapshot_step'] = np.int64(wrappers[0].snapshot_step.numpy())
  arrays['rounds_done'] = np.int64(wrappers[0].rounds_done.numpy())
  return arrays


def weight_arrays(model):
  """The arrays of a main level's weights.npz: every variable of the model (weights, masks, snapshots, counters)."""
  return storage.pack('weight', [v.numpy() for v in model.weights], [v.name for v in model.weights])


def load_state(model, path):
  """Restores every variable of a wrapped model (weights, masks, snapshots, counters) from weights.npz.

  Raises:
    ValueError: if the stored variables do not fit the model.
  """
  assign(model.weights, storage.unpack(storage.load_arrays(path), 'weight'), f'weights in {path}')


def load_trained_model(run_dir, level=None, replicate=0, model_fn=None, data=None):
  """The ticket of one level of a run: its wrapped model after that level's training.

  Args:
    run_dir: A run directory written by `LotteryExperiment`.
    level: The level (default: the last finished one of the replicate).
    replicate: The replicate.
    model_fn: The run's model builder, if it was not a registered model.
    data: The run's arrays, if it did not use a named dataset.

  Returns:
    (model, split): the wrapped, compiled model with the level's weights, masks
    and snapshot, and the run's data split (`split.x_test`, ...).

  Raises:
    ValueError: if `run_dir` holds no run, or the level is not finished.
    storage.CorruptFileError: (a ValueError) if the level's files are
      truncated or do not match its manifest.

  Example:

  ```python
  model, split = ltp_tfmot.experiment.load_trained_model('runs/lottery_44136fa355b3', level=5)
  ltp_tfmot.export_tflite(model, 'level5.tflite', sample_inputs=split.x_test[:8])
  ```
  """
  paths = storage.RunDirectory(run_dir)
  if not files.exists(paths.config_path):
    raise ValueError(f'{run_dir!r} is not a run directory (it has no {storage.CONFIG})')
  config = config_lib.RunConfig.from_dict(storage.read_json(paths.config_path)['config'])
  finished = [lv for lv in range(config.pruning.levels + 1) if paths.is_done(replicate, lv, MAIN)]
  if level is None:
    if not finished:
      raise ValueError(f'replicate {replicate} of {run_dir!r} has no finished level yet')
    level = finished[-1]
  if level not in finished:
    raise ValueError(f'level {level} of replicate {replicate} is not finished in {run_dir!r}; finished: {finished}')
  factory = factory_lib.RunFactory(config, model_fn=model_fn, data=data)
  factory.load_data()
  paths.check_level(replicate, level, MAIN)
  seed = config.seed + replicate
  model = factory.wrap(factory.build_model(seed), seed)
  factory.compile(model)
  load_state(model, paths.file(replicate, level, MAIN, storage.WEIGHTS))
  return model, factory.split
