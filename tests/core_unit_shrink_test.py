"""Tests for the Keras-free slicing of `shrink` (ltp_tfmot.core.unit_shrink), on layers of plain objects."""

import numpy as np
import tensorflow as tf

from ltp_tfmot.core import unit_plan
from ltp_tfmot.core import unit_shrink
from tests import fixtures

_KINDS = fixtures.plain_layer_kinds()
_LAYERS = _KINDS.layers


def _layer(kind, name, **weights):
  """A layer of `kind` whose weights are the given arrays, in order, each also its attribute."""
  layer = getattr(_LAYERS, kind)()
  layer.name, layer.weights = name, [np.asarray(value, np.float32) for value in weights.values()]
  for key, value in zip(weights, layer.weights, strict=True):
    setattr(layer, key, value)
  layer.get_weights = lambda: [np.array(value) for value in layer.weights]
  layer.get_config = lambda: {'name': name, 'units': 0, 'filters': 0}
  return layer


def _dense(name, kernel, bias):
  return _layer('Dense', name, kernel=kernel, bias=bias)


def _plan(layers, groups, input_layouts):
  """A `UnitPlan` of {label: [(layer name, role)]} groups and {layer name: [(group or None, size)]} inputs."""
  plan_groups = {}
  for label, members in groups.items():
    plan_groups[label] = unit_plan.UnitGroup(label, int(layers[members[0][0]].weights[-1].shape[0]))
    plan_groups[label].members = members
  group_of = {name: label for label, members in groups.items() for name, _ in members}
  layouts = {name: unit_plan.Layout(tuple(unit_plan.Segment(*s) for s in segments), tiles)
             for name, (segments, tiles) in input_layouts.items()}
  return unit_plan.UnitPlan(plan_groups, group_of, layouts, {})


class KeptUnitsTest(tf.test.TestCase):

  def test_a_unit_every_member_makes_zero_is_removed(self):
    hidden = _dense('hidden', [[1, 0, 2], [1, 0, 0]], [0, 0, 0])
    bn = _layer('BatchNormalization', 'bn', gamma=[1, 0, 0], beta=[0, 0, 0], moving_mean=[1, 1, 1],
                moving_variance=[1, 1, 1])
    bn.epsilon = 0.001
    layers = {'hidden': hidden, 'bn': bn}
    plan = _plan(layers, {'hidden': [('hidden', 'producer'), ('bn', 'batchnorm')]}, {})
    self.assertAllEqual(unit_shrink.kept_units(plan, layers)['hidden'], [True, False, True])

  def test_a_group_with_every_unit_removed_keeps_its_first_and_a_pinned_group_keeps_all(self):
    layers = {'a': _dense('a', [[0, 0]], [0, 0]), 'b': _dense('b', [[0, 0]], [0, 0])}
    plan = _plan(layers, {'a': [('a', 'producer')], 'b': [('b', 'producer')]}, {})
    plan.groups['b'].pinned = 'they are model outputs'
    kept = unit_shrink.kept_units(plan, layers)
    self.assertAllEqual(kept['a'], [True, False])
    self.assertAllEqual(kept['b'], [True, True])

  def test_a_depthwise_member_keeps_only_the_channels_its_bias_makes_non_zero(self):
    depthwise = _layer('DepthwiseConv2D', 'dw', depthwise_kernel=np.ones([1, 1, 3, 1]), bias=[0, 2, 0])
    conv = _layer('Conv2D', 'conv', kernel=np.zeros([1, 1, 1, 3]), bias=[0, 0, 0])
    layers = {'conv': conv, 'dw': depthwise}
    plan = _plan(layers, {'conv': [('conv', 'producer'), ('dw', 'depthwise')]}, {})
    self.assertAllEqual(unit_shrink.kept_units(plan, layers)['conv'], [False, True, False])


class ShrunkLayerTest(tf.test.TestCase):

  def test_a_producer_loses_its_removed_outputs_and_a_consumer_the_tiled_inputs(self):
    hidden = _dense('hidden', np.arange(6).reshape(2, 3), [1, 2, 3])
    output = _dense('output', np.arange(12).reshape(6, 2), [0, 0])
    layers = {'hidden': hidden, 'output': output}
    plan = _plan(layers, {'hidden': [('hidden', 'producer')], 'output': [('output', 'producer')]},
                 {'hidden': ([(None, 2)], 1), 'output': ([('hidden', 3)], 2)})
    kept = {'hidden': np.array([True, False, True]), 'output': np.array([True, True])}
    config, weights = unit_shrink.shrunk_layer(hidden, plan, kept, _KINDS)
    self.assertEqual(config['units'], 2)
    self.assertAllEqual(weights[0], [[0, 2], [3, 5]])
    self.assertAllEqual(weights[1], [1, 3])
    _, weights = unit_shrink.shrunk_layer(output, plan, kept, _KINDS)
    self.assertAllEqual(weights[0], np.arange(12).reshape(6, 2)[[0, 2, 3, 5]])

  def test_a_batchnorm_consumer_loses_the_removed_channels(self):
    bn = _layer('BatchNormalization', 'bn', gamma=[1, 2, 3], beta=[4, 5, 6])
    plan = _plan({'bn': bn}, {}, {'bn': ([('conv', 3)], 1)})
    _, weights = unit_shrink.shrunk_layer(bn, plan, {'conv': np.array([False, True, True])}, _KINDS)
    self.assertAllEqual(weights, [[2, 3], [5, 6]])

  def test_a_consumer_shrink_cannot_cut_is_refused(self):
    lstm = _layer('LSTM', 'lstm', kernel=np.ones([3, 4]))
    plan = _plan({'lstm': lstm}, {}, {'lstm': ([('conv', 3)], 1)})
    with self.assertRaisesRegex(ValueError, r"layer 'lstm' \(LSTM\) consumes removed units"):
      unit_shrink.shrunk_layer(lstm, plan, {'conv': np.array([False, True, True])}, _KINDS)


if __name__ == '__main__':
  tf.test.main()
