"""File helpers shared by ticket files, exports and experiment runs."""

import os


def check_path(path, name='path'):
  """Raises TypeError unless `path` is a str or an os.PathLike."""
  if not isinstance(path, (str, os.PathLike)):
    raise TypeError(f'{name} must be a str or os.PathLike, got {type(path).__name__}')
  return os.fspath(path)
