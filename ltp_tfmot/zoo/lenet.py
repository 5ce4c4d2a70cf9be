"""LeNet-300-100 (Frankle & Carbin 2019) and the paper's set-up for it on MNIST."""

from ltp_tfmot.zoo import network
from ltp_tfmot.zoo import preset

# The public names, which `ltp_tfmot.models` (the zoo package) serves too; MODELS and PRESETS are the registry's.
__all__ = ['lenet_300_100']

keras = network.keras


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


def _lenet_300_100_for_shape(input_shape, num_classes, seed):
  """`lenet_300_100` with the registry's builder signature: a vector input, the size of `input_shape`."""
  size = 1
  for dim in input_shape:
    size *= int(dim)
  return lenet_300_100(input_dim=size, num_classes=num_classes, seed=seed)


MODELS = {
    'lenet_300_100': network.ModelSpec(_lenet_300_100_for_shape, True,
                                       'LeNet-300-100 (Frankle & Carbin): FC 300-100-10 on flattened images'),
}

PRESETS = {
    # 50 epochs of the 55,000 training images at batch 60 are 45,800 iterations, about the paper's 50,000: whole
    # epochs keep every level's data order a series of full permutations, and this preset the runner's default.
    'lenet_300_100': preset.frankle_carbin('lenet_300_100', 'mnist', 1.2e-3, '50ep', {'output': 0.1}),
}
