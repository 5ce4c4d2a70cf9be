"""What a run directory tells a run started on it again: whether it is this run, which levels are done, on what path.

A run records itself in its directory's config.json (`run_meta`: its settings,
hash, data and model fingerprints); the same command run again goes on only
if nothing there differs from it (`run_differences`), and redoes the finished
levels whose files no longer match their manifests (`verified_done`). A
finished level records the numeric path it trained on; resuming on another
one is refused unless accepted (`training_path_change`). The runner's set-up
asks these before it trains or writes anything; the instability analysis
asks `run_meta` and `run_differences` whether it rebuilds a run's model and
data.
"""

import hashlib

import tf_keras as keras

from ltp_tfmot import errors
from ltp_tfmot.experiment import config as config_lib
from ltp_tfmot.experiment import data as data_lib
from ltp_tfmot.experiment import storage
from ltp_tfmot.experiment import training_path as training_path_lib


def _model_fingerprint(model):
  """A hash of the model's layers and weight shapes (its architecture, not its values)."""
  layers = []

  def visit(m):
    for layer in m.layers:
      if isinstance(layer, keras.Model):
        visit(layer)
      else:
        layers.append((type(layer).__name__, [tuple(int(d) for d in w.shape) for w in layer.weights]))

  visit(model)
  return hashlib.sha256(repr(layers).encode()).hexdigest()[:16]


def run_meta(config, factory, model):
  """What config.json records of a run: its settings, hash, data and `model`'s architecture fingerprint.

  Args:
    config: The run's `RunConfig`.
    factory: Its `RunFactory`, the data loaded.
    model: A model of the run (built from its seed; wrapped or not).

  Returns:
    The dict.
  """
  split = factory.split
  return {
      'name': config.run_name(),
      'hash': config.hash(),
      'config': config.to_dict(),
      'non_default_settings': config.non_default_settings(),
      'description': config.describe(),
      'data': {
          'source': split.source,
          'fingerprint': data_lib.fingerprint(split),
          'train': len(split.x_train),
          'validation': len(split.x_val),
          'test': len(split.x_test),
          'example_shape': list(split.x_train.shape[1:]),
          'classes': factory.num_classes,
      },
      'model_fingerprint': _model_fingerprint(model),
  }


def run_differences(config, meta):
  """The check of a stored run against this one (`RunDirectory.claim`'s `check`).

  Args:
    config: This run's `RunConfig`.
    meta: This run's `run_meta`.

  Returns:
    A function(stored meta) giving what differs (hashed settings, data, model
    architecture) as sentences; empty for the same run.
  """

  def check(stored):
    try:
      stored_config = config_lib.RunConfig.from_dict(stored['config'])
    except (KeyError, TypeError, ValueError) as error:
      return [f'its config.json does not hold readable settings ({error})']
    theirs, ours = stored_config.hashed_settings(), config.hashed_settings()
    differences = [f'{key} is {theirs.get(key)!r} there and {ours.get(key)!r} here'
                   for key in sorted(set(theirs) | set(ours)) if theirs.get(key) != ours.get(key)]
    stored_data = stored.get('data', {})
    if stored_data.get('fingerprint') != meta['data']['fingerprint']:
      differences.append(f'the data differ (source {stored_data.get("source")!r}, fingerprint '
                         f'{stored_data.get("fingerprint")} there; source {meta["data"]["source"]!r}, '
                         f'fingerprint {meta["data"]["fingerprint"]} here)')
    if stored.get('model_fingerprint') != meta['model_fingerprint']:
      differences.append('the model architecture differs (layers or weight shapes)')
    return differences

  return check


def verified_done(paths, jobs, log):
  """The finished jobs whose files match their manifests; warns about (and so redoes) the others.

  Args:
    paths: The run's `storage.RunDirectory`.
    jobs: The (replicate, level, branch) jobs of the run.
    log: A function taking one line.

  Returns:
    The set of jobs that are done.
  """
  done = set()
  for job in jobs:
    problem = paths.verify(*job)
    if problem == '':
      done.add(job)
    elif problem:
      r, level, branch = job
      log(f'WARNING: replicate {r} level {level} {branch} is damaged and will be redone: {problem}')
  return done


def training_path_change(paths, jobs, here, accept, log):
  """The change of numeric path since the finished levels, refused unless accepted; reads, never writes.

  A change accepted once (a finished level on this path records it) stays
  accepted: the levels trained since continue it.

  Args:
    paths: The run's `storage.RunDirectory`.
    jobs: The (replicate, level, branch) jobs of the run.
    here: The path the levels train on now (`training_path.current`).
    accept: Whether to accept a change (`accept_training_path_change`).
    log: A function taking one line: the warning of an accepted change.

  Returns:
    None if every finished level trained on `here`, else the accepted change
    ('jit_compile True -> False, ...'), which the levels trained now record.

  Raises:
    TrainingPathChangedError: for a change neither accepted now nor before.
  """
  legacy = _path_of_unrecorded_levels(paths)
  found, levels, accepted = {}, [], None
  for job in jobs:
    r, level, branch = job
    if not paths.is_done(*job):
      continue
    try:
      recorded = storage.read_json(paths.file(r, level, branch, storage.METRICS_JSON)).get('training_path')
    except errors.CorruptFileError:
      continue  # a damaged level is redone
    changed = training_path_lib.changes(recorded or legacy, here)
    if not changed and recorded and recorded.get('accepted_change'):
      accepted = recorded['accepted_change']
    if changed:
      levels.append(f'replicate {r} level {level} {branch}')
      for key, old, new in changed:
        found.setdefault(key, (key, old, new))
  if not found:
    return None
  found = [found[key] for key in training_path_lib.NUMERIC if key in found]
  named = levels[0] if len(levels) == 1 else f'{levels[0]} and {len(levels) - 1} more level(s)'
  if accepted is None and not accept:
    raise training_path_lib.refusal(paths.path, found, named)
  change = accepted or training_path_lib.describe_changes(found)
  log(f'WARNING: the training path changed ({change}) since {named}; accepted, and recorded in the levels trained '
      'from here.')
  return change


def _path_of_unrecorded_levels(paths):
  """What is known of the path of levels trained before levels recorded theirs: the jit_compile of config.json.

  Such runs wrote every level with the `jit_compile` of the config they
  were started with (XLA unless forced off), which the run directory's
  config.json keeps; the rest of their path is unknown.
  """
  try:
    jit_compile = storage.read_json(paths.config_path)['config']['training'].get('jit_compile')
  except (errors.CorruptFileError, KeyError, TypeError, OSError):
    return {}
  return {} if jit_compile is None else {'jit_compile': bool(jit_compile)}
