"""Tests for the zoo's `Preset`: its checks and overrides, the recipes it builds, and the layer-rate patterns."""

import tensorflow as tf

from ltp_tfmot.experiment import config as config_lib
from ltp_tfmot.experiment import recipes
from ltp_tfmot.keras2 import prune as prune_lib
from ltp_tfmot.zoo import preset as preset_lib
from ltp_tfmot.zoo import registry
from ltp_tfmot.zoo import resnet


class PresetTest(tf.test.TestCase):

  def test_replace_overrides_a_setting_and_rejects_unknown_ones(self):
    preset = registry.get_preset('resnet20').replace(training={'learning_rate': 0.05, 'milestones': '40ep,60ep'})
    self.assertEqual((preset.training['learning_rate'], preset.training['milestones']), (0.05, ('40ep', '60ep')))
    self.assertEqual(registry.get_preset('resnet20').training['learning_rate'], 0.1)
    with self.assertRaisesRegex(ValueError, r"preset 'resnet20': unknown settings \['training.lr'\]"):
      registry.get_preset('resnet20').replace(training={'lr': 0.05})
    with self.assertRaisesRegex(ValueError, r"unknown preset groups \['recipe'\]"):
      registry.get_preset('resnet20').replace(recipe={'learning_rate': 0.05})
    with self.assertRaisesRegex(ValueError, 'training.training_steps must be written as epochs'):
      registry.get_preset('resnet20').replace(training={'training_steps': '160 epochs'})
    with self.assertRaisesRegex(ValueError, "training.milestones go with training.lr_decay='step'"):
      registry.get_preset('resnet20').replace(training={'lr_decay': 'cosine', 'milestones': ('80ep',)})
    with self.assertRaisesRegex(ValueError, 'preset must be one of'):
      registry.get_preset('resnet18')

  def test_a_setting_that_is_no_config_field_fails_when_the_preset_is_made(self):
    with self.assertRaisesRegex(ValueError, r"^preset 'net': unknown settings \['training.learning_rat'\]; known: "
                                r"\[[^\n]*\]$"):
      preset_lib.Preset(model='net', source='a paper', training={'learning_rat': 0.1})
    with self.assertRaisesRegex(ValueError, r"^preset 'net': pruning.rate must be in \(0, 1\), got 1.5$"):
      preset_lib.Preset(model='net', source='a paper', pruning={'rate': 1.5})
    with self.assertRaisesRegex(ValueError, r"^preset 'net': training must be a dict of settings"):
      preset_lib.Preset(model='net', source='a paper', training=[('batch_size', 60)])

  def test_presets_write_settings_as_the_configs_do(self):
    preset = preset_lib.Preset(model='net', source='a paper', pruning={'layer_rates': {'output': 0.25}, 'rate': 0.5},
                               training={'training_steps': '160ep', 'warmup_steps': '5it'})
    self.assertEqual(preset.training, {'epochs': 160, 'warmup_steps': 5})  # whole epochs are `epochs`
    self.assertEqual(preset.pruning, {'rate': 0.5})  # the default layer rates, left to follow the rate
    other = preset_lib.Preset(model='net', source='a paper', training={'training_steps': '2ep100it'},
                              pruning={'layer_rates': {'output': 0.3}})
    self.assertEqual((other.data, other.training, other.pruning),
                     ({}, {'training_steps': '2ep100it'}, {'layer_rates': {'output': 0.3}}))

  def test_overriding_a_choice_drops_the_settings_that_went_with_it(self):
    preset = registry.get_preset('resnet20')
    adam = preset.overridden('training', {'optimizer': 'adam'})
    self.assertNotIn('momentum', adam)
    self.assertEqual((adam['optimizer'], adam['milestones']), ('adam', ('80ep', '120ep')))
    self.assertNotIn('milestones', preset.overridden('training', {'lr_decay': 'cosine'}))
    self.assertEqual(preset.overridden('training', {'optimizer': 'sgd'})['momentum'], 0.9)
    shorter = preset.overridden('training', {'training_steps': '4it'})
    self.assertEqual((shorter['training_steps'], 'epochs' in shorter), ('4it', False))
    self.assertEqual(preset.overridden('pruning', {'rate': 0.5})['scope'], 'global')

  def test_every_preset_builds_its_training_recipe(self):
    for name in registry.preset_names():
      training = recipes.build_training(config_lib.RunConfig.for_model(name).training, steps_per_epoch=391)
      self.assertGreater(training.iterations, 0)

  def test_the_papers_setups_name_their_source(self):
    frankle_carbin = preset_lib.frankle_carbin('conv2', 'cifar10', 2e-4, '20000it', {'output': 0.1})
    self.assertStartsWith(frankle_carbin.source, preset_lib.FRANKLE_CARBIN_2019)
    self.assertEqual((frankle_carbin.training['optimizer'], frankle_carbin.training['batch_size'],
                      frankle_carbin.pruning['scope']), ('adam', 60, 'layer'))
    open_lth = preset_lib.open_lth_cifar('vgg11', 'cifar_vgg', False, '1000it')
    self.assertIn(preset_lib.OPEN_LTH, open_lth.source)
    self.assertIn(preset_lib.FRANKLE_2020, open_lth.source)
    self.assertEqual((open_lth.pruning['scope'], open_lth.pruning['layer_rates'], open_lth.pruning['rewind_step']),
                     ('global', {'output': 0.0}, 1000))


class LayerRatePatternTest(tf.test.TestCase):

  def test_pattern_expands_to_the_matching_layers(self):
    names = ['conv1', 'conv2', 'fc1', 'fc2', 'output']
    self.assertEqual(preset_lib.expand_layer_rates({'conv*': 0.1, 'output': 0.05}, names),
                     {'conv1': 0.1, 'conv2': 0.1, 'output': 0.05})

  def test_exact_name_wins_over_a_pattern_and_key_order_does_not_matter(self):
    names = ['conv1', 'conv2', 'output']
    for rates in ({'conv*': 0.1, 'conv2': 0.3}, {'conv2': 0.3, 'conv*': 0.1}):
      self.assertEqual(preset_lib.expand_layer_rates(rates, names), {'conv1': 0.1, 'conv2': 0.3})

  def test_patterns_that_disagree_on_a_layer_are_refused(self):
    with self.assertRaisesRegex(ValueError, r"layer 'conv1' matches layer_rates patterns .* give the layer its own"):
      preset_lib.expand_layer_rates({'conv*': 0.1, '*1': 0.2}, ['conv1', 'fc1'])
    self.assertEqual(preset_lib.expand_layer_rates({'conv*': 0.1, '*1': 0.1}, ['conv1']), {'conv1': 0.1})

  def test_a_name_or_pattern_matching_nothing_is_refused(self):
    with self.assertRaisesRegex(ValueError, r"layer_rates \['outputs', 'fc\*'\] match no prunable layer"):
      preset_lib.expand_layer_rates({'fc*': 0.1, 'outputs': 0.1}, ['conv1', 'output'])

  def test_resnet_pattern_names_every_conv(self):
    names = prune_lib.prunable_layer_names(resnet.resnet20(input_shape=(8, 8, 3), seed=0))
    self.assertLen(preset_lib.expand_layer_rates({'*conv*': 0.2}, names), 21)
    self.assertEqual(sorted(preset_lib.expand_layer_rates({'*shortcut*': 0.0, 'output': 0.1}, names)),
                     ['output', 'stage2_block1_shortcut_conv', 'stage3_block1_shortcut_conv'])


if __name__ == '__main__':
  tf.test.main()
