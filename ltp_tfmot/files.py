"""File helpers shared by ticket files, exports and experiment runs: local paths and TensorFlow's file systems.

A path with a scheme (`gs://bucket/runs`, `s3://...`, `hdfs://...`, `ram://...`,
`file://...`) goes through `tf.io.gfile`, so every file system TensorFlow knows
works; TensorFlow is imported only then. Any other path is a local one and uses
`os` and `open` directly. Errors of the other file systems are raised as
`OSError` with the closest errno (e.g. `FileNotFoundError` for a missing file,
ENOSPC for an exhausted quota), so callers handle both kinds alike.

`atomic_write` is the one way the package writes a file: a reader sees the old
file or the new one, never part of one.
"""

import contextlib
import errno
import io
import os
import re
import secrets

from ltp_tfmot import errors

TEMP_SUFFIX = '.tmp'
_SCHEME = re.compile(r'^[A-Za-z][A-Za-z0-9+.\-]*://')


def check_path(path, name='path'):
  """Raises TypeError unless `path` is a str or an os.PathLike; returns it as a str."""
  if not isinstance(path, (str, os.PathLike)):
    raise TypeError(f'{name} must be a str or os.PathLike, got {type(path).__name__}')
  return os.fspath(path)


def is_local(path):
  """Whether `path` is a local path (no scheme such as gs://), handled with `os` rather than `tf.io.gfile`."""
  return not _SCHEME.match(os.fspath(path))


def abspath(path):
  """`os.path.abspath` of a local path; a path of another file system as it is (already absolute)."""
  path = os.fspath(path)
  return os.path.abspath(path) if is_local(path) else path


def commonpath(paths):
  """`os.path.commonpath` that keeps a shared scheme: gs://b/runs/x and gs://b/runs/y give gs://b/runs.

  Raises:
    ValueError: for paths on different file systems (or as `os.path.commonpath` does).
  """
  schemes = {(_SCHEME.match(p) or [''])[0] for p in map(os.fspath, paths)}
  if len(schemes) > 1:
    raise ValueError(f'paths on different file systems ({sorted(schemes)}) have no common folder')
  scheme = schemes.pop() if schemes else ''
  return scheme + os.path.commonpath([os.fspath(p)[len(scheme):] for p in paths])


def is_temp_file(name):
  """Whether a file name is one of `atomic_write`'s temporary files."""
  return name.startswith('.') and name.endswith(TEMP_SUFFIX)


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def _gfile():
  return _tf().io.gfile


def _errno_of(error):
  tf = _tf()
  for kind, number in ((tf.errors.NotFoundError, errno.ENOENT), (tf.errors.AlreadyExistsError, errno.EEXIST),
                       (tf.errors.PermissionDeniedError, errno.EACCES),
                       (tf.errors.UnauthenticatedError, errno.EACCES),
                       (tf.errors.ResourceExhaustedError, errno.ENOSPC)):
    if isinstance(error, kind):
      return number
  return errno.EIO


@contextlib.contextmanager
def _as_os_errors(path):
  """Re-raises TensorFlow's file-system errors (`tf.errors.OpError`) as `OSError`s naming `path`."""
  try:
    yield
  except _tf().errors.OpError as error:
    number = _errno_of(error)
    reason = error.message or os.strerror(number)
    raise OSError(number, f'{reason} ({type(error).__name__})', os.fspath(path)) from error


def exists(path):
  if is_local(path):
    return os.path.exists(path)
  with _as_os_errors(path):
    return _gfile().exists(path)


def isdir(path):
  if is_local(path):
    return os.path.isdir(path)
  with _as_os_errors(path):
    return _gfile().isdir(path)


def isfile(path):
  if is_local(path):
    return os.path.isfile(path)
  with _as_os_errors(path):
    return _gfile().exists(path) and not _gfile().isdir(path)


def listdir(path):
  """The names in a directory (without a trailing '/' for subdirectories)."""
  if is_local(path):
    return os.listdir(path)
  with _as_os_errors(path):
    return [name.rstrip('/') for name in _gfile().listdir(path)]


def walk(path):
  """(directory, subdirectory names, file names) of every directory under `path`, as `os.walk`."""
  if is_local(path):
    return os.walk(path)
  with _as_os_errors(path):
    return [(root, [d.rstrip('/') for d in dirs], names) for root, dirs, names in _gfile().walk(path)]


def makedirs(path):
  """Creates a directory and its parents; nothing happens if it exists."""
  if is_local(path):
    os.makedirs(path, exist_ok=True)
    return
  with _as_os_errors(path):
    _gfile().makedirs(path)


def remove(path):
  if is_local(path):
    os.remove(path)
    return
  with _as_os_errors(path):
    _gfile().remove(path)


def getsize(path):
  if is_local(path):
    return os.path.getsize(path)
  with _as_os_errors(path):
    return _gfile().stat(path).length


