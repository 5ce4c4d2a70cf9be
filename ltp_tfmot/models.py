"""Reference networks of Frankle & Carbin (2019), as tf_keras models."""

import tf_keras as keras


def lenet_300_100(input_dim=784, num_classes=10, seed=None):
  """LeNet-300-100: two ReLU hidden layers of 300 and 100 units, Glorot-normal init.

  The output layer is named 'output', so `layer_rates={'output': rate / 2}`
  prunes it at half rate, as in the paper.

  Args:
    input_dim: Size of the flattened input.
    num_classes: Number of output logits.
    seed: Seed of the Glorot-normal initializers (None: unseeded).

  Returns:
    An uncompiled `tf_keras.Sequential` model producing logits.
  """
  def init(offset):
    return keras.initializers.GlorotNormal(seed=None if seed is None else seed + offset)

  return keras.Sequential([
      keras.layers.Dense(300, activation='relu', kernel_initializer=init(0), input_shape=(input_dim,),
                         name='hidden_300'),
      keras.layers.Dense(100, activation='relu', kernel_initializer=init(1), name='hidden_100'),
      keras.layers.Dense(num_classes, kernel_initializer=init(2), name='output'),
  ], name='lenet_300_100')
