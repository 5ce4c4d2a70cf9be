"""Tests for the Keras-free unit grouping (ltp_tfmot.core.unit_plan), on graphs of plain objects."""

import tensorflow as tf

from ltp_tfmot.core import unit_plan
from tests import fixtures

_KINDS = fixtures.plain_layer_kinds()
_LAYERS = _KINDS.layers


def _layer(kind, name, weights=0, **attributes):
  layer = getattr(_LAYERS, kind)()
  layer.name, layer.weights = name, ['w'] * weights
  for key, value in attributes.items():
    setattr(layer, key, value)
  return layer


def _node(layer, inputs, outputs, shape, input_shape=None):
  return unit_plan.GraphNode(layer, layer, inputs, outputs, [shape], input_shape)


def _conv(name):
  return _layer('Conv2D', name, weights=2, groups=1, data_format='channels_last', activation=None)


def _residual_graph():
  """input -> conv a, conv b -> Add -> Flatten -> Dense out."""
  return [
      _node(_layer('InputLayer', 'in'), [], ['x'], (None, 2, 2, 1)),
      _node(_conv('a'), ['x'], ['ya'], (None, 2, 2, 3), (None, 2, 2, 1)),
      _node(_conv('b'), ['x'], ['yb'], (None, 2, 2, 3), (None, 2, 2, 1)),
      _node(_layer('Add', 'add'), ['ya', 'yb'], ['s'], (None, 2, 2, 3), (None, 2, 2, 3)),
      _node(_layer('Flatten', 'flat', data_format='channels_last'), ['s'], ['f'], (None, 12), (None, 2, 2, 3)),
      _node(_layer('Dense', 'out', weights=2, activation=None), ['f'], ['o'], (None, 2), (None, 12)),
  ]


class PlanUnitsTest(tf.test.TestCase):

  def test_an_add_ties_its_producers_and_a_flatten_tiles_their_units(self):
    plan = unit_plan.plan_units(_residual_graph(), ['o'], _KINDS)
    self.assertEqual(plan.groups['a'].layer_names(), ['a', 'b'])
    self.assertEqual(plan.group_of, {'a': 'a', 'b': 'a', 'out': 'out'})
    layout = plan.input_layouts['out']
    self.assertEqual((layout.groups, layout.tiles, layout.channels), (['a'], 4, 3))
    self.assertEqual(plan.groups['out'].pinned, 'they are model outputs')
    self.assertIsNone(plan.groups['a'].pinned)

  def test_a_merge_with_the_model_input_pins_the_group(self):
    nodes = [
        _node(_layer('InputLayer', 'in'), [], ['x'], (None, 3)),
        _node(_layer('Dense', 'a', weights=2, activation=None), ['x'], ['ya'], (None, 3), (None, 3)),
        _node(_layer('Add', 'add'), ['x', 'ya'], ['s'], (None, 3), (None, 3)),
        _node(_layer('Dense', 'out', weights=2, activation=None), ['s'], ['o'], (None, 1), (None, 3)),
    ]
    self.assertIn('cannot be removed', unit_plan.plan_units(nodes, ['o'], _KINDS).groups['a'].pinned)

  def test_a_layer_unit_pruning_cannot_follow_is_a_problem_of_the_group_it_consumes(self):
    nodes = _residual_graph()[:4] + [
        _node(_layer('Reshape', 'reshape'), ['s'], ['r'], (None, 12), (None, 2, 2, 3)),
        _node(_layer('Dense', 'out', weights=2, activation=None), ['r'], ['o'], (None, 2), (None, 12)),
    ]
    plan = unit_plan.plan_units(nodes, ['o'], _KINDS)
    self.assertEqual(plan.groups['a'].problems, ["'reshape' (Reshape) consumes them, which unit pruning cannot follow"])

  def test_a_shared_layer_with_weights_and_a_nested_model_are_refused(self):
    shared = _layer('Dense', 'shared', weights=2, activation=None)
    nodes = [_node(_layer('InputLayer', 'in'), [], ['x'], (None, 2)),
             _node(shared, ['x'], ['y'], (None, 2), (None, 2)), _node(shared, ['y'], ['z'], (None, 2), (None, 2))]
    with self.assertRaisesRegex(ValueError, "layer 'shared' is called 2 times"):
      unit_plan.plan_units(nodes, ['z'], _KINDS)
    nested = _KINDS.model()
    nested.name, nested.weights = 'inner', ['w']
    with self.assertRaisesRegex(ValueError, "layer 'inner' is a nested model"):
      unit_plan.plan_units(nodes[:1] + [_node(nested, ['x'], ['y'], (None, 2), (None, 2))], ['y'], _KINDS)

  def test_layer_kinds_tell_layers_with_units_from_convolutions_unit_pruning_cannot_follow(self):
    self.assertTrue(_KINDS.has_units(_layer('Dense', 'd')))
    self.assertTrue(_KINDS.has_units(_layer('BatchNormalization', 'bn')))
    self.assertFalse(_KINDS.has_units(_layer('Conv2DTranspose', 't')))
    self.assertFalse(_KINDS.has_units(_layer('Flatten', 'f')))

  def test_graph_order_puts_the_deepest_nodes_first_and_the_error_names_the_model(self):
    self.assertEqual(unit_plan.in_graph_order({0: ['out'], 2: ['in'], 1: ['a', 'b']}), ['in', 'a', 'b', 'out'])
    self.assertRegex(str(unit_plan.not_a_graph_error('net', 'keras.Input')),
                     r"model 'net' is not a Sequential or functional model.*build it with keras.Input")


