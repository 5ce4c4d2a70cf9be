"""Tests for timing exported TFLite files against their dense conversion (ltp_tfmot.export.latency)."""

import os
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

from ltp_tfmot.export import latency
from ltp_tfmot.export import report as report_lib
from ltp_tfmot.export import tflite as export
from tests import fixtures

BUILTIN = 'BUILTIN_WITHOUT_DEFAULT_DELEGATES'


def _ticket(block_size=(1, 1), sizes=(128, 64, 32, 16), sparsity=0.9, seed=0):
  return fixtures.pruned_mlp(sizes, sparsity, block_size, seed)


def _inputs(n=32, features=128, seed=0):
  return np.random.RandomState(seed).rand(n, features).astype(np.float32)


class LatencyTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.path = os.path.join(self.dir, 'model.tflite')

  def test_block_4_ticket_is_measured_faster_than_its_dense_file_under_both_resolvers(self):
    sizes = (512, 512, 256, 10)
    report = export.export_tflite(_ticket((4, 1), sizes), self.path, sample_inputs=_inputs(8, 512),
                                  measure_latency=True, latency_runs=7)
    self.assertEqual([t.resolver for t in report.latency], ['AUTO', BUILTIN])
    for timing in report.latency:
      self.assertEqual(timing.runs, 7)
      self.assertGreater(timing.file_ms, 0)
      # 90% sparse 1x4 blocks ran in 0.2-0.4x the dense time here; 0.75 leaves room for a loaded machine.
      self.assertLess(timing.ratio, 0.75, timing)
      for median, (first, third) in ((timing.file_ms, timing.file_quartiles_ms),
                                     (timing.dense_ms, timing.dense_quartiles_ms),
                                     (timing.ratio, timing.ratio_quartiles)):
        self.assertBetween(median, first, third)
    self.assertRegex(report.to_markdown(), r'\| AUTO \| [\d.]+ ms \([\d.]+-[\d.]+\) \| [\d.]+ ms \([\d.]+-[\d.]+\) \| '
                     r'0\.\d\dx \(\d\.\d\d-\d\.\d\dx\) \|')

  def test_a_file_that_is_the_dense_conversion_is_timed_alone(self):
    model = keras.Sequential([keras.layers.Dense(32, activation='relu', input_shape=(64,)), keras.layers.Dense(10)])
    report = export.export_tflite(model, self.path, sample_inputs=_inputs(8, 64), measure_latency=True,
                                  latency_runs=3)  # as a shrunk ticket is: no weight to store sparse
    self.assertFalse(report.sparse)
    self.assertEqual([t.resolver for t in report.latency], ['AUTO', BUILTIN])
    for timing in report.latency:
      self.assertGreater(timing.file_ms, 0)
      self.assertEqual((timing.dense_ms, timing.ratio, timing.runs), (None, None, 3))
    self.assertRegex(report.to_markdown(), r'\| AUTO \| [\d.]+ ms \([\d.]+-[\d.]+\) \| is this file \|  \|')

  def test_file_is_timed_only_where_it_passes_and_the_dense_file_where_it_loads(self):
    report = export.export_tflite(_ticket(sizes=(64, 32, 16, 10)), self.path, quantization='int8',
                                  representative_data=_inputs(32, 64), measure_latency=True, latency_runs=2)
    auto, builtin = report.latency
    self.assertEqual((auto.resolver, auto.file_ms, auto.ratio), ('AUTO', None, None))
    self.assertGreater(auto.dense_ms, 0)
    self.assertEqual(builtin.resolver, BUILTIN)
    self.assertGreater(builtin.ratio, 0)
    self.assertTrue(any(note.startswith('latency of this file not measured under AUTO (it fails there')
                        for note in report.notes))
    self.assertIn('| AUTO | fails | ', report.to_markdown())
    slower = [note for note in report.notes if note.startswith('slower than the dense file')]
    if builtin.file_ms > auto.dense_ms:
      self.assertRegex(slower[0], r'measured [\d.e-]+ ms per invoke at best \(BUILTIN_WITHOUT_DEFAULT_DELEGATES\)')
    else:
      self.assertEqual(slower, [])

  def test_latency_is_not_measured_by_default(self):
    self.assertIsNone(export.export_tflite(_ticket(sizes=(64, 32, 16, 10)), self.path).latency)

  @parameterized.parameters(0, -1, 2.5, True, '3')
  def test_bad_latency_runs_raise_and_write_nothing(self, runs):
    with self.assertRaisesRegex(ValueError, r'latency_runs must be an int >= 1'):
      export.export_tflite(_ticket(sizes=(64, 32, 16, 10)), self.path, measure_latency=True, latency_runs=runs)
    self.assertEqual(os.listdir(self.dir), [])

  def test_interleaved_invoke_times_gives_one_sample_per_repetition_for_each_interpreter(self):
    export.export_tflite(_ticket(sizes=(64, 32, 16, 10)), self.path)
    interpreters = {}
    for resolver in ('AUTO', BUILTIN):
      interpreter = export.load_tflite(self.path, resolver)
      interpreter.set_tensor(interpreter.get_input_details()[0]['index'], _inputs(1, 64))
      interpreters[resolver] = interpreter
    times = latency.interleaved_invoke_times(interpreters, 3, 0.002)
    self.assertEqual(sorted(times), ['AUTO', BUILTIN])
    for samples in times.values():
      self.assertLen(samples, 3)
      self.assertTrue(all(0 < us < 1e5 for us in samples), samples)

  @parameterized.parameters(({}, 3, 0.01, 'interpreters is empty'), ({'a': None}, 0, 0.01, 'repetitions must be'),
                            ({'a': None}, 2, 0, 'block_seconds must be > 0'))
  def test_interleaved_invoke_times_refuses_bad_arguments(self, interpreters, repetitions, seconds, message):
    with self.assertRaisesRegex(ValueError, message):
      latency.interleaved_invoke_times(interpreters, repetitions, seconds)


