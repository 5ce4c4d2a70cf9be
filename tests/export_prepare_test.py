"""Tests for the Keras side of an export (ltp_tfmot.export.prepare): stripped model, samples, zeros by layer."""

import os
import tempfile

import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot.export import flatbuffer
from ltp_tfmot.export import prepare
from ltp_tfmot.export import tflite as export
from tests import fixtures


def _two_input_model():
  a, b = keras.Input((8,), name='a'), keras.Input((3,), name='b')
  joined = keras.layers.Concatenate(name='join')([keras.layers.Dense(4, name='hidden')(a), b])
  outputs = [keras.layers.Dense(2, name='first')(joined), keras.layers.Dense(5, name='second')(joined)]
  return keras.Model([a, b], outputs)


def _sparse_tensor(name, shape, stored_bytes):
  return flatbuffer.SparseTensor(name, None, shape, 'float32', stored_bytes, ('FULLY_CONNECTED',), True)


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
    self.assertIn("layers ['a'] were pruned with mask_0_action='freeze'", prepare.frozen_note(('a',), ()))

  def test_is_quantization_aware_finds_tfmot_quantize_wrappers(self):
    ticket = fixtures.pruned_mlp((16, 8, 8, 4), 0.5)
    self.assertFalse(prepare.is_quantization_aware(ticket))
    self.assertTrue(prepare.is_quantization_aware(ltp_tfmot.quantize_ticket(ticket)))

  def test_input_arrays_takes_an_array_a_list_or_a_dict_and_says_what_is_wrong(self):
    model = _two_input_model()
    a, b = np.ones((2, 8)), np.zeros((2, 3))
    for data in ([a, b], {'b': b, 'a': a}):
      arrays = prepare.input_arrays(model, data, 'x')
      self.assertEqual([(arr.shape, arr.dtype) for arr in arrays], [((2, 8), np.float32), ((2, 3), np.float32)])
    with self.assertRaisesRegex(ValueError, r"x has no entry for model inputs \['b'\]"):
      prepare.input_arrays(model, {'a': a}, 'x')
    with self.assertRaisesRegex(ValueError, r'x has 1 arrays; the model has 2 inputs'):
      prepare.input_arrays(model, a, 'x')
    with self.assertRaisesRegex(ValueError, r"x for input 'b' has shape \(2, 4\)"):
      prepare.input_arrays(model, [a, np.zeros((2, 4))], 'x')
    with self.assertRaisesRegex(ValueError, r'same number \(>= 1\) of samples for every input, got \[2, 3\]'):
      prepare.input_arrays(model, [a, np.zeros((3, 3))], 'x')

  def test_sample_inputs_come_from_the_caller_the_calibration_data_or_a_seeded_normal(self):
    model = fixtures.mlp()
    given, note = prepare.sample_inputs(model, np.ones((3, 8)), None)
    self.assertIsNone(note)
    self.assertAllEqual(given['hidden1_input'], np.ones((3, 8)))
    data = np.arange(20 * 8, dtype=np.float32).reshape(20, 8)
    from_array, _ = prepare.sample_inputs(model, None, data)
    self.assertAllEqual(from_array['hidden1_input'], data[:prepare.SAMPLE_COUNT])
    from_callable, _ = prepare.sample_inputs(model, None, lambda: ([data[i:i + 1]] for i in range(len(data))))
    self.assertAllEqual(from_callable['hidden1_input'], data[:prepare.SAMPLE_COUNT])
    seeded, _ = prepare.sample_inputs(model, None, None)
    self.assertEqual(seeded['hidden1_input'].shape, (prepare.SAMPLE_COUNT, 8))
    self.assertAllEqual(seeded['hidden1_input'], prepare.sample_inputs(model, None, None)[0]['hidden1_input'])

  def test_no_samples_are_made_up_for_inputs_of_unknown_shape(self):
    inputs = keras.Input((None, 4))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    self.assertEqual(prepare.sample_inputs(model, None, None),
                     (None, 'outputs not compared: pass sample_inputs for inputs of unknown shape or non-float type'))

  def test_keras_outputs_are_float64_by_output_name(self):
    model = _two_input_model()
    samples = {'b': np.zeros((2, 3), np.float32), 'a': np.ones((2, 8), np.float32)}
    outputs = prepare.keras_outputs(model, samples)
    self.assertEqual({name: (value.shape, value.dtype) for name, value in outputs.items()},
                     {'first': ((2, 2), np.float64), 'second': ((2, 5), np.float64)})
    self.assertAllClose(outputs['first'], model([samples['a'], samples['b']])[0].numpy())

  def test_keras_sparsity_counts_the_zeros_of_each_layer(self):
    prunable, every, weights = prepare.keras_sparsity(ltp_tfmot.strip_pruning(fixtures.pruned_mlp((16, 8, 8, 4), 0.5)))
    self.assertEqual(prunable, {'h1': 0.5, 'h2': 0.5, 'out': 0.5})
    self.assertEqual(every, prunable)
    self.assertEqual(weights, [('h1', 128, 64), ('h2', 64, 32), ('out', 32, 16)])

  def test_match_layers_by_name_else_by_size_and_stored_values(self):
    weights = [('h1', 32, 8), ('h2', 32, 16), ('out', 12, 6)]
    tensors = [_sparse_tensor('model/h1/MatMul', (8, 4), 32), _sparse_tensor('tfl.pseudo_qconst', (8, 4), 64),
               _sparse_tensor('tfl.pseudo_qconst1', (3, 4), 24), _sparse_tensor('tfl.pseudo_qconst2', (5, 5), 4)]
    matched = prepare.match_layers(tensors, weights)
    self.assertEqual([t.layer for t in matched], ['h1', 'h2', 'out', None])
    layer_of = prepare.layer_namer(matched, ['h1', 'h2', 'out'])
    self.assertEqual([layer_of(name) for name in ('tfl.pseudo_qconst', 'model/out/BiasAdd', 'model/h1;h2/x', 'x')],
                     ['h2', 'out', None, None])


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
