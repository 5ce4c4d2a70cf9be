"""The files of a run directory, written atomically, and the check that a directory belongs to a run.

Layout (open_lth's shape: replicates, levels, and a branch per control):

```
<out>/lottery_<hash>/
  config.json                          all settings, the hash, data and model fingerprints
  results.csv                          one row per (replicate, level, branch), rewritten as levels end
  tensorboard/replicate_<r>/<branch>/  per-level scalars (tf.summary)
  replicate_<r>/level_<k>/<branch>/    branch: main, reinit or random_prune
    masks.npz      masks, rewind snapshot and the other layers' rewind values (compressed)
    weights.npz    main only: the trained state the next level starts from
    curve.csv      validation loss and accuracy every `eval_every` iterations
    metrics.csv    the level's summary (one row)
    metrics.json   the same plus the curve; written last: the level is done when it exists
```

Every file is written to a temporary name in its directory and moved into
place with `os.replace`, so a killed process leaves either the old file or
the new one, never half of one.
"""

import csv
import io
import json
import os
import tempfile

import numpy as np

CONFIG = 'config.json'
RESULTS = 'results.csv'
MASKS = 'masks.npz'
WEIGHTS = 'weights.npz'
CURVE = 'curve.csv'
METRICS_CSV = 'metrics.csv'
METRICS_JSON = 'metrics.json'
MAIN = 'main'


def atomic_write(path, write_fn, binary=False):
  """Calls `write_fn(file)` on a temporary file next to `path`, then moves it to `path`."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  handle, temp = tempfile.mkstemp(dir=directory, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
  try:
    with os.fdopen(handle, 'wb' if binary else 'w', **({} if binary else {'newline': ''})) as f:
      write_fn(f)
    os.replace(temp, path)
  except BaseException:
    if os.path.exists(temp):
      os.remove(temp)
    raise


def write_json(path, obj):
  atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2, sort_keys=True) + '\n'))


def read_json(path):
  with open(path) as f:
    return json.load(f)


def write_text(path, text):
  atomic_write(path, lambda f: f.write(text))


def write_csv(path, rows, fieldnames=None):
  """Writes dict rows; the columns are `fieldnames` or the union of the rows' keys in first-seen order."""
  if fieldnames is None:
    fieldnames = []
    for row in rows:
      fieldnames.extend(k for k in row if k not in fieldnames)

  def write(f):
    writer = csv.DictWriter(f, fieldnames=fieldnames, restval='')
    writer.writeheader()
    writer.writerows(rows)

  atomic_write(path, write)


def save_arrays(path, arrays):
  """Saves a dict of arrays as one compressed .npz, atomically."""
  buffer = io.BytesIO()
  np.savez_compressed(buffer, **arrays)
  atomic_write(path, lambda f: f.write(buffer.getvalue()), binary=True)


def load_arrays(path):
  with np.load(path, allow_pickle=False) as data:
    return {key: data[key] for key in data.files}


def pack(prefix, values, names):
  """{prefix_0000: array, ..., prefix_names: names}: an ordered list of arrays as npz entries."""
  arrays = {f'{prefix}_{i:04d}': np.asarray(v) for i, v in enumerate(values)}
  arrays[f'{prefix}_names'] = np.array(list(names), dtype=str)
  return arrays


def unpack(arrays, prefix):
  """The ordered list of arrays `pack` stored under `prefix`."""
  return [arrays[f'{prefix}_{i:04d}'] for i in range(len(arrays[f'{prefix}_names']))]


def load_masks(run_dir, replicate, level, branch=MAIN):
  """A finished level's masks.npz as lists.

  Returns:
    A dict with 'masks' and 'mask_names' (each prunable tensor, e.g.
    'hidden_300/kernel'), 'snapshots' and 'snapshot_names' (every weight of
    the wrapped layers at the rewind point; for 'reinit' the fresh weights
    the control started from), 'other' (rewind values of the layers without
    prunable weights), 'snapshot_step' and 'rounds_done'.
  """
  arrays = load_arrays(RunDirectory(run_dir).file(replicate, level, branch, MASKS))
  return {
      'masks': unpack(arrays, 'mask'),
      'mask_names': [str(n) for n in arrays['mask_names']],
      'snapshots': unpack(arrays, 'snapshot'),
      'snapshot_names': [str(n) for n in arrays['snapshot_names']],
      'other': unpack(arrays, 'other'),
      'snapshot_step': int(arrays['snapshot_step']),
      'rounds_done': int(arrays['rounds_done']),
  }