def open_read(path):
  """A binary, seekable file object of `path`'s content (of another file system: read into memory first)."""
  if is_local(path):
    return open(path, 'rb')  # pylint: disable=consider-using-with
  return io.BytesIO(read_bytes(path))


def read_bytes(path):
  if is_local(path):
    with open(path, 'rb') as f:
      return f.read()
  with _as_os_errors(path):
    with _gfile().GFile(path, 'rb') as f:
      return f.read()


def check_directory_of(path):
  """Raises an error if a local file cannot be written at `path`: before any work goes into its content.

  The directory must exist (else ValueError), and a file must be creatable
  in it (else `StorageError`: a read-only folder or file system, no
  permission): an empty temporary file is made there and removed again, as
  `atomic_write` will, so the check is what the write will meet, for root too.

  On other file systems (object stores such as gs:// have no directories: an
  object is written under any prefix) nothing is checked; a missing bucket
  fails when the file is written.
  """
  if not is_local(path):
    return
  directory = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(directory):
    raise ValueError(f'directory {directory!r} of path does not exist')
  probe = _temp_name(os.path.abspath(path))
  try:
    os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
  except OSError as error:
    failure = errors.StorageError(f'cannot write {path}: {error.strerror or error} (in {directory}), so nothing was '
                                  'done: choose a folder you can write to')
    failure.errno = error.errno
    raise failure from error
  os.remove(probe)


def _temp_name(path):
  """The temporary file `atomic_write` writes `path` through: hidden, random, in the same directory."""
  directory, name = os.path.split(path)
  return os.path.join(directory, f'.{name}.{secrets.token_hex(6)}{TEMP_SUFFIX}')


def _fsync_directory(directory):
  try:
    handle = os.open(directory, os.O_RDONLY)
  except OSError:
    return  # e.g. a platform that cannot open directories: the rename is still atomic
  try:
    os.fsync(handle)
  except OSError:
    pass
  finally:
    os.close(handle)


def _remove_quietly(remove_fn, path):
  try:
    remove_fn(path)
  except Exception:  # pylint: disable=broad-except
    pass  # already gone, or undeletable: a later run of the experiment runner removes it


def atomic_write(path, data, verify=None, write=None):
  """Writes `data` to `path` so that a reader sees the old file or the new one, never part of one.

  The bytes go to a temporary file in the same directory
  (`.<name>.<random>.tmp`, with the permissions `open` gives a new file). On a
  local file system it is flushed and fsynced, `verify` checks it, and
  `os.replace` moves it over `path`; the directory is fsynced after, so the
  new file survives a power loss. On any failure (KeyboardInterrupt included)
  the temporary file is removed and `path` keeps its old content (or stays
  absent).

  On other file systems (a path with a scheme, e.g. gs://) the temporary file
  goes through `tf.io.gfile`: closing it commits (uploads) it, there is no
  fsync, and it is moved with `tf.io.gfile.rename(temp, path,
  overwrite=True)`, which is what the file system makes of a rename: on an
  object store (GCS, S3) a copy then a delete, so `path` appears whole (an
  object write is atomic) but the temporary object may outlive a killed
  process.

  Args:
    path: The file to write; its directory is not created.
    data: The bytes to write.
    verify: An optional function(temporary path) called once the file is
      written and before it is moved into place: it raises to refuse the file
      (the error propagates, nothing is written).
    write: An optional function(file, data) that writes the bytes to the open
      temporary file (default: `file.write(data)`); the experiment runner's
      hooks use it.

  Raises:
    OSError: if the file cannot be written (disk full, no permission, a
      missing directory); other file systems' errors are turned into OSError.

  Example:

  ```python
  files.atomic_write('runs/config.json', b'{}\\n')
  files.atomic_write('gs://bucket/model.tflite', flatbuffer, verify=check_it_loads)
  ```
  """
  path = os.fspath(path)
  write = write if write is not None else (lambda f, content: f.write(content))
  directory = os.path.dirname(abspath(path))
  temp = _temp_name(abspath(path))
  if is_local(path):
    try:
      with open(temp, 'xb') as f:  # not mkstemp: the file gets the umask's permissions, not 0o600
        write(f, data)
        f.flush()
        os.fsync(f.fileno())
      if verify is not None:
        verify(temp)
      os.replace(temp, path)
    except BaseException:
      _remove_quietly(os.remove, temp)
      raise
    _fsync_directory(directory)
    return
  gfile = _gfile()
  try:
    with _as_os_errors(path):
      with gfile.GFile(temp, 'wb') as f:
        write(f, data)
    if verify is not None:
      verify(temp)
    with _as_os_errors(path):
      gfile.rename(temp, path, overwrite=True)
  except BaseException:
    _remove_quietly(gfile.remove, temp)
    raise
