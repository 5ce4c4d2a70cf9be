"""Tests for TFLite export (ltp_tfmot.export.tflite): sparse size, agreement with Keras, quantization, refusals, writes.

Tolerances for quantized models are relative to the largest |Keras output| on
the same inputs (drawn like the calibration data):
- float16 (weights only): 1e-3. float16 keeps 11 significant bits, a relative
  rounding of at most 2**-12 (2.4e-4) per weight; the errors partly cancel in
  the dot products (measured here: 2.3e-4).
- dynamic (int8 weights, inputs quantized per batch in the kernels): 2e-2. Each
  8-bit tensor is off by up to half a step, 1/254 (0.4%) of its range, and
  three layers each quantize a weight and an input (measured: 6.5e-3).
- int8 (weights and activations, calibrated ranges): 4e-2. As above plus the
  fixed activation ranges: about 8 quantized tensors in a row (measured: 9e-3).
"""

import os
import re
import tempfile
from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot.export import flatbuffer
from ltp_tfmot.export import interpreter as interpreter_lib
from ltp_tfmot.export import latency
from ltp_tfmot.export import prepare
from ltp_tfmot.export import reference
from ltp_tfmot.export import report as report_lib
from ltp_tfmot.export import tflite as export
from tests import fixtures

RELATIVE_TOLERANCE = {'float16': 1e-3, 'dynamic': 2e-2, 'int8': 4e-2}


def _sparse_mlp(sparsity=0.9, sizes=(784, 300, 100, 10)):
  return fixtures.pruned_mlp(sizes, sparsity)


def _inputs(n=16, features=784, seed=0):
  """Pixel-like inputs in [0, 1): the calibration data and the compared samples."""
  return np.random.RandomState(seed).rand(n, features).astype(np.float32)


class ExportTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp(dir=self.get_temp_dir())

  def _path(self, name='model.tflite'):
    return os.path.join(self.dir, name)

  def test_float_export_loads_and_matches_keras_within_1e_5_of_the_output_scale(self):
    model = _sparse_mlp()
    x = _inputs()
    report = export.export_tflite(model, self._path(), sample_inputs=x)
    want = ltp_tfmot.strip_pruning(model)(x).numpy()
    fixtures.assert_close_to_scale(self, fixtures.run_tflite_file(self._path(), x), want)
    self.assertLessEqual(report.max_abs_diff, 1e-5 * np.abs(want).max())
    self.assertEqual(report.sample_count, 16)
    self.assertEqual(report.op_resolver, 'AUTO')
    self.assertEqual(report.file_bytes, os.path.getsize(self._path()))
    self.assertEqual(os.listdir(self.dir), ['model.tflite'])

  def test_sparse_file_of_90_percent_sparse_model_is_under_a_quarter_of_dense(self):
    model = _sparse_mlp(0.9)
    sparse = export.export_tflite(model, self._path('sparse.tflite'))
    dense = export.export_tflite(model, self._path('dense.tflite'), sparse=False)
    self.assertLess(os.path.getsize(self._path('sparse.tflite')), 0.25 * os.path.getsize(self._path('dense.tflite')))
    # The written file holds the conversion plus a record of its op resolver (a few dozen bytes).
    self.assertAllClose(sparse.dense_bytes, dense.file_bytes, atol=64, rtol=0)
    self.assertEqual(sparse.sparse_bytes, sparse.file_bytes)
    self.assertLess(sparse.size_ratio, 0.25)
    self.assertIsNone(dense.sparse_bytes)
    self.assertEqual(dense.sparse_tensors, ())
    self.assertGreater(sparse.gzip_bytes, 0)

  @parameterized.parameters('float16', 'dynamic', 'int8')
  def test_quantized_export_matches_keras_within_stated_tolerance(self, quantization):
    model = _sparse_mlp(0.9)
    x = _inputs(32)
    data = x if quantization == 'int8' else None
    report = export.export_tflite(model, self._path(), quantization=quantization, representative_data=data,
                                  sample_inputs=x[:16])
    want = ltp_tfmot.strip_pruning(model)(x[:16]).numpy()
    got = fixtures.run_tflite_file(self._path(), x[:16], report.op_resolver)
    tolerance = RELATIVE_TOLERANCE[quantization] * np.abs(want).max()
    self.assertLessEqual(np.abs(got - want).max(), tolerance)
    self.assertAllClose(report.max_abs_diff, np.abs(got - want).max(), atol=1e-6)
    self.assertEqual(report.quantization, quantization)
    self.assertLess(report.sparse_bytes, report.dense_bytes)
    dtype = {'float16': 'float16', 'dynamic': 'int8', 'int8': 'int8'}[quantization]
    self.assertEqual(next(t for t in report.sparse_tensors if t.layer == 'h1').dtype, dtype)

  def test_int8_sparse_model_runs_with_the_resolver_the_report_names(self):
    x = _inputs(32)
    report = export.export_tflite(_sparse_mlp(0.9), self._path(), quantization='int8', representative_data=x)
    # The default XNNPACK delegate cannot prepare int8 FULLY_CONNECTED with sparse weights (ai-edge-litert 2.3.0).
    self.assertEqual(report.op_resolver, 'BUILTIN_WITHOUT_DEFAULT_DELEGATES')
    with self.assertRaisesRegex(RuntimeError, r'XNNPack'):
      export.load_tflite(self._path(), 'AUTO')
    self.assertTrue(any('XNNPACK' in note for note in report.notes))
    interpreter = export.load_tflite(self._path(), report.op_resolver)
    self.assertIsNotNone(interpreter.get_signature_runner()(**{'h1_input': x[:2]}))
    self.assertIsNotNone(export.load_tflite(self._path()))  # None: falls back by itself

  def test_require_default_delegates_refuses_int8_sparse_and_writes_nothing(self):
    with self.assertRaisesRegex(ValueError, r'int8 model with sparse weights fails with the default '
                                r'delegate \(XNNPACK: does not load.*Refused \(require_default_delegates=True\)'):
      export.export_tflite(_sparse_mlp(0.9, sizes=(64, 32, 16, 10)), self._path(), quantization='int8',
                           representative_data=_inputs(32, 64), require_default_delegates=True)
    self.assertEqual(os.listdir(self.dir), [])

  def test_int8_dense_export_runs_with_the_default_delegates(self):
    report = export.export_tflite(_sparse_mlp(0.9, sizes=(64, 32, 16, 10)), self._path(), quantization='int8',
                                  representative_data=_inputs(32, 64), sparse=False,
                                  require_default_delegates=True)
    self.assertEqual(report.op_resolver, 'AUTO')
    self.assertEqual(report.densify_ops, 0)

  def test_plain_model_with_dense_weights_exports_without_sparse_tensors(self):
    model = fixtures.mlp()
    report = export.export_tflite(model, self._path())
    self.assertEqual(report.layer_sparsity, {'hidden1': 0.0, 'hidden2': 0.0, 'output': 0.0})
    self.assertEqual(report.sparse_tensors, ())
    self.assertEqual(report.densify_ops, 0)
    self.assertLessEqual(report.max_abs_diff, 1e-5)
    self.assertEqual(report.sample_count, reference.SAMPLE_COUNT)  # seeded normal samples by default

  def test_int8_with_a_representative_dataset_callable_compares_on_its_samples(self):
    x = _inputs(32, 64)
    representative = lambda: ([x[i:i + 1]] for i in range(len(x)))
    report = export.export_tflite(_sparse_mlp(0.9, sizes=(64, 32, 16, 10)), self._path(), quantization='int8',
                                  representative_data=representative)
    self.assertEqual(report.sample_count, reference.SAMPLE_COUNT)
    self.assertLessEqual(report.max_abs_diff, RELATIVE_TOLERANCE['int8'] * report.max_abs_output)

  def test_conv_model_exports_conv_and_depthwise_weights_sparse(self):
    model = ltp_tfmot.prune_lottery_ticket(fixtures.convnet(), ltp_tfmot.OneShotLotterySchedule(0.8, 1))
    model.build((None, 8, 8, 2))
    ltp_tfmot.take_snapshot(model)
    ltp_tfmot.run_lottery_round(model)
    report = export.export_tflite(model, self._path())
    self.assertLessEqual(report.max_abs_diff, 1e-5)
    self.assertEqual({t.layer: t.ops for t in report.sparse_tensors},
                     {'conv': ('CONV_2D',), 'depthwise': ('DEPTHWISE_CONV_2D',), 'output': ('FULLY_CONNECTED',)})

  def test_multi_input_multi_output_model_is_compared_by_name(self):
    a, b = keras.Input((8,), name='a'), keras.Input((3,), name='b')
    hidden = keras.layers.Dense(16, activation='relu', name='hidden')(a)
    joined = keras.layers.Concatenate(name='join')([hidden, b])
    model = keras.Model([a, b], [keras.layers.Dense(2, name='first')(joined),
                                 keras.layers.Dense(5, name='second')(joined)])
    rng = np.random.RandomState(1)
    samples = {'b': rng.randn(4, 3).astype(np.float32), 'a': rng.randn(4, 8).astype(np.float32)}
    report = export.export_tflite(model, self._path(), sample_inputs=samples)
    self.assertLessEqual(report.max_abs_diff, 1e-5)
    self.assertEqual(report.sample_count, 4)

  def test_failed_load_raises_and_writes_nothing(self):
    with open(self._path(), 'wb') as f:
      f.write(b'previous file')
    with mock.patch.object(interpreter_lib, 'allocated_interpreter', side_effect=RuntimeError('cannot prepare')):
      with self.assertRaisesRegex(export.ExportError, r'nothing was written.*AUTO: does not load: cannot prepare'):
        export.export_tflite(fixtures.mlp(), self._path())
    with open(self._path(), 'rb') as f:
      self.assertEqual(f.read(), b'previous file')
    self.assertEqual(os.listdir(self.dir), ['model.tflite'])

  def test_written_file_that_does_not_load_back_is_not_renamed(self):
    real = interpreter_lib.allocated_interpreter

    def fail_on_files(path_or_content, resolver):
      if isinstance(path_or_content, str):
        raise RuntimeError('unreadable file')
      return real(path_or_content, resolver)

    with mock.patch.object(interpreter_lib, 'allocated_interpreter', side_effect=fail_on_files):
      with self.assertRaisesRegex(export.ExportError, r'written model does not load back'):
        export.export_tflite(fixtures.mlp(), self._path())
    self.assertEqual(os.listdir(self.dir), [])


