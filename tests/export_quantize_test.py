"""Tests for int8 sparse tickets (ltp_tfmot.export.quantize): quantization-aware training that keeps the zeros.

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
from ltp_tfmot.export import tflite as export
from tests import fixtures

BUILTIN = 'BUILTIN_WITHOUT_DEFAULT_DELEGATES'


def _kernel_zeros(model):
  """{layer name: number of exact zeros in its kernel variable}, for plain and QuantizeWrapper layers."""
  counts = {}
  for layer in model.layers:
    for weight in layer.weights:
      if weight.name.split('/')[-1].split(':')[0] == 'kernel':
        counts[layer.name] = int(np.sum(weight.numpy() == 0))
  return counts


class QuantizeTicketTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.path = os.path.join(self.dir, 'model.tflite')

  @parameterized.parameters(((1, 1), 0.9), ((16, 1), 0.75))
  def test_qat_training_keeps_the_exact_zero_count_of_each_kernel_and_the_file_runs_under_its_resolver(
      self, block, sparsity):
    ticket = fixtures.pruned_mlp((64, 48, 32, 10), sparsity, block)
    zeros = {f'quant_{name}': n for name, n in _kernel_zeros(ltp_tfmot.strip_pruning(ticket)).items()}
    self.assertEqual(set(zeros), {'quant_h1', 'quant_h2', 'quant_out'})
    qat = ltp_tfmot.quantize_ticket(ticket)
    self.assertEqual(_kernel_zeros(qat), zeros)
    before = [w.numpy() for w in qat.weights if w.name.endswith('kernel:0')]
    qat.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = fixtures.uniform_inputs(60, 64), np.random.RandomState(1).randint(0, 10, 60)
    keras.utils.set_random_seed(0)
    qat.fit(x, y, batch_size=20, epochs=2, verbose=0)  # 6 training steps
    after = [w.numpy() for w in qat.weights if w.name.endswith('kernel:0')]
    self.assertTrue(all(np.any(a != b) for a, b in zip(after, before, strict=True)))  # it did train
    self.assertEqual(_kernel_zeros(qat), zeros)

    report = export.export_tflite(qat, self.path, sample_inputs=x[:8])
    self.assertTrue(report.qat)
    self.assertEqual(report.quantization, 'int8')
    self.assertEqual({t.layer: t.dtype for t in report.sparse_tensors},
                     {'quant_h1': 'int8', 'quant_h2': 'int8', 'quant_out': 'int8'})
    self.assertEqual(report.op_resolver, 'AUTO' if block == (16, 1) else BUILTIN)
    kernel = 'built-in sparse int8 FULLY_CONNECTED (1x16 blocks)' if block == (16, 1) else \
        'built-in dense kernel after DENSIFY'
    self.assertEqual({(k.kernel, k.status) for k in report.kernels_under()}, {(kernel, 'runs')})
    want = qat(x[:8]).numpy()
    for check in report.checks:
      if check.passed:
        got = fixtures.run_tflite_file(self.path, x[:8], check.resolver)
        self.assertLessEqual(np.abs(got - want).max(), report.relative_tolerance * np.abs(want).max())

  def test_freeze_ticket_is_refused(self):
    model = ltp_tfmot.prune_lottery_ticket(keras.Sequential([keras.layers.Dense(4, input_shape=(8,))]),
                                           ltp_tfmot.OneShotLotterySchedule(0.5, 1), mask_0_action='freeze')
    model.build((None, 8))
    with self.assertRaisesRegex(ValueError, r"mask_0_action='freeze'.*no zeros to preserve.*mask_0_action='zero'"):
      ltp_tfmot.quantize_ticket(model)

  def test_quantization_aware_model_is_refused(self):
    qat = ltp_tfmot.quantize_ticket(fixtures.pruned_mlp((16, 8, 8, 4)))
    with self.assertRaisesRegex(ValueError, r'already quantization-aware'):
      ltp_tfmot.quantize_ticket(qat)

  def test_unbuilt_model_is_refused(self):
    with self.assertRaisesRegex(ValueError, r'is not built'):
      ltp_tfmot.quantize_ticket(keras.Sequential([keras.layers.Dense(2)]))


if __name__ == '__main__':
  tf.test.main()
