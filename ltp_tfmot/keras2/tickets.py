"""Ticket files: the masks and rewind point of a wrapped model, in one file.

A ticket is what a lottery-ticket run finds: which weights survive (the masks)
and what they start from (the rewind snapshot). `save_ticket` writes it for
every `PruneLotteryTicket` of a model; `load_ticket` puts it into a fresh
wrapped model of the same architecture, ready to retrain; `read_ticket` reads
it without a model.

File format (version 1): a compressed NumPy `.npz` archive (a zip file of
`.npy` arrays; `numpy.load(path)` opens it, no pickle needed) with

- `metadata`: a 0-d unicode array holding one JSON object:

  ```
  {"format": "ltp_tfmot.ticket", "format_version": 1, "ltp_tfmot_version": "0.1.0",
   "config": {...},                      # the user's `config` dict
   "layers": [                           # one per wrapper, in lottery_wrappers(model) order
     {"name": "hidden1",                 # the wrapped layer's name
      "key": "hidden1",                  # its array-key prefix (the name, "~2" added to a repeated name)
      "class_name": "Dense",
      "weights": [                       # the layer's weights, in layer.weights order
        {"name": "kernel", "shape": [8, 16], "dtype": "float32", "prunable": true},
        {"name": "bias", "shape": [16], "dtype": "float32", "prunable": false}],
      "rounds_done": 3, "snapshot_step": 0,
      "lottery": {"criterion": "large_final", "scope": "layer", "layer_rate": null,
                  "mask_0_action": "zero", "mask_1_action": "rewind",
                  "dynamic_weight_rescaling": false, "rewind_step": 0, "seed": 0,
                  "pruning_schedule": {"class_name": "LotteryTicketSchedule", "config": {...}}}}]}
  ```

- `masks/<key>/<weight name>`: the mask of each prunable weight, `bool` (0/1),
  shaped like the weight.
- `snapshots/<key>/<weight name>`: the rewind-point value of every weight of
  the layer (prunable or not), in the weight's dtype.

Weight names are relative to the layer (`kernel`, `query/kernel`; `#2` added
to a repeated one). `load_ticket` matches wrappers by position (in
`lottery_wrappers` order): it requires the same count, and per wrapper the
same class, weight shapes and prunable weights; layer and weight names that
differ (a rebuilt model's automatic names) are logged as a warning. Files
are written atomically (`ltp_tfmot.files.atomic_write`: a temporary file in
the same directory, read back, then renamed), so a crash never leaves half a
ticket. Paths of other file systems TensorFlow knows (gs://...) are read and
written through `tf.io.gfile`.
"""

import dataclasses
import io
import json
import os
import sys
import zipfile
import zlib

from absl import logging
import numpy as np

from ltp_tfmot import errors
from ltp_tfmot import files
from ltp_tfmot.keras2 import initializers
from ltp_tfmot.keras2 import rewind as rewind_lib
from ltp_tfmot.keras2 import wrapped_model
from ltp_tfmot.keras2 import wrapper as wrapper_lib

FORMAT = 'ltp_tfmot.ticket'
FORMAT_VERSION = 1
LOTTERY_ATTRS = ('criterion', 'scope', 'layer_rate', 'mask_0_action', 'mask_1_action', 'dynamic_weight_rescaling',
                 'rewind_step', 'seed')


TicketFileError = errors.TicketFileError


@dataclasses.dataclass(frozen=True, eq=False)
class LayerTicket:
  """The ticket of one wrapped layer.

  Attributes:
    name: The wrapped layer's name.
    class_name: Its class, e.g. 'Dense'.
    weight_names: Its weights' names relative to the layer, in `layer.weights` order.
    weight_shapes: Their shapes.
    weight_dtypes: Their dtypes, e.g. 'float32'.
    prunable: Indices (into the weights) of the prunable weights.
    masks: One 0/1 array per prunable weight.
    snapshots: The rewind-point value of every weight.
    rounds_done: Pruning rounds done.
    snapshot_step: The training step of the snapshot.
    lottery: The wrapper's lottery configuration (criterion, scope, ...,
      pruning_schedule).
  """
  name: str
  class_name: str
  weight_names: tuple[str, ...]
  weight_shapes: tuple[tuple[int, ...], ...]
  weight_dtypes: tuple[str, ...]
  prunable: tuple[int, ...]
  masks: tuple[np.ndarray, ...]
  snapshots: tuple[np.ndarray, ...]
  rounds_done: int
  snapshot_step: int
  lottery: dict

  @property
  def sparsity(self):
    """Fraction of the prunable weights that are pruned."""
    total = sum(m.size for m in self.masks)
    return 1.0 - sum(int(np.count_nonzero(m)) for m in self.masks) / total if total else 0.0


