"""Tests for Keras 3 ticket files: round trips, and tickets moving between the Keras 2 and Keras 3 front ends."""

import os
import tempfile
from unittest import mock

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf
import tf_keras

import ltp_tfmot
from ltp_tfmot.keras3 import tickets


def _layers(library):
  return [library.layers.Conv2D(3, 3, name='conv'), library.layers.Flatten(name='flatten'),
          library.layers.Dense(8, activation='relu', name='hidden'), library.layers.Dense(2, name='output')]


def _model(library, seed):
  """A small conv net of `library` (tf_keras or keras), its weights drawn from `seed`."""
  model = library.Sequential([library.Input((5, 5, 1))] + _layers(library))
  rng = np.random.default_rng(seed)
  model.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in model.weights])
  return ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(0.5), seed=3)


def _found_ticket(library, rounds=2):
  """A wrapped model after `rounds` lottery rounds, its snapshot taken at step 4."""
  model = _model(library, seed=0)
  ltp_tfmot.take_snapshot(model, step=4)
  rng = np.random.default_rng(1)
  for _ in range(rounds):
    for w in ltp_tfmot.lottery_wrappers(model):
      for weight in w.layer.weights:
        weight.assign(np.asarray(weight) + rng.standard_normal(weight.shape).astype(np.float32))
    ltp_tfmot.run_lottery_round(model)
  return model


def _tickets(model):
  """Per wrapped layer: its masks, snapshots, rounds done, snapshot step and weights, as NumPy values."""
  return [([np.asarray(m) for m in w.masks], [np.asarray(s) for s in w.snapshots], int(np.asarray(w.rounds_done)),
           int(np.asarray(w.snapshot_step)), [np.asarray(v) for v in w.layer.weights])
          for w in ltp_tfmot.lottery_wrappers(model)]


class Keras3TicketTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.path = os.path.join(self.dir, 'ticket.npz')

  def assertSameTickets(self, got, want):
    for (masks, snapshots, rounds, step, _), (want_masks, want_snapshots, want_rounds, want_step, _) in zip(
        got, want, strict=True):
      self.assertEqual((rounds, step), (want_rounds, want_step))
      for value, expected in zip(masks + snapshots, want_masks + want_snapshots, strict=True):
        self.assertAllEqual(value, expected)

  def test_round_trip_restores_masks_snapshots_counters_and_rewinds(self):
    original = _found_ticket(keras)
    ltp_tfmot.save_ticket(original, self.path)
    fresh = _model(keras, seed=7)
    ltp_tfmot.load_ticket(fresh, self.path)
    self.assertSameTickets(_tickets(fresh), _tickets(original))
    for w in ltp_tfmot.lottery_wrappers(fresh):
      self.assertAllEqual(np.asarray(w.layer.kernel), np.asarray(w.snapshots[0]) * np.asarray(w.masks[0]))
      self.assertAllEqual(np.asarray(w.layer.bias), np.asarray(w.snapshots[1]))

  @parameterized.named_parameters(('keras2_to_keras3', tf_keras, keras), ('keras3_to_keras2', keras, tf_keras))
  def test_a_ticket_of_one_front_end_loads_into_the_other(self, found_with, loaded_into):
    original = _found_ticket(found_with)
    saved = ltp_tfmot.save_ticket(original, self.path)
    fresh = _model(loaded_into, seed=7)
    loaded = ltp_tfmot.load_ticket(fresh, self.path)
    self.assertEqual([layer.name for layer in loaded.layers], ['conv', 'hidden', 'output'])
    self.assertEqual(loaded.sparsity, saved.sparsity)
    self.assertSameTickets(_tickets(fresh), _tickets(original))
    # Both front ends rewind the same ticket to the same weights: the masked snapshot, exactly.
    for got, want in zip(_tickets(fresh), _tickets(_reloaded(found_with, self.path)), strict=True):
      for value, expected in zip(got[4], want[4], strict=True):
        self.assertAllEqual(value, expected)

  def test_read_ticket_reads_a_keras3_file_without_a_model(self):
    ltp_tfmot.save_ticket(_found_ticket(keras, rounds=1), self.path, config={'note': 'k3'})
    ticket = ltp_tfmot.read_ticket(self.path)
    self.assertEqual(ticket.config, {'note': 'k3'})
    self.assertEqual(ticket.layers[0].weight_names, ('kernel', 'bias'))
    self.assertEqual(ticket.layers[0].lottery['criterion'], 'large_final')
    self.assertAllClose(list(ticket.sparsity.values()), [0.5, 0.5, 0.5], atol=0.02)

  def test_a_model_of_another_architecture_is_refused_unchanged(self):
    ltp_tfmot.save_ticket(_found_ticket(keras), self.path)
    other = keras.Sequential([keras.Input((5, 5, 1)), keras.layers.Conv2D(3, 3, name='conv'),
                              keras.layers.Flatten(), keras.layers.Dense(4, name='hidden'),
                              keras.layers.Dense(2, name='output')])
    other = ltp_tfmot.prune_lottery_ticket(other, ltp_tfmot.LotteryTicketSchedule(0.5))
    before = [np.asarray(v) for v in other.weights]
    with self.assertRaisesRegex(ValueError, r"weight 'kernel' of layer 'hidden' has shape \[27, 8\] in the ticket"):
      ltp_tfmot.load_ticket(other, self.path)
    for value, variable in zip(before, other.weights, strict=True):
      self.assertAllEqual(np.asarray(variable), value)

  def test_a_failed_rewind_leaves_the_model_unchanged(self):
    ltp_tfmot.save_ticket(_found_ticket(keras), self.path)
    fresh = _model(keras, seed=7)
    before = [np.asarray(v) for v in fresh.weights]
    with mock.patch.object(tickets.rewind_lib, 'rewind_weights', side_effect=ValueError('no initializer')):
      with self.assertRaisesRegex(ValueError, r'no initializer'):
        tickets.load_ticket(fresh, self.path)
    for value, variable in zip(before, fresh.weights, strict=True):
      self.assertAllEqual(np.asarray(variable), value)

  def test_saving_without_a_snapshot_is_refused_and_writes_nothing(self):
    with self.assertRaisesRegex(ValueError, r'have no rewind snapshot yet'):
      ltp_tfmot.save_ticket(_model(keras, seed=0), self.path)
    self.assertFalse(os.path.exists(self.path))


def _reloaded(library, path):
  """A fresh wrapped model of `library` with the ticket at `path` loaded."""
  model = _model(library, seed=11)
  ltp_tfmot.load_ticket(model, path)
  return model


if __name__ == '__main__':
  tf.test.main()
