"""Tests for the run's setting groups: each field documented in its metadata, and groups built from dicts."""

import dataclasses

from absl.testing import parameterized
import tensorflow as tf

from ltp_tfmot import settings


class SettingTest(tf.test.TestCase):

  def test_setting_keeps_its_help_and_only_the_flag_details_given(self):
    field = settings.setting(3, help_text='How many.')
    self.assertEqual((field.default, dict(field.metadata)), (3, {'help': 'How many.'}))
    field = settings.setting(None, help_text='Which.', hashed=False, flag='which', alias='old', choices=('a', 'b'),
                             flag_help=' More.')
    self.assertEqual(dict(field.metadata), {'help': 'Which.', 'hashed': False, 'flag': 'which', 'alias': 'old',
                                            'choices': ('a', 'b'), 'flag_help': ' More.'})
    self.assertEqual(settings.setting(default_factory=dict, help_text='Rates.').default_factory(), {})

  def test_metadata_does_not_change_what_a_config_equals(self):
    self.assertEqual(settings.TrainingConfig(), settings.TrainingConfig(learning_rate=1.2e-3))
    self.assertNotEqual(settings.TrainingConfig(), settings.TrainingConfig(learning_rate=1e-3))


class GroupsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(('data', settings.DataConfig), ('training', settings.TrainingConfig),
                                  ('pruning', settings.PruningConfig))
  def test_every_field_has_its_help(self, cls):
    for field in dataclasses.fields(cls):
      self.assertTrue(field.metadata['help'].strip(), field.name)
      self.assertTrue(field.metadata['help'].endswith('.'), field.name)

  def test_fields_that_say_how_much_to_run_are_not_hashed(self):
    unhashed = sorted(f'{cls.__name__}.{field.name}'
                      for cls in (settings.DataConfig, settings.TrainingConfig, settings.PruningConfig)
                      for field in dataclasses.fields(cls) if not field.metadata.get('hashed', True))
    self.assertEqual(unhashed, ['DataConfig.data_dir', 'PruningConfig.levels', 'TrainingConfig.jit_compile',
                                'TrainingConfig.steps_per_execution'])

  def test_build_makes_a_group_from_a_dict(self):
    self.assertEqual(settings.build(settings.TrainingConfig, {'epochs': 3}, 'training.'),
                     settings.TrainingConfig(epochs=3))

  def test_build_refuses_unknown_names_and_non_dicts_in_one_line(self):
    with self.assertRaisesRegex(ValueError, r"^unknown settings \['training.lr'\]; known: \[[^\n]*'training.epochs'"):
      settings.build(settings.TrainingConfig, {'lr': 0.1}, 'training.')
    with self.assertRaisesRegex(ValueError, r'^pruning must be a dict of settings, got \[\]$'):
      settings.build(settings.PruningConfig, [], 'pruning.')
    with self.assertRaisesRegex(ValueError, r'pruning.rate must be in \(0, 1\), got 1.5'):
      settings.build(settings.PruningConfig, {'rate': 1.5}, 'pruning.')


if __name__ == '__main__':
  tf.test.main()