@dataclasses.dataclass(frozen=True, eq=False)
class Ticket:
  """A ticket file's contents (see the module docstring for the format).

  Attributes:
    layers: One `LayerTicket` per wrapper, in `lottery_wrappers(model)` order.
    config: The user's config dict given to `save_ticket`.
    format_version: The file format version.
    ltp_tfmot_version: The ltp_tfmot version that wrote it, if known.
  """
  layers: tuple[LayerTicket, ...]
  config: dict
  format_version: int = FORMAT_VERSION
  ltp_tfmot_version: str | None = None

  @property
  def sparsity(self):
    """{layer name: fraction of its prunable weights pruned}."""
    return {layer.name: layer.sparsity for layer in self.layers}


def save_ticket(model, path, config=None):
  """Writes the masks and rewind snapshot of every wrapper of a model to one file.

  Saved per `PruneLotteryTicket`: masks, the snapshot of all the layer's
  weights, rounds done, the snapshot step and the wrapper's lottery
  configuration, with the architecture signature that `load_ticket` checks.
  The model is not changed. The file is written atomically.

  Args:
    model: A built wrapped model (or layer, or list of layers) whose rewind
      snapshot has been taken.
    path: The file to write (`.npz` is the customary suffix; none is added):
      a local path or one of a file system `tf.io.gfile` knows (gs://...).
    config: An optional JSON-serialisable dict stored with the ticket (e.g. the
      experiment's settings and results).

  Returns:
    The `Ticket` written.

  Raises:
    TypeError: for a Keras 3 model.
    ValueError: for no (built) wrapper, a wrapper without a
      snapshot, a config that is not a JSON-serialisable dict, or a missing
      local directory. Nothing is written then.
    OSError: if the file cannot be written.

  Example:

  ```python
  ltp_tfmot.save_ticket(model, 'ticket.npz', config={'rate': 0.2, 'accuracy': 0.98})
  ```
  """
  wrappers = wrapped_model.built_lottery_wrappers(model)
  missing = [w.layer.name for w in wrappers if not w.has_snapshot]
  if missing:
    raise ValueError(f'layers {missing} have no rewind snapshot: call ltp_tfmot.take_snapshot(model) '
                     '(or train with UpdateLotteryStep) before saving a ticket')
  config = {} if config is None else config
  if not isinstance(config, dict):
    raise ValueError(f'config must be a dict, got {type(config).__name__}')
  try:
    config = json.loads(json.dumps(config))
  except (TypeError, ValueError) as e:
    raise ValueError(f'config must be JSON-serialisable: {e}') from e
  path = files.check_path(path)
  files.check_directory_of(path)

  ticket = Ticket(layers=tuple(_layer_ticket(w) for w in wrappers), config=config,
                  ltp_tfmot_version=getattr(sys.modules.get('ltp_tfmot'), '__version__', None))
  metadata, arrays = _encode(ticket)
  _write_atomically(path, metadata, arrays)
  logging.info('Saved the ticket of %d layers to %s.', len(wrappers), path)
  return ticket


def read_ticket(path):
  """Reads and validates a ticket file.

  Args:
    path: A file written by `save_ticket`.

  Returns:
    A `Ticket`.

  Raises:
    FileNotFoundError: if there is no such file.
    TicketFileError: (a ValueError) for a truncated or corrupt file, a file
      that is not a ticket, or one written by a newer format version.
  """
  path = files.check_path(path)
  if not files.isfile(path):
    raise FileNotFoundError(f'no ticket file at {path!r}')
  try:
    with files.open_read(path) as f:
      loaded = np.load(f, allow_pickle=False)
      if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError('it holds a single .npy array, not an .npz archive')
      with loaded as npz:
        arrays = {key: npz[key] for key in npz.files}
  except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as e:
    raise TicketFileError(f'{path!r} is not a readable ticket file (truncated or corrupt?): '
                          f'{type(e).__name__}: {e}') from e
  return _decode(arrays, path)


