"""Tests for structured (unit-granularity) lottery runs: whole units pruned per level, shrunk to smaller models."""

import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import ltp_tfmot
from ltp_tfmot import cli
from ltp_tfmot import experiment
from ltp_tfmot.experiment import storage
from tests import fixtures


# Keras' loop (jit_compile=False): compiling a step with XLA costs these small runs more than their training.
def _config(**pruning):
  return experiment.RunConfig(
      model='mlp', data=experiment.DataConfig(name='toy'),
      training=experiment.TrainingConfig(learning_rate=0.01, batch_size=16, epochs=1, eval_every=5, jit_compile=False),
      pruning=experiment.PruningConfig(rate=0.5, layer_rates={'output': 0.0}, levels=2, granularity='unit',
                                       **pruning),
      controls=('reinit',))


class StructuredRunTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters('L1', 'L2', 'mean')
  def test_each_level_removes_whole_units_and_the_ticket_shrinks(self, pooling):
    run_dir = self.get_temp_dir()
    results = experiment.LotteryExperiment(
        _config(unit_pooling=pooling), run_dir=run_dir, model_fn=fixtures.run_model_fn, data=fixtures.RUN_DATA,
        tensorboard=False, log=lambda line: None).run()
    self.assertLen(results, 5)
    for level in (1, 2):
      for branch in ('main', 'reinit'):
        stored = storage.load_masks(run_dir, 0, level, branch)
        kernels = {name: mask for name, mask in zip(stored['mask_names'], stored['masks'], strict=True)
                   if name.endswith('kernel')}
        for layer, units in (('hidden1', 16), ('hidden2', 12)):
          kernel = kernels[f'{layer}/kernel']
          alive = kernel.any(axis=0)
          self.assertTrue(np.all(kernel[:, alive] == 1) and np.all(kernel[:, ~alive] == 0))
          self.assertEqual(int(alive.sum()), int(np.floor(units * 0.5**level + 0.5)))
    model, split = experiment.load_trained_model(run_dir, level=2, model_fn=fixtures.run_model_fn,
                                                 data=fixtures.RUN_DATA)
    small = ltp_tfmot.shrink(model)
    self.assertEqual([layer.units for layer in small.layers], [4, 3, 4])
    fixtures.assert_close_to_scale(self, small(split.x_test), ltp_tfmot.strip_pruning(model)(split.x_test))

  def test_command_line_runs_a_structured_ticket_and_exports_it_shrunk(self):
    out = self.get_temp_dir()
    flags = ['--dataset_source=embedded', '--train_size=300', '--test_size=100', '--epochs=1', '--batch_size=50',
             '--eval_every=3', '--levels=1', '--rate=0.5', '--layer_rates=output:0', '--granularity=unit',
             '--nojit_compile', '--notensorboard', f'--out={out}']
    self.assertEqual(cli.main(['ltp-tfmot', 'run'] + flags), 0)
    run_dir = experiment.find_runs([out])[0]
    path = os.path.join(out, 'shrunk.tflite')
    self.assertEqual(cli.main(['ltp-tfmot', 'export', run_dir, '--shrink', f'--out={path}']), 0)
    model, _ = experiment.load_trained_model(run_dir)
    interpreter = ltp_tfmot.load_tflite(path)
    shapes = sorted(tuple(t['shape']) for t in interpreter.get_tensor_details() if len(t['shape']) == 2)
    self.assertIn((150, 784), shapes)  # hidden_300 kept 150 neurons
    self.assertIn((50, 150), shapes)   # hidden_100 kept 50, reading the 150 left
    self.assertEqual({w.granularity for w in ltp_tfmot.lottery_wrappers(model)}, {'unit'})

  def test_command_line_sets_unit_granularity(self):
    cli.FLAGS.unparse_flags()
    cli.FLAGS(['ltp-tfmot', '--granularity=unit', '--unit_pooling=L2'])
    pruning = cli.config_from_flags().pruning
    cli.FLAGS.unparse_flags()
    self.assertEqual((pruning.granularity, pruning.unit_pooling), ('unit', 'L2'))
    self.assertIn('pruning.granularity', experiment.RunConfig(pruning=pruning).non_default_settings())

  @parameterized.named_parameters(
      ('unknown_granularity', dict(granularity='block'), r"pruning\.granularity must be one of .*'block'"),
      ('unknown_pooling', dict(granularity='unit', unit_pooling='max'), r"pruning\.unit_pooling must be one of"),
      ('model_criterion', dict(granularity='unit', criterion='synflow'), r"'synflow' scores single weights"),
  )
  def test_bad_settings_raise(self, settings, message):
    with self.assertRaisesRegex(ValueError, message):
      experiment.PruningConfig(**settings)


if __name__ == '__main__':
  tf.test.main()
