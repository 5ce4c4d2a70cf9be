"""Tests for the data sources (CIFAR-10 folders and tarballs, TFDS, tf.data)."""

import contextlib
import os
import pickle
import shutil
import socket
import sys
import tarfile
import tempfile
import types
from unittest import mock

import numpy as np
import tensorflow as tf

from ltp_tfmot import experiment
from ltp_tfmot.experiment import data as data_lib
from tests import fixtures


@contextlib.contextmanager
def no_network():
  """Fails the test on any attempt to open a connection."""
  refuse = mock.Mock(side_effect=AssertionError('the loader tried to open a network connection'))
  with mock.patch.object(socket, 'create_connection', refuse), mock.patch.object(socket.socket, 'connect', refuse):
    yield refuse


class CifarTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, self.dir)
    self.raw = fixtures.write_cifar10(self.dir)

  def _tarball(self):
    path = os.path.join(self.dir, 'archive', data_lib.CIFAR10_TARBALL)
    os.makedirs(os.path.dirname(path))
    with tarfile.open(path, 'w:gz') as archive:
      archive.add(os.path.join(self.dir, data_lib.CIFAR10_FOLDER), arcname=data_lib.CIFAR10_FOLDER)
    return path

  def test_reads_the_pickled_batches_as_images(self):
    for path in (self.dir, os.path.join(self.dir, data_lib.CIFAR10_FOLDER)):
      arrays = data_lib.read_cifar10(path)
      for got, want in zip(arrays, self.raw, strict=True):
        self.assertAllEqual(got, want)
    self.assertEqual(arrays[0].shape, (20, 32, 32, 3))

  def test_reads_the_tarball_or_a_folder_holding_it_without_extracting(self):
    tarball = self._tarball()
    for path in (tarball, os.path.dirname(tarball)):
      for got, want in zip(data_lib.read_cifar10(path), self.raw, strict=True):
        self.assertAllEqual(got, want)
    self.assertEqual(os.listdir(os.path.dirname(tarball)), [data_lib.CIFAR10_TARBALL])

  def test_data_dir_is_read_without_network_and_standardised(self):
    with no_network() as refused:
      x_train, y_train, x_test, y_test, source = data_lib.load_cifar10(self.dir, return_source=True)
    refused.assert_not_called()
    self.assertEqual(source, 'cifar10-folder')
    self.assertAllClose(x_train, ((self.raw[0] / 255.0) - data_lib.CIFAR10_MEAN) / data_lib.CIFAR10_STD)
    self.assertEqual((x_train.dtype, y_train.dtype, x_test.shape, y_test.dtype),
                     (np.float32, np.int64, (6, 32, 32, 3), np.int64))

  def test_keras_cache_is_read_without_network(self):
    with mock.patch.dict(os.environ, {'KERAS_HOME': self.dir}):
      os.makedirs(os.path.join(self.dir, 'datasets'))
      shutil.move(os.path.join(self.dir, data_lib.CIFAR10_FOLDER), os.path.join(self.dir, 'datasets'))
      with no_network():
        split = data_lib.load_data(experiment.DataConfig(name='cifar10', validation_split=0.25))
    self.assertEqual(split.source, 'cifar10-keras')
    self.assertEqual((len(split.x_train), len(split.x_val), len(split.x_test)), (15, 5, 6))

  def test_load_data_takes_a_tarball_as_data_dir(self):
    with no_network():
      split = data_lib.load_data(experiment.DataConfig(name='cifar10'), data_dir=self._tarball())
    self.assertEqual(split.source, 'cifar10-tarball')
    self.assertEqual(split.x_train.shape[1:], (32, 32, 3))

  def test_data_dir_without_cifar_names_the_expected_layout(self):
    empty = os.path.join(self.dir, 'empty')
    os.makedirs(empty)
    with no_network(), self.assertRaisesRegex(ValueError, 'holds no CIFAR-10: give the cifar-10-batches-py folder'):
      data_lib.load_cifar10(empty)
    os.remove(os.path.join(self.dir, data_lib.CIFAR10_FOLDER, 'data_batch_3'))
    with self.assertRaisesRegex(ValueError, r"lacks \['data_batch_3'\]"):
      data_lib.read_cifar10(self.dir)

  def test_a_batch_holding_other_objects_is_refused_unloaded(self):
    path = os.path.join(self.dir, data_lib.CIFAR10_FOLDER, 'test_batch')
    with open(path, 'wb') as f:
      pickle.dump({b'data': types.SimpleNamespace(), b'labels': []}, f)
    with self.assertRaisesRegex(ValueError, 'is not a CIFAR-10 batch .* not types.SimpleNamespace'):
      data_lib.read_cifar10(self.dir)


