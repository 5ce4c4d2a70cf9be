"""Tests for the data sources (CIFAR-10 folders and tarballs, TFDS, tf.data) and the training input pipeline."""

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
from ltp_tfmot.experiment import pipeline
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


def _batches(dataset):
  return [(x.numpy(), y.numpy()) for x, y in dataset]


class PipelineTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.RandomState(0)
    self.x = rng.randn(20, 32, 32, 3).astype(np.float32)
    self.y = np.arange(20, dtype=np.int64)  # the label says which example a row is

  def test_each_epoch_is_a_permutation_in_full_batches(self):
    batches = _batches(pipeline.train_dataset(self.x, self.y, 6, data_seed=1, steps=6))
    first, second = (np.concatenate([y for _, y in batches[i:i + 3]]) for i in (0, 3))
    self.assertLen(set(first), 18)
    self.assertLen(set(second), 18)
    self.assertNotAllEqual(first, second)
    self.assertAllEqual(batches[0][0], self.x[batches[0][1]])

  def test_order_and_augmentation_are_deterministic_for_a_seed(self):
    make = lambda seed: _batches(pipeline.train_dataset(self.x, self.y, 4, data_seed=seed, augment=True, steps=3))
    for (xa, ya), (xb, yb) in zip(make(3), make(3), strict=True):
      self.assertAllEqual(xa, xb)
      self.assertAllEqual(ya, yb)
    self.assertNotAllEqual(np.stack([y for _, y in make(3)]), np.stack([y for _, y in make(4)]))

  def test_start_step_continues_the_order_and_augmentation_exactly(self):
    # 20 examples at batch 4: 5 iterations per epoch, so iteration 7 is the third batch of the second epoch.
    full = _batches(pipeline.train_dataset(self.x, self.y, 4, data_seed=5, augment=True, steps=12))
    resumed = _batches(pipeline.train_dataset(self.x, self.y, 4, data_seed=5, augment=True, start_step=7, steps=5))
    for (xa, ya), (xb, yb) in zip(full[7:], resumed, strict=True):
      self.assertAllEqual(ya, yb)
      self.assertAllEqual(xa, xb)

  def test_augmentation_is_a_padded_crop_and_a_flip_of_the_image(self):
    images = tf.constant(self.x[:16])
    out = pipeline.augment_images(images, tf.constant([0, 1], tf.int64), pad_value=-9.0).numpy()
    offsets, flips = set(), 0
    for original, augmented in zip(self.x[:16], out, strict=True):
      padded = np.pad(original, [(4, 4), (4, 4), (0, 0)], constant_values=-9.0)
      found = [(dy, dx, flip) for dy in range(9) for dx in range(9) for flip in (False, True)
               if np.array_equal(padded[dy:dy + 32, dx:dx + 32][:, ::-1] if flip else padded[dy:dy + 32, dx:dx + 32],
                                 augmented)]
      self.assertLen(found, 1)
      offsets.add(found[0][:2])
      flips += found[0][2]
    self.assertGreater(len(offsets), 8)
    self.assertBetween(flips, 3, 13)

  def test_per_channel_pad_value(self):
    out = pipeline.augment_images(tf.zeros([64, 4, 4, 3]), tf.constant([0, 2], tf.int64), flip=False,
                                  pad_value=data_lib.CIFAR10_BLACK).numpy()
    values = {tuple(np.round(v, 4)) for v in out.reshape(-1, 3)}
    self.assertEqual(values, {(0.0, 0.0, 0.0), tuple(np.round(data_lib.CIFAR10_BLACK, 4))})

  def test_bad_arguments_name_the_problem(self):
    with self.assertRaisesRegex(ValueError, r'batch_size \(32\) is larger than the 20 training examples'):
      pipeline.train_dataset(self.x, self.y, 32, data_seed=0)
    with self.assertRaisesRegex(ValueError, 'start_step must be an integer >= 0'):
      pipeline.train_dataset(self.x, self.y, 4, data_seed=0, start_step=-1)
    with self.assertRaisesRegex(ValueError, 'data_seed must be an integer >= 0'):
      pipeline.train_dataset(self.x, self.y, 4, data_seed=None)
    with self.assertRaisesRegex(ValueError, 'augment needs images'):
      pipeline.train_dataset(self.x.reshape(20, -1), self.y, 4, data_seed=0, augment=True)

  def test_fit_trains_from_the_pipeline(self):
    import tf_keras as keras  # pylint: disable=g-import-not-at-top
    model = keras.Sequential([keras.layers.GlobalAveragePooling2D(input_shape=(32, 32, 3)), keras.layers.Dense(20)])
    model.compile(optimizer='sgd', loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(pipeline.train_dataset(self.x, self.y, 4, data_seed=0, augment=True), steps_per_epoch=5, epochs=2,
              verbose=0)
    self.assertEqual(int(model.optimizer.iterations), 10)


if __name__ == '__main__':
  tf.test.main()
