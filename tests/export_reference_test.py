"""Tests for what an export checks its file against (ltp_tfmot.export.reference): samples, outputs, layer names."""

import numpy as np
import tensorflow as tf
import tf_keras as keras

from ltp_tfmot.export import flatbuffer
from ltp_tfmot.export import reference
from tests import fixtures


def _two_input_model():
  a, b = keras.Input((8,), name='a'), keras.Input((3,), name='b')
  joined = keras.layers.Concatenate(name='join')([keras.layers.Dense(4, name='hidden')(a), b])
  outputs = [keras.layers.Dense(2, name='first')(joined), keras.layers.Dense(5, name='second')(joined)]
  return keras.Model([a, b], outputs)


def _sparse_tensor(name, shape, stored_bytes):
  return flatbuffer.SparseTensor(name, None, shape, 'float32', stored_bytes, ('FULLY_CONNECTED',), True)


class ReferenceTest(tf.test.TestCase):

  def test_frozen_note_names_the_freeze_layers_and_what_to_do(self):
    self.assertIn("layers ['a'] were pruned with mask_0_action='freeze'", reference.frozen_note(('a',), ()))

  def test_input_arrays_takes_an_array_a_list_or_a_dict_and_says_what_is_wrong(self):
    model = _two_input_model()
    a, b = np.ones((2, 8)), np.zeros((2, 3))
    for data in ([a, b], {'b': b, 'a': a}):
      arrays = reference.input_arrays(model, data, 'x')
      self.assertEqual([(arr.shape, arr.dtype) for arr in arrays], [((2, 8), np.float32), ((2, 3), np.float32)])
    with self.assertRaisesRegex(ValueError, r"x has no entry for model inputs \['b'\]"):
      reference.input_arrays(model, {'a': a}, 'x')
    with self.assertRaisesRegex(ValueError, r'x has 1 arrays; the model has 2 inputs'):
      reference.input_arrays(model, a, 'x')
    with self.assertRaisesRegex(ValueError, r"x for input 'b' has shape \(2, 4\)"):
      reference.input_arrays(model, [a, np.zeros((2, 4))], 'x')
    with self.assertRaisesRegex(ValueError, r'same number \(>= 1\) of samples for every input, got \[2, 3\]'):
      reference.input_arrays(model, [a, np.zeros((3, 3))], 'x')

  def test_sample_inputs_come_from_the_caller_the_calibration_data_or_a_seeded_normal(self):
    model = fixtures.mlp()
    given, note = reference.sample_inputs(model, np.ones((3, 8)), None)
    self.assertIsNone(note)
    self.assertAllEqual(given['hidden1_input'], np.ones((3, 8)))
    data = np.arange(20 * 8, dtype=np.float32).reshape(20, 8)
    from_array, _ = reference.sample_inputs(model, None, data)
    self.assertAllEqual(from_array['hidden1_input'], data[:reference.SAMPLE_COUNT])
    from_callable, _ = reference.sample_inputs(model, None, lambda: ([data[i:i + 1]] for i in range(len(data))))
    self.assertAllEqual(from_callable['hidden1_input'], data[:reference.SAMPLE_COUNT])
    seeded, _ = reference.sample_inputs(model, None, None)
    self.assertEqual(seeded['hidden1_input'].shape, (reference.SAMPLE_COUNT, 8))
    self.assertAllEqual(seeded['hidden1_input'], reference.sample_inputs(model, None, None)[0]['hidden1_input'])

  def test_no_samples_are_made_up_for_inputs_of_unknown_shape(self):
    inputs = keras.Input((None, 4))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    self.assertEqual(reference.sample_inputs(model, None, None),
                     (None, 'outputs not compared: pass sample_inputs for inputs of unknown shape or non-float type'))

  def test_keras_outputs_are_float64_by_output_name(self):
    model = _two_input_model()
    samples = {'b': np.zeros((2, 3), np.float32), 'a': np.ones((2, 8), np.float32)}
    outputs = reference.keras_outputs(model, samples)
    self.assertEqual({name: (value.shape, value.dtype) for name, value in outputs.items()},
                     {'first': ((2, 2), np.float64), 'second': ((2, 5), np.float64)})
    self.assertAllClose(outputs['first'], model([samples['a'], samples['b']])[0].numpy())

  def test_match_layers_by_name_else_by_size_and_stored_values(self):
    weights = [('h1', 32, 8), ('h2', 32, 16), ('out', 12, 6)]
    tensors = [_sparse_tensor('model/h1/MatMul', (8, 4), 32), _sparse_tensor('tfl.pseudo_qconst', (8, 4), 64),
               _sparse_tensor('tfl.pseudo_qconst1', (3, 4), 24), _sparse_tensor('tfl.pseudo_qconst2', (5, 5), 4)]
    matched = reference.match_layers(tensors, weights)
    self.assertEqual([t.layer for t in matched], ['h1', 'h2', 'out', None])
    layer_of = reference.layer_namer(matched, ['h1', 'h2', 'out'])
    self.assertEqual([layer_of(name) for name in ('tfl.pseudo_qconst', 'model/out/BiasAdd', 'model/h1;h2/x', 'x')],
                     ['h2', 'out', None, None])


if __name__ == '__main__':
  tf.test.main()