class SlowerThanDenseNoteTest(tf.test.TestCase):

  def test_a_timed_file_is_slower_only_if_its_best_time_is_over_the_dense_time_under_xnnpack(self):
    passed = report_lib.ResolverCheck(BUILTIN, True)
    timings = (latency.Latency('AUTO', None, 1.0, None, 3), latency.Latency(BUILTIN, 1.5, 1.2, 1.25, 3))
    note = latency.slower_than_dense_note(passed, b'', timings)
    self.assertStartsWith(note, 'slower than the dense file: measured 1.5 ms per invoke at best '
                          f'({BUILTIN}) against 1 ms for the dense file with XNNPACK (AUTO)')
    faster = (latency.Latency('AUTO', None, 2.0, None, 3), latency.Latency(BUILTIN, 1.5, 1.2, 1.25, 3))
    self.assertIsNone(latency.slower_than_dense_note(passed, b'', faster))

  def test_an_untimed_file_is_slower_by_rule_if_xnnpack_takes_fewer_of_its_ops_than_of_the_dense_file(self):
    dense = tf.lite.TFLiteConverter.from_keras_model(fixtures.mlp()).convert()  # XNNPACK takes its 3 ops
    note = latency.slower_than_dense_note(report_lib.ResolverCheck(BUILTIN, True, xnnpack_ops={}), dense, None)
    self.assertStartsWith(note, f'slower than the dense file: XNNPACK takes 0 op(s) of this sparse quantized file '
                          f'under {BUILTIN} and 3 of the dense one')
    same = report_lib.ResolverCheck('AUTO', True, xnnpack_ops={'FULLY_CONNECTED': 3})
    self.assertIsNone(latency.slower_than_dense_note(same, dense, None))
    self.assertIsNone(latency.slower_than_dense_note(report_lib.ResolverCheck(BUILTIN, True), dense, None))


if __name__ == '__main__':
  tf.test.main()
