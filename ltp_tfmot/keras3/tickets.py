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
from ltp_tfmot.core import tickets as core_tickets
from ltp_tfmot.keras3 import rewind as rewind_lib
from ltp_tfmot.keras3 import wrapped_model
from ltp_tfmot.keras3 import wrapper as wrapper_lib


def save_ticket(model, path, config=None):
  """Writes the masks and rewind snapshot of every wrapper of a Keras 3 model to one file.

  Saved per `PruneLotteryTicket`: masks, the snapshot of all the layer's
  weights, rounds done, the snapshot step and the wrapper's lottery
  configuration, with the architecture signature that `load_ticket` checks.
  The model is not changed. The file is written atomically.

  Args:
    model: A built wrapped Keras 3 model (or layer, or list of layers) whose
      rewind snapshot has been taken.
    path: The file to write (`.npz` is the customary suffix; none is added):
      a local path or one of a file system `tf.io.gfile` knows (gs://...).
    config: An optional JSON-serialisable dict stored with the ticket (e.g. the
      experiment's settings and results).

  Returns:
    The `Ticket` written.

  Raises:
    ValueError: for no (built) wrapper, a wrapper without a snapshot, a config
      that is not a JSON-serialisable dict, or a missing local directory.
      Nothing is written then.
    OSError: if the file cannot be written.
  """
  wrappers = wrapped_model.built_lottery_wrappers(model)
  rewind_lib.check_snapshots(wrappers)
  return core_tickets.write_ticket(
      path, [core_tickets.layer_ticket(_layout(w), w, wrapped_model.value) for w in wrappers], config)


def load_ticket(model, path):
  """Applies a ticket file (of either front end) to a fresh wrapped Keras 3 model of the same architecture.

  Assigns each wrapper's masks, snapshot, rounds done and snapshot step, then
  sets the weights as a round boundary does (`ltp_tfmot.rewind_weights`): with
  the default mask_1_action='rewind' and mask_0_action='zero' the prunable
  weights become snapshot * mask and the others (biases) their snapshot, ready
  to retrain. The wrappers keep their own lottery configuration; differences
  from the ticket's are logged as a warning. The optimizer is not touched.

  Args:
    model: A built wrapped Keras 3 model (or layer, or list of layers), e.g.
      the same model-building code run again and wrapped the same way.
    path: A file written by `save_ticket` of either front end.

  Returns:
    The `Ticket` applied.

  Raises:
    FileNotFoundError: if there is no such file.
    TicketFileError: (a ValueError) for a truncated or corrupt file.
    ValueError: if the model's wrappers differ from the ticket's (count,
      classes, weight shapes or prunable weights: the message names the first
      difference), the model has no built wrapper, or 'reinit' finds no
      initializer. Wrappers are matched by position; layer or weight names that
      differ are logged as a warning. In every case the model is left unchanged.
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
