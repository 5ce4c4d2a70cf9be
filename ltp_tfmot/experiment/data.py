"""Datasets of a run: MNIST, CIFAR-10, TensorFlow Datasets or your own arrays, split into train, validation, test.

CIFAR-10 is read from a folder or tarball you give (`data_dir`), else from
Keras' cache (~/.keras/datasets/cifar-10-batches-py); only when neither holds
it does Keras download it. TensorFlow Datasets are read from a prepared
`data_dir` (`tensorflow-datasets` is an optional dependency). Your own data
come as arrays or as a function returning `tf.data.Dataset`s.
"""

import collections
import hashlib
import io
import os
import pickle
import socket
import tarfile

import numpy as np
import tensorflow as tf
import tf_keras as keras

from ltp_tfmot import datasets as datasets_lib

BUILTIN = ('mnist', 'cifar10')
TFDS_PREFIX = 'tfds.'
CIFAR10_MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
CIFAR10_STD = np.array([0.2470, 0.2435, 0.2616], np.float32)
# A black pixel after standardisation: what a 4-pixel pad of the raw image (as open_lth pads) turns into.
CIFAR10_BLACK = -CIFAR10_MEAN / CIFAR10_STD
CIFAR10_HOST = ('www.cs.toronto.edu', 443)
CIFAR10_FOLDER = 'cifar-10-batches-py'
CIFAR10_TARBALL = 'cifar-10-python.tar.gz'
_CIFAR10_TRAIN_BATCHES = tuple(f'data_batch_{i}' for i in range(1, 6))
_CIFAR10_TEST_BATCH = 'test_batch'
_SPLIT_SEED = 0

Split = collections.namedtuple('Split', ['x_train', 'y_train', 'x_val', 'y_val', 'x_test', 'y_test', 'source'])
Split.__doc__ = """Train, validation and test arrays (float32 inputs, int64 labels), and where they came from."""


