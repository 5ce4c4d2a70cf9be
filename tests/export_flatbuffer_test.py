"""Tests for reading and editing TFLite flatbuffers (ltp_tfmot.export.flatbuffer).

The files are converted here with TFLite's converter directly (sparsity optimisation on), independently of
export_tflite, except for the test of what an export reports of its file.
"""

import os
import tempfile

import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot.export import flatbuffer
from ltp_tfmot.export import tflite as export
from tests import fixtures


def _converted(model, float16=False):
  """`model` converted with TFLite's sparsity optimisation (and float16 weights)."""
  converter = tf.lite.TFLiteConverter.from_keras_model(model)
  converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY] + ([tf.lite.Optimize.DEFAULT] if float16 else [])
  if float16:
    converter.target_spec.supported_types = [tf.float16]
  return converter.convert()


def _stripped_mlp(block_size=(1, 1)):
  return ltp_tfmot.strip_pruning(fixtures.pruned_mlp((128, 64, 32, 16), 0.9, block_size))


def _tensors(content):
  """The tensors of the main graph, as the object API reads them."""
  return flatbuffer.flatbuffer_tools().read_model_from_bytearray(bytearray(content)).subgraphs[0].tensors


class FlatbufferTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model = _stripped_mlp()
    cls.unstructured = _converted(cls.model)
    cls.blocks = _converted(_stripped_mlp((4, 1)))

  def test_inspect_flatbuffer_lists_unstructured_sparse_weights_behind_densify_ops(self):
    op_counts, tensors = flatbuffer.inspect_flatbuffer(self.unstructured)
    self.assertEqual((op_counts['DENSIFY'], op_counts['FULLY_CONNECTED']), (3, 3))
    nonzeros = {tuple(reversed(layer.kernel.shape)): int(np.count_nonzero(layer.kernel.numpy()))
                for layer in self.model.layers}  # TFLite's [out, in]
    self.assertEqual({t.shape: t.bytes for t in tensors}, {shape: 4 * n for shape, n in nonzeros.items()})
    for tensor in tensors:
      self.assertEqual((tensor.layer, tensor.dtype, tensor.ops, tensor.densified),
                       (None, 'float32', ('FULLY_CONNECTED',), True))

  def test_inspect_flatbuffer_finds_block_sparse_weights_consumed_sparse(self):
    op_counts, tensors = flatbuffer.inspect_flatbuffer(self.blocks)
    self.assertNotIn('DENSIFY', op_counts)
    self.assertLen(tensors, 3)
    self.assertEqual({(t.ops, t.densified) for t in tensors}, {(('FULLY_CONNECTED',), False)})

  def test_weight_layout_and_tensor_name_describe_object_api_tensors(self):
    unstructured = {flatbuffer.weight_layout(t) for t in _tensors(self.unstructured) if t.sparsity is not None}
    self.assertEqual(unstructured, {'random'})
    blocks = {flatbuffer.weight_layout(t) for t in _tensors(self.blocks) if t.sparsity is not None}
    self.assertEqual(blocks, {'1x4'})
    dense = [t for t in _tensors(self.blocks) if t.sparsity is None]
    self.assertEqual({flatbuffer.weight_layout(t) for t in dense}, {'dense'})
    names = [flatbuffer.tensor_name(t) for t in _tensors(self.blocks)]
    self.assertTrue(all(isinstance(name, str) for name in names))
    self.assertTrue(any('h1' in name for name in names), names)

  def test_enum_names_maps_codes_to_names(self):
    schema = flatbuffer.tflite_schema()
    names = flatbuffer.enum_names(schema.BuiltinOperator)
    self.assertEqual(names[schema.BuiltinOperator.DENSIFY], 'DENSIFY')
    self.assertEqual(flatbuffer.enum_names(schema.TensorType)[schema.TensorType.FLOAT16], 'FLOAT16')

  def test_densify_is_inserted_in_front_of_dequantize_of_block_sparse_float16_weights(self):
    converted = _converted(_stripped_mlp((4, 1)), float16=True)
    self.assertNotIn('DENSIFY', flatbuffer.inspect_flatbuffer(converted)[0])
    edited, count = flatbuffer.densify_sparse_dequantize_inputs(converted)
    self.assertEqual(count, 3)
    op_counts, tensors = flatbuffer.inspect_flatbuffer(edited)
    self.assertEqual(op_counts['DENSIFY'], 3)
    self.assertEqual({(t.dtype, t.ops, t.densified) for t in tensors}, {('float16', ('FULLY_CONNECTED',), True)})
    self.assertEqual(flatbuffer.densify_sparse_dequantize_inputs(edited), (edited, 0))

  def test_a_file_without_sparse_dequantize_inputs_is_returned_as_it_is(self):
    self.assertEqual(flatbuffer.densify_sparse_dequantize_inputs(self.unstructured), (self.unstructured, 0))

  def test_bytes_that_are_not_a_flatbuffer_have_no_record_and_do_not_load(self):
    for content in (b'', b'not a tflite model', self.unstructured[:8]):
      self.assertIsNone(flatbuffer.recorded_resolver(content))
      with self.assertRaises(ValueError):
        ltp_tfmot.load_tflite(content)

  def test_stamp_resolver_records_one_entry_that_recorded_resolver_reads(self):
    self.assertIsNone(flatbuffer.recorded_resolver(self.unstructured))
    stamped = flatbuffer.stamp_resolver(flatbuffer.stamp_resolver(self.unstructured, 'AUTO'),
                                        'BUILTIN_WITHOUT_DEFAULT_DELEGATES')
    self.assertEqual(flatbuffer.recorded_resolver(stamped), 'BUILTIN_WITHOUT_DEFAULT_DELEGATES')
    model = flatbuffer.tflite_schema().Model.GetRootAs(stamped, 0)
    entries = [model.Metadata(i).Name().decode() for i in range(model.MetadataLength())]
    self.assertEqual(entries.count(flatbuffer.RESOLVER_METADATA), 1)
    self.assertEqual(flatbuffer.inspect_flatbuffer(stamped), flatbuffer.inspect_flatbuffer(self.unstructured))

  def test_partial_blocks_hint_names_weights_whose_blocks_do_not_tile_their_input(self):
    # The converter stores this kernel ([out, in] = [4, 3]) in 1x4 blocks, which do not tile its 3 inputs.
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, activation='tanh', kernel_initializer=keras.initializers.GlorotUniform(0),
                                name='h')(inputs)
    model = fixtures.pruned(keras.Model(inputs, keras.layers.Dense(4, name='out')(hidden)), 0.5, (None, 3))
    hint = flatbuffer.partial_blocks_hint(_converted(ltp_tfmot.strip_pruning(model)))
    self.assertStartsWith(hint, '. The converter stored [')
    self.assertIn("[4, 3] in 1x4 blocks'] in blocks that do not tile the input dimension", hint)
    self.assertEqual(flatbuffer.partial_blocks_hint(self.blocks), '')