def load_ticket(model, path):
  """Applies a ticket file to a fresh wrapped model of the same architecture.

  Assigns each wrapper's masks, snapshot, rounds done and snapshot step, then
  sets the weights as a round boundary does (`ltp_tfmot.rewind_weights`): with
  the default mask_1_action='rewind' and mask_0_action='zero' the prunable
  weights become snapshot * mask and the others (biases) their snapshot, ready
  to retrain. The wrappers keep their own lottery configuration; differences
  from the ticket's are logged as a warning. The optimizer is not touched.

  Args:
    model: A built wrapped model (or layer, or list of layers), e.g. the same
      model-building code run again and wrapped the same way.
    path: A file written by `save_ticket`.

  Returns:
    The `Ticket` applied.

  Raises:
    FileNotFoundError: if there is no such file.
    TicketFileError: (a ValueError) for a truncated or corrupt file.
    ValueError: if the model's wrappers differ from the ticket's (count,
      classes, weight shapes or prunable weights: the message names the first
      difference), or the model has no built wrapper. Wrappers are matched by
      position; layer or weight names that differ are logged as a warning.
    In every case the model is left unchanged.

  Example:

  ```python
  model = ltp_tfmot.prune_lottery_ticket(build_model(), schedule)
  model.build(input_shape)
  ltp_tfmot.load_ticket(model, 'ticket.npz')
  ```
  """
  path = files.check_path(path)
  wrappers = wrapped_model.built_lottery_wrappers(model)
  ticket = read_ticket(path)
  _check_architecture(ticket, wrappers, path)
  if any(w.mask_1_action == 'reinit' for w in wrappers):
    for w in wrappers:
      for weight in w.layer.weights:
        initializers.initializer_for(w.layer, weight)
  _warn_config_differences(ticket, wrappers)

  variables = [v for w in wrappers for v in w.weights]
  saved = [v.numpy() for v in variables]
  try:
    for w, layer in zip(wrappers, ticket.layers, strict=True):
      for mask, value in zip(w.masks, layer.masks, strict=True):
        mask.assign(value.astype(mask.dtype.as_numpy_dtype))
      for snapshot, value in zip(w.snapshots, layer.snapshots, strict=True):
        snapshot.assign(value.astype(snapshot.dtype.as_numpy_dtype))
      w.rounds_done.assign(layer.rounds_done)
      w.snapshot_step.assign(layer.snapshot_step)
    rewind_lib.rewind_weights(wrappers)
  except BaseException:
    for variable, value in zip(variables, saved, strict=True):
      variable.assign(value)
    raise
  logging.info('Loaded the ticket of %d layers from %s.', len(wrappers), os.fspath(path))
  return ticket


def _layer_ticket(w):
  refs = [weight.ref() for weight in w.layer.weights]
  lottery = {attr: getattr(w, attr) for attr in LOTTERY_ATTRS}
  lottery['pruning_schedule'] = w.pruning_schedule.get_config()
  return LayerTicket(
      name=w.layer.name,
      class_name=type(w.layer).__name__,
      weight_names=wrapper_lib.weight_paths(w.layer),
      weight_shapes=tuple(tuple(int(d) for d in weight.shape) for weight in w.layer.weights),
      weight_dtypes=tuple(weight.dtype.base_dtype.name for weight in w.layer.weights),
      prunable=tuple(refs.index(weight.ref()) for weight in w.prunable_weights),
      masks=tuple(mask.numpy() for mask in w.masks),
      snapshots=tuple(snapshot.numpy() for snapshot in w.snapshots),
      rounds_done=int(w.rounds_done.numpy()),
      snapshot_step=int(w.snapshot_step.numpy()),
      lottery=json.loads(json.dumps(lottery)),
  )


def _keys(ticket):
  """The array-key prefix of each layer: its name, with '~n' added to the n-th repeat."""
  keys = []
  for layer in ticket.layers:
    key, n = layer.name, 1
    while key in keys:
      n += 1
      key = f'{layer.name}~{n}'
    keys.append(key)
  return keys


