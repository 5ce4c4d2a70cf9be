"""Tests for saving and loading wrapped models, and for strip_pruning."""

import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot.keras2 import wrapper
from tests import fixtures

LOTTERY_CONFIG_KEYS = ('criterion', 'scope', 'layer_rate', 'mask_0_action', 'mask_1_action',
                       'dynamic_weight_rescaling', 'rewind_step', 'seed', 'pruning_schedule')


def _trained_ticket(**kwargs):
  schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=2, rounds=1)
  model = fixtures.compile_for_training(
      ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), schedule, criterion='magnitude_increase', **kwargs))
  x, y = fixtures.classification_data()
  model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])
  return model, x


def _lottery_state(model):
  state = {}
  for w in ltp_tfmot.lottery_wrappers(model):
    state[w.layer.name] = ([m.numpy() for _, m, _ in w.pruning_vars], [s.numpy() for s in w.snapshots],
                           int(w.rounds_done.numpy()), int(w.snapshot_step.numpy()),
                           {key: w.get_config()[key] for key in LOTTERY_CONFIG_KEYS})
  return state


class SerializationTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      (f'{layer}_{fmt}', layer, filename) for layer in fixtures.LAYER_MODELS
      for fmt, filename in (('h5', 'model.h5'), ('saved_model', 'saved_model'), ('keras', 'model.keras')))
  def test_every_wrapped_layer_type_round_trips_masks_snapshots_and_rounds(self, layer, filename):
    build, x = fixtures.LAYER_MODELS[layer]
    model = ltp_tfmot.prune_lottery_ticket(build(), ltp_tfmot.LotteryTicketSchedule(rate=0.5))
    ltp_tfmot.take_snapshot(model, step=2)
    fixtures.perturb(model)
    ltp_tfmot.run_lottery_round(model)
    path = os.path.join(self.get_temp_dir(), f'{layer}_{filename}')
    model.save(path)
    with ltp_tfmot.prune_scope():
      loaded = keras.models.load_model(path)
    self.assertAllClose(loaded(x), model(x))
    wrappers, loaded_wrappers = ltp_tfmot.lottery_wrappers(model), ltp_tfmot.lottery_wrappers(loaded)
    self.assertLen(loaded_wrappers, len(wrappers))
    for want, got in zip(wrappers, loaded_wrappers, strict=True):
      # Name scopes differ after loading (as for any Keras layer); the names within the wrapper do not.
      own = lambda w: [v.name.rsplit('/', 1)[-1] for v in [mask for _, mask, _ in w.pruning_vars] + w.snapshots]
      self.assertEqual(own(got), own(want))
      self.assertEqual(wrapper.weight_paths(got.layer), wrapper.weight_paths(want.layer))
      for want_variable, got_variable in zip(want.weights, got.weights, strict=True):
        self.assertAllEqual(got_variable, want_variable)
      self.assertEqual(int(got.rounds_done.numpy()), 1)
      self.assertLess(min(float(tf.reduce_mean(mask)) for _, mask, _ in got.pruning_vars), 1.0)

  @parameterized.named_parameters(('h5', 'model.h5'), ('saved_model', 'saved_model'), ('keras', 'model.keras'))
  def test_round_trip_keeps_masks_snapshots_and_schedule(self, filename):
    model, x = _trained_ticket(layer_rates={'output': 0.25}, mask_0_action='freeze')
    path = os.path.join(self.get_temp_dir(), filename)
    model.save(path)
    with ltp_tfmot.prune_scope():
      loaded = keras.models.load_model(path)
    self.assertAllClose(loaded(x), model(x))
    expected, actual = _lottery_state(model), _lottery_state(loaded)
    self.assertEqual(sorted(expected), sorted(actual))
    for name in expected:
      for want, got in zip(expected[name][0] + expected[name][1], actual[name][0] + actual[name][1], strict=True):
        self.assertAllEqual(want, got)
      self.assertEqual(expected[name][2:], actual[name][2:])
    self.assertEqual(loaded.layers[0].pruning_schedule, model.layers[0].pruning_schedule)

  def test_loaded_model_keeps_the_positions_its_random_draws_derive_from(self):
    model = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), ltp_tfmot.LotteryTicketSchedule(0.5), criterion='random')
    path = os.path.join(self.get_temp_dir(), 'positions.keras')
    model.save(path)
    with ltp_tfmot.prune_scope():
      loaded = keras.models.load_model(path)
    self.assertEqual([w.position for w in ltp_tfmot.lottery_wrappers(loaded)], [0, 1, 2])
    ltp_tfmot.compute_next_masks(model)
    ltp_tfmot.compute_next_masks(loaded.layers[1])
    self.assertAllEqual(loaded.layers[1].pruning_vars[0][1], model.layers[1].pruning_vars[0][1])

  def test_loaded_model_resumes_training_without_repeating_rounds(self):
    model, x = _trained_ticket()
    path = os.path.join(self.get_temp_dir(), 'resume.h5')
    model.save(path)
    with ltp_tfmot.prune_scope():
      loaded = keras.models.load_model(path)
    before = fixtures.masks_of(loaded)
    _, y = fixtures.classification_data()
    loaded.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])
    for name, mask in fixtures.masks_of(loaded).items():
      self.assertAllEqual(mask, before[name])

  @parameterized.named_parameters(
      ('h5', 'resume.h5', False), ('keras', 'resume.keras', False), ('saved_model', 'resume_saved_model', False),
      ('h5_new_optimizer', 'resume_new.h5', True))
  def test_resumed_model_counts_on_from_the_saved_step(self, filename, new_optimizer):
    schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=4, rounds=2)
    model = fixtures.compile_for_training(ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), schedule))
    x, y = fixtures.classification_data(n=6 * 16)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])
    self.assertEqual(ltp_tfmot.steps_done(model), 6)  # the round at step 4 reset optimizer.iterations to 0
    path = os.path.join(self.get_temp_dir(), filename)
    model.save(path)
    with ltp_tfmot.prune_scope():
      loaded = keras.models.load_model(path)
    if new_optimizer:
      fixtures.compile_for_training(loaded)
    rounds = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: rounds.append(
        (ltp_tfmot.steps_done(loaded), int(loaded.layers[0].rounds_done.numpy()))))
    loaded.fit(x[:32], y[:32], batch_size=16, epochs=1, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep(), record])
    self.assertEqual(rounds, [(7, 1), (8, 2)])

  def test_strip_pruning_gives_plain_layers_same_sparsity_and_outputs(self):
    model, x = _trained_ticket()
    expected = model(x)
    sparsity = ltp_tfmot.layer_sparsity(model)
    stripped = ltp_tfmot.strip_pruning(model)
    self.assertEqual([type(layer).__name__ for layer in stripped.layers], ['Dense'] * 3)
    self.assertAllClose(stripped(x), expected)
    for layer in stripped.layers:
      kernel = layer.kernel.numpy()
      self.assertAllClose(1 - np.count_nonzero(kernel) / kernel.size, sparsity[layer.name])

  def test_stripped_model_saves_and_loads_without_custom_objects(self):
    model, x = _trained_ticket()
    stripped = ltp_tfmot.strip_pruning(model)
    path = os.path.join(self.get_temp_dir(), 'stripped.h5')
    stripped.save(path)
    self.assertAllClose(keras.models.load_model(path)(x), stripped(x))

  def test_strip_pruning_refuses_non_models(self):
    with self.assertRaisesRegex(ValueError, 'model must be a tf_keras Model'):
      ltp_tfmot.strip_pruning(keras.layers.Dense(2))


if __name__ == '__main__':
  tf.test.main()
