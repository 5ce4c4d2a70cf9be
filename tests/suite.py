"""Runs a group of test files in one process: one Bazel target for several test files.

Each test file stays a module of its own, named after the module it tests,
and pytest runs them one by one; a group target pays one TensorFlow, Keras
and JAX start for all of its files instead of one each. The group's files
are named by the TEST_MODULES environment variable, which tests/BUILD sets.
"""

import importlib
import os
import unittest

import tensorflow as tf


def load_tests(loader, tests, pattern):
  """The tests of every module in TEST_MODULES (unittest's load_tests protocol, which absltest follows)."""
  del tests, pattern  # this module has none of its own
  suite = unittest.TestSuite()
  for name in os.environ['TEST_MODULES'].split():
    suite.addTests(loader.loadTestsFromModule(importlib.import_module(f'tests.{name}')))
  return suite


if __name__ == '__main__':
  tf.test.main()
