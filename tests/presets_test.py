"""Tests for the per-model presets and the layer-rate patterns."""

import tensorflow as tf

import ltp_tfmot
from ltp_tfmot import models as models_lib
from ltp_tfmot.experiment import config as config_lib
from ltp_tfmot.experiment import models as experiment_models
from ltp_tfmot.experiment import presets
from ltp_tfmot.experiment import recipes
from ltp_tfmot.keras2 import prune as prune_lib


class PresetTest(tf.test.TestCase):

  def test_every_registered_model_has_a_preset_with_a_source(self):
    self.assertEqual(presets.preset_names(), experiment_models.model_names())
    for name in presets.preset_names():
      preset = presets.get_preset(name)
      self.assertEqual(preset.model, name)
      self.assertTrue(preset.source)

  def test_conv4_is_frankle_and_carbins_setup(self):
    preset = presets.get_preset('conv4')
    self.assertEqual((preset.optimizer, preset.learning_rate, preset.batch_size, preset.training_steps),
                     ('adam', 3e-4, 60, '25000it'))
    self.assertEqual((preset.scope, preset.rate, preset.layer_rates), ('layer', 0.2, {'conv*': 0.1, 'output': 0.1}))

  def test_lenet_is_frankle_and_carbins_setup(self):
    preset = presets.get_preset('lenet_300_100')
    self.assertEqual((preset.optimizer, preset.learning_rate, preset.batch_size, preset.training_steps,
                      preset.layer_rates, preset.dataset), ('adam', 1.2e-3, 60, '50ep', {'output': 0.1}, 'mnist'))

  def test_resnet20_is_open_lths_recipe(self):
    preset = presets.get_preset('resnet20')
    training = recipes.build_training(preset, steps_per_epoch=391)
    self.assertEqual(training.iterations, 62560)
    self.assertEqual(training.schedule.milestones, (31280, 46920))
    self.assertIsInstance(training.optimizer, recipes.L2SGD)
    self.assertEqual((training.optimizer.momentum, training.optimizer.l2), (0.9, 1e-4))
    self.assertEqual((preset.scope, preset.rate, preset.layer_rates, preset.augment), ('global', 0.2, {}, True))
    self.assertEqual(preset.warmup_steps, '0it')

  def test_vgg_keeps_its_output_layer_unpruned(self):
    preset = presets.get_preset('vgg16')
    self.assertEqual(preset.layer_rates, {'output': 0.0})
    self.assertEqual(preset.milestones, ('80ep', '120ep'))

  def test_replace_overrides_a_setting_and_rejects_unknown_ones(self):
    preset = presets.get_preset('resnet20').replace(learning_rate=0.05, milestones='40ep,60ep')
    self.assertEqual((preset.learning_rate, preset.milestones), (0.05, ('40ep', '60ep')))
    self.assertEqual(presets.get_preset('resnet20').learning_rate, 0.1)
    with self.assertRaisesRegex(ValueError, r"unknown preset settings \['lr'\]"):
      presets.get_preset('resnet20').replace(lr=0.05)
    with self.assertRaisesRegex(ValueError, 'preset training_steps must be written as epochs'):
      presets.get_preset('resnet20').replace(training_steps='160 epochs')
    with self.assertRaisesRegex(ValueError, "milestones go with decay='step'"):
      presets.get_preset('resnet20').replace(lr_decay='cosine')
    with self.assertRaisesRegex(ValueError, 'preset must be one of'):
      presets.get_preset('resnet18')

  def test_every_preset_builds_its_training_recipe(self):
    for name in presets.preset_names():
      training = recipes.build_training(presets.get_preset(name), steps_per_epoch=391)
      self.assertGreater(training.iterations, 0)