class _CifarUnpickler(pickle.Unpickler):
  """Unpickles CIFAR-10 batches (dicts of bytes, lists and uint8 arrays) and refuses any other object.

  A pickle can run code when loaded; the batches need nothing beyond NumPy's
  array reconstruction (and, in pickles written by Python 3 at protocol 2,
  the encoding of bytes), so nothing else is let through.
  """
  _ALLOWED = {('_codecs', 'encode'), ('numpy', 'ndarray'), ('numpy', 'dtype'),
              ('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
              ('numpy.core.multiarray', 'scalar'), ('numpy._core.multiarray', 'scalar')}

  def find_class(self, module, name):
    if (module, name) not in self._ALLOWED:
      raise pickle.UnpicklingError(f'a CIFAR-10 batch holds only arrays and lists, not {module}.{name}')
    return super().find_class(module, name)


def _cifar_batch(raw, where):
  """(images uint8 NHWC, labels int64) of one pickled CIFAR-10 batch."""
  try:
    batch = _CifarUnpickler(io.BytesIO(raw), encoding='bytes').load()
    data = np.asarray(batch[b'data'], np.uint8)
    labels = np.asarray(batch[b'labels'], np.int64)
  except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as error:
    raise ValueError(f'{where} is not a CIFAR-10 batch (a pickled dict with b"data" and b"labels"): {error}') from error
  if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
    raise ValueError(f'{where} holds data of shape {data.shape} and {len(labels)} labels; a CIFAR-10 batch has '
                     '(examples, 3072) and one label per example')
  return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _cifar_location(path):
  """('folder', dir) or ('tarball', file) holding CIFAR-10 under `path`, or None."""
  if os.path.isfile(path) and tarfile.is_tarfile(path):
    return 'tarball', path
  for folder in (path, os.path.join(path, CIFAR10_FOLDER)):
    if os.path.isfile(os.path.join(folder, _CIFAR10_TEST_BATCH)):
      return 'folder', folder
  tarball = os.path.join(path, CIFAR10_TARBALL)
  if os.path.isfile(tarball):
    return 'tarball', tarball
  return None


def read_cifar10(path):
  """The raw CIFAR-10 images and labels of a folder or tarball, read without any network access.

  Args:
    path: The `cifar-10-batches-py` folder (data_batch_1..5, test_batch), a
      folder holding it or `cifar-10-python.tar.gz`, or that tarball itself.

  Returns:
    (x_train, y_train, x_test, y_test): uint8 NHWC images (32x32x3) and int64
    labels, in the files' order.

  Raises:
    ValueError: if `path` holds none of these, a batch is missing or is not
      a CIFAR-10 batch.

  Example:

  ```python
  x_train, y_train, x_test, y_test = read_cifar10('/data/cifar-10-python.tar.gz')
  ```
  """
  location = _cifar_location(path)
  if location is None:
    raise ValueError(f'{path} holds no CIFAR-10: give the {CIFAR10_FOLDER} folder (data_batch_1..5 and '
                     f'test_batch), a folder holding it or {CIFAR10_TARBALL}, or the tarball itself')
  kind, where = location
  names = _CIFAR10_TRAIN_BATCHES + (_CIFAR10_TEST_BATCH,)
  raws = {}
  if kind == 'folder':
    missing = [n for n in names if not os.path.isfile(os.path.join(where, n))]
    if missing:
      raise ValueError(f'the CIFAR-10 folder {where} lacks {missing}')
    for name in names:
      with open(os.path.join(where, name), 'rb') as f:
        raws[name] = f.read()
  else:
    try:
      with tarfile.open(where) as archive:
        members = {os.path.basename(m.name): m for m in archive.getmembers() if m.isfile()}
        missing = [n for n in names if n not in members]
        if missing:
          raise ValueError(f'the CIFAR-10 tarball {where} lacks {missing}')
        for name in names:
          raws[name] = archive.extractfile(members[name]).read()  # read in memory: nothing is written
    except (tarfile.TarError, OSError, EOFError) as error:
      raise ValueError(f'the CIFAR-10 tarball {where} cannot be read: {error}') from error
  train = [_cifar_batch(raws[n], os.path.join(where, n)) for n in _CIFAR10_TRAIN_BATCHES]
  x_test, y_test = _cifar_batch(raws[_CIFAR10_TEST_BATCH], os.path.join(where, _CIFAR10_TEST_BATCH))
  return (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), x_test, y_test)


def _keras_cache():
  return os.path.join(os.path.expanduser(os.environ.get('KERAS_HOME', os.path.join('~', '.keras'))), 'datasets',
                      CIFAR10_FOLDER)


def _standardized(images):
  return ((images.astype(np.float32) / 255.0) - CIFAR10_MEAN) / CIFAR10_STD


