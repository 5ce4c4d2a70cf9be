"""The files of a run directory, written atomically and checksummed, and the check that a directory is a run's.

Layout (open_lth's shape: replicates, levels, and a folder per branch):

```
<out>/lottery_<hash>/
  config.json                          all settings, the hash, data and model fingerprints
  results.csv                          one row per (replicate, level, branch), rewritten as levels end
  tensorboard/replicate_<r>/<branch>/  per-level scalars (tf.summary)
  replicate_<r>/level_<k>/<branch>/    branch: main or a branch's name (reinit, random_prune, ...)
    masks.npz      masks, rewind snapshot and the other layers' rewind values (compressed)
    weights.npz    main only: the trained state the next level starts from
    curve.csv      validation loss and accuracy every `eval_every` iterations
    metrics.csv    the level's summary (one row)
    metrics.json   the same plus the curve
  replicate_<r>/level_<k>/<branch>.manifest.json
                   size and sha256 of each file above; written last: the level is
                   done when it exists, and its files are checked against it
  replicate_<r>/level_<k>/<branch>.failed.json
                   the error and traceback of a training that failed (NaN loss, an
                   exception); removed when the level is done
  run.lock         while a run works in the directory: its process (pid, host,
                   start time, command); removed when it ends
```

A second run on a directory whose lock names a live process is refused
(`run_lock`).

Every file is written with `ltp_tfmot.files.atomic_write`: to a temporary name
in its directory (`.<name>.<random>.tmp`), flushed to disk (fsync) and moved
into place with `os.replace`, so a killed process leaves either the old file or
the new one, never half of one; readers only open final names, and the runner
removes stale temporary files when it starts. A run directory on another file
system TensorFlow knows (`gs://bucket/runs/...`) is read and written through
`tf.io.gfile`, where the move is that file system's rename (see
`atomic_write`). A level whose files do not match its manifest (truncated,
changed) is not done: the runner redoes it, with a warning. A write that fails
(disk full, no permission) raises `StorageError` naming the file; what was
written before is intact and the run resumes from there. A truncated or corrupt
file raises `CorruptFileError` (a `ValueError`) naming the file.
"""

import csv
import errno
import functools
import hashlib
import io
import json
import os
import zipfile
import zlib

import numpy as np

from ltp_tfmot import errors
from ltp_tfmot import files
from ltp_tfmot.experiment import branches
from ltp_tfmot.experiment import run_lock

CONFIG = 'config.json'
RESULTS = 'results.csv'
MASKS = 'masks.npz'
WEIGHTS = 'weights.npz'
CURVE = 'curve.csv'
METRICS_CSV = 'metrics.csv'
METRICS_JSON = 'metrics.json'
MANIFEST_SUFFIX = '.manifest.json'
FAILURE_SUFFIX = '.failed.json'
MAIN = branches.MAIN
TEMP_SUFFIX = files.TEMP_SUFFIX


StorageError = errors.StorageError


CorruptFileError = errors.CorruptFileError


is_temp_file = files.is_temp_file


def remove_temp_files(path):
  """Removes the temporary files a killed process left under `path`; returns how many."""
  removed = 0
  for root, _, names in files.walk(path):
    for name in names:
      if is_temp_file(name):
        try:
          files.remove(os.path.join(root, name))
          removed += 1
        except FileNotFoundError:
          pass
  return removed


def write_bytes(path, data, hooks=None):
  """Writes `data` to `path` atomically and durably (`ltp_tfmot.files.atomic_write`), creating its directory.

  Args:
    path: The file to write.
    data: Its bytes.
    hooks: An optional `ltp_tfmot.experiment.RunHooks` whose `write_file`
      writes the bytes.

  Returns:
    The sha256 hex digest of `data`.

  Raises:
    StorageError: if the file cannot be written (e.g. disk full, no
      permission); `path` then keeps its old content (or stays absent) and no
      temporary file is left.
  """
  write = functools.partial(hooks.write_file, path) if hooks is not None else None
  try:
    files.makedirs(os.path.dirname(files.abspath(path)))
    files.atomic_write(path, data, write=write)
  except OSError as error:
    reason = error.strerror or str(error)
    if error.errno == errno.ENOSPC:
      hint = 'free some space'
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
      hint = 'make the directory writable'
    else:
      hint = 'fix the cause'
    failure = StorageError(f'could not write {path}: {reason}. Files written before are intact; {hint} and run the '
                           'same command again (a run resumes from its last finished level)')
    failure.errno = error.errno
    raise failure from error
  return hashlib.sha256(data).hexdigest()


