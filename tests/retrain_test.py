"""Tests for the retraining modes of a lottery run: weight rewinding, learning-rate rewinding, fine-tuning."""

import os
import shutil
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot import cli
from ltp_tfmot import experiment
from ltp_tfmot.experiment import recipes
from ltp_tfmot.experiment import storage
from tests import fixtures

T = 18  # iterations of a level: 2 epochs of 144 training examples at batch 16


# Keras' loop (jit_compile=False): compiling a step with XLA costs these small runs more than their training.
def _config(retrain='weight_rewind', retrain_steps=None, levels=2, **pruning):
  return experiment.RunConfig(
      model='mlp',
      data=experiment.DataConfig(name='toy'),
      training=experiment.TrainingConfig(learning_rate=0.01, batch_size=16, epochs=2, eval_every=3, jit_compile=False),
      pruning=experiment.PruningConfig(rate=0.5, layer_rates={}, levels=levels, retrain=retrain,
                                       retrain_steps=retrain_steps, **pruning))


def _run(run_dir, config):
  return experiment.LotteryExperiment(config, run_dir=run_dir, model_fn=fixtures.run_model_fn, data=fixtures.RUN_DATA,
                                      tensorboard=False, log=lambda line: None).run()


def _main(results, level):
  return next(r for r in results if r['level'] == level and r['branch'] == 'main')


class RetrainModesTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._level_1_runs = {}  # (retrain, retrain_steps) -> run directory of that one-level run, run once for the class

  def _dir(self):
    return tempfile.mkdtemp(dir=self.get_temp_dir())

  def _level_1_run(self, retrain, budget):
    """(run directory, results) of the finished one-level run of `retrain` with `budget`, shared by the tests.

    Several tests read the same run: it trains once. A test that writes to it works on a copy.
    """
    key = (retrain, budget)
    if key not in self._level_1_runs:
      self._level_1_runs[key] = fixtures.finished_run(type(self), _config(retrain, budget, levels=1))
    run_dir = self._level_1_runs[key]
    return run_dir, experiment.load_level_metrics(run_dir)

  @parameterized.named_parameters(
      ('weight_rewind', 'weight_rewind', None, 0, T),
      ('lr_rewind', 'lr_rewind', 6, T - 6, T),
      ('lr_rewind_default_budget', 'lr_rewind', None, 0, T),
      ('finetune', 'finetune', 6, T, T + 6),
  )
  def test_levels_after_zero_train_the_span_of_their_mode(self, retrain, budget, first, end):
    _, results = self._level_1_run(retrain, budget)
    level0, level1 = _main(results, 0), _main(results, 1)
    self.assertEqual((level0['curve'][0]['iteration'], level0['curve'][-1]['iteration']), (0, T))
    self.assertEqual((level1['curve'][0]['iteration'], level1['curve'][-1]['iteration']), (first, end))
    self.assertEqual((level0['trained_iterations'], level1['trained_iterations']), (T, end - first))

  @parameterized.parameters('lr_rewind', 'finetune')
  def test_pruned_level_starts_from_the_trained_weights_times_the_new_masks(self, retrain):
    run_dir, results = self._level_1_run(retrain, 6)
    trained, split = experiment.load_trained_model(run_dir, level=0, model_fn=fixtures.run_model_fn,
                                                   data=fixtures.RUN_DATA)
    experiment.BranchContext.set_masks(trained, storage.load_masks(run_dir, 0, 1)['masks'])
    ltp_tfmot.apply_masks(trained)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(split.y_test, trained(split.x_test))
    # The level's supermask metrics evaluate where its training starts: the pruned trained weights.
    self.assertAllClose(_main(results, 1)['supermask_loss'], float(loss), rtol=1e-5)
    _, rewound = self._level_1_run('weight_rewind', None)
    self.assertNotAllClose(_main(rewound, 1)['supermask_loss'], float(loss), rtol=1e-3)

  @parameterized.parameters('lr_rewind', 'finetune')
  def test_levels_resumed_from_files_equal_an_uninterrupted_run(self, retrain):
    whole_dir, resumed_dir = self._dir(), os.path.join(self._dir(), 'run')
    whole = _run(whole_dir, _config(retrain, 6, levels=2))
    shutil.copytree(self._level_1_run(retrain, 6)[0], resumed_dir)  # the run of levels 0 and 1
    resumed = _run(resumed_dir, _config(retrain, 6, levels=2))  # level 2 starts from level 1's files
    keys = ('level', 'weights_remaining', 'test_accuracy', 'test_loss', 'supermask_loss', 'curve')
    self.assertEqual([{k: r[k] for k in keys} for r in whole], [{k: r[k] for k in keys} for r in resumed])
    for a, b in zip(storage.load_masks(whole_dir, 0, 2)['masks'], storage.load_masks(resumed_dir, 0, 2)['masks'],
                    strict=True):
      self.assertAllEqual(a, b)

  def test_modes_name_different_runs_and_the_default_keeps_old_hashes(self):
    names = {_config(mode, None if mode == 'weight_rewind' else 6).run_name()
             for mode in experiment.RETRAIN_MODES}
    self.assertLen(names, 3)
    self.assertEqual(experiment.PruningConfig().retrain, 'weight_rewind')
    self.assertNotIn('pruning.retrain', experiment.RunConfig().non_default_settings())

  @parameterized.named_parameters(
      ('unknown_mode', dict(retrain='rewind_all'), r"pruning\.retrain must be one of .*'rewind_all'"),
      ('zero_budget', dict(retrain='lr_rewind', retrain_steps=0), r'pruning\.retrain_steps .*>= 1.*0'),
      ('budget_of_weight_rewind', dict(retrain_steps=5), r'does not apply to .*weight_rewind.*rewind_step'),
      ('model_criterion', dict(retrain='lr_rewind', criterion='snip'), r"'snip' scores the rewind point"),
      ('reinit', dict(retrain='finetune', mask_1_action='reinit'), r"mask_1_action='reinit' acts when survivors"),
      ('freeze', dict(retrain='finetune', mask_0_action='freeze'), r"mask_0_action='freeze' acts when survivors"),
      ('rescaling', dict(retrain='lr_rewind', dynamic_weight_rescaling=True), r'dynamic_weight_rescaling=True acts'),
  )
  def test_bad_retrain_settings_raise_naming_the_fix(self, settings, message):
    with self.assertRaisesRegex(ValueError, message):
      experiment.PruningConfig(**settings)

  def test_budget_longer_than_a_level_is_refused_before_writing(self):
    run_dir = os.path.join(self._dir(), 'run')
    with self.assertRaisesRegex(ValueError, r'retrain_steps \(19\) is longer than a level \(18 iterations\)'):
      _run(run_dir, _config('lr_rewind', T + 1, levels=1))
    self.assertFalse(os.path.exists(run_dir))

  def test_command_line_sets_the_mode_and_budget(self):
    cli.FLAGS.unparse_flags()
    cli.FLAGS(['ltp-tfmot', '--retrain=finetune', '--retrain_steps=300'])
    pruning = cli.config_from_flags().pruning
    cli.FLAGS.unparse_flags()
    self.assertEqual((pruning.retrain, pruning.retrain_steps), ('finetune', 300))

  def test_report_puts_the_modes_side_by_side(self):
    out = self._dir()
    for mode in experiment.RETRAIN_MODES:
      shutil.copytree(self._level_1_run(mode, None if mode == 'weight_rewind' else 6)[0], os.path.join(out, mode))
    md_path, _ = experiment.write_report([out])
    with open(md_path) as f:
      text = f.read()
    self.assertIn('## Tickets side by side', text)
    header = next(line for line in text.splitlines() if line.startswith('| Weights remaining |'))
    for mode in experiment.RETRAIN_MODES:
      self.assertIn(f'retrain={mode}', header)
    self.assertRegex(text, r'\| 50% \| [0-9.]+% \| [0-9.]+% \| [0-9.]+% \|')