def _block_mlp(block_size, sparsity=0.9):
  """A seeded 128-64-32-10 MLP pruned in blocks of `block_size` (Keras [in, out] layout)."""
  init = lambda offset: keras.initializers.GlorotUniform(seed=offset)
  model = keras.Sequential([
      keras.layers.Dense(64, activation='relu', input_shape=(128,), kernel_initializer=init(0), bias_initializer='ones',
                         name='h1'),
      keras.layers.Dense(32, activation='relu', kernel_initializer=init(1), name='h2'),
      keras.layers.Dense(10, kernel_initializer=init(9), name='out'),
  ])
  return fixtures.pruned(model, sparsity, (None, 128), block_size=block_size)


class ExportCheckTest(tf.test.TestCase, parameterized.TestCase):
  """The output gate, the resolver the file records, and what the report says the file is."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.x128 = _inputs(16, 128)
    cls.block_mlps = {block: ltp_tfmot.strip_pruning(_block_mlp(block)) for block in ((4, 1), (16, 1))}

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.path = os.path.join(self.dir, 'model.tflite')

  def _assert_matches_keras_under_passing_resolvers(self, report, keras_model, x):
    want = keras_model(x).numpy()
    tolerance = report.relative_tolerance * np.abs(want).max()
    passing = [c.resolver for c in report.checks if c.passed]
    self.assertIn(report.op_resolver, passing)
    for resolver in passing:
      got = fixtures.run_tflite_file(self.path, x, resolver)
      self.assertTrue(np.all(np.isfinite(got)), resolver)
      self.assertLessEqual(np.abs(got - want).max(), tolerance, resolver)
    return want

  @parameterized.parameters((4, 1), (16, 1))
  def test_block_sparse_float16_export_is_sparse_and_matches_keras(self, *block):
    model = self.block_mlps[block]
    report = export.export_tflite(model, self.path, quantization='float16', sample_inputs=self.x128)
    self._assert_matches_keras_under_passing_resolvers(report, model, self.x128)
    self.assertEqual([c.passed for c in report.checks], [True, True])
    self.assertTrue(report.sparse)
    self.assertEqual({t.dtype for t in report.sparse_tensors}, {'float16'})
    self.assertEqual(report.densify_ops, 3)  # inserted in front of DEQUANTIZE, which cannot read sparse tensors
    self.assertLess(report.file_bytes, 0.3 * report.dense_bytes)

  def test_block_16_dynamic_export_names_the_resolver_that_matches_keras(self):
    model = self.block_mlps[(16, 1)]
    report = export.export_tflite(model, self.path, quantization='dynamic', sample_inputs=self.x128)
    # XNNPACK takes the 1x16 sparse hybrid FULLY_CONNECTED ops and gives NaN.
    auto, builtin = report.checks
    self.assertFalse(auto.passed)
    self.assertTrue(builtin.passed)
    self.assertEqual(report.op_resolver, 'BUILTIN_WITHOUT_DEFAULT_DELEGATES')
    want = self._assert_matches_keras_under_passing_resolvers(report, model, self.x128)
    runner = export.load_tflite(self.path).get_signature_runner()  # the resolver recorded in the file
    (got,) = runner(h1_input=self.x128).values()
    self.assertLessEqual(np.abs(got - want).max(), report.relative_tolerance * np.abs(want).max())
    self.assertTrue(any('fails with the default delegate' in note for note in report.notes))

  def test_sparse_conversion_that_is_wrong_everywhere_is_replaced_by_the_checked_dense_file(self):
    # The converter stores this kernel ([out, in] = [4, 3]) as 1x4 blocks that do not fit, so the sparse
    # conversion computes wrong outputs under every resolver.
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, activation='tanh', kernel_initializer=keras.initializers.GlorotUniform(0),
                                name='h')(inputs)
    model = fixtures.pruned(keras.Model(inputs, keras.layers.Dense(4, name='out')(hidden)), 0.5, (None, 3))
    x = np.random.RandomState(0).randn(8, 3).astype(np.float32)
    report = export.export_tflite(model, self.path, sample_inputs=x)
    self._assert_matches_keras_under_passing_resolvers(report, ltp_tfmot.strip_pruning(model), x)
    self.assertFalse(report.sparse)
    self.assertEqual(report.sparse_tensors, ())
    self.assertTrue(any('the sparse conversion fails the check under every resolver' in n for n in report.notes))
    self.assertTrue(any("[4, 3] in 1x4 blocks'] in blocks that do not tile the input dimension" in n
                        for n in report.notes), report.notes)

  def test_nothing_is_written_when_no_conversion_matches_keras(self):
    with open(self.path, 'wb') as f:
      f.write(b'previous file')
    real = reference.keras_outputs
    shifted = lambda model, samples: {k: v + 1.0 for k, v in real(model, samples).items()}
    with mock.patch.object(reference, 'keras_outputs', side_effect=shifted):
      with self.assertRaisesRegex(export.ExportError, r'nothing was written: sparse: AUTO: max \\\|TFLite - Keras'
                                  r'\\\| 1 \(tolerance [\d.e-]+\): wrong outputs'):
        export.export_tflite(fixtures.mlp(), self.path)
    with open(self.path, 'rb') as f:
      self.assertEqual(f.read(), b'previous file')
    self.assertEqual(os.listdir(self.dir), ['model.tflite'])

  def test_tolerance_is_relative_to_the_output_scale_and_can_be_set(self):
    report = export.export_tflite(fixtures.mlp(), self.path, sparse=False)
    self.assertEqual(report.relative_tolerance, export.TOLERANCES[None])
    # A mismatch on any CPU: dynamic-range quantization stores this 4,096-weight kernel as int8 (it leaves kernels
    # under 1,024 weights in float32, where TFLite may match Keras exactly).
    wide = keras.Sequential([keras.layers.Dense(64, input_shape=(64,), name='wide'), keras.layers.Dense(4, name='out')])
    with self.assertRaisesRegex(export.ExportError, r'wrong outputs'):
      export.export_tflite(wide, self.path, quantization='dynamic', sparse=False, tolerance=1e-4)

  def test_load_tflite_uses_the_recorded_resolver_and_leaves_foreign_files_to_fall_back(self):
    x = _inputs(32, 64)
    report = export.export_tflite(_sparse_mlp(0.9, sizes=(64, 32, 16, 10)), self.path, quantization='int8',
                                  representative_data=x)
    self.assertEqual(flatbuffer.recorded_resolver(open(self.path, 'rb').read()), report.op_resolver)
    real = interpreter_lib.allocated_interpreter
    with mock.patch.object(interpreter_lib, 'allocated_interpreter', wraps=real) as made:
      export.load_tflite(self.path)
    self.assertEqual([c.args[1] for c in made.call_args_list], ['BUILTIN_WITHOUT_DEFAULT_DELEGATES'])

  def test_report_lists_the_ops_xnnpack_takes_and_warns_of_a_slower_sparse_quantized_file(self):
    dense = export.export_tflite(fixtures.mlp(), self.path, sparse=False)
    self.assertEqual((dense.xnnpack_ops, dense.builtin_ops), ({'FULLY_CONNECTED': 3}, {}))
    self.assertIn('| XNNPACK takes | FULLY_CONNECTED x3 |', dense.to_markdown())
    x = _inputs(32, 64)
    sparse = export.export_tflite(_sparse_mlp(0.9, sizes=(64, 32, 16, 10)), self.path, quantization='int8',
                                  representative_data=x)
    self.assertEqual(sparse.xnnpack_ops, {})
    self.assertEqual(sparse.builtin_ops['FULLY_CONNECTED'], 3)
    self.assertTrue(any(note.startswith('slower than the dense file') for note in sparse.notes))
    self.assertNotIn('slower', ' '.join(dense.notes))
    # Float 1x4 blocks run on TFLite's own sparse FULLY_CONNECTED kernel: XNNPACK takes none of them.
    block = export.export_tflite(self.block_mlps[(4, 1)], self.path, sample_inputs=self.x128)
    self.assertEqual((block.op_resolver, block.xnnpack_ops, block.builtin_ops), ('AUTO', {}, {'FULLY_CONNECTED': 3}))

  def test_quantization_aware_model_exports_as_int8(self):
    import tensorflow_model_optimization as tfmot  # pylint: disable=g-import-not-at-top
    quantize = tfmot.quantization.keras
    model = quantize.quantize_apply(quantize.quantize_annotate_model(ltp_tfmot.strip_pruning(_sparse_mlp(
        0.5, sizes=(64, 32, 16, 10)))), tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme())
    x = _inputs(16, 64)
    for _ in range(3):  # the moving-average quantizers learn their ranges in training calls
      model(x, training=True)
    report = export.export_tflite(model, self.path, sample_inputs=x)
    self._assert_matches_keras_under_passing_resolvers(report, model, x)
    self.assertTrue(report.qat)
    self.assertEqual(report.quantization, 'int8')
    self.assertEqual((report.op_counts['QUANTIZE'], report.op_counts['DEQUANTIZE']), (1, 1))  # float in and out only
    self.assertIn('| weights | int8 weights and activations (quantization-aware trained), ', report.to_markdown())
    self.assertEqual(report.layer_sparsity, {'quant_h1': 0.5, 'quant_h2': 0.5, 'quant_out': 0.5})
    with self.assertRaisesRegex(ValueError, r"quantization-aware trained.*pass quantization=None or 'int8'"):
      export.export_tflite(model, self.path, quantization='dynamic')

  def test_sparse_format_not_smaller_than_dense_is_reported_and_the_dense_file_written(self):
    report = export.export_tflite(fixtures.mlp(), self.path)  # no zero weights
    self.assertFalse(report.sparse)
    self.assertGreaterEqual(report.sparse_bytes, report.dense_bytes - 64)
    self.assertBetween(report.file_bytes - report.dense_bytes, 1, 64)  # the record of its op resolver
    note, = [note for note in report.notes if 'is not smaller than the dense one' in note]
    markdown = report.to_markdown()
    self.assertIn(f'the dense one ({report.dense_bytes:,} B)', note)  # one dense size, in the note and the table
    self.assertIn(f'| size | {report.file_bytes:,} B (the dense conversion, {report.dense_bytes:,} B, and a record '
                  'of its op resolver', markdown)
    self.assertIn(f'| gzip | {report.gzip_bytes:,} B |', markdown)
    self.assertIn('| weights | float32, dense format |', markdown)

  @parameterized.parameters('LSTM', 'GRU')
  def test_recurrent_model_exports_unrolled_and_matches_keras(self, layer):
    inputs = keras.Input((3, 4))
    recurrent = getattr(keras.layers, layer)(8, name='rnn')(inputs)
    model = fixtures.pruned(keras.Model(inputs, keras.layers.Dense(2, name='out')(recurrent)), 0.5, (None, 3, 4))
    x = np.random.RandomState(0).randn(4, 3, 4).astype(np.float32)
    report = export.export_tflite(model, self.path, sample_inputs=x)
    self._assert_matches_keras_under_passing_resolvers(report, ltp_tfmot.strip_pruning(model), x)
    self.assertTrue(any('converted unrolled over [3] time steps' in note for note in report.notes))
    self.assertEqual(report.layer_sparsity['rnn'], 0.5)

  def test_recurrent_model_without_fixed_time_steps_is_refused_with_what_to_do(self):
    inputs = keras.Input((None, 4))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.LSTM(8, name='rnn')(inputs)))
    with self.assertRaisesRegex(ValueError, r"recurrent layers \['rnn'\] have an unknown number of time steps.*"
                                r'build the model with a fixed sequence length'):
      export.export_tflite(model, self.path)
    self.assertEqual(os.listdir(self.dir), [])



class ExportPackageTest(tf.test.TestCase):

  def test_names_of_the_former_export_module_resolve_from_the_modules_holding_them(self):
    import ltp_tfmot.export as package  # pylint: disable=g-import-not-at-top
    holders = {
        export: ('CALIBRATION_LIMIT', 'ExportError', 'QUANTIZATIONS', 'TOLERANCES', 'export_tflite', 'load_tflite'),
        interpreter_lib: ('DEFAULT_RESOLVER', 'NO_DEFAULT_DELEGATES', 'RESOLVERS'),
        flatbuffer: ('RESOLVER_METADATA', 'SparseTensor', 'inspect_flatbuffer'),
        latency: ('LATENCY_BLOCK_SECONDS', 'LATENCY_RUNS', 'Latency'),
        prepare: ('is_quantization_aware',),
        reference: ('SAMPLE_COUNT',),
        report_lib: ('ExportReport', 'ResolverCheck'),
    }
    for module, names in holders.items():
      for name in names:
        self.assertIs(getattr(package, name), getattr(module, name), name)
    self.assertIs(ltp_tfmot.ExportReport, report_lib.ExportReport)
    self.assertIs(ltp_tfmot.export.quantize_ticket, ltp_tfmot.quantize_ticket)
    for name in ('_check', 'no_such_name', 'np'):
      with self.assertRaisesRegex(AttributeError, f"has no attribute '{name}'"):
        getattr(package, name)


class ExportBadInputTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.path = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'model.tflite')

  def test_a_folder_that_cannot_be_written_is_reported_before_converting(self):
    with fixtures.read_only_folder(os.path.dirname(self.path)), \
         mock.patch.object(export, '_convert', side_effect=AssertionError('converted')) as convert:
      with self.assertRaisesRegex(ltp_tfmot.StorageError, f'^cannot write {re.escape(self.path)}: Read-only file '
                                  'system .*so nothing was done: choose a folder you can write to$'):
        export.export_tflite(fixtures.mlp(), self.path)
    convert.assert_not_called()
    self.assertEqual(os.listdir(os.path.dirname(self.path)), [])

  def test_missing_interpreter_is_reported_before_converting(self):
    with mock.patch.dict('sys.modules', {'ai_edge_litert': None}), \
         mock.patch.object(export, '_convert', side_effect=AssertionError('converted')) as convert:
      with self.assertRaisesRegex(ImportError, 'pip install ai-edge-litert'):
        export.export_tflite(fixtures.mlp(), self.path)
    convert.assert_not_called()
    self.assertFalse(os.path.exists(self.path))

  def test_int8_without_representative_data_raises(self):
    with self.assertRaisesRegex(ValueError, r"quantization='int8' needs representative_data"):
      export.export_tflite(fixtures.mlp(), self.path, quantization='int8')

  @parameterized.parameters(None, 'float16', 'dynamic')
  def test_representative_data_without_int8_raises(self, quantization):
    with self.assertRaisesRegex(ValueError, r"representative_data is only used with quantization='int8'"):
      export.export_tflite(fixtures.mlp(), self.path, quantization=quantization,
                           representative_data=np.zeros((4, 8), np.float32))

  @parameterized.parameters('fp16', 'INT8', 8)
  def test_unknown_quantization_lists_the_allowed_ones(self, quantization):
    with self.assertRaisesRegex(ValueError, r"quantization must be one of \[None, 'float16', 'dynamic', 'int8'\]"):
      export.export_tflite(fixtures.mlp(), self.path, quantization=quantization)

  def test_unbuilt_model_raises(self):
    with self.assertRaisesRegex(ValueError, r'is not built'):
      export.export_tflite(keras.Sequential([keras.layers.Dense(2)]), self.path)

  def test_subclassed_model_raises(self):
    model = fixtures.Subclassed()
    model(np.zeros((1, 4), np.float32))
    with self.assertRaisesRegex(ValueError, r'has no symbolic inputs \(a subclassed model\?\)'):
      export.export_tflite(model, self.path)

  def test_missing_directory_raises(self):
    with self.assertRaisesRegex(ValueError, r'directory .* does not exist'):
      export.export_tflite(fixtures.mlp(), os.path.join(self.path, 'no', 'model.tflite'))

  @parameterized.parameters(0, -1e-3, float('nan'), '0.1', True)
  def test_bad_tolerance_raises(self, tolerance):
    with self.assertRaisesRegex(ValueError, r'tolerance must be a number > 0'):
      export.export_tflite(fixtures.mlp(), self.path, tolerance=tolerance)

  def test_sample_inputs_of_wrong_shape_raise(self):
    with self.assertRaisesRegex(ValueError, r"sample_inputs for input 'hidden1_input' has shape \(4, 7\)"):
      export.export_tflite(fixtures.mlp(), self.path, sample_inputs=np.zeros((4, 7), np.float32))
    self.assertFalse(os.path.exists(self.path))


if __name__ == '__main__':
  tf.test.main()
