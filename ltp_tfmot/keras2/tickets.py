"""Ticket files of Keras 2 models: the masks and rewind point of a wrapped model, in one file.

A ticket is what a lottery-ticket run finds: which weights survive (the masks)
and what they start from (the rewind snapshot). `save_ticket` writes it for
every `PruneLotteryTicket` of a model; `load_ticket` puts it into a fresh
wrapped model of the same architecture, ready to retrain; `read_ticket` reads
it without a model. The file format, which the Keras 3 front end writes and
reads too, is `ltp_tfmot.core.tickets`' (see its docstring): a ticket found
with either front end loads into a model of the same architecture in the
other.
"""

import os

from absl import logging

from ltp_tfmot import files
from ltp_tfmot.core import tickets as core_tickets
from ltp_tfmot.keras2 import initializers
from ltp_tfmot.keras2 import rewind as rewind_lib
from ltp_tfmot.keras2 import wrapped_model
from ltp_tfmot.keras2 import wrapper as wrapper_lib

# The format's names, where they were before both front ends shared them.
FORMAT, FORMAT_VERSION, LOTTERY_ATTRS = core_tickets.FORMAT, core_tickets.FORMAT_VERSION, core_tickets.LOTTERY_ATTRS
Ticket, LayerTicket, TicketFileError = core_tickets.Ticket, core_tickets.LayerTicket, core_tickets.TicketFileError
read_ticket = core_tickets.read_ticket


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
  return core_tickets.write_ticket(path, [core_tickets.layer_ticket(_layout(w), w, _numpy) for w in wrappers],
                                   config)


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
  ticket = core_tickets.read_fitting_ticket(path, [_layout(w) for w in wrappers])
  if any(w.mask_1_action == 'reinit' for w in wrappers):
    for w in wrappers:
      for weight in w.layer.weights:
        initializers.initializer_for(w.layer, weight)
  core_tickets.apply_ticket(ticket, wrappers, _numpy, lambda variable: variable.dtype.as_numpy_dtype,
                            rewind_lib.rewind_weights)
  logging.info('Loaded the ticket of %d layers from %s.', len(wrappers), os.fspath(path))
  return ticket


def _numpy(variable):
  return variable.numpy()


def _layout(w):
  """The `LayerLayout` of a Keras 2 wrapper's layer."""
  refs = [weight.ref() for weight in w.layer.weights]
  return core_tickets.LayerLayout(
      name=w.layer.name,
      class_name=type(w.layer).__name__,
      weight_names=wrapper_lib.weight_paths(w.layer),
      weight_shapes=tuple(tuple(int(d) for d in weight.shape) for weight in w.layer.weights),
      weight_dtypes=tuple(weight.dtype.base_dtype.name for weight in w.layer.weights),
      prunable=tuple(refs.index(weight.ref()) for weight in w.prunable_weights),
      lottery=core_tickets.lottery_config(w),
  )