class KeepWeightsRoundTest(tf.test.TestCase):

  def _trained(self, **wrap):
    model = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(0), ltp_tfmot.LotteryTicketSchedule(0.5), **wrap)
    fixtures.compile_for_training(model)
    ltp_tfmot.take_snapshot(model)
    x, y = fixtures.classification_data(n=64, seed=0)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])
    return model

  def test_keep_weights_prunes_the_trained_weights_and_replays_the_schedule_from_k(self):
    model = self._trained()
    wrappers = ltp_tfmot.lottery_wrappers(model)
    trained = [tf.identity(w.prunable_weights[0]) for w in wrappers]
    ltp_tfmot.run_lottery_round(model, model.optimizer, rewind_iterations=3, keep_weights=True)
    for w, before in zip(wrappers, trained, strict=True):
      mask = w.masks[0].numpy()
      self.assertAllEqual(w.prunable_weights[0].numpy(), before.numpy() * mask)
      self.assertEqual(int(np.count_nonzero(mask)), mask.size // 2)
    self.assertEqual(int(model.optimizer.iterations.numpy()), 3)
    for slot in model.optimizer.variables()[1:]:
      self.assertAllEqual(slot.numpy(), np.zeros(slot.shape))

  def test_keep_weights_refuses_a_rewind_action_and_changes_nothing(self):
    model = self._trained(mask_1_action='reinit')
    before = [tf.identity(v) for v in model.weights]
    with self.assertRaisesRegex(ValueError, r"mask_1_action='reinit', which acts at a rewind"):
      ltp_tfmot.run_lottery_round(model, model.optimizer, keep_weights=True)
    for variable, value in zip(model.weights, before, strict=True):
      self.assertAllEqual(variable.numpy(), value.numpy())


class FinalRateScheduleTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ('step_with_a_milestone_at_the_end', dict(lr_decay='step', milestones=(5, 20)), 0.01),
      ('cosine', dict(lr_decay='cosine'), None),
  )
  def test_past_the_end_the_rate_is_the_final_one(self, settings, final):
    schedule, iterations = recipes.make_schedule(0.1, 20, **settings)
    last = float(schedule(iterations - 1))
    if final is not None:
      self.assertAllClose(last, final)
    self.assertGreater(last, 0.0)
    for step in (iterations, iterations + 7, 10 * iterations):
      self.assertEqual(float(schedule(step)), last)


if __name__ == '__main__':
  tf.test.main()
