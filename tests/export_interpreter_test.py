"""Tests for loading and running TFLite files under an op resolver (ltp_tfmot.export.interpreter)."""

import os
import tempfile
from unittest import mock

import numpy as np
import tensorflow as tf

from ltp_tfmot import errors
from ltp_tfmot.export import interpreter as interpreter_lib
from tests import fixtures


class InterpreterTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model = fixtures.mlp()
    cls.content = tf.lite.TFLiteConverter.from_keras_model(cls.model).convert()

  def test_the_resolvers_are_the_default_one_first(self):
    self.assertEqual(interpreter_lib.RESOLVERS, ('AUTO', 'BUILTIN_WITHOUT_DEFAULT_DELEGATES'))

  def test_a_file_loads_from_bytes_or_a_path_under_each_resolver(self):
    path = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'model.tflite')
    with open(path, 'wb') as f:
      f.write(self.content)
    for resolver in interpreter_lib.RESOLVERS:
      for source in (self.content, path):
        interpreter = interpreter_lib.allocated_interpreter(source, resolver, num_threads=1)
        self.assertEqual(list(interpreter.get_input_details()[0]['shape_signature']), [-1, 8])

  def test_run_matches_keras_by_input_name_and_in_order_for_other_names(self):
    interpreter = interpreter_lib.allocated_interpreter(self.content, 'AUTO')
    x = np.random.RandomState(0).randn(4, 8).astype(np.float32)
    want = self.model(x).numpy()
    for samples in ({'hidden1_input': x}, {'other_name': x}):
      (got,) = interpreter_lib.run(interpreter, samples).values()
      fixtures.assert_close_to_scale(self, got, want)
    with self.assertRaisesRegex(ValueError, r"the TFLite model has inputs \['hidden1_input'\], the Keras model "
                                r"\['a', 'b'\]"):
      interpreter_lib.run(interpreter, {'a': x, 'b': x})

  def test_run_without_samples_runs_once_on_zeros(self):
    interpreter = interpreter_lib.allocated_interpreter(self.content, 'BUILTIN_WITHOUT_DEFAULT_DELEGATES')
    outputs = interpreter_lib.run(interpreter, None)
    (index,) = [str(d['index']) for d in interpreter.get_output_details()]
    self.assertEqual(list(outputs), [index])
    self.assertTrue(np.all(np.isfinite(outputs[index])))

  def test_a_missing_ai_edge_litert_says_how_to_install_it(self):
    with mock.patch.dict('sys.modules', {'ai_edge_litert': None}):
      with self.assertRaisesRegex(errors.MissingDependencyError, 'pip install ai-edge-litert'):
        interpreter_lib.allocated_interpreter(self.content, 'AUTO')


if __name__ == '__main__':
  tf.test.main()
