"""The training input pipeline: a seeded data order, CIFAR augmentation, and resuming the order at any iteration.

Everything random here is a function of the data seed and the iteration, so
the data seen at iteration t do not depend on where training started: a level
that resumes at iteration k (a rewind to k) sees exactly the batches k, k+1,
... that a run from 0 sees there. The data seed is separate from the seed of
the initial weights, so either can change alone.

- Order: epoch e is a permutation of the examples drawn from (data seed, e);
  each epoch is cut into `len(x) // batch_size` full batches (the rest of the
  permutation is left out of that epoch).
- Augmentation (CIFAR, as open_lth): each image is padded by 4 pixels,
  cropped back to its size at a random offset and flipped left-right with
  probability 1/2, drawn from (data seed, iteration).

Example:

```python
dataset = train_dataset(split.x_train, split.y_train, batch_size=128, data_seed=7, augment=True,
                        pad_value=data.CIFAR10_BLACK, start_step=2000)
model.fit(dataset, steps_per_epoch=steps, epochs=...)
```
"""


import numpy as np
import tensorflow as tf

from ltp_tfmot import validation

_ORDER, _AUGMENT = 0, 1  # salts that keep the order's and the augmentation's random streams apart


def _seed(data_seed, salt, counter):
  """A stateless-RNG seed (shape [2]) for one epoch's order or one iteration's augmentation."""
  base = tf.constant([data_seed, salt], tf.int64)
  return tf.random.experimental.stateless_fold_in(base, tf.cast(counter, tf.int64))


def augment_images(images, seed, padding=4, flip=True, pad_value=0.0):
  """Pads, randomly crops back and randomly flips a batch of images, deterministically for a seed.

  Args:
    images: A float tensor (batch, height, width, channels).
    seed: A stateless-RNG seed, an int tensor of shape [2].
    padding: Pixels added on every side before the crop (0: no crop).
    flip: Flip each image left-right with probability 1/2.
    pad_value: The value of the padding: a number or one per channel (for
      standardised CIFAR-10 images, `data.CIFAR10_BLACK` pads black as
      open_lth pads the raw image).

  Returns:
    The augmented batch, of the same shape.
  """
  images = tf.convert_to_tensor(images)
  if padding < 0:
    raise ValueError(f'padding must be >= 0, got {padding!r}')
  batch = tf.shape(images)[0]
  height, width = images.shape[1], images.shape[2]
  offset_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  if padding:
    paddings = [[0, 0], [padding, padding], [padding, padding], [0, 0]]
    border = 1.0 - tf.pad(tf.ones_like(images[..., :1]), paddings)  # 1 on the padding, 0 on the image
    padded = tf.pad(images, paddings) + border * tf.cast(tf.convert_to_tensor(pad_value), images.dtype)
    offsets = tf.random.stateless_uniform([batch, 2], offset_seed, minval=0, maxval=2 * padding + 1, dtype=tf.int32)
    rows = offsets[:, :1] + tf.range(height)[tf.newaxis]
    cols = offsets[:, 1:] + tf.range(width)[tf.newaxis]
    images = tf.gather(tf.gather(padded, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)
  if flip:
    flipped = tf.random.stateless_uniform([batch], flip_seed) < 0.5
    images = tf.where(flipped[:, tf.newaxis, tf.newaxis, tf.newaxis], tf.reverse(images, axis=[2]), images)
  return images


def steps_per_epoch(examples, batch_size):
  """Full batches per epoch: `examples // batch_size`.

  Raises:
    ValueError: if there are fewer examples than one batch.
  """
  if not validation.is_int(batch_size) or batch_size < 1:
    raise ValueError(f'batch_size must be an integer >= 1, got {batch_size!r}')
  if examples < batch_size:
    raise ValueError(f'batch_size ({batch_size}) is larger than the {examples} training examples')
  return examples // batch_size


def train_dataset(x, y, batch_size, data_seed, augment=False, start_step=0, steps=None, pad_value=0.0):
  """The batches of training iterations start_step, start_step + 1, ...: seeded order, optional augmentation.

  Args:
    x: Training inputs (examples, ...), an array or tensor; images are
      (examples, height, width, channels) when `augment` is set.
    y: Labels, one per example.
    batch_size: Examples per batch.
    data_seed: Seed of the order and the augmentation (an int >= 0),
      independent of the weights' seed.
    augment: Apply `augment_images` (4-pixel pad, crop, flip).
    start_step: The first iteration to yield: the batches of iterations
      0..start_step-1 are skipped without being computed, so training that
      resumes at iteration k continues the order (and augmentation) exactly.
    steps: Yield this many batches, or None for an endless dataset (give
      `steps_per_epoch` to `fit`).
    pad_value: The padding value of the augmentation.

  Returns:
    A `tf.data.Dataset` of (inputs, labels) batches.

  Raises:
    ValueError: for a bad argument (the message names it).

  Example:

  ```python
  first = train_dataset(x, y, 128, data_seed=0, augment=True)
  later = train_dataset(x, y, 128, data_seed=0, augment=True, start_step=500)  # = first.skip(500)
  ```
  """
  if not validation.is_int(data_seed) or not 0 <= data_seed < 2**63:
    raise ValueError(f'data_seed must be an integer >= 0, got {data_seed!r}')
  if not validation.is_int(start_step) or start_step < 0:
    raise ValueError(f'start_step must be an integer >= 0, got {start_step!r}')
  if steps is not None and (not validation.is_int(steps) or steps < 0):
    raise ValueError(f'steps must be an integer >= 0 or None, got {steps!r}')
  x = x if isinstance(x, tf.Tensor) else tf.constant(np.asarray(x))
  y = y if isinstance(y, tf.Tensor) else tf.constant(np.asarray(y))
  examples = int(x.shape[0])
  if int(y.shape[0]) != examples:
    raise ValueError(f'x has {examples} examples but y has {int(y.shape[0])} labels')
  if augment and x.shape.rank != 4:
    raise ValueError(f'augment needs images (examples, height, width, channels), got inputs of shape {x.shape}')
  per_epoch = steps_per_epoch(examples, batch_size)
  first_epoch, offset = divmod(start_step, per_epoch)

  def epoch_batches(epoch):
    keys = tf.random.stateless_uniform([examples], _seed(data_seed, _ORDER, epoch))
    order = tf.argsort(keys, stable=True)[:per_epoch * batch_size]
    return tf.data.Dataset.from_tensor_slices(tf.reshape(order, [per_epoch, batch_size]))

  batches = tf.data.Dataset.counter(first_epoch).flat_map(epoch_batches).skip(offset)
  dataset = tf.data.Dataset.zip((tf.data.Dataset.counter(start_step), batches))
  if steps is not None:
    dataset = dataset.take(steps)

  def gather(step, indices):
    inputs = tf.gather(x, indices)
    if augment:
      inputs = augment_images(inputs, _seed(data_seed, _AUGMENT, step), pad_value=pad_value)
    return inputs, tf.gather(y, indices)

  return dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(2)