def atomic_write(path, write_fn, binary=False, hooks=None):
  """Calls `write_fn(file)` on an in-memory file, then writes its content to `path` with `write_bytes`.

  Returns:
    The sha256 hex digest of the bytes written.
  """
  buffer = io.BytesIO() if binary else io.StringIO(newline='')
  write_fn(buffer)
  data = buffer.getvalue()
  return write_bytes(path, data if binary else data.encode('utf-8'), hooks)


def file_sha256(path):
  digest = hashlib.sha256()
  with files.open_read(path) as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      digest.update(chunk)
  return digest.hexdigest()


def _corrupt(path, error):
  return CorruptFileError(f'{path} is truncated or corrupt ({type(error).__name__}: {error}). If it belongs to a '
                          'level of a run, run the same command again: the level is checked against its manifest '
                          'and redone')


def write_json(path, obj, hooks=None):
  return atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2, sort_keys=True) + '\n'), hooks=hooks)


def read_json(path):
  """A JSON file's content; `CorruptFileError` if it is truncated or not JSON."""
  data = files.read_bytes(path)
  try:
    return json.loads(data.decode('utf-8'))
  except (ValueError, UnicodeDecodeError) as error:
    raise _corrupt(path, error) from error


def write_text(path, text):
  return atomic_write(path, lambda f: f.write(text))


def write_csv(path, rows, fieldnames=None, hooks=None):
  """Writes dict rows; the columns are `fieldnames` or the union of the rows' keys in first-seen order."""
  if fieldnames is None:
    fieldnames = []
    for row in rows:
      fieldnames.extend(k for k in row if k not in fieldnames)

  def write(f):
    writer = csv.DictWriter(f, fieldnames=fieldnames, restval='')
    writer.writeheader()
    writer.writerows(rows)

  return atomic_write(path, write, hooks=hooks)


def save_arrays(path, arrays, hooks=None):
  """Saves a dict of arrays as one compressed .npz, atomically; returns its sha256."""
  buffer = io.BytesIO()
  np.savez_compressed(buffer, **arrays)
  return write_bytes(path, buffer.getvalue(), hooks)


