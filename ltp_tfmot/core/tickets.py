"""The ticket file format both Keras front ends write and read: the masks and rewind point of a wrapped model.

A ticket is what a lottery-ticket run finds: which weights survive (the masks)
and what they start from (the rewind snapshot). This module holds the file
itself, knowing no Keras: the `Ticket` and `LayerTicket` records, writing a
ticket atomically (`write_ticket`), reading and validating one (`read_ticket`),
checking that a model's wrapped layers (described by `LayerLayout`s) fit one
(`check_fits`, `read_fitting_ticket`) and assigning it to their wrappers, all
or nothing (`apply_ticket`). The front ends (`ltp_tfmot.keras2.tickets`,
`ltp_tfmot.keras3.tickets`) turn their wrappers into these records and back,
so a ticket found with one front end loads into a model of the other.

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
to a repeated one). Wrapped layers are matched by position (in
`lottery_wrappers` order): a model must have the same count, and per layer the
same class, weight shapes and prunable weights; layer and weight names that
differ (a rebuilt model's automatic names) are logged as a warning. Files are
written atomically (`ltp_tfmot.files.atomic_write`: a temporary file in the
same directory, read back, then renamed), so a crash never leaves half a
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

FORMAT = 'ltp_tfmot.ticket'
FORMAT_VERSION = 1
LOTTERY_ATTRS = ('criterion', 'scope', 'layer_rate', 'mask_0_action', 'mask_1_action', 'dynamic_weight_rescaling',
                 'rewind_step', 'seed')


TicketFileError = errors.TicketFileError


@dataclasses.dataclass(frozen=True, eq=False)
class LayerLayout:
  """What a ticket must agree with in one wrapped layer of a model: its structure and its lottery configuration.

  Attributes:
    name: The wrapped layer's name.
    class_name: Its class, e.g. 'Dense'.
    weight_names: Its weights' names relative to the layer, in `layer.weights` order.
    weight_shapes: Their shapes.
    weight_dtypes: Their dtypes, e.g. 'float32'.
    prunable: Indices (into the weights) of the prunable weights.
    lottery: The wrapper's lottery configuration (criterion, scope, ...,
      pruning_schedule), as `lottery_config` gives it.
  """
  name: str
  class_name: str
  weight_names: tuple[str, ...]
  weight_shapes: tuple[tuple[int, ...], ...]
  weight_dtypes: tuple[str, ...]
  prunable: tuple[int, ...]
  lottery: dict


@dataclasses.dataclass(frozen=True, eq=False)
class LayerTicket(LayerLayout):
  """The ticket of one wrapped layer: its `LayerLayout` with the values found.

  Attributes:
    masks: One 0/1 array per prunable weight.
    snapshots: The rewind-point value of every weight.
    rounds_done: Pruning rounds done.
    snapshot_step: The training step of the snapshot.
  """
  masks: tuple[np.ndarray, ...]
  snapshots: tuple[np.ndarray, ...]
  rounds_done: int
  snapshot_step: int

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


def lottery_config(wrapper):
  """A wrapper's lottery configuration as JSON values: its `LOTTERY_ATTRS` and its schedule's config.

  Args:
    wrapper: A lottery wrapper of either front end.

  Returns:
    A dict, as a ticket's `lottery` entry holds it.
  """
  lottery = {attr: getattr(wrapper, attr) for attr in LOTTERY_ATTRS}
  lottery['pruning_schedule'] = wrapper.pruning_schedule.get_config()
  return json.loads(json.dumps(lottery))


def layer_ticket(layout, wrapper, read):
  """The ticket of one wrapped layer: its layout with its wrapper's masks, snapshots and counters.

  Args:
    layout: The wrapped layer's `LayerLayout`.
    wrapper: Its lottery wrapper (of either front end): `masks`, `snapshots`, `rounds_done`, `snapshot_step`.
    read: `f(variable)`: the variable's value as a NumPy array.

  Returns:
    A `LayerTicket`.
  """
  return LayerTicket(
      **{field.name: getattr(layout, field.name) for field in dataclasses.fields(LayerLayout)},
      masks=tuple(read(mask) for mask in wrapper.masks),
      snapshots=tuple(read(snapshot) for snapshot in wrapper.snapshots),
      rounds_done=int(read(wrapper.rounds_done)),
      snapshot_step=int(read(wrapper.snapshot_step)),
  )


def write_ticket(path, layers, config=None):
  """Writes the tickets of a model's wrapped layers to one file, atomically.

  Args:
    path: The file to write: a local path or one of a file system `tf.io.gfile` knows (gs://...).
    layers: One `LayerTicket` per wrapper, in `lottery_wrappers` order.
    config: An optional JSON-serialisable dict stored with the ticket.

  Returns:
    The `Ticket` written.

  Raises:
    ValueError: for a config that is not a JSON-serialisable dict, a mask of values other than 0 and 1, or a
      missing local directory. Nothing is written then.
    OSError: if the file cannot be written.
  """
  config = {} if config is None else config
  if not isinstance(config, dict):
    raise ValueError(f'config must be a dict, got {type(config).__name__}')
  try:
    config = json.loads(json.dumps(config))
  except (TypeError, ValueError) as e:
    raise ValueError(f'config must be JSON-serialisable: {e}') from e
  path = files.check_path(path)
  files.check_directory_of(path)
  ticket = Ticket(layers=tuple(layers), config=config,
                  ltp_tfmot_version=getattr(sys.modules.get('ltp_tfmot'), '__version__', None))
  metadata, arrays = _encode(ticket)
  buffer = io.BytesIO()
  np.savez_compressed(buffer, metadata=np.array(metadata), **arrays)
  files.atomic_write(path, buffer.getvalue(), verify=read_ticket)
  logging.info('Saved the ticket of %d layers to %s.', len(ticket.layers), path)
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


def read_fitting_ticket(path, layouts):
  """Reads a ticket file and checks that it fits a model's wrapped layers (`check_fits`).

  Args:
    path: A file written by `save_ticket`.
    layouts: One `LayerLayout` per wrapper of the model, in `lottery_wrappers` order.

  Returns:
    The `Ticket`.

  Raises:
    FileNotFoundError: if there is no such file.
    TicketFileError: (a ValueError) for a truncated or corrupt file.
    ValueError: if the ticket does not fit the layers (see `check_fits`).
  """
  ticket = read_ticket(path)
  check_fits(ticket, layouts, path)
  return ticket


def apply_ticket(ticket, wrappers, read, numpy_dtype, rewind):
  """Assigns a ticket's masks, snapshots and counters to fitting wrappers, then rewinds them; all or nothing.

  Args:
    ticket: A `Ticket` that fits the wrappers (`check_fits`).
    wrappers: The model's lottery wrappers (of either front end), in `lottery_wrappers` order.
    read: `f(variable)`: the variable's value as a NumPy array.
    numpy_dtype: `f(variable)`: the NumPy dtype a value is cast to before it is assigned to the variable.
    rewind: `f(wrappers)`: sets the weights as a round boundary does (the front end's `rewind_weights`).

  Raises:
    Whatever `rewind` raises; every variable of the wrappers is given its value back first.
  """
  variables = [v for w in wrappers for v in w.weights]
  saved = [read(v) for v in variables]
  try:
    for w, layer in zip(wrappers, ticket.layers, strict=True):
      for mask, value in zip(w.masks, layer.masks, strict=True):
        mask.assign(value.astype(numpy_dtype(mask)))
      for snapshot, value in zip(w.snapshots, layer.snapshots, strict=True):
        snapshot.assign(value.astype(numpy_dtype(snapshot)))
      w.rounds_done.assign(layer.rounds_done)
      w.snapshot_step.assign(layer.snapshot_step)
    rewind(wrappers)
  except BaseException:
    for variable, value in zip(variables, saved, strict=True):
      variable.assign(value)
    raise


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


def check_fits(ticket, layouts, path):
  """Raises ValueError naming the first difference in structure; logs a warning for names and settings that differ.

  Wrapped layers are matched by position (the ticket's layers are in `lottery_wrappers` order): a rebuilt model
  has other automatic layer names (dense_3 for dense_1), so names are a check, not a requirement. Count,
  classes, weight shapes and which weights are pruned must agree. A lottery configuration that differs from the
  ticket's is logged: the model keeps its own.

  Args:
    ticket: A `Ticket`.
    layouts: One `LayerLayout` per wrapper of the model, in `lottery_wrappers` order.
    path: The ticket's file, for the messages.

  Raises:
    ValueError: if the ticket does not fit the model.
  """

  def fail(message):
    raise ValueError(f'the ticket {os.fspath(path)!r} does not fit this model: {message} '
                     '(load a ticket into the same architecture, wrapped the same way)')

  if len(ticket.layers) != len(layouts):
    extra = ([f'{layer.name!r} (ticket only)' for layer in ticket.layers[len(layouts):]] +
             [f'{model.name!r} (model only)' for model in layouts[len(ticket.layers):]])
    fail(f'the ticket has {len(ticket.layers)} wrapped layers and the model {len(layouts)}; first extra: {extra[0]}')
  renamed = []
  for i, (layer, model) in enumerate(zip(ticket.layers, layouts, strict=True)):
    where = (f'layer {layer.name!r}' if layer.name == model.name else
             f'wrapped layer #{i} ({layer.name!r} in the ticket, {model.name!r} in the model)')
    if layer.class_name != model.class_name:
      fail(f'{where} is a {layer.class_name} in the ticket and a {model.class_name} in the model')
    names = model.weight_names
    if len(layer.weight_shapes) != len(model.weight_shapes):
      fail(f'{where} has {len(layer.weight_shapes)} weights {list(layer.weight_names)} in the ticket and '
           f'{len(model.weight_shapes)} {list(names)} in the model')
    for name, want, got in zip(layer.weight_names, layer.weight_shapes, model.weight_shapes, strict=True):
      if want != got:
        fail(f'weight {name!r} of {where} has shape {list(want)} in the ticket and {list(got)} in the model')
    if model.prunable != layer.prunable:
      fail(f'{where} prunes weights {[layer.weight_names[j] for j in layer.prunable]} in the ticket and '
           f'{[names[j] for j in model.prunable]} in the model')
    if layer.name != model.name or layer.weight_names != names:
      renamed.append(f'#{i} {layer.name!r} {list(layer.weight_names)} -> {model.name!r} {list(names)}')
  if renamed:
    logging.warning('The ticket %s fits this model by position, class and shape, but names differ (ticket -> '
                    'model): %s; loaded by position.', os.fspath(path), '; '.join(renamed))
  for layer, model in zip(ticket.layers, layouts, strict=True):
    differences = {k: (v, model.lottery.get(k)) for k, v in layer.lottery.items() if model.lottery.get(k) != v}
    if differences:
      logging.warning('Layer %r was saved with another lottery configuration (ticket, model): %s; '
                      'the model keeps its own.', layer.name, differences)
