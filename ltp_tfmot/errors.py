"""The library's own errors: one family under `LtpError`, each also the built-in error it refines.

`except ltp_tfmot.LtpError` catches every failure the library itself
diagnoses; `except OSError` / `ValueError` / `RuntimeError` still catch the
ones of those kinds. Wrong types raise plain `TypeError` and wrong values plain
`ValueError` (see `ltp_tfmot.validation`).
"""


class LtpError(Exception):
  """Base class of ltp_tfmot's own errors."""


class StorageError(LtpError, OSError):
  """A run-directory file could not be written (disk full, no permission, ...); files written before are intact.

  `errno` is the failed write's; the message names the file, the reason and what to do.
  """


class CorruptFileError(LtpError, ValueError):
  """A run-directory file is truncated or corrupt, or does not match its level's manifest."""


class TicketFileError(LtpError, ValueError):
  """A ticket file that cannot be read: truncated, corrupt, or not a ticket."""


class MissingDependencyError(LtpError, ImportError):
  """An optional package a feature needs is not installed; the message names the `pip install` that adds it."""


class TrainingSetupError(LtpError, ValueError):
  """A training that cannot run as set up (e.g. lottery wrappers without `UpdateLotteryStep`); nothing was trained.

  Raised in Python while Keras traces the first training step, before it runs.
  """

  # Kept one line: TensorFlow's autograph passes an error with this attribute on as it is (rather than rewriting
  # it into an "in user code:" traceback), and Keras adds no "Exception encountered when calling layer" text to
  # one with this.
  ag_pass_through = True
  _keras_call_info_injected = True


class ExportError(LtpError, RuntimeError):
  """The converted model does not load, run or match Keras; nothing was written."""


class RunLockedError(LtpError, RuntimeError):
  """Another process runs in the run directory (its `run.lock` names it); nothing was written."""


class WorkerLostError(LtpError, RuntimeError):
  """A worker of a multi-worker run died or cannot be reached; this worker stopped too, writing nothing more."""


class TrainingPathChangedError(LtpError, ValueError):
  """A resumed run would train on another numeric path than its finished levels; nothing was changed.

  The path is XLA or not, the threads, the precision, the TensorFlow version
  and the CPU; the message names the setting and how to go on.
  """


class TrainingDivergedError(LtpError, RuntimeError):
  """A level's training loss became NaN or infinite; the level is recorded as failed, not written."""


class JobsFailedError(LtpError, RuntimeError):
  """Jobs of a run failed (see each level's `.failed.json`); every other job that could run has finished.

  `failures` lists one dict per failed job: replicate, level, branch, error
  (its type and message) and traceback.
  """

  def __init__(self, message, failures=()):
    super().__init__(message)
    self.failures = list(failures)


class NoStableRewindStepError(LtpError, ValueError):
  """No rewind step that was analysed has an instability below the threshold."""


class UsageError(LtpError, ValueError):
  """A command line the `ltp-tfmot` command cannot run (a missing or malformed argument); it exits with status 2."""
