"""Tests of a model's state in a level's files: masks.npz and weights.npz written and read, a level's model loaded."""

import tempfile

import numpy as np
import tensorflow as tf

import ltp_tfmot
from ltp_tfmot import experiment
from ltp_tfmot.experiment import level_state
from ltp_tfmot.experiment import storage
from tests import fixtures


class ArraysTest(tf.test.TestCase):

  def test_mask_arrays_read_back_as_the_models_masks_snapshot_and_other_values(self):
    model = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(0))
    ltp_tfmot.take_snapshot(model, step=4)
    masks = level_state.mask_variables(model)
    masks[0].assign(np.zeros(masks[0].shape, masks[0].dtype.as_numpy_dtype))
    other = [np.full(v.shape, 2.0, v.dtype.as_numpy_dtype) for v in level_state.other_variables(model)]
    stored = storage.masks_from_arrays(level_state.mask_arrays(model, other))
    self.assertLen(stored['masks'], len(masks))
    for got, mask in zip(stored['masks'], masks, strict=True):
      self.assertAllEqual(got, mask.numpy())
    self.assertEqual(stored['snapshot_step'], 4)
    self.assertEqual(stored['mask_layer'], list(range(len(masks))))  # one prunable kernel per layer
    self.assertLen(stored['other'], len(other))

  def test_assign_refuses_values_that_do_not_fit(self):
    model = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(0))
    masks = level_state.mask_variables(model)
    with self.assertRaisesRegex(ValueError, r'the saved masks do not fit the model \(2 saved, 3 in the model, or '
                                r'shapes differ\): was the model builder changed\?'):
      level_state.assign(masks, [m.numpy() for m in masks[:2]], 'masks')


class LoadTrainedModelTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.run_dir = fixtures.finished_run(cls, fixtures.tiny_run_config())

  def _load(self, **kwargs):
    return level_state.load_trained_model(self.run_dir, model_fn=fixtures.run_model_fn, data=fixtures.RUN_DATA,
                                          **kwargs)

  def test_the_model_holds_the_levels_trained_state(self):
    self.assertIs(experiment.load_trained_model, level_state.load_trained_model)
    for level, kwargs in ((0, {'level': 0}), (1, {})):  # the last finished level by default
      model, split = self._load(**kwargs)
      stored = storage.load_arrays(storage.RunDirectory(self.run_dir).file(0, level, 'main', storage.WEIGHTS))
      for variable, value in zip(model.weights, storage.unpack(stored, 'weight'), strict=True):
        self.assertAllEqual(variable.numpy(), value)
      self.assertLen(split.x_test, 64)

  def test_an_unfinished_level_or_a_directory_without_a_run_is_refused(self):
    with self.assertRaisesRegex(ValueError, r'level 2 of replicate 0 is not finished in .*; finished: \[0, 1\]'):
      self._load(level=2)
    with self.assertRaisesRegex(ValueError, 'is not a run directory'):
      level_state.load_trained_model(tempfile.mkdtemp(dir=self.get_temp_dir()))


if __name__ == '__main__':
  tf.test.main()