def load_arrays(path):
  """The arrays of an .npz file as a dict; `CorruptFileError` if it is truncated or corrupt."""
  try:
    with files.open_read(path) as f:
      data = np.load(f, allow_pickle=False)
      if not hasattr(data, 'files'):
        raise ValueError('not an .npz archive')
      with data:
        return {key: data[key] for key in data.files}
  except (FileNotFoundError, PermissionError, IsADirectoryError):
    raise
  except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as error:
    raise _corrupt(path, error) from error


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
    prunable weights), 'mask_layer' (the index of each mask's wrapped
    layer), 'snapshot_step' and 'rounds_done'.
  """
  return masks_from_arrays(load_arrays(RunDirectory(run_dir).file(replicate, level, branch, MASKS)))


def masks_from_arrays(arrays):
  """The dict `load_masks` returns, from the arrays of a masks.npz."""
  return {
      'masks': unpack(arrays, 'mask'),
      'mask_layer': [int(i) for i in arrays['mask_layer']],
      'mask_names': [str(n) for n in arrays['mask_names']],
      'snapshots': unpack(arrays, 'snapshot'),
      'snapshot_names': [str(n) for n in arrays['snapshot_names']],
      'other': unpack(arrays, 'other'),
      'snapshot_step': int(arrays['snapshot_step']),
      'rounds_done': int(arrays['rounds_done']),
  }


class RunDirectory:
  """Paths and completion checks of one run directory.

  Args:
    path: The directory: local, or on a file system `tf.io.gfile` knows
      (gs://...).
    hooks: An optional `ltp_tfmot.experiment.RunHooks` its own writes (the
      manifests, config.json) go through.

  Attributes:
    lock: The directory's `run_lock.RunLock`, which `claim` takes.
  """

  def __init__(self, path, hooks=None):
    self.path = files.abspath(path)
    self.hooks = hooks
    self.lock = run_lock.RunLock(self.path)

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

  def manifest_path(self, replicate, level, branch=MAIN):
    return self.level_dir(replicate, level, branch) + MANIFEST_SUFFIX

  @staticmethod
  def needed_files(branch):
    return [MASKS] + ([WEIGHTS] if branch == MAIN else []) + [CURVE, METRICS_CSV, METRICS_JSON]

  def write_manifest(self, replicate, level, branch, checksums):
    """Records the size and sha256 of a level's files; written last, it marks the level done."""
    entries = {}
    for name, digest in sorted(checksums.items()):
      entries[name] = {'sha256': digest, 'bytes': files.getsize(self.file(replicate, level, branch, name))}
    return write_json(self.manifest_path(replicate, level, branch), {'files': entries}, self.hooks)

  def failure_path(self, replicate, level, branch=MAIN):
    return self.level_dir(replicate, level, branch) + FAILURE_SUFFIX

  def write_failure(self, record):
    """Writes a failed job's record (replicate, level, branch, error, traceback) to its `<branch>.failed.json`."""
    write_json(self.failure_path(record['replicate'], record['level'], record['branch']), record, self.hooks)

  def clear_failure(self, replicate, level, branch=MAIN):
    """Removes a level's failure record (it is done now)."""
    path = self.failure_path(replicate, level, branch)
    if files.exists(path):
      files.remove(path)

  def failure(self, replicate, level, branch=MAIN):
    """A level's failure record (see `write_failure`), or None if it has none."""
    path = self.failure_path(replicate, level, branch)
    return read_json(path) if files.exists(path) else None

  def is_done(self, replicate, level, branch=MAIN):
    """Whether a level has its manifest (written last) and all its files (see `verify` for their checksums)."""
    return files.exists(self.manifest_path(replicate, level, branch)) and all(
        files.exists(self.file(replicate, level, branch, name)) for name in self.needed_files(branch))

  def verify(self, replicate, level, branch=MAIN):
    """Checks a level's files against its manifest.

    Returns:
      None if the level is not done (no manifest: not finished, or killed
      while it was written), '' if it is done and every file matches, else
      the reason it does not.
    """
    manifest = self.manifest_path(replicate, level, branch)
    if not files.exists(manifest):
      return None
    try:
      entries = read_json(manifest)['files']
    except (CorruptFileError, KeyError, TypeError) as error:
      return f'its manifest {manifest} is unreadable ({error})'
    for name in self.needed_files(branch):
      if name not in entries:
        return f'its manifest does not list {name}'
    for name, entry in sorted(entries.items()):
      path = self.file(replicate, level, branch, name)
      if not files.exists(path):
        return f'{path} is missing'
      try:
        size, digest = files.getsize(path), file_sha256(path)
      except OSError as error:
        return f'{path} cannot be read ({error})'
      if size != entry.get('bytes') or digest != entry.get('sha256'):
        return (f'{path} does not match its checksum ({size} bytes, sha256 {digest[:12]}...; the manifest says '
                f'{entry.get("bytes")} bytes, sha256 {str(entry.get("sha256"))[:12]}...)')
    return ''

  def check_level(self, replicate, level, branch=MAIN):
    """Raises `CorruptFileError` if a finished level's files do not match its manifest."""
    problem = self.verify(replicate, level, branch)
    if problem:
      raise CorruptFileError(f'replicate {replicate} level {level} {branch} of {self.path} is damaged: {problem}. '
                             'Run the experiment again (the same `ltp-tfmot run` command or `run_experiment` call) '
                             'to redo it.')

  def _listing(self):
    if not files.isdir(self.path):
      return []
    return [name for name in files.listdir(self.path) if not is_temp_file(name) and name != run_lock.LOCK]

  def check(self, meta, check):
    """Like `claim`, but writes nothing: for the workers of a multi-worker run that are not the chief.

    Returns:
      The stored meta, or None if the directory holds no run yet.

    Raises:
      ValueError: if the directory holds another run, or files but no
        config.json.
    """
    if files.exists(self.config_path):
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
    if self._listing():
      raise ValueError(f'{self.path} is not empty and has no {CONFIG}: it is not an ltp_tfmot run directory, '
                       'so nothing was written to it. Choose an empty or new directory.')
    return None

  def claim(self, meta, check):
    """Makes this directory the home of the run described by `meta`, or refuses.

    Args:
      meta: The dict written to config.json for a new run.
      check: A function(stored meta) returning a list of differences that
        make the stored run a different one (empty: the same run).

    Raises:
      ValueError: if the directory holds another run, or files but no
        config.json. Nothing is written then.
      StorageError: if config.json cannot be written.
    """
    self.check(meta, check)  # before the lock: a refused directory stays as it was
    self.lock.take()
    try:
      stored = self.check(meta, check)  # again: a run that held the lock may have written config.json meanwhile
      if stored is not None:
        return stored
      write_json(self.config_path, meta, self.hooks)
    except BaseException:
      self.lock.release()
      raise
    return meta

def find_runs(paths):
  """Run directories among `paths`: each path is a run directory or a folder of them.

  Raises:
    ValueError: for a path that does not exist or holds no run.
  """
  runs = []
  for path in paths:
    if files.exists(os.path.join(path, CONFIG)):
      runs.append(files.abspath(path))
      continue
    if not files.isdir(path):
      raise ValueError(f'{path} does not exist')
    found = sorted(os.path.join(path, name) for name in files.listdir(path)
                   if files.exists(os.path.join(path, name, CONFIG)))
    if not found:
      raise ValueError(f'{path} is neither a run directory (no {CONFIG}) nor a folder of run directories')
    runs.extend(files.abspath(p) for p in found)
  return list(dict.fromkeys(runs))


def load_level_metrics(run_dir, verify=False):
  """Every finished level's metrics.json of a run (levels with a manifest), sorted by replicate, level, branch.

  Args:
    run_dir: The run directory.
    verify: Check each finished level's files against its manifest first,
      as a resumed run and `load_trained_model` do: `CorruptFileError`
      naming the level if a file is missing or was changed. Without it, a
      level whose metrics.json is missing is left out.
  """
  paths = RunDirectory(run_dir)
  rows = []
  for replicate, level, branch in _levels_with_manifest(run_dir):
    if verify:
      paths.check_level(replicate, level, branch)
    path = paths.file(replicate, level, branch, METRICS_JSON)
    if files.exists(path):
      rows.append(read_json(path))
  return sort_level_metrics(rows)


def _levels_with_manifest(run_dir):
  """(replicate, level, branch) of every `replicate_<r>/level_<k>/<branch>.manifest.json` of a run directory."""
  for rep in files.listdir(run_dir):
    rep_dir = os.path.join(run_dir, rep)
    if not _numbered(rep, 'replicate_') or not files.isdir(rep_dir):
      continue
    for level in files.listdir(rep_dir):
      level_dir = os.path.join(rep_dir, level)
      if not _numbered(level, 'level_') or not files.isdir(level_dir):
        continue
      for name in files.listdir(level_dir):
        if name.endswith(MANIFEST_SUFFIX) and not is_temp_file(name):
          yield int(rep[len('replicate_'):]), int(level[len('level_'):]), name[:-len(MANIFEST_SUFFIX)]


def _numbered(name, prefix):
  return name.startswith(prefix) and name[len(prefix):].isdigit()


def sort_level_metrics(rows):
  """Level metrics sorted by replicate, level and branch ('main', then the registered branches, then others)."""
  rows = list(rows)
  order = {name: i for i, name in enumerate(branches.display_order(r['branch'] for r in rows))}
  return sorted(rows, key=lambda r: (r['replicate'], r['level'], order[r['branch']]))