class UnitSettingsTest(tf.test.TestCase):

  def _plan(self):
    return unit_plan.plan_units(_residual_graph(), ['o'], _KINDS)

  def test_tied_layers_share_the_group_and_output_units_are_kept_whole(self):
    settings = unit_plan.unit_settings(self._plan(), ['a', 'b', 'out'], {})
    self.assertEqual(settings, {'a': {'layer_rate': None, 'unit_group': 'a'},
                                'b': {'layer_rate': None, 'unit_group': 'a'},
                                'out': {'layer_rate': 0.0, 'unit_group': 'out'}})

  def test_tied_layers_with_different_rates_are_refused(self):
    with self.assertRaisesRegex(ValueError, r"layers \['a', 'b'\] prune the same units"):
      unit_plan.unit_settings(self._plan(), ['a', 'b', 'out'], {'a': 0.5})

  def test_a_rate_for_output_units_is_refused(self):
    with self.assertRaisesRegex(ValueError, r"the units of layers \['out'\] cannot be removed \(they are model"):
      unit_plan.unit_settings(self._plan(), ['a', 'b', 'out'], {'out': 0.5})

  def test_a_prunable_layer_without_units_is_refused_unless_its_rate_is_0(self):
    plan = self._plan()
    plan.unsupported['lstm'] = 'LSTM has no units'
    with self.assertRaisesRegex(ValueError, "granularity='unit' cannot prune layer 'lstm': LSTM has no units"):
      unit_plan.unit_settings(plan, ['a', 'b', 'lstm', 'out'], {})
    self.assertNotIn('lstm', unit_plan.unit_settings(plan, ['a', 'b', 'lstm', 'out'], {'lstm': 0.0}))

  def test_a_group_with_a_problem_is_refused_unless_its_rate_is_0(self):
    plan = self._plan()
    plan.groups['a'].problems.append('a sigmoid')
    with self.assertRaisesRegex(ValueError, r"cannot be removed exactly: a sigmoid"):
      unit_plan.unit_settings(plan, ['a', 'b', 'out'], {})
    settings = unit_plan.unit_settings(plan, ['a', 'b', 'out'], {'a': 0.0, 'b': 0.0})
    self.assertEqual(settings['a'], {'layer_rate': 0.0, 'unit_group': 'a'})


class WrapperArgumentsTest(tf.test.TestCase):

  def test_unit_settings_alone_say_what_is_wrapped_and_else_prunable_layers_get_their_rate(self):
    settings = {'a': {'layer_rate': None, 'unit_group': 'a'}}
    self.assertEqual(unit_plan.wrapper_arguments('a', True, settings, {}), settings['a'])
    self.assertIsNone(unit_plan.wrapper_arguments('lstm', True, settings, {}))
    self.assertEqual(unit_plan.wrapper_arguments('lstm', True, None, {'lstm': 0.5}), {'layer_rate': 0.5})
    self.assertIsNone(unit_plan.wrapper_arguments('bn', False, None, {}))


if __name__ == '__main__':
  tf.test.main()
