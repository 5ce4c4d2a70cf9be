"""Tests for the unit groups of a model (ltp_tfmot.keras2.unit_groups): which output units are pruned together."""

import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot.keras2 import unit_groups
from tests import fixtures


class UnitGroupTest(tf.test.TestCase):

  def test_residual_add_ties_the_channels_of_its_inputs(self):
    plan = ltp_tfmot.unit_plan(fixtures.residual_net())
    self.assertCountEqual(plan.groups['stem'].layer_names(), ['stem', 'stem_bn', 'block0_conv2', 'block0_bn2'])
    self.assertCountEqual(plan.groups[plan.group_of['block1_conv2']].layer_names(),
                          ['block1_conv2', 'block1_bn2', 'block1_short', 'block1_short_bn'])
    self.assertEqual(plan.groups['output'].pinned, 'they are model outputs')

  def test_depthwise_and_batchnorm_follow_the_expanding_conv(self):
    plan = ltp_tfmot.unit_plan(fixtures.mobilenet_v2_blocks())
    self.assertCountEqual(plan.groups['block0_expand'].members,
                          [('block0_expand', 'producer'), ('block0_expand_bn', 'batchnorm'),
                           ('block0_depthwise', 'depthwise'), ('block0_depthwise_bn', 'batchnorm')])

  def test_flatten_maps_each_filter_to_a_block_of_dense_inputs(self):
    layout = ltp_tfmot.unit_plan(fixtures.conv_flatten_net()).input_layouts['fc']
    self.assertEqual((layout.groups, layout.tiles), (['conv2'], 4))

  def test_layers_with_units_are_dense_convolutions_depthwise_and_batchnorm_but_not_transposed_or_separable(self):
    for layer in (keras.layers.Dense(2), keras.layers.Conv1D(2, 1), keras.layers.Conv2D(2, 1),
                  keras.layers.Conv3D(2, 1), keras.layers.DepthwiseConv2D(1), keras.layers.BatchNormalization()):
      self.assertTrue(unit_groups.has_units(layer), type(layer).__name__)
    for layer in (keras.layers.Conv2DTranspose(2, 1), keras.layers.SeparableConv2D(2, 1),
                  keras.layers.DepthwiseConv1D(1), keras.layers.LSTM(2), keras.layers.Flatten()):
      self.assertFalse(unit_groups.has_units(layer), type(layer).__name__)

  def test_a_transposed_convolution_consuming_a_group_is_a_problem_and_has_no_units(self):
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(3, 1, name='conv')(inputs)
    model = keras.Model(inputs, keras.layers.Conv2DTranspose(2, 2, name='up')(x))
    plan = unit_groups.unit_plan(model)
    self.assertIn("'up' (Conv2DTranspose) consumes them, which unit pruning cannot follow",
                  plan.groups['conv'].problems)
    self.assertEqual(plan.unsupported, {'up': "Conv2DTranspose has no units granularity='unit' prunes"})


if __name__ == '__main__':
  tf.test.main()