class RunDirectory:
  """Paths and completion checks of one run directory."""

  def __init__(self, path):
    self.path = os.path.abspath(path)

  @property
  def config_path(self):
    return os.path.join(self.path, CONFIG)

  @property
  def results_path(self):
    return os.path.join(self.path, RESULTS)

  def level_dir(self, replicate, level, branch=MAIN):
    return os.path.join(self.path, f'replicate_{replicate}', f'level_{level}', branch)

  def file(self, replicate, level, branch, name):
    return os.path.join(self.level_dir(replicate, level, branch), name)

  def tensorboard_dir(self, replicate, branch):
    return os.path.join(self.path, 'tensorboard', f'replicate_{replicate}', branch)

  def is_done(self, replicate, level, branch=MAIN):
    """Whether a level's outputs all exist (metrics.json is written last)."""
    needed = [METRICS_JSON, MASKS] + ([WEIGHTS] if branch == MAIN else [])
    return all(os.path.exists(self.file(replicate, level, branch, name)) for name in needed)

  def claim(self, meta, check):
    """Makes this directory the home of the run described by `meta`, or refuses.

    Args:
      meta: The dict written to config.json for a new run.
      check: A function(stored meta) returning a list of differences that
        make the stored run a different one (empty: the same run).

    Raises:
      ValueError: if the directory holds another run, or files but no
        config.json. Nothing is written then.
    """
    if os.path.exists(self.config_path):
      try:
        stored = read_json(self.config_path)
      except ValueError as error:
        raise ValueError(f'{self.config_path} is not readable JSON ({error}); the directory was left as it is') \
            from error
      differences = check(stored)
      if differences:
        raise ValueError(f'run directory {self.path} holds a run with other settings, so it was left as it is: '
                         + '; '.join(differences) + '. Use another output directory, or delete this one to '
                         'start over.')
      return stored
    if os.path.isdir(self.path) and os.listdir(self.path):
      raise ValueError(f'{self.path} is not empty and has no {CONFIG}: it is not an ltp_tfmot run directory, '
                       'so nothing was written to it. Choose an empty or new directory.')
    os.makedirs(self.path, exist_ok=True)
    write_json(self.config_path, meta)
    return meta


def find_runs(paths):
  """Run directories among `paths`: each path is a run directory or a folder of them.

  Raises:
    ValueError: for a path that does not exist or holds no run.
  """
  runs = []
  for path in paths:
    if os.path.exists(os.path.join(path, CONFIG)):
      runs.append(os.path.abspath(path))
      continue
    if not os.path.isdir(path):
      raise ValueError(f'{path} does not exist')
    found = sorted(os.path.join(path, name) for name in os.listdir(path)
                   if os.path.exists(os.path.join(path, name, CONFIG)))
    if not found:
      raise ValueError(f'{path} is neither a run directory (no {CONFIG}) nor a folder of run directories')
    runs.extend(os.path.abspath(p) for p in found)
  return list(dict.fromkeys(runs))


def load_level_metrics(run_dir):
  """Every finished level's metrics.json of a run, sorted by replicate, level and branch."""
  rows = []
  for rep in sorted(os.listdir(run_dir)):
    rep_dir = os.path.join(run_dir, rep)
    if not rep.startswith('replicate_') or not os.path.isdir(rep_dir):
      continue
    for level in os.listdir(rep_dir):
      level_dir = os.path.join(rep_dir, level)
      if not level.startswith('level_') or not os.path.isdir(level_dir):
        continue
      for branch in os.listdir(level_dir):
        path = os.path.join(level_dir, branch, METRICS_JSON)
        if os.path.exists(path):
          rows.append(read_json(path))
  branch_order = {MAIN: 0, 'reinit': 1, 'random_prune': 2}
  rows.sort(key=lambda r: (r['replicate'], r['level'], branch_order.get(r['branch'], 9), r['branch']))
  return rows
