"""Tests of what a branch starts from: the main run's outputs, its ticket and its round redone, read from a run."""

import numpy as np
import tensorflow as tf

from ltp_tfmot import experiment
from ltp_tfmot.experiment import branch_context
from ltp_tfmot.experiment import level
from ltp_tfmot.experiment import storage
from tests import fixtures


class BranchContextTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.config = fixtures.tiny_run_config(rewind_step=2)
    cls.run_dir = fixtures.finished_run(cls, cls.config)

  def _context(self, level_number):
    factory = experiment.RunFactory(self.config, model_fn=fixtures.run_model_fn, data=fixtures.RUN_DATA)
    factory.load_data()
    trainer = level.LevelTrainer(self.config, factory, storage.RunDirectory(self.run_dir), experiment.RunHooks())
    return branch_context.BranchContext(trainer, 0, self.config.seed, level_number, seed=123)

  def test_settings_and_the_main_outputs_of_a_level(self):
    context = self._context(1)
    self.assertEqual((context.replicate, context.level, context.seed, context.rewind_step, context.run_criterion),
                     (0, 1, 123, 2, self.config.pruning.criterion))
    outputs, stored = context.main_outputs(), storage.load_masks(self.run_dir, 0, 1)
    self.assertEqual(outputs['mask_names'], stored['mask_names'])
    for got, want in zip(outputs['masks'] + outputs['snapshots'], stored['masks'] + stored['snapshots'], strict=True):
      self.assertAllEqual(got, want)
    self.assertEqual(context.main_outputs(0)['rounds_done'], 0)

  def test_the_main_ticket_is_the_levels_masks_on_its_rewind_point(self):
    context = self._context(1)
    model = context.main_ticket()
    stored = storage.load_masks(self.run_dir, 0, 1)
    masks = [m.numpy() for m in context.mask_variables(model)]
    for got, want in zip(masks, stored['masks'], strict=True):
      self.assertAllEqual(got, want)
    kernels = [w.layer.kernel.numpy() for w in model.layers]
    snapshot_kernels = [s for s, name in zip(stored['snapshots'], stored['snapshot_names'], strict=True)
                        if name.endswith('kernel')]
    for kernel, snapshot, mask in zip(kernels, snapshot_kernels, masks, strict=True):
      self.assertAllEqual(kernel, snapshot * mask)

  def test_the_round_redone_with_the_runs_settings_gives_the_main_masks(self):
    model = self._context(1).repruned()
    for got, want in zip(self._context(1).mask_variables(model), storage.load_masks(self.run_dir, 0, 1)['masks'],
                         strict=True):
      self.assertAllEqual(got.numpy(), want)
    with self.assertRaisesRegex(ValueError, 'level 0 is the dense network: repruned'):
      self._context(0).repruned()

  def test_masks_that_do_not_fit_are_refused(self):
    context = self._context(1)
    model = context.wrap(context.build_model())
    with self.assertRaisesRegex(ValueError, r'the saved masks do not fit the model \(1 saved, 3 in the model'):
      context.set_masks(model, [np.ones((8, 16), np.float32)])


if __name__ == '__main__':
  tf.test.main()