class TfdsAndDatasetsTest(tf.test.TestCase):

  def test_tfds_missing_tells_how_to_install(self):
    with mock.patch.dict(sys.modules, {'tensorflow_datasets': None}):
      with self.assertRaisesRegex(ValueError, 'needs tensorflow-datasets: pip install tensorflow-datasets'):
        data_lib.load_data(experiment.DataConfig(name='tfds.cifar10'), data_dir='/nonexistent')

  def test_tfds_is_read_from_data_dir_without_download(self):
    rng = np.random.RandomState(0)
    splits = {'train': (rng.randint(0, 256, (12, 8, 8, 3)).astype(np.uint8), np.arange(12) % 3),
              'test': (rng.randint(0, 256, (4, 8, 8, 3)).astype(np.uint8), np.arange(4) % 3)}
    fake = types.SimpleNamespace(as_numpy=lambda pair: tuple(np.asarray(t) for t in pair))
    fake.load = mock.Mock(side_effect=lambda name, split, **kwargs: [splits[s] for s in split])
    with mock.patch.dict(sys.modules, {'tensorflow_datasets': fake}):
      split = data_lib.load_data(experiment.DataConfig(name='tfds.cifar10', validation_split=0.25), data_dir='/d')
    fake.load.assert_called_once_with('cifar10', split=['train', 'test'], data_dir='/d', download=False,
                                      as_supervised=True, batch_size=-1)
    self.assertEqual(split.source, 'tfds-cifar10')
    self.assertAllClose(split.x_test, splits['test'][0] / 255.0)
    self.assertEqual((len(split.x_train), len(split.x_val)), (9, 3))

  def test_tfds_not_prepared_says_how_to_prepare_it(self):
    fake = types.SimpleNamespace(load=mock.Mock(side_effect=AssertionError('Dataset cifar10: could not find data')))
    with mock.patch.dict(sys.modules, {'tensorflow_datasets': fake}):
      with self.assertRaisesRegex(ValueError, r'prepare it once with `tfds build cifar10 --data_dir=DIR`'):
        data_lib.load_tfds('cifar10', data_dir='/d')

  def test_dataset_factory_gives_the_same_split_as_its_arrays(self):
    rng = np.random.RandomState(0)
    x, y = rng.randn(20, 4).astype(np.float32), (np.arange(20) % 4).astype(np.int64)
    xt, yt = rng.randn(6, 4).astype(np.float32), (np.arange(6) % 4).astype(np.int64)
    config = experiment.DataConfig(name='toy')
    expected = data_lib.load_data(config, arrays=(x, y, xt, yt))

    def factory():  # one dataset of single examples, one of batches
      return tf.data.Dataset.from_tensor_slices((x, y)), tf.data.Dataset.from_tensor_slices((xt, yt)).batch(4)

    got = data_lib.load_data(config, arrays=factory)
    for a, b in zip(got[:6], expected[:6], strict=True):
      self.assertAllEqual(a, b)
    self.assertEqual(data_lib.fingerprint(got), data_lib.fingerprint(expected))

  def test_bad_datasets_name_the_problem(self):
    x, y = np.zeros((4, 2), np.float32), np.zeros(4, np.int64)
    with self.assertRaisesRegex(ValueError, 'the train dataset is infinite'):
      data_lib.arrays_from_datasets(tf.data.Dataset.from_tensor_slices((x, y)).repeat(),
                                    tf.data.Dataset.from_tensor_slices((x, y)))
    with self.assertRaisesRegex(ValueError, r'the test dataset must yield \(input, label\) pairs'):
      data_lib.arrays_from_datasets(tf.data.Dataset.from_tensor_slices((x, y)), tf.data.Dataset.from_tensor_slices(x))


if __name__ == '__main__':
  tf.test.main()
