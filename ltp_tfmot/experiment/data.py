"""Datasets of a run: MNIST, CIFAR-10 or your own arrays, split into train, validation and test."""

import collections
import hashlib
import os
import socket

import numpy as np
import tf_keras as keras

from ltp_tfmot import datasets as datasets_lib

BUILTIN = ('mnist', 'cifar10')
CIFAR10_MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
CIFAR10_STD = np.array([0.2470, 0.2435, 0.2616], np.float32)
CIFAR10_HOST = ('www.cs.toronto.edu', 443)
_SPLIT_SEED = 0

Split = collections.namedtuple('Split', ['x_train', 'y_train', 'x_val', 'y_val', 'x_test', 'y_test', 'source'])
Split.__doc__ = """Train, validation and test arrays (float32 inputs, int64 labels), and where they came from."""


def load_cifar10():
  """CIFAR-10 through Keras, scaled to [0, 1] and standardised per channel.

  Returns:
    (x_train, y_train, x_test, y_test) as float32 NHWC images and int64 labels.

  Raises:
    ValueError: at once when it is not in Keras' cache and its server cannot
      be reached (offline), or when loading fails.
  """
  cache = os.path.join(os.path.expanduser(os.environ.get('KERAS_HOME', os.path.join('~', '.keras'))), 'datasets',
                       'cifar-10-batches-py')
  if not os.path.isdir(cache):
    try:
      socket.create_connection(CIFAR10_HOST, timeout=5).close()
    except OSError as error:
      raise ValueError(f'CIFAR-10 is not in the Keras cache ({cache}) and cannot be downloaded from '
                       f'{CIFAR10_HOST[0]} ({error}). Put cifar-10-batches-py there, or pass your own arrays '
                       '(Python API: data=(x_train, y_train, x_test, y_test)).') from error
  previous = socket.getdefaulttimeout()
  socket.setdefaulttimeout(60)
  try:
    (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
  except Exception as error:  # pylint: disable=broad-except
    raise ValueError(f'CIFAR-10 could not be loaded through Keras: {error}') from error
  finally:
    socket.setdefaulttimeout(previous)

  def prepare(images):
    return ((images.astype(np.float32) / 255.0) - CIFAR10_MEAN) / CIFAR10_STD

  return prepare(x_train), y_train.reshape(-1).astype(np.int64), prepare(x_test), y_test.reshape(-1).astype(np.int64)


def _as_arrays(data):
  """(x_train, y_train, x_test, y_test) from a tuple, a list, or a `ltp_tfmot.datasets.Dataset`."""
  if hasattr(data, 'x_train') and hasattr(data, 'y_test'):
    data = (data.x_train, data.y_train, data.x_test, data.y_test)
  if not isinstance(data, (tuple, list)) or len(data) != 4:
    raise ValueError('data must be (x_train, y_train, x_test, y_test) arrays or a ltp_tfmot.datasets.Dataset, '
                     f'got {type(data).__name__}')
  names = ('x_train', 'y_train', 'x_test', 'y_test')
  arrays = [np.asarray(a) for a in data]
  for name, x, y in ((names[0], arrays[0], arrays[1]), (names[2], arrays[2], arrays[3])):
    label = 'y' + name[1:]
    if x.ndim < 2 or not np.issubdtype(x.dtype, np.number):
      raise ValueError(f'{name} must be a numeric array of shape (examples, ...), got dtype {x.dtype} and shape '
                       f'{x.shape}')
    if y.ndim == 2 and y.shape[1] == 1:
      y = y.reshape(-1)
    if y.ndim != 1 or len(y) != len(x):
      raise ValueError(f'{label} must hold one integer class per example of {name} ({len(x)}), got shape {y.shape}')
    if not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
      raise ValueError(f'{label} must hold class indices (integers >= 0), got dtype {y.dtype}')
  if arrays[0].shape[1:] != arrays[2].shape[1:]:
    raise ValueError(f'x_train and x_test must have the same example shape, got {arrays[0].shape[1:]} and '
                     f'{arrays[2].shape[1:]}')
  return (arrays[0].astype(np.float32), arrays[1].reshape(-1).astype(np.int64), arrays[2].astype(np.float32),
          arrays[3].reshape(-1).astype(np.int64))


def load_data(config, flatten=False, arrays=None):
  """Loads and splits a run's data.

  The training examples are shuffled with a fixed seed, cut to
  `config.train_size`, and the first `config.validation_split` of them are
  held out for validation; the test set is cut to `config.test_size`.

  Args:
    config: A `DataConfig`.
    flatten: Flatten every example to a vector (models with `flat_input`).
    arrays: Your own (x_train, y_train, x_test, y_test); then `config.name`
      is only a label.

  Returns:
    A `Split`.

  Raises:
    ValueError: for an unknown dataset name without arrays, bad arrays, a
      dataset that cannot be loaded, or sizes that leave no training example.
  """
  if arrays is not None:
    x_train, y_train, x_test, y_test = _as_arrays(arrays)
    source = 'arrays'
  elif config.name == 'mnist':
    mnist = datasets_lib.load_mnist(source=config.source, flatten=False)
    x_train, y_train, x_test, y_test = mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test
    source = 'mnist-' + mnist.source
  elif config.name == 'cifar10':
    x_train, y_train, x_test, y_test = load_cifar10()
    source = 'cifar10-keras'
  else:
    raise ValueError(f'data.name {config.name!r} is not a built-in dataset {list(BUILTIN)}: pass your own arrays '
                     '(data=(x_train, y_train, x_test, y_test)) with it, or use a built-in name')
  order = np.random.RandomState(_SPLIT_SEED).permutation(len(x_train))
  if config.train_size is not None:
    if config.train_size > len(order):
      raise ValueError(f'data.train_size is {config.train_size}, but the training set has only {len(order)} examples')
    order = order[:config.train_size]
  n_val = max(1, int(round(len(order) * config.validation_split)))
  if n_val >= len(order):
    raise ValueError(f'data.validation_split={config.validation_split} of {len(order)} examples leaves none '
                     'to train on')
  val, train = order[:n_val], order[n_val:]
  if config.test_size is not None:
    if config.test_size > len(x_test):
      raise ValueError(f'data.test_size is {config.test_size}, but the test set has only {len(x_test)} examples')
    x_test, y_test = x_test[:config.test_size], y_test[:config.test_size]

  def shape(x):
    return np.ascontiguousarray(x.reshape(len(x), -1) if flatten else x)

  return Split(shape(x_train[train]), y_train[train], shape(x_train[val]), y_train[val], shape(x_test), y_test,
               source)


def num_classes(split):
  return int(max(split.y_train.max(), split.y_val.max(), split.y_test.max())) + 1


def fingerprint(split):
  """A short hash of every array of a split: the same data gives the same fingerprint."""
  digest = hashlib.sha256()
  for array in split[:6]:
    digest.update(f'{array.dtype.str}{array.shape}'.encode())
    digest.update(np.ascontiguousarray(array).tobytes())
  return digest.hexdigest()[:16]
