"""Tests for `ltp-tfmot run`'s flags: one per config field, made from the config dataclasses, back to a config."""

import dataclasses

import tensorflow as tf

from ltp_tfmot.cli import run
from ltp_tfmot.experiment import config as config_lib


class SettingFlagsTest(tf.test.TestCase):

  def test_defaults_are_the_papers_lenet_set_up(self):
    run.FLAGS.unparse_flags()
    run.FLAGS(['ltp-tfmot'])
    config = run.config_from_flags()
    self.assertEqual(config, config_lib.RunConfig())
    self.assertEqual((config.training.optimizer, config.training.learning_rate, config.training.batch_size),
                     ('adam', 1.2e-3, 60))
    self.assertEqual(config.pruning.layer_rates, {'output': 0.1})

  def test_every_setting_is_a_flag(self):
    run.FLAGS.unparse_flags()
    run.FLAGS(['ltp-tfmot', '--model=conv2', '--dataset=cifar10', '--levels=7', '--rate=0.15', '--criterion=movement',
               '--scope=global', '--rewind_step=500', '--layer_rates=', '--controls=reinit,random_prune',
               '--control_levels=2,4', '--replicates=3', '--optimizer=sgd', '--momentum=0.9', '--learning_rate=0.1',
               '--batch_size=128', '--epochs=3', '--eval_every=50', '--seed=7', '--validation_split=0.2',
               '--train_size=1000', '--test_size=500', '--mask_0_action=freeze', '--mask_1_action=reshuffle',
               '--dynamic_weight_rescaling'])
    config = run.config_from_flags()
    self.assertEqual(config.model, 'conv2')
    self.assertEqual(config.data, config_lib.DataConfig(name='cifar10', validation_split=0.2, train_size=1000,
                                                        test_size=500))
    self.assertEqual(config.training, config_lib.TrainingConfig(optimizer='sgd', learning_rate=0.1, momentum=0.9,
                                                                batch_size=128, epochs=3, eval_every=50))
    self.assertEqual(config.pruning, config_lib.PruningConfig(
        criterion='movement', scope='global', rate=0.15, layer_rates={}, rewind_step=500, mask_0_action='freeze',
        mask_1_action='reshuffle', dynamic_weight_rescaling=True, levels=7))
    self.assertEqual((config.seed, config.replicates, config.controls, config.control_levels),
                     (7, 3, ('reinit', 'random_prune'), (2, 4)))

  def test_a_flag_exists_for_every_config_field(self):
    names = run.setting_flags()
    for group, cls in (('', config_lib.RunConfig), ('data', config_lib.DataConfig),
                       ('training', config_lib.TrainingConfig), ('pruning', config_lib.PruningConfig)):
      for field in dataclasses.fields(cls):
        if field.name in ('data', 'training', 'pruning') and not group:
          continue
        key = f'{group}.{field.name}' if group else field.name
        self.assertIn(key, names)
        self.assertIn(names[key], run.FLAGS, key)
        self.assertTrue(run.FLAGS[names[key]].help, key)

  def test_recipe_flags_override_the_models_preset(self):
    run.FLAGS.unparse_flags()
    run.FLAGS(['ltp-tfmot', '--model=resnet20', '--data_dir=/data/cifar', '--training_steps=40', '--warmup_steps=1ep',
               '--milestones=10it,30it', '--gamma=0.5', '--nesterov', '--weight_decay=5e-4', '--noaugment',
               '--data_seed=3', '--rewind_step=4'])
    config = run.config_from_flags()
    self.assertEqual(config, config_lib.RunConfig.for_model(
        'resnet20', data={'data_dir': '/data/cifar'},
        training={'training_steps': 40, 'warmup_steps': '1ep', 'milestones': ('10it', '30it'), 'gamma': 0.5,
                  'nesterov': True, 'weight_decay': 5e-4, 'augment': False, 'data_seed': 3},
        pruning={'rewind_step': 4}))
    t = config.training
    self.assertEqual((t.optimizer, t.learning_rate, t.momentum, t.batch_size, t.lr_decay, t.milestones),
                     ('sgd', 0.1, 0.9, 128, 'step', (10, 30)))
    self.assertEqual((config.data.name, config.pruning.scope, config.pruning.rewind_step), ('cifar10', 'global', 4))

  def test_model_flag_alone_gives_the_models_preset(self):
    for model in ('conv4', 'resnet20', 'vgg11'):
      run.FLAGS.unparse_flags()
      run.FLAGS(['ltp-tfmot', f'--model={model}'])
      self.assertEqual(run.config_from_flags(), config_lib.RunConfig.for_model(model), model)

  def test_output_layer_follows_the_rate_unless_layer_rates_is_given(self):
    for args, rates in ((['--rate=0.5'], {'output': 0.25}),
                        (['--rate=0.5', '--layer_rates=output:0.1'], {'output': 0.1}),
                        (['--rate=0.5', '--layer_rates='], {})):
      run.FLAGS.unparse_flags()
      run.FLAGS(['ltp-tfmot'] + args)
      config = run.config_from_flags()
      self.assertEqual(config.pruning.layer_rates, rates, args)
      self.assertEqual(config, config_lib.RunConfig(pruning=config_lib.PruningConfig(rate=0.5, layer_rates=(
          None if len(args) == 1 else rates))))

  def test_a_settings_help_is_its_documentation_and_what_the_command_line_adds(self):
    self.assertEqual(run.FLAGS['momentum'].help, 'SGD momentum in [0, 1); must stay 0 with Adam.')
    self.assertEqual(run.FLAGS['seed'].help, 'Seed of replicate 0 (initial weights, data order, random masks); '
                     'replicate i uses seed + i.')
    self.assertEndsWith(run.FLAGS['layer_rates'].help, 'On the command line: name:rate pairs, comma-separated; '
                        'empty (--layer_rates=) for none.')

  def test_flag_names_kinds_and_choices_follow_the_fields(self):
    names = run.setting_flags()
    self.assertEqual((names['data.name'], names['data.source'], names['training.momentum']),
                     ('dataset', 'dataset_source', 'momentum'))
    self.assertEqual(run.FLAGS['dataset_source'].parser.enum_values, list(config_lib.MNIST_SOURCES))
    self.assertEqual(run.FLAGS['lr_decay'].parser.enum_values, list(config_lib.LR_DECAYS))
    self.assertTrue(run.FLAGS['augment'].boolean)
    self.assertEqual(run.FLAGS['milestones'].default, [])
    self.assertEqual(run.FLAGS['batch_size'].default, 60)
    self.assertIsNone(run.FLAGS['training_steps'].default)

  def test_lengths_given_as_bare_numbers_are_iterations(self):
    run.FLAGS.unparse_flags()
    run.FLAGS(['ltp-tfmot', '--training_steps=40', '--warmup_steps=2ep'])
    training = run.config_from_flags().training
    run.FLAGS.unparse_flags()
    self.assertEqual((training.training_steps, training.warmup_steps), (40, '2ep'))

  def test_run_flags_are_the_settings_and_what_a_run_needs_only(self):
    self.assertNotIn('report_dir', run.FLAGS)
    self.assertNotIn('level', run.FLAGS)
    self.assertNotIn('quantization', run.FLAGS)
    for name in ('out', 'run_dir', 'workers', 'threads', 'strategy', 'verbose', 'help'):
      self.assertIn(name, run.FLAGS)


  def test_branches_is_the_flag_of_the_controls_setting_and_controls_still_works(self):
    self.assertEqual(run.setting_flags()['controls'], 'branches')
    self.assertEqual(run.FLAGS['controls'].help, 'Alias for --branches.')
    configs = []
    for flag in ('--branches', '--controls'):
      run.FLAGS.unparse_flags()
      run.FLAGS(['ltp-tfmot', f'{flag}=reinit,random_prune', '--control_levels=1'])
      configs.append(run.config_from_flags())
    run.FLAGS.unparse_flags()
    self.assertEqual(configs[0], configs[1])
    self.assertEqual((configs[0].controls, configs[0].control_levels), (('reinit', 'random_prune'), (1,)))


if __name__ == '__main__':
  tf.test.main()
