"""Tests for early-bird tickets: `mask_distance` and the `EarlyBirdTicket` callback."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from tests import fixtures


def _kernels(model):
  return [layer.kernel for layer in model.layers]


def _hand_set_kernels(model, masks, seed):
  """Kernels whose magnitudes are 1 where `masks` keep and 0.5 elsewhere (random signs): large_final keeps `masks`."""
  rng = np.random.RandomState(seed)
  for kernel, mask in zip(_kernels(model), masks, strict=True):
    signs = np.where(rng.rand(*mask.shape) < 0.5, -1.0, 1.0)
    kernel.assign((np.where(mask, 1.0, 0.5) * signs).astype(np.float32))


def _masks_at_distances(shapes, distances, seed=0):
  """Half-dense masks, each differing from the one before in the given fraction of positions (even counts)."""
  rng = np.random.RandomState(seed)
  masks = [[np.arange(int(np.prod(s))).reshape(s) % 2 == 0 for s in shapes]]
  for distance in distances:
    step = []
    for mask in masks[-1]:
      flat = mask.reshape(-1).copy()
      swaps = int(round(distance * flat.size / 2))
      kept, pruned = rng.permutation(np.flatnonzero(flat))[:swaps], rng.permutation(np.flatnonzero(~flat))[:swaps]
      flat[kept], flat[pruned] = False, True  # the kept count stays half
      step.append(flat.reshape(mask.shape))
    masks.append(step)
  return masks


class MaskDistanceTest(tf.test.TestCase, parameterized.TestCase):

  def test_distance_is_the_fraction_of_positions_that_differ(self):
    a = [np.array([[1, 1], [0, 0]], np.float32), np.array([True, False, True, False, True, False])]
    b = [np.array([[1, 0], [0, 1]], np.float32), np.array([True, False, True, False, False, True])]
    self.assertEqual(ltp_tfmot.mask_distance(a, b), 4 / 10)
    self.assertEqual(ltp_tfmot.mask_distance(a, a), 0.0)
    self.assertEqual(ltp_tfmot.mask_distance([[True, False]], [[False, True]]), 1.0)

  def test_mismatched_masks_raise(self):
    with self.assertRaisesRegex(ValueError, 'equally long, non-empty lists of masks, got 1 and 2'):
      ltp_tfmot.mask_distance([[True]], [[True], [False]])
    with self.assertRaisesRegex(ValueError, 'masks of the same shapes'):
      ltp_tfmot.mask_distance([[True, False]], [[True, False, True]])


class EarlyBirdTicketTest(tf.test.TestCase, parameterized.TestCase):

  def test_stops_at_the_first_epoch_whose_last_patience_distances_are_below_threshold(self):
    model = fixtures.mlp(seed=0)
    shapes = [tuple(k.shape) for k in _kernels(model)]
    # Epochs 2..9 move the mask by about these fractions: below 0.1 three times in a row first at epochs 6, 7, 8.
    steps = [0.5, 0.05, 0.05, 0.25, 0.0, 0.0625, 0.0, 0.0625]
    hand_masks = _masks_at_distances(shapes, steps)
    callback = ltp_tfmot.EarlyBirdTicket(target_sparsity=0.5, threshold=0.1, patience=3)
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, masks in enumerate(hand_masks):
      _hand_set_kernels(model, masks, seed=epoch)
      model.stop_training = False
      callback.on_epoch_end(epoch)
      if callback.found_epoch is not None:
        break
    expected = [ltp_tfmot.mask_distance(a, b) for a, b in zip(hand_masks, hand_masks[1:], strict=False)]
    self.assertEqual(callback.found_epoch, 8)
    self.assertTrue(model.stop_training)
    self.assertAllClose(callback.distances, expected[:7], atol=1e-12)
    for got, want in zip(callback.masks, hand_masks[7], strict=True):
      self.assertAllEqual(got, want)

  def test_fit_stops_when_the_weights_no_longer_move(self):
    x, y = fixtures.classification_data(n=32)
    model = fixtures.mlp(seed=1)
    model.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callback = ltp_tfmot.EarlyBirdTicket(target_sparsity=0.8, patience=2)
    history = model.fit(x, y, epochs=10, batch_size=16, verbose=0, callbacks=[callback])
    self.assertEqual(callback.found_epoch, 3)  # distances after epochs 2 and 3 are 0
    self.assertLen(history.history['loss'], 3)
    self.assertEqual(callback.distances, [0.0, 0.0])

  @parameterized.parameters(('layer', 'large_final'), ('global', 'large_final'), ('layer', 'movement'),
                            ('global', 'large_init_large_final'))
  def test_masks_keep_exact_counts(self, scope, criterion):
    x, y = fixtures.classification_data(n=64)
    model = fixtures.compile_for_training(fixtures.mlp(seed=2), learning_rate=0.05)
    callback = ltp_tfmot.EarlyBirdTicket(target_sparsity=0.3, criterion=criterion, scope=scope,
                                         stop_training=False)
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[callback])
    sizes = [int(np.prod(k.shape)) for k in _kernels(model)]
    counts = [int(np.sum(m)) for m in callback.latest_masks]
    self.assertEqual(callback.weight_names, ['hidden1/kernel', 'hidden2/kernel', 'output/kernel'])
    if scope == 'layer':
      self.assertEqual(counts, [int(np.floor(0.7 * n + 0.5)) for n in sizes])
    else:
      self.assertEqual(sum(counts), int(np.floor(0.7 * sum(sizes) + 0.5)))
    self.assertLen(callback.distances, 2)
    if criterion == 'large_final':
      for mask, kernel in zip(callback.latest_masks, _kernels(model), strict=True):
        magnitudes = np.abs(kernel.numpy())
        if scope == 'layer':
          self.assertGreaterEqual(magnitudes[mask.numpy()].min(), magnitudes[~mask.numpy()].max())

  def test_apply_to_sets_the_masks_of_a_wrapped_model_and_zeroes_pruned_weights(self):
    x, y = fixtures.classification_data(n=32)
    model = fixtures.mlp(seed=3)
    model.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callback = ltp_tfmot.EarlyBirdTicket(target_sparsity=0.75, patience=1)
    model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[callback])
    ticket = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(seed=3))
    ticket.build((None, 8))
    callback.apply_to(ticket)
    self.assertAllClose(ltp_tfmot.weights_remaining(ticket), 0.25, atol=0.01)
    for w, mask, initial in zip(ltp_tfmot.lottery_wrappers(ticket), callback.masks, _kernels(model), strict=True):
      self.assertAllEqual(w.masks[0].numpy().astype(bool), mask)
      self.assertAllEqual(w.prunable_weights[0].numpy(), np.where(mask, initial.numpy(), 0.0))

  def test_bad_arguments_raise(self):
    cases = [
        (dict(target_sparsity=0.0), ValueError, r'target_sparsity must be in \(0, 1\), got 0.0'),
        (dict(target_sparsity=1.5), ValueError, r'target_sparsity must be in \(0, 1\), got 1.5'),
        (dict(target_sparsity=0.5, criterion='largest'), ValueError, 'criterion must be one of'),
        (dict(target_sparsity=0.5, criterion='snip'), ValueError, 'EarlyBirdTicket ranks weight values'),
        (dict(target_sparsity=0.5, scope='model'), ValueError, r"scope must be one of \['layer', 'global'\]"),
        (dict(target_sparsity=0.5, threshold=0.0), ValueError, r'threshold must be in \(0, 1\], got 0.0'),
        (dict(target_sparsity=0.5, patience=0), ValueError, 'patience must be an integer >= 1, got 0'),
        (dict(target_sparsity=0.5, stop_training='yes'), TypeError, 'stop_training must be True or False'),
    ]
    for kwargs, error, message in cases:
      with self.assertRaisesRegex(error, message):
        ltp_tfmot.EarlyBirdTicket(**kwargs)
    callback = ltp_tfmot.EarlyBirdTicket(target_sparsity=0.5)
    ticket = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(seed=0))
    ticket.build((None, 8))
    with self.assertRaisesRegex(ValueError, 'no early-bird ticket was found yet'):
      callback.apply_to(ticket)
    before = [m.numpy() for w in ltp_tfmot.lottery_wrappers(ticket) for m in w.masks]
    with self.assertRaisesRegex(ValueError, 'wrap a model of the watched architecture'):
      callback.apply_to(ticket, masks=[np.ones((8, 16), bool)])
    after = [m.numpy() for w in ltp_tfmot.lottery_wrappers(ticket) for m in w.masks]
    for got, want in zip(after, before, strict=True):
      self.assertAllEqual(got, want)
    callback.set_model(keras.Sequential([keras.layers.Flatten(input_shape=(2, 2))]))
    with self.assertRaisesRegex(ValueError, 'found no prunable weight'):
      callback.on_train_begin()


if __name__ == '__main__':
  tf.test.main()
