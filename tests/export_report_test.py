"""Tests for the export report and its text (ltp_tfmot.export.report).

The reports are made by hand, except for the test of the text of a real export.
"""

import os
import tempfile

import tensorflow as tf

from ltp_tfmot.export import flatbuffer
from ltp_tfmot.export import kernels
from ltp_tfmot.export import latency
from ltp_tfmot.export import report as report_lib
from ltp_tfmot.export import tflite as export
from tests import fixtures

BUILTIN = 'BUILTIN_WITHOUT_DEFAULT_DELEGATES'


def _report(**changes):
  """A report of a sparse float32 file of layers 'h1' (a matched sparse weight) and 'conv' (not prunable)."""
  fields = dict(
      path='model.tflite', quantization=None, sparse=True, file_bytes=400, dense_bytes=1000, sparse_bytes=400,
      gzip_bytes=300, dense_gzip_bytes=900, layer_sparsity={'h1': 0.5}, weight_sparsity={'h1': 0.5, 'conv': 0.25},
      sparse_tensors=(flatbuffer.SparseTensor('h1/kernel', 'h1', (4, 8), 'float32', 64, ('FULLY_CONNECTED',), True),
                      flatbuffer.SparseTensor('w', None, (2, 4), 'float32', 16, ('FULLY_CONNECTED',), False)),
      op_counts={'DENSIFY': 1, 'FULLY_CONNECTED': 2}, op_resolver='AUTO',
      checks=(report_lib.ResolverCheck('AUTO', True, max_abs_diff=1e-6, xnnpack_ops={'FULLY_CONNECTED': 1},
                                       builtin_ops={'FULLY_CONNECTED': 1}),
              report_lib.ResolverCheck(BUILTIN, False, error='cannot prepare')),
      xnnpack_ops={'FULLY_CONNECTED': 1}, builtin_ops={'FULLY_CONNECTED': 1}, max_abs_diff=1e-6, max_abs_output=2.0,
      relative_tolerance=1e-4, sample_count=8)
  fields.update(changes)
  return report_lib.ExportReport(**fields)


def _op_kernel(resolver, kernel):
  return kernels.OpKernel(0, 'FULLY_CONNECTED', 'h1', 'float32', '1x4', False, resolver, kernel, True, 'runs', 'why',
                          'no: not a CNN' if resolver == 'AUTO' else '')