def _encode(ticket):
  """(metadata JSON, {key: array}) of a ticket."""
  layers, arrays = [], {}
  for key, layer in zip(_keys(ticket), ticket.layers, strict=True):
    weights = [{'name': name, 'shape': list(shape), 'dtype': dtype, 'prunable': i in layer.prunable}
               for i, (name, shape, dtype) in enumerate(zip(layer.weight_names, layer.weight_shapes,
                                                            layer.weight_dtypes, strict=True))]
    layers.append({
        'name': layer.name,
        'key': key,
        'class_name': layer.class_name,
        'weights': weights,
        'rounds_done': layer.rounds_done,
        'snapshot_step': layer.snapshot_step,
        'lottery': layer.lottery,
    })
    for i, mask in zip(layer.prunable, layer.masks, strict=True):
      if not np.all((mask == 0) | (mask == 1)):
        raise ValueError(f'the mask of {layer.name}/{layer.weight_names[i]} has values other than 0 and 1')
      arrays[f'masks/{key}/{layer.weight_names[i]}'] = mask.astype(bool)
    for name, snapshot in zip(layer.weight_names, layer.snapshots, strict=True):
      arrays[f'snapshots/{key}/{name}'] = snapshot
  metadata = {
      'format': FORMAT,
      'format_version': FORMAT_VERSION,
      'ltp_tfmot_version': ticket.ltp_tfmot_version,
      'config': ticket.config,
      'layers': layers,
  }
  return json.dumps(metadata, indent=1, sort_keys=True), arrays


def _write_atomically(path, metadata, arrays):
  """Writes the archive, reads it back as a ticket, and only then moves it into place."""
  buffer = io.BytesIO()
  np.savez_compressed(buffer, metadata=np.array(metadata), **arrays)
  files.atomic_write(path, buffer.getvalue(), verify=read_ticket)


def _decode(arrays, path):
  """A validated `Ticket` from the arrays of a file."""

  def fail(message):
    raise TicketFileError(f'{path!r} is not a valid ticket file: {message}')

  if 'metadata' not in arrays:
    fail('it has no metadata entry')
  try:
    metadata = json.loads(str(arrays['metadata'][()]))
  except (ValueError, TypeError, IndexError) as e:
    fail(f'its metadata is not JSON ({e})')
  if not isinstance(metadata, dict) or metadata.get('format') != FORMAT:
    fail(f'its metadata does not say format {FORMAT!r}')
  version = metadata.get('format_version')
  if not isinstance(version, int) or version < 1:
    fail(f'bad format_version {version!r}')
  if version > FORMAT_VERSION:
    raise TicketFileError(f'{path!r} is a ticket of format version {version}, written by a newer ltp_tfmot; '
                          f'this one reads versions up to {FORMAT_VERSION}')
  try:
    layers = tuple(_decode_layer(entry, arrays) for entry in metadata['layers'])
    config = metadata.get('config') or {}
    if not isinstance(config, dict):
      raise ValueError('config is not a dict')
  except (KeyError, TypeError, ValueError) as e:
    fail(f'{type(e).__name__}: {e}')
  return Ticket(layers=layers, config=config, format_version=version,
                ltp_tfmot_version=metadata.get('ltp_tfmot_version'))


def _decode_layer(entry, arrays):
  key, weights = entry['key'], entry['weights']
  names = tuple(str(w['name']) for w in weights)
  shapes = tuple(tuple(int(d) for d in w['shape']) for w in weights)
  prunable = tuple(i for i, w in enumerate(weights) if w['prunable'])
  masks, snapshots = [], []
  for i in prunable:
    masks.append(_array(arrays, f'masks/{key}/{names[i]}', shapes[i]))
  for name, shape in zip(names, shapes, strict=True):
    snapshots.append(_array(arrays, f'snapshots/{key}/{name}', shape))
  rounds_done, snapshot_step = int(entry['rounds_done']), int(entry['snapshot_step'])
  if rounds_done < 0 or snapshot_step < 0:
    raise ValueError(f'layer {entry["name"]!r} has rounds_done {rounds_done} and snapshot_step {snapshot_step}; '
                     'both must be >= 0')
  return LayerTicket(
      name=str(entry['name']),
      class_name=str(entry['class_name']),
      weight_names=names,
      weight_shapes=shapes,
      weight_dtypes=tuple(str(w['dtype']) for w in weights),
      prunable=prunable,
      masks=tuple(m.astype(np.float32) for m in masks),
      snapshots=tuple(snapshots),
      rounds_done=rounds_done,
      snapshot_step=snapshot_step,
      lottery=dict(entry.get('lottery') or {}),
  )


