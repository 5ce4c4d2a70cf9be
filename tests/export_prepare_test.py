"""Tests for the Keras 2 side of an export (ltp_tfmot.export.prepare): stripped model, zeros by layer."""

import os
import tempfile

import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot.export import prepare
from ltp_tfmot.export import tflite as export
from tests import fixtures


class PrepareTest(tf.test.TestCase):

  def test_strip_masks_a_wrapped_model_and_leaves_a_plain_one_as_it_is(self):
    wrapped = fixtures.pruned_mlp((16, 8, 8, 4), 0.5)
    for w in ltp_tfmot.lottery_wrappers(wrapped):  # an optimizer step after the last mask application
      w.layer.kernel.assign_add(tf.fill(w.layer.kernel.shape, 0.01))
    stripped = prepare.strip(wrapped)
    self.assertEqual(ltp_tfmot.lottery_wrappers(stripped), [])
    self.assertEqual({layer.name: float(np.mean(layer.kernel.numpy() == 0)) for layer in stripped.layers},
                     {'h1': 0.5, 'h2': 0.5, 'out': 0.5})
    plain = fixtures.mlp()
    self.assertIs(prepare.strip(plain), plain)

  def test_frozen_layers_names_the_freeze_layers(self):
    self.assertEqual(prepare.frozen_layers(fixtures.pruned(fixtures.mlp(), 0.5, (None, 8), mask_0_action='freeze')),
                     ('hidden1', 'hidden2', 'output'))
    self.assertEqual(prepare.frozen_layers(fixtures.pruned_mlp((16, 8, 8, 4), 0.5)), ())
    self.assertEqual(prepare.frozen_layers(fixtures.mlp()), ())

  def test_is_quantization_aware_finds_tfmot_quantize_wrappers(self):
    ticket = fixtures.pruned_mlp((16, 8, 8, 4), 0.5)
    self.assertFalse(prepare.is_quantization_aware(ticket))
    self.assertTrue(prepare.is_quantization_aware(ltp_tfmot.quantize_ticket(ticket)))

  def test_keras_sparsity_counts_the_zeros_of_each_layer(self):
    prunable, every, weights = prepare.keras_sparsity(ltp_tfmot.strip_pruning(fixtures.pruned_mlp((16, 8, 8, 4), 0.5)))
    self.assertEqual(prunable, {'h1': 0.5, 'h2': 0.5, 'out': 0.5})
    self.assertEqual(every, prunable)
    self.assertEqual(weights, [('h1', 128, 64), ('h2', 64, 32), ('out', 32, 16)])

class PrepareOfAnExportTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.path = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'model.tflite')

  def test_wrapped_model_gets_its_masks_reapplied_before_export(self):
    model = fixtures.pruned_mlp((64, 32, 16, 10), 0.9)
    for w in ltp_tfmot.lottery_wrappers(model):  # an optimizer step after the last mask application
      w.layer.kernel.assign_add(tf.fill(w.layer.kernel.shape, 0.01))
    report = export.export_tflite(model, self.path)
    self.assertEqual({name: round(s, 3) for name, s in report.layer_sparsity.items()},
                     {'h1': 0.9, 'h2': 0.9, 'out': 0.9})
    mask = model.layers[0].pruning_vars[0][1].numpy()
    self.assertAllEqual(model.layers[0].layer.kernel.numpy()[mask == 0], np.zeros(int((mask == 0).sum())))
    self.assertLessEqual(report.max_abs_diff, 1e-5)

  def test_freeze_ticket_is_reported_as_dense_and_why(self):
    model = fixtures.pruned(fixtures.mlp(), 0.5, (None, 8), mask_0_action='freeze')
    report = export.export_tflite(model, self.path)
    self.assertEqual(report.frozen_layers, ('hidden1', 'hidden2', 'output'))
    self.assertEqual(report.sparse_tensors, ())
    self.assertEqual(report.layer_sparsity, {'hidden1': 0.0, 'hidden2': 0.0, 'output': 0.0})
    self.assertRegex(report.to_markdown(), r"pruned with mask_0_action='freeze': their pruned weights keep their "
                     r"rewind-point values instead of 0.*mask_0_action='zero'")

  def test_layer_sparsity_counts_prunable_weights_and_markdown_shows_all_weights_where_they_differ(self):
    inputs = keras.Input((8, 8, 2))
    separable = keras.layers.SeparableConv2D(4, 3, depthwise_initializer=keras.initializers.GlorotUniform(0),
                                             pointwise_initializer=keras.initializers.GlorotUniform(1),
                                             name='sep')(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, name='out')(keras.layers.Flatten()(separable)))
    model = fixtures.pruned(model, 0.75, (None, 8, 8, 2))
    masks = ltp_tfmot.layer_sparsity(model)
    report = export.export_tflite(model, self.path)
    self.assertEqual(report.layer_sparsity, masks)  # 0.75: SeparableConv2D prunes its pointwise kernel only
    self.assertAllClose(report.weight_sparsity['sep'], 0.75 * 8 / (18 + 8))  # depthwise 3x3x2x1, pointwise 1x1x2x4
    self.assertIn('| sep | 75.0% (all weights of rank >= 2: 23.1%) |', report.to_markdown())
    self.assertRegex(report.to_markdown(), r'\| out \| 75\.0% \|')


if __name__ == '__main__':
  tf.test.main()