def load_cifar10(data_dir=None, return_source=False):
  """CIFAR-10 scaled to [0, 1] and standardised per channel.

  Where it comes from, in order: `data_dir` (a folder or tarball, see
  `read_cifar10`; nothing else is tried), else Keras' cache
  (`$KERAS_HOME/datasets/cifar-10-batches-py`, default ~/.keras), read
  directly. Only when neither is given or there does Keras download it, after
  checking at once that its server can be reached.

  Args:
    data_dir: A folder or tarball holding CIFAR-10, or None.
    return_source: Also return where the data came from ('cifar10-folder',
      'cifar10-tarball', 'cifar10-keras').

  Returns:
    (x_train, y_train, x_test, y_test) as float32 NHWC images and int64
    labels (and the source, with `return_source`).

  Raises:
    ValueError: for a `data_dir` without CIFAR-10, at once when it is not in
      Keras' cache and its server cannot be reached (offline), or when
      loading fails.
  """
  if data_dir is not None:
    kind = (_cifar_location(data_dir) or ('folder', None))[0]
    arrays, source = read_cifar10(data_dir), 'cifar10-' + kind
  elif _cifar_location(_keras_cache()) is not None:
    arrays, source = read_cifar10(_keras_cache()), 'cifar10-keras'
  else:
    try:
      socket.create_connection(CIFAR10_HOST, timeout=5).close()
    except OSError as error:
      raise ValueError(f'CIFAR-10 is not in the Keras cache ({_keras_cache()}) and cannot be downloaded from '
                       f'{CIFAR10_HOST[0]} ({error}). Put {CIFAR10_FOLDER} there, pass data_dir= (a folder or '
                       f'{CIFAR10_TARBALL}), or pass your own arrays (Python API: data=(x_train, y_train, x_test, '
                       'y_test)).') from error
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(60)
    try:
      (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as error:  # pylint: disable=broad-except
      raise ValueError(f'CIFAR-10 could not be loaded through Keras: {error}') from error
    finally:
      socket.setdefaulttimeout(previous)
    arrays, source = (x_train, y_train.reshape(-1), x_test, y_test.reshape(-1)), 'cifar10-keras'
  x_train, y_train, x_test, y_test = arrays
  result = (_standardized(x_train), y_train.astype(np.int64), _standardized(x_test), y_test.astype(np.int64))
  return result + (source,) if return_source else result


def load_tfds(name, data_dir=None, train_split='train', test_split='test', mean=None, std=None):
  """A TensorFlow Datasets image-classification dataset as arrays, read from a prepared `data_dir`.

  Nothing is downloaded: prepare the dataset once where there is a network
  (`tfds build NAME --data_dir=DIR`, or `tfds.load(NAME, data_dir=DIR)`), then
  point `data_dir` at it. Needs `pip install tensorflow-datasets` (or the
  `tfds` extra of ltp_tfmot).

  Args:
    name: The TFDS name, e.g. 'cifar10', 'fashion_mnist' or 'svhn_cropped'
      (a version may follow: 'cifar10:3.0.2').
    data_dir: The TFDS data folder (None: TFDS' default, ~/tensorflow_datasets).
    train_split: The split trained on (TFDS split syntax: 'train[:10%]' too).
    test_split: The split tested on.
    mean: Per-channel mean to subtract after scaling uint8 images to [0, 1]
      (e.g. `CIFAR10_MEAN`), or None.
    std: Per-channel std to divide by after the mean, or None.

  Returns:
    (x_train, y_train, x_test, y_test): float32 images, int64 labels.

  Raises:
    ValueError: if tensorflow-datasets is not installed, the dataset is not
      prepared in `data_dir`, or it has no 'image' and 'label' features.
  """
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as error:
    raise ValueError(f'reading the TensorFlow Datasets dataset {name!r} needs tensorflow-datasets: pip install '
                     'tensorflow-datasets (or pip install "ltp_tfmot[tfds]")') from error
  try:
    train, test = tfds.load(name, split=[train_split, test_split], data_dir=data_dir, download=False,
                            as_supervised=True, batch_size=-1)
  except Exception as error:  # pylint: disable=broad-except
    where = data_dir if data_dir is not None else 'the default TFDS folder'
    raise ValueError(f'the TensorFlow Datasets dataset {name!r} could not be read from {where} ({error}); it is read '
                     f'without downloading: prepare it once with `tfds build {name} --data_dir=DIR` where there '
                     'is a network, and pass that folder as data_dir') from error

  def prepare(pair):
    images, labels = (np.asarray(t) for t in tfds.as_numpy(pair))
    images = images.astype(np.float32) / (255.0 if images.dtype == np.uint8 else 1.0)
    if mean is not None:
      images -= np.asarray(mean, np.float32)
    if std is not None:
      images /= np.asarray(std, np.float32)
    return images, labels.reshape(-1).astype(np.int64)

  (x_train, y_train), (x_test, y_test) = prepare(train), prepare(test)
  return x_train, y_train, x_test, y_test


def arrays_from_datasets(train, test):
  """(x_train, y_train, x_test, y_test) arrays from two finite `tf.data.Dataset`s of (input, label) pairs.

  The datasets may yield single examples or batches (a label of rank 0 is one
  example, of rank 1 a batch of them).

  Args:
    train: The training examples.
    test: The test examples.

  Returns:
    The four arrays (inputs as they come, labels int64).

  Raises:
    ValueError: for a dataset that does not yield (input, label) pairs, or
      an infinite one.
  """
  arrays = []
  for label, dataset in (('train', train), ('test', test)):
    if not isinstance(dataset, tf.data.Dataset):
      raise ValueError(f'the {label} data must be a tf.data.Dataset of (input, label) pairs, got '
                       f'{type(dataset).__name__}')
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2:
      raise ValueError(f'the {label} dataset must yield (input, label) pairs, got elements {spec}')
    if dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
      raise ValueError(f'the {label} dataset is infinite (a repeat()?): give one pass over the examples')
    if spec[1].shape.rank == 0:
      dataset = dataset.batch(1024)
    xs, ys = zip(*((np.asarray(x), np.asarray(y)) for x, y in dataset.as_numpy_iterator()), strict=True) or ((), ())
    if not xs:
      raise ValueError(f'the {label} dataset is empty')
    arrays += [np.concatenate(xs), np.concatenate(ys).reshape(-1)]
  return tuple(arrays)


def _as_arrays(data):
  """(x_train, y_train, x_test, y_test) from arrays, a `ltp_tfmot.datasets.Dataset`, or tf.data datasets."""
  if callable(data) and not isinstance(data, (tuple, list)):
    data = data()
  if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(d, tf.data.Dataset) for d in data):
    data = arrays_from_datasets(*data)
  if hasattr(data, 'x_train') and hasattr(data, 'y_test'):
    data = (data.x_train, data.y_train, data.x_test, data.y_test)
  if not isinstance(data, (tuple, list)) or len(data) != 4:
    raise ValueError('data must be (x_train, y_train, x_test, y_test) arrays or a ltp_tfmot.datasets.Dataset, '
                     f'got {type(data).__name__} ((train, test) tf.data.Datasets of (input, label) pairs, or a '
                     'function returning either, work too)')
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


