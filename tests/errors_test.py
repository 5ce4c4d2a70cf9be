"""Tests for ltp_tfmot.errors: one family of errors, each class defined there and only re-exported elsewhere."""

import ast
import inspect
import os

import tensorflow as tf

import ltp_tfmot
from ltp_tfmot import cli
from ltp_tfmot import errors
from ltp_tfmot import experiment

# Every error class errors.py defines, by name.
_ERRORS = {name: value for name, value in vars(errors).items()
           if inspect.isclass(value) and issubclass(value, BaseException)}


class ErrorsTest(tf.test.TestCase):

  def test_every_error_is_an_ltp_error_and_a_builtin_error(self):
    self.assertContainsSubset(['LtpError', 'NoStableRewindStepError', 'UsageError', 'StorageError'], _ERRORS)
    for name, error in _ERRORS.items():
      self.assertTrue(issubclass(error, errors.LtpError), name)
      if error is not errors.LtpError:  # each is also one built-in error: `except ValueError` (...) still catches it
        refined = [base for base in error.__bases__ if base is not errors.LtpError]
        self.assertLen(refined, 1, name)
        self.assertEqual(refined[0].__module__, 'builtins', name)

  def test_public_error_names_are_the_classes_of_errors_py(self):
    public = [(module, name) for module in (ltp_tfmot, experiment) for name in module.__all__
              if name.endswith('Error')]
    self.assertIn((experiment, 'NoStableRewindStepError'), public)
    for module, name in public:
      self.assertIs(getattr(module, name), _ERRORS[name], f'{module.__name__}.{name}')
      self.assertEqual(getattr(module, name).__module__, 'ltp_tfmot.errors', name)
    self.assertIs(cli.UsageError, errors.UsageError)

  def test_no_module_but_errors_py_defines_a_public_error_class(self):
    package = os.path.dirname(ltp_tfmot.__file__)
    error_classes = []
    for folder, _, names in os.walk(package):
      for name in sorted(n for n in names if n.endswith('.py')):
        path = os.path.join(folder, name)
        with open(path, encoding='utf-8') as source:
          tree = ast.parse(source.read())
        error_classes += [f'{os.path.relpath(path, package)}: {node.name}' for node in ast.walk(tree)
                    if isinstance(node, ast.ClassDef) and not node.name.startswith('_')
                    and any(ast.unparse(base).endswith(('Error', 'Exception')) for base in node.bases)]
    self.assertEqual([entry for entry in error_classes if not entry.startswith('errors.py:')], [])
    self.assertIn('errors.py: UsageError', error_classes)

  def test_jobs_failed_error_keeps_its_failures(self):
    error = errors.JobsFailedError('2 jobs failed', failures=({'level': 1}, {'level': 2}))
    self.assertEqual(str(error), '2 jobs failed')
    self.assertEqual(error.failures, [{'level': 1}, {'level': 2}])
    self.assertEqual(errors.JobsFailedError('none').failures, [])


if __name__ == '__main__':
  tf.test.main()