class FlatbufferOfAnExportTest(tf.test.TestCase):

  def test_report_lists_stored_sparsity_sparse_tensors_and_densify_ops(self):
    path = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'model.tflite')
    report = export.export_tflite(fixtures.pruned_mlp((784, 300, 100, 10), 0.9), path)
    self.assertEqual(list(report.layer_sparsity), ['h1', 'h2', 'out'])
    for sparsity in report.layer_sparsity.values():
      self.assertAlmostEqual(sparsity, 0.9, places=3)
    self.assertEqual(sorted(t.layer for t in report.sparse_tensors), ['h1', 'h2', 'out'])
    shapes = {t.layer: t.shape for t in report.sparse_tensors}
    self.assertEqual(shapes, {'h1': (300, 784), 'h2': (100, 300), 'out': (10, 100)})  # TFLite's [out, in]
    # Unstructured sparsity: every weight is expanded by a DENSIFY op before FULLY_CONNECTED runs.
    self.assertEqual(report.densify_ops, 3)
    self.assertEqual(report.densified_ops, ('FULLY_CONNECTED',) * 3)
    self.assertEqual(report.sparse_ops, ())
    self.assertEqual(report.op_counts['FULLY_CONNECTED'], 3)
    h1 = next(t for t in report.sparse_tensors if t.layer == 'h1')
    self.assertEqual(h1.bytes, 4 * round(0.1 * 300 * 784))  # float32 values of the kept weights


if __name__ == '__main__':
  tf.test.main()
