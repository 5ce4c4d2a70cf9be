"""Ticket files of Keras 3 models: the masks and rewind point of a wrapped model, in the Keras 2 front end's format.

A ticket is what a lottery-ticket run finds: which weights survive (the masks)
and what they start from (the rewind snapshot). `save_ticket` writes it for
every `PruneLotteryTicket` of a Keras 3 model; `load_ticket` puts it into a
fresh wrapped model of the same architecture, ready to retrain. The file is
`ltp_tfmot.core.tickets`' format, the one the Keras 2 front end writes and
reads: layers, weights and classes are named alike in both Kerases ('kernel',
'Dense'), so a ticket found with one front end loads into a model of the same
architecture in the other. `ltp_tfmot.read_ticket` reads a file of either.
Values are read and assigned between training steps, on either backend.
"""

import os

from absl import logging

from ltp_tfmot import files
from ltp_tfmot.core import rewind as core_rewind
from ltp_tfmot.core import tickets as core_tickets
from ltp_tfmot.keras3 import rewind as rewind_lib
from ltp_tfmot.keras3 import wrapped_model
from ltp_tfmot.keras3 import wrapper as wrapper_lib


def save_ticket(model, path, config=None):
  """Writes the masks and rewind snapshot of every wrapper of a Keras 3 model to one ticket file.

  As `ltp_tfmot.keras2.tickets.save_ticket`, in the same format: per wrapper
  the masks, the snapshot of every weight of its layer, the round and
  snapshot counters and its lottery configuration. The model is not changed;
  the file is written atomically.

  Args:
    model: A built wrapped Keras 3 model (or layer, or list of layers) with
      its rewind snapshot taken.
    path: The file to write (customarily `.npz`), local or gs://...
    config: An optional JSON-serialisable dict stored with the ticket.

  Returns:
    The `Ticket` written.

  Raises:
    ValueError: for a model without built wrappers or a snapshot, a config
      that is no JSON-serialisable dict, or a missing local directory;
      nothing is written then.
    OSError: if the file cannot be written.
  """
  wrappers = wrapped_model.built_lottery_wrappers(model)
  core_rewind.check_snapshots(wrappers)
  return core_tickets.write_ticket(
      path, [core_tickets.layer_ticket(_layout(w), w, wrapped_model.value) for w in wrappers], config)


def load_ticket(model, path):
  """Puts a ticket file of either front end into a wrapped Keras 3 model of the same architecture.

  As `ltp_tfmot.keras2.tickets.load_ticket`: the masks, snapshots and
  counters are assigned and the weights rewound as at a round boundary
  (`ltp_tfmot.rewind_weights`), ready to retrain; the wrappers keep their own
  lottery configuration (differences are logged) and the optimizer is left
  alone.

  Args:
    model: A built wrapped Keras 3 model (or layer, or list of layers).
    path: A ticket file, written by either front end.

  Returns:
    The `Ticket` loaded.

  Raises:
    FileNotFoundError: if the file does not exist.
    TicketFileError: (a ValueError) if it is truncated or corrupt.
    ValueError: if the ticket does not fit the model (wrapper count, a
      class, a weight shape or the pruned weights differ; names may differ,
      which is logged), the model has no built wrapper, or a 'reinit' rewind
      finds no initializer. The model is unchanged whenever it raises.
  """
  path = files.check_path(path)
  wrappers = wrapped_model.built_lottery_wrappers(model)
  ticket = core_tickets.read_fitting_ticket(path, [_layout(w) for w in wrappers])
  core_tickets.apply_ticket(ticket, wrappers, wrapped_model.value, lambda variable: variable.dtype,
                            rewind_lib.rewind_weights)
  logging.info('Loaded the ticket of %d layers from %s.', len(wrappers), os.fspath(path))
  return ticket


def _layout(w):
  """The `LayerLayout` of a Keras 3 wrapper's layer."""
  positions = {id(weight): i for i, weight in enumerate(w.layer.weights)}
  return core_tickets.LayerLayout(
      name=w.layer.name,
      class_name=type(w.layer).__name__,
      weight_names=wrapper_lib.weight_paths(w.layer),
      weight_shapes=tuple(tuple(int(d) for d in weight.shape) for weight in w.layer.weights),
      weight_dtypes=tuple(str(weight.dtype) for weight in w.layer.weights),
      prunable=tuple(positions[id(weight)] for weight in w.prunable_weights),
      lottery=core_tickets.lottery_config(w),
  )
