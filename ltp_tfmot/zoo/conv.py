"""Frankle & Carbin's (2019) Conv-2, Conv-4 and Conv-6 for CIFAR-10, and the paper's set-up for each."""

from ltp_tfmot.zoo import network
from ltp_tfmot.zoo import preset

# The public names, which `ltp_tfmot.models` (the zoo package) serves too; MODELS and PRESETS are the registry's.
__all__ = ['conv2', 'conv4', 'conv6']

keras = network.keras


def _conv_net(name, filters, input_shape, num_classes, seed):
  """Frankle & Carbin's Conv-2/4/6: 3x3 conv pairs, max-pooling after each pair, FC 256-256-out."""
  counter = iter(range(len(filters) + 3))

  def init():
    offset = next(counter)
    return keras.initializers.GlorotNormal(seed=None if seed is None else seed + offset)

  layers = [keras.layers.InputLayer(input_shape=tuple(input_shape), name='input')]
  for i, width in enumerate(filters):
    layers.append(keras.layers.Conv2D(width, 3, padding='same', activation='relu', kernel_initializer=init(),
                                      name=f'conv{i + 1}'))
    if i % 2 == 1:
      layers.append(keras.layers.MaxPooling2D(2, name=f'pool{i // 2 + 1}'))
  layers += [
      keras.layers.Flatten(name='flatten'),
      keras.layers.Dense(256, activation='relu', kernel_initializer=init(), name='fc1'),
      keras.layers.Dense(256, activation='relu', kernel_initializer=init(), name='fc2'),
      keras.layers.Dense(num_classes, kernel_initializer=init(), name='output'),
  ]
  return keras.Sequential(layers, name=name)


def conv2(input_shape=(32, 32, 3), num_classes=10, seed=None):
  """Conv-2: conv 64-64, max-pool, FC 256-256-10; 3x3 'same' convs, ReLU, Glorot-normal init.

  Layers are named conv1, conv2, fc1, fc2 and output. The paper prunes the
  convolutions at 10% per round, the dense layers at 20% and the output at
  10%: `layer_rates={'conv1': 0.1, 'conv2': 0.1, 'output': 0.1}` with rate 0.2.

  Args:
    input_shape: Shape of one image, (height, width, channels).
    num_classes: Number of output logits.
    seed: Seed of the Glorot-normal initializers (None: unseeded).

  Returns:
    An uncompiled `tf_keras.Sequential` model producing logits.
  """
  return _conv_net('conv2', [64, 64], input_shape, num_classes, seed)


def conv4(input_shape=(32, 32, 3), num_classes=10, seed=None):
  """Conv-4: conv 64-64, pool, 128-128, pool, FC 256-256-10 (see `conv2`; convs conv1..conv4)."""
  return _conv_net('conv4', [64, 64, 128, 128], input_shape, num_classes, seed)


def conv6(input_shape=(32, 32, 3), num_classes=10, seed=None):
  """Conv-6: conv 64-64, pool, 128-128, pool, 256-256, pool, FC 256-256-10 (see `conv2`).

  The paper prunes its convolutions (conv1..conv6) at 15% per round.
  """
  return _conv_net('conv6', [64, 64, 128, 128, 256, 256], input_shape, num_classes, seed)


MODELS = {
    'conv2': network.ModelSpec(conv2, False, 'Conv-2: conv 64-64, pool, FC 256-256-10'),
    'conv4': network.ModelSpec(conv4, False, 'Conv-4: conv 64-64-128-128 with pooling, FC 256-256-10'),
    'conv6': network.ModelSpec(conv6, False, 'Conv-6: conv 64-64-128-128-256-256 with pooling, FC 256-256-10'),
}

PRESETS = {
    'conv2': preset.frankle_carbin('conv2', 'cifar10', 2e-4, '20000it', {'conv*': 0.1, 'output': 0.1}),
    'conv4': preset.frankle_carbin('conv4', 'cifar10', 3e-4, '25000it', {'conv*': 0.1, 'output': 0.1}),
    'conv6': preset.frankle_carbin('conv6', 'cifar10', 3e-4, '30000it', {'conv*': 0.15, 'output': 0.1}),
}