def _array(arrays, key, shape):
  if key not in arrays:
    raise KeyError(f'array {key!r} is missing')
  array = arrays[key]
  if tuple(array.shape) != shape:
    raise ValueError(f'array {key!r} has shape {tuple(array.shape)}, the metadata says {shape}')
  if not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
    raise ValueError(f'array {key!r} has dtype {array.dtype}, not a number type')
  return array


def _check_architecture(ticket, wrappers, path):
  """Raises ValueError naming the first difference in structure; logs a warning for names that differ.

  Wrappers are matched by position (the ticket's layers are in `lottery_wrappers` order): a rebuilt model
  has other automatic layer names (dense_3 for dense_1), so names are a check, not a requirement. Count,
  classes, weight shapes and which weights are pruned must agree.
  """

  def fail(message):
    raise ValueError(f'the ticket {os.fspath(path)!r} does not fit this model: {message} '
                     '(load a ticket into the same architecture, wrapped the same way)')

  if len(ticket.layers) != len(wrappers):
    extra = ([f'{layer.name!r} (ticket only)' for layer in ticket.layers[len(wrappers):]] +
             [f'{w.layer.name!r} (model only)' for w in wrappers[len(ticket.layers):]])
    fail(f'the ticket has {len(ticket.layers)} wrapped layers and the model {len(wrappers)}; first extra: {extra[0]}')
  renamed = []
  for i, (layer, w) in enumerate(zip(ticket.layers, wrappers, strict=True)):
    where = (f'layer {layer.name!r}' if layer.name == w.layer.name else
             f'wrapped layer #{i} ({layer.name!r} in the ticket, {w.layer.name!r} in the model)')
    if layer.class_name != type(w.layer).__name__:
      fail(f'{where} is a {layer.class_name} in the ticket and a {type(w.layer).__name__} in the model')
    names = wrapper_lib.weight_paths(w.layer)
    shapes = tuple(tuple(int(d) for d in weight.shape) for weight in w.layer.weights)
    if len(layer.weight_shapes) != len(shapes):
      fail(f'{where} has {len(layer.weight_shapes)} weights {list(layer.weight_names)} in the ticket and '
           f'{len(shapes)} {list(names)} in the model')
    for name, want, got in zip(layer.weight_names, layer.weight_shapes, shapes, strict=True):
      if want != got:
        fail(f'weight {name!r} of {where} has shape {list(want)} in the ticket and {list(got)} in the model')
    refs = [weight.ref() for weight in w.layer.weights]
    prunable = tuple(refs.index(weight.ref()) for weight in w.prunable_weights)
    if prunable != layer.prunable:
      fail(f'{where} prunes weights {[layer.weight_names[j] for j in layer.prunable]} in the ticket and '
           f'{[names[j] for j in prunable]} in the model')
    if layer.name != w.layer.name or layer.weight_names != names:
      renamed.append(f'#{i} {layer.name!r} {list(layer.weight_names)} -> {w.layer.name!r} {list(names)}')
  if renamed:
    logging.warning('The ticket %s fits this model by position, class and shape, but names differ (ticket -> '
                    'model): %s; loaded by position.', os.fspath(path), '; '.join(renamed))


def _warn_config_differences(ticket, wrappers):
  for layer, w in zip(ticket.layers, wrappers, strict=True):
    current = json.loads(json.dumps(dict({a: getattr(w, a) for a in LOTTERY_ATTRS},
                                         pruning_schedule=w.pruning_schedule.get_config())))
    differences = {k: (v, current.get(k)) for k, v in layer.lottery.items() if current.get(k) != v}
    if differences:
      logging.warning('Layer %r was saved with another lottery configuration (ticket, model): %s; '
                      'the model keeps its own.', layer.name, differences)
