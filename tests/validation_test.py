"""Tests for ltp_tfmot.validation: the argument checks, their one message shape, and the name `Registry`."""

from absl.testing import parameterized
import tensorflow as tf

from ltp_tfmot import validation


def _registry(ordered=False):
  registry = validation.Registry('fruit', 'add your own with register_fruit', ordered=ordered)
  registry.register('pear', 1)
  registry.register('apple', 2)
  return registry


class RegistryTest(tf.test.TestCase, parameterized.TestCase):

  def test_registered_values_are_found_by_name(self):
    registry = _registry()
    self.assertEqual(registry.get('pear'), 1)
    self.assertIn('apple', registry)
    self.assertNotIn('plum', registry)
    self.assertNotIn(['pear'], registry)  # an unhashable name is no registered name

  @parameterized.named_parameters(('sorted', False, ['apple', 'pear']), ('ordered', True, ['pear', 'apple']))
  def test_names_are_sorted_or_in_registration_order(self, ordered, names):
    registry = _registry(ordered)
    self.assertEqual(registry.names(), names)
    self.assertEqual(list(registry), names)

  @parameterized.named_parameters(('get', 'get'), ('unregister', 'unregister'))
  def test_unknown_name_names_the_registered_ones_and_the_fix(self, method):
    registry = _registry()
    for name in ('plum', None, ['pear']):
      with self.assertRaisesWithLiteralMatch(
          ValueError, f"fruit must be one of ['apple', 'pear'], got {name!r}; add your own with register_fruit"):
        getattr(registry, method)(name)

  def test_taken_name_is_replaced_only_with_overwrite(self):
    registry = _registry()
    with self.assertRaisesWithLiteralMatch(
        ValueError, "a fruit named 'pear' is already registered; pass overwrite=True to replace it"):
      registry.register('pear', 3)
    self.assertEqual(registry.register('pear', 3, overwrite=True), 3)
    self.assertEqual(registry.get('pear'), 3)

  def test_unregistered_name_is_gone(self):
    registry = _registry()
    registry.unregister('pear')
    self.assertEqual(registry.names(), ['apple'])
    registry.register('pear', 4)
    self.assertEqual(registry.get('pear'), 4)

  def test_mapping_view_reads_the_registry_and_cannot_change_it(self):
    registry = _registry()
    mapping = registry.as_mapping()
    registry.register('plum', 5)
    self.assertEqual(dict(mapping), {'pear': 1, 'apple': 2, 'plum': 5})
    self.assertIsNone(mapping.get('fig'))
    with self.assertRaises(TypeError):
      mapping['fig'] = 6


class ChecksTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ('int', lambda: validation.check_int(3, 'levels', 0, 10), 3),
      ('optional_int', lambda: validation.check_int(None, 'levels', optional=True), None),
      ('fraction', lambda: validation.check_fraction(0.5, 'rate'), 0.5),
      ('zero_fraction', lambda: validation.check_fraction(0, 'rate', allow_zero=True), 0.0),
      ('positive', lambda: validation.check_positive(2, 'learning_rate'), 2.0),
      ('non_negative', lambda: validation.check_non_negative(0, 'l2'), 0.0),
      ('choice', lambda: validation.check_choice('layer', 'scope', validation.SCOPES), 'layer'),
      ('bool', lambda: validation.check_bool(False, 'augment'), False),
      ('name', lambda: validation.check_name('run-1.a_b', 'model'), 'run-1.a_b'),
      ('str', lambda: validation.check_str('logs', 'log_dir', non_empty=True), 'logs'),
      ('optional_str', lambda: validation.check_str(None, 'unit_group', optional=True), None),
      ('duration_iterations', lambda: validation.check_duration('500it', 'training_steps'), 500),
      ('duration_epochs', lambda: validation.check_duration('2ep0it', 'training_steps'), '2ep'),
      ('milestones', lambda: validation.parse_milestones('2ep,30it', steps_per_epoch=10), (20, 30)),
      ('momentum', lambda: validation.check_momentum(0.9, True), (0.9, True)),
      ('l2', lambda: validation.check_l2(1e-4), 1e-4),
      ('schedule', lambda: validation.check_schedule_settings(0.1, '10it', 'step', '20it,30it', 0.5),
       (0.1, 10, (20, 30), 0.5, None)),
  )
  def test_check_returns_the_value(self, check, expected):
    self.assertEqual(check(), expected)

  @parameterized.named_parameters(
      ('int_type', lambda: validation.check_int(True, 'levels', 0), TypeError,
       'levels must be an integer >= 0, got True'),
      ('int_range', lambda: validation.check_int(11, 'levels', 0, 10), ValueError,
       'levels must be an integer in [0, 10], got 11'),
      ('fraction', lambda: validation.check_fraction(1.5, 'rate'), ValueError, 'rate must be in (0, 1), got 1.5'),
      ('positive', lambda: validation.check_positive(float('inf'), 'lr'), ValueError,
       'lr must be a finite number > 0, got inf'),
      ('non_negative', lambda: validation.check_non_negative('0', 'l2'), TypeError,
       "l2 must be a number >= 0, got '0'"),
      ('choice', lambda: validation.check_choice('all', 'scope', validation.SCOPES), ValueError,
       "scope must be one of ['layer', 'global'], got 'all'"),
      ('choice_fix', lambda: validation.check_choice('x', 'model', ['a'], fix='or pass model_fn='), ValueError,
       "model must be one of ['a'], got 'x'; or pass model_fn="),
      ('bool', lambda: validation.check_bool(1, 'augment'), TypeError, 'augment must be True or False, got 1'),
      ('str_type', lambda: validation.check_str(3, 'unit_group', optional=True), TypeError,
       'unit_group must be a string or None, got 3'),
      ('str_empty', lambda: validation.check_str('', 'log_dir', non_empty=True), ValueError,
       "log_dir must be a non-empty string, got ''"),
      ('name', lambda: validation.check_name('a b', 'model'), ValueError,
       'model must be a non-empty name of letters, digits, "_", "." or "-", got \'a b\''),
      ('optimizer', lambda: validation.check_optimizer_settings('adam', momentum=0.9), ValueError,
       "momentum and nesterov apply to optimizer 'sgd' only, got momentum=0.9, nesterov=False with 'adam'"),
      ('nesterov', lambda: validation.check_momentum(0.0, True), ValueError, 'nesterov=True needs momentum > 0'),
      ('milestones', lambda: validation.parse_milestones('30it,20it'), ValueError,
       "milestones must increase, got ['30it', '20it'] = iterations [30, 20]"),
  )
  def test_check_refuses_with_one_message_shape(self, check, error, message):
    with self.assertRaisesWithLiteralMatch(error, message):
      check()

  def test_durations_read_epochs_and_iterations(self):
    self.assertEqual(validation.parse_duration('2ep100it', steps_per_epoch=391), 882)
    self.assertEqual(validation.parse_duration(7), 7)
    with self.assertRaisesRegex(ValueError, r"duration must be written as epochs and/or iterations.*got '3 epochs'"):
      validation.parse_duration('3 epochs')
    with self.assertRaisesRegex(ValueError, r"'1ep' is in epochs, which needs steps_per_epoch"):
      validation.parse_duration('1ep')

  def test_builtin_criteria_are_known_by_name(self):
    self.assertContainsSubset(validation.BUILTIN_CRITERIA, validation.criterion_names())
    self.assertTrue(validation.is_model_criterion('snip'))
    self.assertFalse(validation.is_model_criterion('large_final'))

  def test_integers_and_numbers_are_not_bools(self):
    self.assertTrue(validation.is_int(3))
    self.assertFalse(validation.is_int(True))
    self.assertFalse(validation.is_int(3.0))
    self.assertTrue(validation.is_number(0.5))
    self.assertFalse(validation.is_number(False))


if __name__ == '__main__':
  tf.test.main()
