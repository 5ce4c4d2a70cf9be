"""Tests for the kernel report of exports (ltp_tfmot.export.kernels).

Every exported file is loaded and run here with ai-edge-litert under the resolver
its report names, independently of the export package.
"""

import os
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot.export import interpreter as interpreter_lib
from ltp_tfmot.export import kernels
from ltp_tfmot.export import tflite as export
from tests import fixtures

BUILTIN = 'BUILTIN_WITHOUT_DEFAULT_DELEGATES'


def _ticket(block_size=(1, 1), sizes=(128, 64, 32, 16), sparsity=0.9, seed=0):
  return fixtures.pruned_mlp(sizes, sparsity, block_size, seed)


def _kernels(report, resolver):
  return [(k.layer, k.kernel, k.sparse, k.status) for k in report.kernels_under(resolver)]


class KernelReportTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.path = os.path.join(self.dir, 'model.tflite')

  def _assert_runs_under_its_resolver(self, report, keras_model, x):
    want = keras_model(x).numpy()
    got = fixtures.run_tflite_file(self.path, x, report.op_resolver)
    self.assertLessEqual(np.abs(got - want).max(), report.relative_tolerance * np.abs(want).max())

  def test_unstructured_float_ticket_runs_dense_kernels_after_densify_under_both_resolvers(self):
    report = export.export_tflite(_ticket(), self.path)
    self.assertEqual(_kernels(report, 'AUTO'), [
        (layer, 'XNNPACK dense kernel (weights expanded when the delegate is built)', False, 'runs')
        for layer in ('h1', 'h2', 'out')])
    self.assertEqual(_kernels(report, BUILTIN), [
        (layer, 'built-in dense kernel after DENSIFY', False, 'runs') for layer in ('h1', 'h2', 'out')])
    self.assertEqual({(k.layout, k.densified, k.compute) for k in report.kernels}, {('random', True, 'float32')})

  def test_block_4_float_ticket_runs_the_builtin_sparse_kernel_and_xnnpack_leaves_it(self):
    report = export.export_tflite(_ticket((4, 1)), self.path)
    for resolver in ('AUTO', BUILTIN):
      self.assertEqual(_kernels(report, resolver), [
          (layer, 'built-in sparse FULLY_CONNECTED (1x4 blocks)', True, 'runs') for layer in ('h1', 'h2', 'out')])
    self.assertEqual({k.layout for k in report.kernels}, {'1x4'})
    self.assertIn('does not take ops whose weights are stored sparse', report.kernels_under('AUTO')[0].reason)

  def test_unstructured_int8_ticket_fails_under_xnnpack_and_runs_dense_after_densify_without_it(self):
    report = export.export_tflite(_ticket(), self.path, quantization='int8',
                                  representative_data=fixtures.uniform_inputs(32, 128))
    self.assertEqual(report.op_resolver, BUILTIN)
    self.assertEqual({(k.kernel, k.status) for k in report.kernels_under('AUTO')},
                     {('none: the file does not load', 'fails')})
    self.assertIn('fails to prepare', report.kernels_under('AUTO')[0].reason)
    self.assertEqual(_kernels(report, BUILTIN), [
        (layer, 'built-in dense kernel after DENSIFY', False, 'runs') for layer in ('h1', 'h2', 'out')])

  def test_block_16_int8_ticket_runs_the_sparse_int8_kernel_under_the_default_resolver(self):
    model = _ticket((16, 1))
    x = fixtures.uniform_inputs(32, 128)
    report = export.export_tflite(model, self.path, quantization='int8', representative_data=x,
                                  require_default_delegates=True)
    self.assertEqual(report.op_resolver, 'AUTO')
    self.assertEqual(report.densify_ops, 0)
    for resolver in ('AUTO', BUILTIN):
      self.assertEqual(_kernels(report, resolver), [
          (layer, 'built-in sparse int8 FULLY_CONNECTED (1x16 blocks)', True, 'runs') for layer in ('h1', 'h2', 'out')])
    self._assert_runs_under_its_resolver(report, ltp_tfmot.strip_pruning(model), x[:8])

  def test_int8_cnn_runs_densified_convolutions_on_xnnpack_and_1x16_dense_layers_on_the_sparse_int8_kernel(self):
    init = lambda offset: keras.initializers.GlorotUniform(seed=offset)
    inputs = keras.Input((8, 8, 16))
    x = keras.layers.Conv2D(32, 3, activation='relu', kernel_initializer=init(0), name='conv')(inputs)
    x = keras.layers.Flatten(name='flatten')(x)  # 6 * 6 * 32 = 1152 inputs: a multiple of 16
    model = keras.Model(inputs, keras.layers.Dense(16, kernel_initializer=init(1), name='out')(x))
    model = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.OneShotLotterySchedule(0.9, 1), block_size=(16, 1))
    model.build((None, 8, 8, 16))
    ltp_tfmot.take_snapshot(model)
    ltp_tfmot.run_lottery_round(model)
    x = np.random.RandomState(0).rand(32, 8, 8, 16).astype(np.float32)
    report = export.export_tflite(model, self.path, quantization='int8', representative_data=x)
    self.assertEqual(report.op_resolver, 'AUTO')
    self.assertEqual(_kernels(report, 'AUTO'), [
        ('conv', 'XNNPACK dense kernel (weights expanded when the delegate is built)', False, 'runs'),
        ('out', 'built-in sparse int8 FULLY_CONNECTED (1x16 blocks)', True, 'runs')])
    self._assert_runs_under_its_resolver(report, ltp_tfmot.strip_pruning(model), x[:8])

  def test_block_16_dynamic_range_ticket_is_reported_wrong_under_xnnpack(self):
    report = export.export_tflite(_ticket((16, 1)), self.path, quantization='dynamic',
                                  sample_inputs=fixtures.uniform_inputs(8, 128))
    self.assertEqual(report.op_resolver, BUILTIN)
    auto = [k for k in report.kernels_under('AUTO') if k.compute == 'hybrid']
    self.assertNotEmpty(auto)
    self.assertEqual({(k.kernel, k.status) for k in auto},
                     {('XNNPACK, reading the compressed weights as dense (wrong outputs)', 'fails')})
    self.assertEqual({(k.kernel, k.status) for k in report.kernels_under(BUILTIN) if k.compute == 'hybrid'},
                     {('built-in sparse hybrid FULLY_CONNECTED (1x16 blocks)', 'runs')})

  @parameterized.named_parameters(('sparse_enough', 0.8, 'expected: the graph rules hold'),
                                  ('not_sparse_enough', 0.6, 'no: fewer than 2/3 of the 1x1 CONV_2D weights are zero'))
  def test_xnnpack_sparse_inference_is_expected_only_for_a_sparse_1x1_conv_in_a_fast_sparse_convnet(
      self, sparsity, verdict):
    init = lambda offset: keras.initializers.GlorotUniform(seed=offset)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(32, 3, strides=2, padding='same', activation='relu', kernel_initializer=init(0),
                            name='stem')(inputs)
    x = keras.layers.Conv2D(64, 1, activation='relu', kernel_initializer=init(1), name='pointwise')(x)
    x = keras.layers.GlobalAveragePooling2D(name='mean')(x)
    model = keras.Model(inputs, keras.layers.Dense(4, kernel_initializer=init(2), name='out')(x))
    model = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.OneShotLotterySchedule(sparsity, 1),
                                           layer_rates={'stem': 0.0, 'out': 0.0})
    model.build((None, 16, 16, 3))
    ltp_tfmot.take_snapshot(model)
    ltp_tfmot.run_lottery_round(model)
    report = export.export_tflite(model, self.path)
    verdicts = {k.layer: k.xnnpack_sparse for k in report.kernels_under('AUTO')}
    self.assertStartsWith(verdicts['pointwise'], verdict)
    self.assertEqual(verdicts['stem'], 'no: only 1x1 CONV_2D filters are computed sparse in XNNPACK')
    self.assertStartsWith(verdicts['out'], 'no: FULLY_CONNECTED is not an op of an XNNPACK sparse subgraph')
    # Nothing the interpreter reports shows XNNPACK's sparse inference, so the report never says it runs.
    for text in verdicts.values():
      self.assertRegex(text, r'^(no|expected): ')

  def test_markdown_has_a_row_per_weighted_op_with_the_kernel_under_each_resolver(self):
    markdown = export.export_tflite(_ticket((4, 1)), self.path).to_markdown()
    self.assertIn(f'| op | layer | weights | AUTO | {BUILTIN} | XNNPACK sparse inference |', markdown)
    self.assertRegex(markdown, r'\| 0: FULLY_CONNECTED \| h1 \| float32, sparse 1x4 blocks \| built-in sparse '
                     r'FULLY_CONNECTED \(1x4 blocks\) \(runs\) \| built-in sparse FULLY_CONNECTED \(1x4 blocks\) '
                     r'\(runs\) \| no: ')

  def test_op_placement_counts_the_ops_xnnpack_takes_and_those_it_leaves(self):
    content = tf.lite.TFLiteConverter.from_keras_model(fixtures.mlp()).convert()
    auto = interpreter_lib.allocated_interpreter(content, 'AUTO')
    self.assertEqual(kernels.op_placement(auto), ({'FULLY_CONNECTED': 3}, {}))
    builtin = interpreter_lib.allocated_interpreter(content, BUILTIN)
    self.assertEqual(kernels.op_placement(builtin), ({}, {'FULLY_CONNECTED': 3}))

  def test_rules_are_data_with_a_reason_each(self):
    for rule in kernels.BUILTIN_RULES + kernels.XNNPACK_RULES:
      self.assertGreater(len(rule.reason), 10, rule)
    self.assertEqual(kernels.XNNPACK_SPARSE_INFERENCE['zero_fraction'], 2 / 3)


if __name__ == '__main__':
  tf.test.main()
