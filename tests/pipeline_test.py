"""Tests for the training input pipeline (ltp_tfmot.experiment.pipeline): seeded order, augmentation, resuming."""

import numpy as np
import tensorflow as tf
import tf_keras as keras

from ltp_tfmot.experiment import data as data_lib
from ltp_tfmot.experiment import pipeline


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
    model = keras.Sequential([keras.layers.GlobalAveragePooling2D(input_shape=(32, 32, 3)), keras.layers.Dense(20)])
    model.compile(optimizer='sgd', loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(pipeline.train_dataset(self.x, self.y, 4, data_seed=0, augment=True), steps_per_epoch=5, epochs=2,
              verbose=0)
    self.assertEqual(int(model.optimizer.iterations), 10)

  def test_steps_per_epoch_counts_full_batches_and_refuses_fewer_examples_than_a_batch(self):
    self.assertEqual(pipeline.steps_per_epoch(20, 6), 3)
    with self.assertRaisesRegex(ValueError, r'batch_size must be an integer >= 1, got 0'):
      pipeline.steps_per_epoch(20, 0)
    with self.assertRaisesRegex(ValueError, r'batch_size \(32\) is larger than the 20 training examples'):
      pipeline.steps_per_epoch(20, 32)


if __name__ == '__main__':
  tf.test.main()
