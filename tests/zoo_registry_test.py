"""Tests for the zoo's registry: every network and preset by name, and the run configs they give."""

import hashlib
import json

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot import models as models_lib
from ltp_tfmot.experiment import config as config_lib
from ltp_tfmot.experiment import models as experiment_models
from ltp_tfmot.zoo import registry

# Trainable parameters for 10 classes: what open_lth's PyTorch modules hold (BatchNorm scales and offsets, not the
# moving statistics, which Keras counts as non-trainable weights).
TRAINABLE_PARAMETERS = {
    'resnet20': 272474, 'resnet32': 466906, 'resnet44': 661338, 'resnet56': 855770, 'resnet110': 1730714,
    'vgg11': 9231114, 'vgg13': 9416010, 'vgg16': 14728266, 'vgg19': 20040522,
}

# `RunConfig.for_model(name)` of every registered model: its run hash (`RunConfig.hash()`), and the first 12 hex
# digits of the SHA-256 of its `to_dict()` as sorted compact JSON. These are the hashes that run directories written
# before the zoo (when the presets lived in experiment/presets.py) carry: they must resume with the same ones.
FOR_MODEL_HASHES = {
    'conv2': ('1397a24a1698', '47fba0d3f761'),
    'conv4': ('d9a7904f5095', 'c192a2b57b83'),
    'conv6': ('6c4275faa64c', 'bd937ff0e619'),
    'lenet_300_100': ('44136fa355b3', '80a392aef561'),
    'resnet110': ('5b70f38288e8', '4869ed2fdc12'),
    'resnet20': ('2dad0e7f2b16', '6bd00abff72e'),
    'resnet32': ('f0aa37a0fec3', 'c42ce2c51c5a'),
    'resnet44': ('b62c940598f8', '07eae86be0aa'),
    'resnet56': ('88b15870192a', 'f90781c62971'),
    'vgg11': ('1b9d7c7a76ef', 'ab5d04965432'),
    'vgg13': ('47d301eb14c7', 'ffb5e3f01241'),
    'vgg16': ('b4aff784589e', 'c9c9c04caa06'),
    'vgg19': ('f91a0b08552f', '6fb524689c66'),
}


def _images(n, size, seed=0):
  rng = np.random.RandomState(seed)
  return rng.randn(n, size, size, 3).astype(np.float32), rng.randint(0, 10, n).astype(np.int64)


def _wrapped_names(model):
  return sorted(w.layer.name for w in ltp_tfmot.lottery_wrappers(model))


def _settings_digest(config):
  text = json.dumps(config.to_dict(), sort_keys=True, separators=(',', ':'))
  return hashlib.sha256(text.encode()).hexdigest()[:12]


class RegistryTest(tf.test.TestCase):

  def test_registry_names_every_network_of_the_models_module(self):
    self.assertIs(models_lib, ltp_tfmot.zoo)
    self.assertEqual(experiment_models.RESNET_DEPTHS, models_lib.RESNET_DEPTHS)
    self.assertEqual(experiment_models.VGG_CONVS,
                     {depth: sum(s != 'M' for s in plan) for depth, plan in models_lib.VGG_PLANS.items()})
    for name in experiment_models.model_names():
      self.assertTrue(callable(getattr(models_lib, name)), name)
    for family in registry.FAMILIES:
      for name, spec in family.MODELS.items():
        self.assertIs(registry.get_model_spec(name), spec)

  def test_the_models_package_serves_every_familys_public_names(self):
    names = [name for family in registry.FAMILIES for name in family.__all__]
    self.assertLen(set(names), len(names))  # no two families define one name
    self.assertEqual(models_lib.__all__, sorted(names))
    for family in registry.FAMILIES:
      for name in family.__all__:
        self.assertIs(getattr(models_lib, name), getattr(family, name))
    self.assertIn('cifar_vgg', dir(models_lib))
    with self.assertRaisesRegex(AttributeError, "no attribute 'MODELS'"):
      _ = models_lib.MODELS

  def test_lenet_builder_flattens_the_input_shape(self):
    model = experiment_models.get_model_spec('lenet_300_100').build((28, 28, 1), 10, 0)
    self.assertEqual(model.input_shape, (None, 784))

  def test_every_registered_model_has_a_preset_with_a_source(self):
    self.assertEqual(registry.preset_names(), experiment_models.model_names())
    for name in registry.preset_names():
      preset = registry.get_preset(name)
      self.assertEqual(preset.model, name)
      self.assertTrue(preset.source)

  def test_unknown_names_are_refused(self):
    with self.assertRaisesRegex(ValueError, 'preset must be one of'):
      registry.get_preset('resnet18')
    with self.assertRaisesRegex(ValueError, 'model must be one of'):
      registry.get_model_spec('resnet18')


class ParameterCountTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(*[(name, name) for name in TRAINABLE_PARAMETERS])
  def test_registered_network_has_the_reference_parameter_count(self, name):
    model = experiment_models.get_model_spec(name).build((32, 32, 3), 10, 0)
    self.assertEqual(sum(int(np.prod(v.shape)) for v in model.trainable_weights), TRAINABLE_PARAMETERS[name])
    self.assertEqual(model.output_shape, (None, 10))
    self.assertIn(name, experiment_models.model_names())


class LotteryLevelsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(('resnet20', 'resnet20', 8), ('vgg11', 'vgg11', 16))
  def test_trains_and_runs_two_lottery_levels(self, name, size):
    model = experiment_models.get_model_spec(name).build((size, size, 3), 10, 0)
    prunable = ltp_tfmot.prunable_layer_names(model)
    convs = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    self.assertEqual(sorted(prunable), sorted(convs + ['output']))
    model = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(0.2), scope='global',
                                           layer_rates={'output': 0.1})
    self.assertEqual(_wrapped_names(model), sorted(prunable))
    self.assertTrue(all(isinstance(layer, keras.layers.BatchNormalization)
                        for layer in model.layers if 'bn' in layer.name))
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _images(4, size)
    ltp_tfmot.take_snapshot(model)
    losses = []
    for _ in range(2):
      history = model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])
      losses.append(history.history['loss'][0])
      ltp_tfmot.run_lottery_round(model)
    self.assertTrue(np.all(np.isfinite(losses)))
    sparsity = ltp_tfmot.layer_sparsity(model)
    self.assertAllClose(sparsity['output'], 1 - 0.9**2, atol=0.01)
    self.assertAllClose(ltp_tfmot.weights_remaining(model), 0.64, atol=0.01)


class ConfigForModelTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(*[(name, name) for name in sorted(FOR_MODEL_HASHES)])
  def test_registered_model_config_is_the_one_written_before_the_zoo(self, name):
    config = config_lib.RunConfig.for_model(name)
    self.assertEqual((config.hash(), _settings_digest(config)), FOR_MODEL_HASHES[name])
    self.assertEqual(config_lib.RunConfig.from_dict(config.to_dict()), config)

  def test_every_registered_model_has_its_hashes_here(self):
    self.assertEqual(sorted(FOR_MODEL_HASHES), sorted(registry.model_names()))

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