class ExportReportTest(tf.test.TestCase):

  def test_sizes_and_ops_are_read_from_the_fields(self):
    report = _report()
    self.assertEqual(report.size_ratio, 0.4)
    self.assertEqual(report.densify_ops, 1)
    self.assertEqual(report.sparse_ops, ('FULLY_CONNECTED',))
    self.assertEqual(report.densified_ops, ('FULLY_CONNECTED',))

  def test_markdown_summary_has_a_row_per_fact_and_per_resolver_check(self):
    markdown = _report(notes=('a note',)).to_markdown()
    for row in ('| file | `model.tflite` |', '| weights | float32, sparse format |',
                '| size | 400 B (40.0% of the dense 1,000 B) |', '| gzip | 300 B (dense: 900 B) |',
                '| DENSIFY ops | 1 |', '| op resolver | AUTO |', '| XNNPACK takes | FULLY_CONNECTED x1 |',
                '| max \\|TFLite - Keras\\| | 1e-06 on 8 samples (tolerance 0.0002 = 0.0001 x largest '
                '\\|Keras output\\| 2) |', '| check AUTO | max \\|TFLite - Keras\\| 1e-06 (tolerance 0.0002): passed |',
                f'| check {BUILTIN} | does not load: cannot prepare |', '| note | a note |'):
      self.assertIn(row, markdown)

  def test_markdown_has_a_row_per_layer_and_per_unmatched_sparse_tensor(self):
    markdown = _report().to_markdown()
    self.assertIn('| h1 | 50.0% | `h1/kernel` [4, 8] float32 | sparse, 64 B | FULLY_CONNECTED after DENSIFY |',
                  markdown)
    self.assertIn('| conv | not prunable (all weights of rank >= 2: 25.0%) | | dense | dense |', markdown)
    self.assertIn('| ? | | `w` [2, 4] float32 | sparse, 16 B | FULLY_CONNECTED on sparse weights |', markdown)

  def test_markdown_of_a_dense_file_without_samples_or_node_listing(self):
    markdown = _report(sparse=False, sparse_tensors=(), sparse_bytes=None, file_bytes=1040, max_abs_diff=None,
                       xnnpack_ops=None, builtin_ops={}).to_markdown()
    self.assertIn('| weights | float32, dense format |', markdown)
    self.assertIn('| size | 1,040 B (the dense conversion, 1,000 B, and a record of its op resolver, 40 B) |',
                  markdown)
    self.assertIn('| gzip | 300 B |', markdown)
    self.assertIn('| XNNPACK takes | unknown (the interpreter does not list its nodes) |', markdown)
    self.assertIn('| built-in kernels run | none |', markdown)
    self.assertIn('| max \\|TFLite - Keras\\| | not compared (no sample inputs) |', markdown)

  def test_resolver_check_says_why_it_failed_or_how_close_it_came(self):
    self.assertEqual(report_lib.ResolverCheck('AUTO', False, error='bad op').describe(1e-3), 'does not load: bad op')
    self.assertEqual(report_lib.ResolverCheck('AUTO', True).describe(1e-3), 'runs, finite outputs (not compared)')
    self.assertEqual(report_lib.ResolverCheck('AUTO', False).describe(1e-3), 'runs, outputs not finite')
    self.assertEqual(report_lib.ResolverCheck('AUTO', False, max_abs_diff=0.5).describe(1e-3),
                     'max \\|TFLite - Keras\\| 0.5 (tolerance 0.001): wrong outputs')

  def test_kernels_under_defaults_to_the_recorded_resolver_and_markdown_has_a_row_per_op(self):
    auto, builtin = _op_kernel('AUTO', 'kernel A'), _op_kernel(BUILTIN, 'kernel B')
    report = _report(kernels=(auto, builtin))
    self.assertEqual(report.kernels_under(), (auto,))
    self.assertEqual(report.kernels_under(BUILTIN), (builtin,))
    markdown = report.to_markdown()
    self.assertIn(f'| op | layer | weights | AUTO | {BUILTIN} | XNNPACK sparse inference |', markdown)
    self.assertIn('| 0: FULLY_CONNECTED | h1 | float32, sparse 1x4 blocks | kernel A (runs) | kernel B (runs) | '
                  'no: not a CNN |', markdown)

  def test_markdown_has_a_latency_row_per_resolver(self):
    timings = (latency.Latency('AUTO', None, 2.0, None, 3, None, (1.5, 2.5), None),
               latency.Latency(BUILTIN, 1.0, 2.0, 0.5, 3, (0.9, 1.1), (1.8, 2.2), (0.45, 0.55)))
    markdown = _report(latency=timings).to_markdown()
    self.assertIn('| latency (batch 1, 1 thread; median and quartiles of 3 runs) | this file | dense file |', markdown)
    self.assertIn('| AUTO | fails | 2.0000 ms (1.5000-2.5000) |  |', markdown)
    self.assertIn(f'| {BUILTIN} | 1.0000 ms (0.9000-1.1000) | 2.0000 ms (1.8000-2.2000) | 0.50x (0.45-0.55x) |',
                  markdown)
    alone = _report(sparse=False, latency=(latency.Latency('AUTO', 1.0, None, None, 3, (0.9, 1.1)),)).to_markdown()
    self.assertIn('| AUTO | 1.0000 ms (0.9000-1.1000) | is this file |  |', alone)


class ExportReportOfAnExportTest(tf.test.TestCase):

  def test_markdown_has_summary_and_a_row_per_layer(self):
    path = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'model.tflite')
    markdown = export.export_tflite(fixtures.pruned_mlp((784, 300, 100, 10), 0.9), path).to_markdown()
    self.assertIn('| DENSIFY ops | 3 |', markdown)
    self.assertRegex(markdown, r'\| size \| [\d,]+ B \(1\d\.\d% of the dense [\d,]+ B\) \|')
    for layer in ('h1', 'h2', 'out'):
      self.assertRegex(markdown, rf'\| {layer} \| 90\.0% \| `[^`]+` \[\d+, \d+\] float32 \| sparse, [\d,]+ B \| '
                       r'FULLY_CONNECTED after DENSIFY \|')


if __name__ == '__main__':
  tf.test.main()
