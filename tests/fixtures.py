"""Small seeded models and data shared by the tests."""

import numpy as np
import tf_keras as keras


def mlp(seed=0, name='mlp'):
  """A 8-16-12-4 MLP (368 prunable weights) with seeded Glorot init."""
  init = lambda offset: keras.initializers.GlorotUniform(seed=seed + offset)
  return keras.Sequential([
      keras.layers.Dense(16, activation='relu', input_shape=(8,), kernel_initializer=init(0), name='hidden1'),
      keras.layers.Dense(12, activation='relu', kernel_initializer=init(1), name='hidden2'),
      keras.layers.Dense(4, kernel_initializer=init(2), name='output'),
  ], name=name)


def convnet(seed=0):
  """A functional CNN mixing Conv2D, DepthwiseConv2D, BatchNormalization and Dense."""
  init = lambda offset: keras.initializers.GlorotUniform(seed=seed + offset)
  inputs = keras.Input((8, 8, 2))
  x = keras.layers.Conv2D(4, 3, padding='same', kernel_initializer=init(0), name='conv')(inputs)
  x = keras.layers.BatchNormalization(name='bn')(x)
  x = keras.layers.DepthwiseConv2D(3, depthwise_initializer=init(1), name='depthwise')(x)
  x = keras.layers.Flatten(name='flatten')(x)
  outputs = keras.layers.Dense(3, kernel_initializer=init(2), name='output')(x)
  return keras.Model(inputs, outputs, name='convnet')


def classification_data(n=64, features=8, classes=4, seed=0):
  rng = np.random.RandomState(seed)
  x = rng.randn(n, features).astype(np.float32)
  y = (x[:, :classes].argmax(axis=1)).astype(np.int64)
  return x, y


def compile_for_training(model, learning_rate=0.01):
  model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=['accuracy'])
  return model


def masks_of(model):
  """{variable name: mask array} of every lottery wrapper."""
  import ltp_tfmot  # pylint: disable=g-import-not-at-top
  return {mask.name: mask.numpy() for w in ltp_tfmot.lottery_wrappers(model) for _, mask, _ in w.pruning_vars}
