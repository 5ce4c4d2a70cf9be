"""The lock of a run directory: one run works in it at a time, and the lock of a run that was killed is taken over.

While a run works in its directory, `run.lock` there names its process (pid,
host, start time, command). A second run on a directory whose lock names a
live process is refused with `RunLockedError`, naming that process; the lock
of a process that is gone (killed) on this host is taken over (a process
start time recorded with the pid tells a reused pid apart). The lock is a
local file system's (written whole, then linked into place, which fails if
it exists); a directory on another file system (gs://) is not locked.
`storage.RunDirectory.claim` takes it; the runner releases it however it ends.
"""

import datetime
import errno
import json
import os
import secrets
import socket
import sys

from ltp_tfmot import errors
from ltp_tfmot import files

LOCK = 'run.lock'


class RunLock:
  """The lock of one run directory, as this process takes and releases it.

  Args:
    directory: The run directory (its absolute path).
  """

  def __init__(self, directory):
    self.directory = directory
    self._record = None  # the lock this object holds (its content), or None

  @property
  def path(self):
    return os.path.join(self.directory, LOCK)

  def take(self):
    """Takes the directory's lock for this process (`RunDirectory.claim` does); a no-op if it holds it already.

    A lock whose process is gone from this host (killed) is taken over. A
    directory that is not on a local file system, or that this process may
    not write, is not locked.

    Raises:
      RunLockedError: if the lock names a process that may still run.
    """
    if not files.is_local(self.directory) or self._record is not None:
      return
    files.makedirs(self.directory)
    record = json.dumps(_lock_record(), sort_keys=True) + '\n'
    # Written whole under another name, then linked to the lock's (which fails if it exists): a lock is never
    # seen half-written.
    written = self._aside_path()
    try:
      with open(written, 'x') as f:
        f.write(record)
    except OSError as error:
      if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return  # this process writes nothing here, so it needs no lock; its first write says why it cannot
      raise
    try:
      for _ in range(3):  # a stale lock taken over races only with others taking it over
        try:
          os.link(written, self.path)
        except FileExistsError:
          self._remove_stale()
          continue
        self._record = record
        return
    finally:
      os.remove(written)
    raise errors.RunLockedError(f'could not take the lock {self.path}: other processes keep taking it; run the '
                                'same command again')

  def _remove_stale(self):
    """Removes the lock of a process gone from this host; raises `RunLockedError` if its holder may live."""
    aside = self._aside_path()
    try:
      with open(self.path) as f:
        text = f.read()
      holder = json.loads(text)
    except FileNotFoundError:
      return  # released meanwhile
    except ValueError:
      holder = None
    if not isinstance(holder, dict):
      holder = None  # not a lock this module wrote (locks appear whole): nobody's
    if holder is not None and _may_be_running(holder):
      raise errors.RunLockedError(_locked_message(self.directory, holder, self.path))
    try:
      os.rename(self.path, aside)  # only one of the processes taking it over moves it
    except FileNotFoundError:
      return
    with open(aside) as f:
      if f.read() != text:  # a new holder's: put it back
        os.link(aside, self.path)
    os.remove(aside)

  def _aside_path(self):
    """A temporary file name next to the lock (removed as a stale temporary file if a process dies holding it)."""
    return os.path.join(self.directory, f'.{LOCK}.{secrets.token_hex(6)}{files.TEMP_SUFFIX}')

  def release(self):
    """Removes the lock this object took (if it still holds it); a no-op otherwise (the runner's end does it)."""
    if self._record is None:
      return
    try:
      with open(self.path) as f:
        ours = f.read() == self._record
      if ours:
        os.remove(self.path)
    except FileNotFoundError:
      pass
    self._record = None


def _lock_record():
  """What a lock says about the process that holds it."""
  return {'pid': os.getpid(), 'process_start': _process_start(os.getpid()), 'host': socket.gethostname(),
          'started': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC'),
          'command': ' '.join([os.path.basename(sys.argv[0])] + sys.argv[1:]) if sys.argv and sys.argv[0] else ''}


def _process_start(pid):
  """When a process started (clock ticks after boot, from Linux's /proc), or None: tells a reused pid apart."""
  fields = _proc_stat(pid)
  return int(fields[19]) if fields else None


def _proc_stat(pid):
  """The fields of /proc/<pid>/stat after the command name (state first), or None where there is none."""
  try:
    with open(f'/proc/{pid}/stat') as f:
      return f.read().rpartition(')')[2].split()
  except OSError:
    return None


def _may_be_running(holder):
  """Whether the process a lock names may still run: always for another host's, which cannot be asked."""
  if holder.get('host') != socket.gethostname() or not isinstance(holder.get('pid'), int):
    return True
  try:
    os.kill(holder['pid'], 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    pass  # another user's process
  fields = _proc_stat(holder['pid'])
  if fields is None:
    return True  # no /proc to tell more
  recorded = holder.get('process_start')
  return fields[0] != 'Z' and recorded in (None, int(fields[19]))  # a zombie ended; another start: a reused pid


def _locked_message(path, holder, lock_path):
  """The one-line refusal naming the process that holds a run directory."""
  who = f'process {holder.get("pid")} on {holder.get("host")} (started {holder.get("started")}'
  who += f': {holder["command"]})' if holder.get('command') else ')'
  here = holder.get('host') == socket.gethostname()
  fix = ('wait for it to end or stop it, then run the same command again' if here else
         f'wait for it to end or stop it, then run the same command again (if it is gone, delete {lock_path})')
  return f'run directory {path} is in use by {who}, so this run did nothing: {fix}'
