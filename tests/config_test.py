"""Tests for the run configs: validation, hashing and dict round trips."""

import json

from absl.testing import parameterized
import tensorflow as tf

from ltp_tfmot import experiment


class ConfigTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ('rate', lambda: experiment.PruningConfig(rate=1.5), r'pruning\.rate must be in \(0, 1\), got 1\.5'),
      ('criterion', lambda: experiment.PruningConfig(criterion='biggest'), r"pruning\.criterion .*'biggest'"),
      ('scope', lambda: experiment.PruningConfig(scope='model'), r"pruning\.scope must be one of .*'model'"),
      ('layer_rate', lambda: experiment.PruningConfig(layer_rates={'output': 1.0}),
       r"pruning\.layer_rates\['output'\] must be .*\[0, 1\), got 1\.0"),
      ('rewind_step', lambda: experiment.PruningConfig(rewind_step=-1), r'pruning\.rewind_step .*>= 0.*-1'),
      ('levels', lambda: experiment.PruningConfig(levels=2.5), r'pruning\.levels .*2\.5'),
      ('optimizer', lambda: experiment.TrainingConfig(optimizer='rmsprop'), r"training\.optimizer .*'rmsprop'"),
      ('learning_rate', lambda: experiment.TrainingConfig(learning_rate=0), r'training\.learning_rate .*> 0.*0'),
      ('momentum_with_adam', lambda: experiment.TrainingConfig(momentum=0.9), r"training\.momentum .*'sgd'"),
      ('batch_size', lambda: experiment.TrainingConfig(batch_size=0), r'training\.batch_size .*>= 1.*0'),
      ('validation_split', lambda: experiment.DataConfig(validation_split=1.0), r'data\.validation_split .*1\.0'),
      ('source', lambda: experiment.DataConfig(source='web'), r"data\.source must be one of .*'web'"),
      ('model', lambda: experiment.RunConfig(model=''), r"model must be a non-empty name.*''"),
      ('control', lambda: experiment.RunConfig(controls=('shuffle',)), r"controls must be one of .*'shuffle'"),
      ('control_level', lambda: experiment.RunConfig(controls=('reinit',), control_levels=(0, 9)),
       r'control_levels must lie in 1\.\.5 .*\[0, 9\]'),
      ('replicates', lambda: experiment.RunConfig(replicates=0), r'replicates .*>= 1.*0'),
      ('training_steps', lambda: experiment.TrainingConfig(training_steps='160 epochs'),
       r"training\.training_steps must be written as epochs and/or iterations.*'160ep'.*'160 epochs'"),
      ('epochs_and_training_steps', lambda: experiment.TrainingConfig(epochs=3, training_steps='100it'),
       r'give training\.epochs \(3\) or training\.training_steps \(100\), not both'),
      ('nesterov_with_adam', lambda: experiment.TrainingConfig(nesterov=True),
       r"training\.nesterov applies to optimizer 'sgd' only, got nesterov=True"),
      ('weight_decay', lambda: experiment.TrainingConfig(weight_decay=-1e-4), r'training\.weight_decay .*>= 0'),
      ('milestones_without_step', lambda: experiment.TrainingConfig(milestones=('80ep',)),
       r"training\.milestones go with training\.lr_decay='step'"),
      ('lr_decay', lambda: experiment.TrainingConfig(lr_decay='linear'), r"training\.lr_decay must be one of"),
      ('gamma', lambda: experiment.TrainingConfig(gamma=0), r'training\.gamma must be in \(0, 1\], got 0'),
      ('data_seed', lambda: experiment.TrainingConfig(data_seed=-1), r'training\.data_seed .*-1'),
      ('augment', lambda: experiment.TrainingConfig(augment='yes'), r'training\.augment must be True or False'),
  )
  def test_bad_setting_raises_naming_field_and_value(self, build, message):
    with self.assertRaisesRegex((TypeError, ValueError), message):
      build()

  def test_hash_is_stable_and_ignores_defaults_and_amounts(self):
    default = experiment.RunConfig()
    self.assertEqual(default.hash(), '44136fa355b3')  # sha256('{}'): no setting differs from its default
    self.assertEqual(default.run_name(), 'lottery_44136fa355b3')
    spelled_out = experiment.RunConfig(pruning=experiment.PruningConfig(rate=0.2, layer_rates={'output': 0.1}),
                                       training=experiment.TrainingConfig(learning_rate=0.0012))
    self.assertEqual(spelled_out.hash(), default.hash())
    more = experiment.RunConfig(pruning=experiment.PruningConfig(levels=20), replicates=3, controls=('reinit',))
    self.assertEqual(more.hash(), default.hash())
    old_output_rate = experiment.PruningConfig(rate=0.3, layer_rates={'output': 0.1})
    self.assertEqual(experiment.RunConfig(pruning=old_output_rate).hash(), '4bb69b35afd9')

  def test_recipe_settings_at_their_defaults_keep_the_hash(self):
    spelled_out = experiment.RunConfig(
        training=experiment.TrainingConfig(nesterov=False, weight_decay=0.0, warmup_steps=0, lr_decay='constant',
                                           milestones=(), gamma=0.1, augment=False, data_seed=None),
        data=experiment.DataConfig(data_dir='/somewhere/cifar'))  # where the data lie is not what they are
    self.assertEqual(spelled_out.hash(), '44136fa355b3')
    recipe = experiment.TrainingConfig(optimizer='sgd', momentum=0.9, nesterov=True, weight_decay=1e-4,
                                       training_steps='160EP', lr_decay='step', milestones='80ep,120ep', augment=True)
    self.assertEqual((recipe.training_steps, recipe.milestones, recipe.length()), ('160ep', ('80ep', '120ep'), '160ep'))
    self.assertEqual(experiment.TrainingConfig(training_steps='2EP0it', warmup_steps='500it').training_steps, '2ep')
    self.assertEqual(experiment.TrainingConfig(warmup_steps='500it'), experiment.TrainingConfig(warmup_steps=500))
    self.assertEqual(experiment.TrainingConfig(epochs=3).length(), '3ep')
    config = experiment.RunConfig(training=recipe)
    self.assertEqual(experiment.RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))), config)
    self.assertNotEqual(config.hash(), experiment.RunConfig().hash())

  def test_output_layer_rate_follows_the_rate_unless_given(self):
    self.assertEqual(experiment.PruningConfig().layer_rates, {'output': 0.1})
    self.assertEqual(experiment.PruningConfig(rate=0.5).layer_rates, {'output': 0.25})
    self.assertEqual(experiment.PruningConfig(rate=0.5, layer_rates={'hidden': 0.3}).layer_rates, {'hidden': 0.3})
    self.assertEqual(experiment.PruningConfig(rate=0.5, layer_rates={}).layer_rates, {})
    following = experiment.RunConfig(pruning=experiment.PruningConfig(rate=0.5))
    self.assertEqual(following.non_default_settings(), {'pruning.rate': 0.5, 'pruning.layer_rates': {'output': 0.25}})
    self.assertEqual(experiment.RunConfig.from_dict(following.to_dict()), following)

  @parameterized.named_parameters(
      ('model', dict(model='conv2')),
      ('seed', dict(seed=1)),
      ('rate', dict(pruning=experiment.PruningConfig(rate=0.3, layer_rates={'output': 0.1}))),
      ('layer_rates', dict(pruning=experiment.PruningConfig(layer_rates={})),),
      ('criterion', dict(pruning=experiment.PruningConfig(criterion='large_init'))),
      ('rewind_step', dict(pruning=experiment.PruningConfig(rewind_step=100))),
      ('epochs', dict(training=experiment.TrainingConfig(epochs=3))),
      ('data', dict(data=experiment.DataConfig(train_size=500))),
  )
  def test_hash_differs_when_a_setting_differs(self, changes):
    changed = experiment.RunConfig(**changes)
    self.assertNotEqual(changed.hash(), experiment.RunConfig().hash())
    self.assertLen(changed.non_default_settings(), 1)

  def test_dict_round_trip_and_unknown_keys(self):
    config = experiment.RunConfig(model='conv4', pruning=experiment.PruningConfig(scope='global', levels=3),
                                  controls=('reinit', 'random_prune'), control_levels=[2, 1], replicates=2)
    restored = experiment.RunConfig.from_dict(config.to_dict())
    self.assertEqual(restored, config)
    self.assertEqual(restored.control_levels, (1, 2))
    with self.assertRaisesRegex(ValueError, r"unknown settings \['pruning.ratio'\]"):
      experiment.RunConfig.from_dict({'pruning': {'ratio': 0.3}})


if __name__ == '__main__':
  tf.test.main()
