"""Tests for ticket files: round trips, the file format, refusals of other architectures and bad files."""

import json
import os
import tempfile
from unittest import mock
import zipfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot.keras2 import tickets
from tests import fixtures

X, Y = fixtures.classification_data()


def _wrapped(model_fn=fixtures.mlp, input_shape=(None, 8), seed=0, **kwargs):
  schedule = kwargs.pop('schedule', ltp_tfmot.LotteryTicketSchedule(0.5))
  model = ltp_tfmot.prune_lottery_ticket(model_fn(seed=seed), schedule, **kwargs)
  model.build(input_shape)
  return model


def _ticket_model(rounds=2, **kwargs):
  """A wrapped MLP after `rounds` lottery rounds (snapshot at step 3)."""
  model = _wrapped(**kwargs)
  ltp_tfmot.take_snapshot(model, step=3)
  for r in range(rounds):
    fixtures.perturb(model, seed=r)
    ltp_tfmot.run_lottery_round(model)
  return model


def _state(model):
  return [v.numpy().copy() for v in model.weights]


class TicketRoundTripTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.path = os.path.join(self.dir, 'ticket.npz')

  def test_round_trip_restores_masks_snapshots_counters_and_outputs(self):
    original = _ticket_model()
    tickets.save_ticket(original, self.path)
    fresh = _wrapped(seed=7)  # other initial weights, no snapshot, no round done
    tickets.load_ticket(fresh, self.path)
    for want, got in zip(ltp_tfmot.lottery_wrappers(original), ltp_tfmot.lottery_wrappers(fresh), strict=True):
      self.assertAllEqual(got.pruning_vars[0][1], want.pruning_vars[0][1])
      for snapshot_want, snapshot_got in zip(want.snapshots, got.snapshots, strict=True):
        self.assertAllEqual(snapshot_got, snapshot_want)
      self.assertEqual(int(got.rounds_done.numpy()), 2)
      self.assertEqual(int(got.snapshot_step.numpy()), 3)
      self.assertAllEqual(got.layer.kernel, got.snapshots[0].numpy() * got.pruning_vars[0][1].numpy())
      self.assertAllEqual(got.layer.bias, got.snapshots[1])
    self.assertAllEqual(fresh(X), original(X))
    self.assertEqual(ltp_tfmot.layer_sparsity(fresh), {'hidden1': 0.75, 'hidden2': 0.75, 'output': 0.75})

  def test_loaded_ticket_retrains_exactly_like_the_original(self):
    original = _ticket_model(rounds=1)
    tickets.save_ticket(original, self.path)
    fresh = _wrapped(seed=7)
    tickets.load_ticket(fresh, self.path)
    for model in (original, fresh):
      fixtures.compile_for_training(model)
      model.fit(X, Y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])
    for want, got in zip(original.weights, fresh.weights, strict=True):
      fixtures.assert_close_to_scale(self, got, want, rtol=1e-6)

  def test_conv_model_with_unwrapped_batch_norm_round_trips(self):
    original = _ticket_model(rounds=1, model_fn=fixtures.convnet, input_shape=(None, 8, 8, 2))
    tickets.save_ticket(original, self.path)
    fresh = _wrapped(model_fn=fixtures.convnet, input_shape=(None, 8, 8, 2), seed=4)
    for bn_want, bn_got in zip(original.get_layer('bn').weights, fresh.get_layer('bn').weights, strict=True):
      bn_got.assign(bn_want)  # BatchNormalization is not wrapped, so not part of the ticket
    loaded = tickets.load_ticket(fresh, self.path)
    self.assertEqual([layer.name for layer in loaded.layers], ['conv', 'depthwise', 'output'])
    x = np.random.RandomState(0).randn(4, 8, 8, 2).astype(np.float32)
    self.assertAllEqual(fresh(x), original(x))

  def test_read_ticket_returns_config_lottery_settings_and_arrays(self):
    original = _ticket_model(criterion='magnitude_increase', scope='global', mask_0_action='freeze', seed=0)
    config = {'experiment': 'lenet', 'rate': 0.5, 'accuracy': [0.91, 0.93]}
    saved = tickets.save_ticket(original, self.path, config=config)
    ticket = tickets.read_ticket(self.path)
    self.assertEqual(ticket.config, config)
    self.assertEqual(ticket.format_version, tickets.FORMAT_VERSION)
    self.assertEqual(ticket.ltp_tfmot_version, ltp_tfmot.__version__)
    self.assertEqual(ticket.sparsity, saved.sparsity)
    self.assertEqual(ticket.sparsity, ltp_tfmot.layer_sparsity(original))
    layer = ticket.layers[1]
    self.assertEqual((layer.name, layer.class_name), ('hidden2', 'Dense'))
    self.assertEqual(layer.weight_names, ('kernel', 'bias'))
    self.assertEqual(layer.weight_shapes, ((16, 12), (12,)))
    self.assertEqual(layer.prunable, (0,))
    self.assertEqual((layer.rounds_done, layer.snapshot_step), (2, 3))
    self.assertEqual(layer.lottery['criterion'], 'magnitude_increase')
    self.assertEqual(layer.lottery['scope'], 'global')
    self.assertEqual(layer.lottery['mask_0_action'], 'freeze')
    self.assertEqual(layer.lottery['pruning_schedule'],
                     {'class_name': 'LotteryTicketSchedule', 'config': {'rate': 0.5, 'round_steps': None,
                                                                        'rounds': None}})
    self.assertAllEqual(layer.masks[0], original.layers[1].pruning_vars[0][1])
    self.assertAllEqual(layer.snapshots[0], original.layers[1].snapshots[0])

  def test_file_is_the_documented_npz_layout(self):
    tickets.save_ticket(_ticket_model(), self.path, config={'note': 'x'})
    with np.load(self.path, allow_pickle=False) as npz:
      self.assertCountEqual(npz.files, ['metadata'] + [f'{kind}/{layer}/{weight}'
                                                       for layer in ('hidden1', 'hidden2', 'output')
                                                       for kind, weight in (('masks', 'kernel'),
                                                                            ('snapshots', 'kernel'),
                                                                            ('snapshots', 'bias'))])
      metadata = json.loads(str(npz['metadata']))
      self.assertEqual(npz['masks/hidden1/kernel'].dtype, bool)
      self.assertEqual(npz['snapshots/hidden1/bias'].dtype, np.float32)
    self.assertEqual((metadata['format'], metadata['format_version']), ('ltp_tfmot.ticket', 1))
    self.assertEqual(metadata['config'], {'note': 'x'})
    self.assertEqual(metadata['layers'][0]['weights'][0],
                     {'name': 'kernel', 'shape': [8, 16], 'dtype': 'float32', 'prunable': True})
    self.assertEqual(os.listdir(self.dir), ['ticket.npz'])  # no temporary file left

  def test_freeze_ticket_loads_pruned_weights_at_their_snapshot(self):
    original = _ticket_model(mask_0_action='freeze')
    tickets.save_ticket(original, self.path)
    fresh = _wrapped(seed=7, mask_0_action='freeze')
    tickets.load_ticket(fresh, self.path)
    self.assertAllEqual(fresh.layers[0].layer.kernel, original.layers[0].snapshots[0])

  def test_other_layer_names_load_by_position_with_a_warning(self):
    original = _ticket_model()
    tickets.save_ticket(original, self.path)
    fresh = ltp_tfmot.prune_lottery_ticket(keras.Sequential([
        keras.layers.Dense(16, activation='relu', input_shape=(8,)), keras.layers.Dense(12, activation='relu'),
        keras.layers.Dense(4)]), ltp_tfmot.LotteryTicketSchedule(0.5))  # automatic names: dense_N
    with self.assertLogs(level='WARNING') as logs:
      tickets.load_ticket(fresh, self.path)
    self.assertRegex('\n'.join(logs.output), r"names differ \(ticket -> model\): #0 'hidden1' \['kernel', 'bias'\] "
                     r"-> 'dense(_\d+)?' \['kernel', 'bias'\]")
    self.assertAllClose(fresh(X), original(X))
    for want, got in zip(ltp_tfmot.lottery_wrappers(original), ltp_tfmot.lottery_wrappers(fresh), strict=True):
      self.assertAllEqual(got.pruning_vars[0][1], want.pruning_vars[0][1])

  @parameterized.named_parameters((layer, layer) for layer in fixtures.LAYER_MODELS)
  def test_every_wrapped_layer_type_loads_into_a_rebuilt_model(self, layer):
    build, x = fixtures.LAYER_MODELS[layer]
    original = ltp_tfmot.prune_lottery_ticket(build(), ltp_tfmot.LotteryTicketSchedule(0.5))
    ltp_tfmot.take_snapshot(original)
    fixtures.perturb(original)
    ltp_tfmot.run_lottery_round(original)
    tickets.save_ticket(original, self.path)
    rebuilt = ltp_tfmot.prune_lottery_ticket(build(), ltp_tfmot.LotteryTicketSchedule(0.5))  # other automatic names
    tickets.load_ticket(rebuilt, self.path)
    self.assertAllClose(rebuilt(x), original(x))
    for want, got in zip(ltp_tfmot.lottery_wrappers(original), ltp_tfmot.lottery_wrappers(rebuilt), strict=True):
      for (_, want_mask, _), (_, got_mask, _) in zip(want.pruning_vars, got.pruning_vars, strict=True):
        self.assertAllEqual(got_mask, want_mask)
    self.assertAllClose(ltp_tfmot.strip_pruning(rebuilt)(x), original(x))

  def test_other_lottery_settings_in_the_model_are_kept_with_a_warning(self):
    tickets.save_ticket(_ticket_model(), self.path)
    fresh = _wrapped(seed=7, criterion='large_init')
    with self.assertLogs(level='WARNING') as logs:
      tickets.load_ticket(fresh, self.path)
    self.assertIn("'criterion': ('large_final', 'large_init')", '\n'.join(logs.output))
    self.assertEqual(fresh.layers[0].criterion, 'large_init')


class TicketRefusalTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.path = os.path.join(self.dir, 'ticket.npz')
    tickets.save_ticket(_ticket_model(), self.path)

  def _assert_refused_unchanged(self, model, error, regex, path=None):
    state = _state(model)
    with self.assertRaisesRegex(error, regex):
      tickets.load_ticket(model, path or self.path)
    for want, got in zip(state, model.weights, strict=True):
      self.assertAllEqual(got, want)

  def _mlp(self, layers):
    def build(seed=0):
      return keras.Sequential([keras.layers.Dense(n, input_shape=(8,) if i == 0 else (), name=name,
                                                  kernel_initializer=keras.initializers.GlorotUniform(seed=seed))
                               for i, (name, n) in enumerate(layers)])
    return _wrapped(model_fn=build)

  @parameterized.named_parameters(
      ('other_shape', [('hidden1', 16), ('hidden2', 20), ('output', 4)],
       r"weight 'kernel' of layer 'hidden2' has shape \[16, 12\] in the ticket and \[16, 20\] in the model"),
      ('extra_layer', [('hidden1', 16), ('hidden2', 12), ('output', 4), ('extra', 2)],
       r"the ticket has 3 wrapped layers and the model 4; first extra: 'extra' \(model only\)"),
      ('missing_layer', [('hidden1', 16), ('hidden2', 12)],
       r"the ticket has 3 wrapped layers and the model 2; first extra: 'output' \(ticket only\)"),
  )
  def test_other_architecture_raises_naming_the_first_difference(self, layers, regex):
    self._assert_refused_unchanged(self._mlp(layers), ValueError, r'does not fit this model: ' + regex)

  def test_other_layer_class_raises(self):
    model = _wrapped(model_fn=fixtures.convnet, input_shape=(None, 8, 8, 2))
    self._assert_refused_unchanged(
        model, ValueError, r"wrapped layer #0 \('hidden1' in the ticket, 'conv' in the model\) is a Dense in the "
        'ticket and a Conv2D')

  def test_truncated_file_raises_a_clear_error(self):
    with open(self.path, 'rb') as f:
      content = f.read()
    truncated = os.path.join(self.dir, 'truncated.npz')
    with open(truncated, 'wb') as f:
      f.write(content[:len(content) // 2])
    self._assert_refused_unchanged(_wrapped(seed=7), tickets.TicketFileError,
                                   r"truncated\.npz' is not a readable ticket file \(truncated or corrupt\?\)",
                                   path=truncated)

  def test_corrupt_array_raises_a_clear_error(self):
    with zipfile.ZipFile(self.path) as archive:
      info = archive.getinfo('snapshots/hidden1/kernel.npy')
    with open(self.path, 'r+b') as f:  # flip bytes inside the compressed data of one array
      f.seek(info.header_offset + 30 + len(info.filename) + len(info.extra) + 20)
      data = f.read(8)
      f.seek(-8, os.SEEK_CUR)
      f.write(bytes(b ^ 0xFF for b in data))
    self._assert_refused_unchanged(_wrapped(seed=7), tickets.TicketFileError, r'truncated or corrupt')

  def test_npz_without_ticket_metadata_raises(self):
    other = os.path.join(self.dir, 'other.npz')
    np.savez_compressed(other, weights=np.zeros(3))
    self._assert_refused_unchanged(_wrapped(seed=7), tickets.TicketFileError, r'is not a valid ticket file: '
                                   r'it has no metadata entry', path=other)

  def test_newer_format_version_raises(self):
    with np.load(self.path) as npz:
      arrays = {key: npz[key] for key in npz.files}
    metadata = json.loads(str(arrays['metadata']))
    metadata['format_version'] = tickets.FORMAT_VERSION + 1
    arrays['metadata'] = np.array(json.dumps(metadata))
    newer = os.path.join(self.dir, 'newer.npz')
    np.savez_compressed(newer, **arrays)
    self._assert_refused_unchanged(_wrapped(seed=7), tickets.TicketFileError,
                                   r'format version 2, written by a newer ltp_tfmot', path=newer)

  def test_missing_file_raises_file_not_found(self):
    with self.assertRaisesRegex(FileNotFoundError, r'no ticket file'):
      tickets.read_ticket(os.path.join(self.dir, 'absent.npz'))

  def test_save_without_snapshot_raises_and_writes_nothing(self):
    path = os.path.join(self.dir, 'new.npz')
    with self.assertRaisesRegex(ValueError, r'have no rewind snapshot: call ltp_tfmot.take_snapshot'):
      tickets.save_ticket(_wrapped(), path)
    self.assertFalse(os.path.exists(path))

  @parameterized.parameters(({'f': object()},), ([1, 2],))
  def test_bad_config_raises(self, config):
    with self.assertRaisesRegex(ValueError, r'config must be'):
      tickets.save_ticket(_ticket_model(rounds=0), os.path.join(self.dir, 'new.npz'), config=config)

  def test_unwrapped_or_unbuilt_model_raises(self):
    with self.assertRaisesRegex(ValueError, r'has no PruneLotteryTicket layer'):
      tickets.save_ticket(fixtures.mlp(), os.path.join(self.dir, 'new.npz'))
    with self.assertRaisesRegex(ValueError, r'not built yet'):
      tickets.load_ticket(ltp_tfmot.prune_lottery_ticket(keras.Sequential([keras.layers.Dense(2)])), self.path)

  def test_failed_save_leaves_the_previous_file_and_no_temporary_file(self):
    with open(self.path, 'rb') as f:
      previous = f.read()
    with mock.patch.object(np, 'savez_compressed', side_effect=OSError('disk full')):
      with self.assertRaisesRegex(OSError, r'disk full'):
        tickets.save_ticket(_ticket_model(rounds=1), self.path)
    with open(self.path, 'rb') as f:
      self.assertEqual(f.read(), previous)
    self.assertEqual(os.listdir(self.dir), ['ticket.npz'])


if __name__ == '__main__':
  tf.test.main()
