"""Tests for TFLite export of Keras 3 tickets (`ltp_tfmot.export.prepare_keras3`), on the TensorFlow and JAX backends.

The converted file must match the stripped Keras 3 model within `ltp_tfmot.export.TOLERANCES` (float32: 1e-4 of
the largest |Keras output|; measured: 6e-8 on TensorFlow, 0 to 6e-8 on JAX) and 2e-2 for 'dynamic' (int8 weights,
as in tests/export_tflite_test.py).
"""

import os
import tempfile
from unittest import mock

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

import ltp_tfmot
from ltp_tfmot.export import interpreter as interpreter_lib
from ltp_tfmot.export import prepare_keras3
from ltp_tfmot.export import reference
from ltp_tfmot.export import tflite

RELATIVE_TOLERANCE = {None: 1e-4, 'dynamic': 2e-2}


def _ticket(rate=0.8, mask_0_action='zero'):
  """A tiny wrapped Keras 3 MLP after one lottery round of `rate`."""
  keras.utils.set_random_seed(0)
  model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(32, activation='relu', name='hidden'),
                            keras.layers.Dense(2, name='output')])
  model = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(rate), mask_0_action=mask_0_action)
  ltp_tfmot.take_snapshot(model)
  ltp_tfmot.run_lottery_round(model)
  return model


class _Subclassed(keras.Model):

  def __init__(self):
    super().__init__()
    self.dense = keras.layers.Dense(2)

  def call(self, inputs):
    return self.dense(inputs)


def _inputs(n=8):
  return np.random.default_rng(0).standard_normal((n, 6)).astype(np.float32)


class Keras3ExportTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.path = os.path.join(self.dir, 'ticket.tflite')

  @parameterized.parameters(None, 'dynamic')
  def test_a_ticket_exports_sparse_and_matches_the_stripped_model(self, quantization):
    model = _ticket()
    report = ltp_tfmot.export_tflite(model, self.path, quantization=quantization)
    self.assertTrue(report.sparse)
    self.assertEqual(sorted(t.layer for t in report.sparse_tensors), ['hidden', 'output'])
    self.assertAllClose(list(report.layer_sparsity.values()), [0.8, 0.8], atol=0.02)
    self.assertTrue(report.kernels)
    interpreter = ltp_tfmot.load_tflite(self.path)
    outputs = interpreter_lib.run(interpreter, {'input': _inputs()})
    expected = keras.ops.convert_to_numpy(ltp_tfmot.strip_pruning(model)(_inputs()))
    scale = float(np.max(np.abs(expected)))
    self.assertLessEqual(float(np.max(np.abs(next(iter(outputs.values())) - expected))),
                         RELATIVE_TOLERANCE[quantization] * scale)

  def test_a_ticket_trained_on_is_exported_with_its_pruned_weights_zero(self):
    model = _ticket()
    # Trained without UpdateLotteryStep: on JAX the stored weights keep trained values at pruned positions.
    model.compile(keras.optimizers.SGD(0.1), 'mse')
    model.fit(_inputs(), np.ones((8, 2), np.float32), batch_size=4, epochs=1, verbose=0)
    report = ltp_tfmot.export_tflite(model, self.path)
    self.assertAllClose(list(report.layer_sparsity.values()), [0.8, 0.8], atol=0.02)
    for w in ltp_tfmot.lottery_wrappers(model):
      pruned = keras.ops.convert_to_numpy(w.masks[0]) == 0
      self.assertAllEqual(keras.ops.convert_to_numpy(w.layer.kernel)[pruned], np.zeros(pruned.sum()))

  def test_a_freeze_ticket_is_reported_as_not_sparse(self):
    report = ltp_tfmot.export_tflite(_ticket(mask_0_action='freeze'), self.path)
    self.assertEqual(report.frozen_layers, ('hidden', 'output'))
    self.assertTrue(any("mask_0_action='freeze'" in note for note in report.notes), report.notes)

  def test_nothing_is_written_when_the_file_does_not_match_keras(self):
    real = reference.keras_outputs
    shifted = lambda model, samples: {k: v + 1.0 for k, v in real(model, samples).items()}
    with mock.patch.object(reference, 'keras_outputs', side_effect=shifted):
      with self.assertRaisesRegex(tflite.ExportError, r'nothing was written'):
        ltp_tfmot.export_tflite(_ticket(), self.path)
    self.assertEqual(os.listdir(self.dir), [])

  def test_keras3_models_go_to_the_keras3_side(self):
    self.assertIs(tflite.keras_side(_ticket()), prepare_keras3)

  def test_an_unbuilt_or_subclassed_model_is_refused(self):
    with self.assertRaisesRegex(ValueError, r"model '.*' is not built"):
      ltp_tfmot.export_tflite(keras.Sequential([keras.layers.Dense(2)]), self.path)
    subclassed = _Subclassed()
    subclassed(_inputs())
    with self.assertRaisesRegex(ValueError, r'has no symbolic inputs \(a subclassed model\?\)'):
      ltp_tfmot.export_tflite(subclassed, self.path)

  def test_int8_without_representative_data_is_refused(self):
    with self.assertRaisesRegex(ValueError, r"quantization='int8' needs representative_data"):
      ltp_tfmot.export_tflite(_ticket(), self.path, quantization='int8')


if __name__ == '__main__':
  tf.test.main()