class LayerRatePatternTest(tf.test.TestCase):

  def test_pattern_expands_to_the_matching_layers(self):
    names = ['conv1', 'conv2', 'fc1', 'fc2', 'output']
    self.assertEqual(presets.expand_layer_rates({'conv*': 0.1, 'output': 0.05}, names),
                     {'conv1': 0.1, 'conv2': 0.1, 'output': 0.05})

  def test_exact_name_wins_over_a_pattern_and_key_order_does_not_matter(self):
    names = ['conv1', 'conv2', 'output']
    for rates in ({'conv*': 0.1, 'conv2': 0.3}, {'conv2': 0.3, 'conv*': 0.1}):
      self.assertEqual(presets.expand_layer_rates(rates, names), {'conv1': 0.1, 'conv2': 0.3})

  def test_patterns_that_disagree_on_a_layer_are_refused(self):
    with self.assertRaisesRegex(ValueError, r"layer 'conv1' matches layer_rates patterns .* give the layer its own"):
      presets.expand_layer_rates({'conv*': 0.1, '*1': 0.2}, ['conv1', 'fc1'])
    self.assertEqual(presets.expand_layer_rates({'conv*': 0.1, '*1': 0.1}, ['conv1']), {'conv1': 0.1})

  def test_a_name_or_pattern_matching_nothing_is_refused(self):
    with self.assertRaisesRegex(ValueError, r"layer_rates \['outputs', 'fc\*'\] match no prunable layer"):
      presets.expand_layer_rates({'fc*': 0.1, 'outputs': 0.1}, ['conv1', 'output'])

  def test_conv4_preset_rates_prune_the_model_as_the_paper(self):
    model = models_lib.conv4(seed=0)
    preset = presets.get_preset('conv4')
    rates = presets.expand_layer_rates(preset.layer_rates, prune_lib.prunable_layer_names(model))
    self.assertEqual(rates, {'conv1': 0.1, 'conv2': 0.1, 'conv3': 0.1, 'conv4': 0.1, 'output': 0.1})
    wrapped = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(preset.rate), layer_rates=rates)
    self.assertEqual({w.layer.name: w.rate for w in ltp_tfmot.lottery_wrappers(wrapped)},
                     {'conv1': 0.1, 'conv2': 0.1, 'conv3': 0.1, 'conv4': 0.1, 'fc1': 0.2, 'fc2': 0.2, 'output': 0.1})

  def test_resnet_pattern_names_every_conv(self):
    names = prune_lib.prunable_layer_names(models_lib.resnet20(input_shape=(8, 8, 3), seed=0))
    self.assertLen(presets.expand_layer_rates({'*conv*': 0.2}, names), 21)
    self.assertEqual(sorted(presets.expand_layer_rates({'*shortcut*': 0.0, 'output': 0.1}, names)),
                     ['output', 'stage2_block1_shortcut_conv', 'stage3_block1_shortcut_conv'])



class ConfigForModelTest(tf.test.TestCase):

  def test_lenet_preset_is_the_default_config(self):
    config = config_lib.RunConfig.for_model('lenet_300_100')
    self.assertEqual(config, config_lib.RunConfig())
    self.assertEqual(config.hash(), '44136fa355b3')

  def test_conv4_gets_frankle_and_carbins_setup(self):
    config = config_lib.RunConfig.for_model('conv4')
    self.assertEqual((config.data.name, config.training.optimizer, config.training.learning_rate,
                      config.training.batch_size, config.training.length()), ('cifar10', 'adam', 3e-4, 60, 25000))
    self.assertEqual((config.pruning.scope, config.pruning.rate, config.pruning.layer_rates),
                     ('layer', 0.2, {'conv*': 0.1, 'output': 0.1}))

  def test_resnet20_gets_open_lths_recipe(self):
    config = config_lib.RunConfig.for_model('resnet20')
    t, p = config.training, config.pruning
    self.assertEqual((t.optimizer, t.learning_rate, t.momentum, t.weight_decay, t.batch_size, t.length(), t.lr_decay,
                      t.milestones, t.gamma, t.augment), ('sgd', 0.1, 0.9, 1e-4, 128, '160ep', 'step',
                                                         ('80ep', '120ep'), 0.1, True))
    self.assertEqual((p.scope, p.rate, p.layer_rates, p.rewind_step), ('global', 0.2, {}, 2000))

  def test_given_settings_win_and_drop_what_only_the_preset_choice_meant(self):
    config = config_lib.RunConfig.for_model('resnet20', data={'name': 'mnist'}, training={
        'optimizer': 'adam', 'learning_rate': 1e-3, 'lr_decay': 'cosine', 'training_steps': '4it'},
                                            pruning={'rewind_step': 0, 'levels': 2}, seed=3)
    t = config.training
    self.assertEqual((config.data.name, t.optimizer, t.momentum, t.nesterov, t.lr_decay, t.milestones, t.length(),
                      t.weight_decay, t.augment), ('mnist', 'adam', 0.0, False, 'cosine', (), 4, 1e-4, True))
    self.assertEqual((config.pruning.rewind_step, config.pruning.levels, config.seed), (0, 2, 3))
    self.assertEqual(config_lib.RunConfig.for_model('conv4', training={'epochs': 3}).training.length(), '3ep')

  def test_default_layer_rates_follow_a_given_rate(self):
    config = config_lib.RunConfig.for_model('lenet_300_100', pruning={'rate': 0.5})
    self.assertEqual(config.pruning.layer_rates, {'output': 0.25})
    self.assertEqual(config_lib.RunConfig.for_model('conv4', pruning={'rate': 0.5}).pruning.layer_rates,
                     {'conv*': 0.1, 'output': 0.1})

  def test_unknown_model_or_setting_is_refused(self):
    with self.assertRaisesRegex(ValueError, r"preset must be one of \[.*'conv4'.*\], got 'mlp'"):
      config_lib.RunConfig.for_model('mlp')
    with self.assertRaisesRegex(ValueError, r"unknown settings \['training.lr'\]"):
      config_lib.RunConfig.for_model('conv4', training={'lr': 0.1})


if __name__ == '__main__':
  tf.test.main()