def load_data(config, flatten=False, arrays=None, data_dir=None):
  """Loads and splits a run's data.

  The training examples are shuffled with a fixed seed, cut to
  `config.train_size`, and the first `config.validation_split` of them are
  held out for validation; the test set is cut to `config.test_size`.

  Args:
    config: A `DataConfig`. Its name is 'mnist', 'cifar10', 'tfds.<name>' (a
      TensorFlow Datasets dataset read from `data_dir`, see `load_tfds`), or
      a label of yours for `arrays`.
    flatten: Flatten every example to a vector (models with `flat_input`).
    arrays: Your own data: (x_train, y_train, x_test, y_test) arrays, a
      `ltp_tfmot.datasets.Dataset`, (train, test) `tf.data.Dataset`s of
      (input, label) pairs, or a function of no argument returning either;
      then `config.name` is only a label.
    data_dir: Where the data lie: for CIFAR-10 a folder or tarball (see
      `load_cifar10`), for TFDS its prepared data folder.

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
    x_train, y_train, x_test, y_test, source = load_cifar10(data_dir, return_source=True)
  elif config.name.startswith(TFDS_PREFIX) and len(config.name) > len(TFDS_PREFIX):
    name = config.name[len(TFDS_PREFIX):]
    x_train, y_train, x_test, y_test = _as_arrays(load_tfds(name, data_dir))
    source = 'tfds-' + name
  else:
    raise ValueError(f'data.name {config.name!r} is not a built-in dataset {list(BUILTIN)} nor '
                     f"'{TFDS_PREFIX}<name>' (TensorFlow Datasets): pass your own arrays (data=(x_train, y_train, "
                     'x_test, y_test)) with it, or use a built-in name')
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
