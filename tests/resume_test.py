"""Tests of what a run directory tells a run started again: the same run or not, its intact levels, its numeric path."""

import os
import tempfile

import tensorflow as tf

from ltp_tfmot import errors
from ltp_tfmot import experiment
from ltp_tfmot.experiment import resume
from ltp_tfmot.experiment import storage
from tests import fixtures


def _config(rate=0.5):
  return fixtures.tiny_run_config(rate=rate)


def _meta(config, data=fixtures.RUN_DATA, model=None):
  factory = experiment.RunFactory(config, model_fn=fixtures.run_model_fn, data=data)
  factory.load_data()
  return resume.run_meta(config, factory, model or fixtures.mlp(0))


def _write_level(paths, job, training_path):
  """A finished level with only a metrics.json, recording `training_path`."""
  checksums = {storage.METRICS_JSON: storage.write_json(paths.file(*job, storage.METRICS_JSON),
                                                        {'training_path': training_path})}
  paths.write_manifest(*job, checksums)


class RunDifferencesTest(tf.test.TestCase):

  def test_the_same_run_has_no_differences(self):
    meta = _meta(_config())
    self.assertEqual(meta['name'], _config().run_name())
    self.assertEqual(resume.run_differences(_config(), meta)(meta), [])

  def test_other_settings_data_and_model_are_named(self):
    stored = _meta(_config(rate=0.2))
    other_data = fixtures.classification_data(n=160, seed=5) + fixtures.classification_data(n=64, seed=1)
    meta = _meta(_config(), data=other_data, model=fixtures.convnet(0))
    differences = resume.run_differences(_config(), meta)(stored)
    self.assertIn('pruning.rate is 0.2 there and 0.5 here', differences)
    self.assertStartsWith(differences[-2], 'the data differ (source ')
    self.assertEqual(differences[-1], 'the model architecture differs (layers or weight shapes)')

  def test_unreadable_settings_are_a_difference(self):
    meta = _meta(_config())
    self.assertStartsWith(resume.run_differences(_config(), meta)({'config': {'pruning': 3}})[0],
                          'its config.json does not hold readable settings')


class FinishedLevelsTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.paths = storage.RunDirectory(tempfile.mkdtemp(dir=self.get_temp_dir()))
    self.lines = []

  def test_a_damaged_level_is_not_done_and_a_warning_says_why(self):
    _write_level(self.paths, (0, 0, 'main'), {})
    self.assertEqual(resume.verified_done(self.paths, [(0, 0, 'main')], self.lines.append), set())
    self.assertRegex(self.lines[0], r'^WARNING: replicate 0 level 0 main is damaged and will be redone: its manifest '
                     r'does not list masks\.npz$')

  def test_the_same_path_is_no_change_and_another_is_refused_unless_accepted(self):
    here = {'jit_compile': False, 'threads': 2}
    os.makedirs(self.paths.level_dir(0, 0))
    for name in storage.RunDirectory.needed_files('main'):
      open(self.paths.file(0, 0, 'main', name), 'w').close()  # is_done looks for the files, not their content
    _write_level(self.paths, (0, 0, 'main'), here)
    self.assertIsNone(resume.training_path_change(self.paths, [(0, 0, 'main')], here, False, self.lines.append))
    there = dict(here, jit_compile=True)
    with self.assertRaises(errors.TrainingPathChangedError):
      resume.training_path_change(self.paths, [(0, 0, 'main')], there, False, self.lines.append)
    self.assertEqual(self.lines, [])
    change = resume.training_path_change(self.paths, [(0, 0, 'main')], there, True, self.lines.append)
    self.assertEqual(change, 'jit_compile False -> True')
    self.assertStartsWith(self.lines[0], 'WARNING: the training path changed (jit_compile False -> True) since '
                          'replicate 0 level 0 main; accepted')


if __name__ == '__main__':
  tf.test.main()
