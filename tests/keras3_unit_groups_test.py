"""Tests for the unit groups of Keras 3 models (ltp_tfmot.keras3.unit_groups) and unit granularity's masks.

The masks of unit-granularity rounds are compared with the Keras 2 front end's on twin models that hold the
same weights, in layer and global scope.
"""

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf
import tf_keras

import ltp_tfmot
from ltp_tfmot.keras3 import unit_groups
from ltp_tfmot.keras3 import wrapper as wrapper_lib
from tests import fixtures


def _twin_models(seed=0):
  """Keras 2 and Keras 3 `fixtures.unit_residual_net`s holding the same weights (positive BN variances)."""
  k2, k3 = fixtures.unit_residual_net(tf_keras), fixtures.unit_residual_net(keras)
  rng = np.random.default_rng(seed)
  for layer in k2.layers:
    if not layer.weights:
      continue
    values = [rng.standard_normal(w.shape).astype(np.float32) for w in layer.weights]
    if isinstance(layer, tf_keras.layers.BatchNormalization):
      values[3] = np.abs(values[3]) + 0.5
    layer.set_weights(values)
    k3.get_layer(layer.name).set_weights(values)
  return k2, k3


class UnitPlanTest(tf.test.TestCase):

  def test_residual_add_depthwise_and_batchnorm_tie_their_channels_into_one_group(self):
    plan = ltp_tfmot.unit_plan(fixtures.unit_residual_net(keras))
    self.assertCountEqual(plan.groups['stem'].members,
                          [('stem', 'producer'), ('stem_bn', 'batchnorm'), ('depthwise', 'depthwise'),
                           ('depthwise_bn', 'batchnorm'), ('project', 'producer'), ('project_bn', 'batchnorm')])
    self.assertEqual(plan.groups['output'].pinned, 'they are model outputs')
    layout = plan.input_layouts['fc']
    self.assertEqual((layout.groups, layout.tiles), (['stem'], 9))

  def test_the_plan_of_keras_3_is_the_plan_of_keras_2(self):
    k2, k3 = _twin_models()
    plan2, plan3 = ltp_tfmot.unit_plan(k2), ltp_tfmot.unit_plan(k3)
    self.assertEqual({label: group.members for label, group in plan2.groups.items()},
                     {label: group.members for label, group in plan3.groups.items()})
    self.assertEqual(plan2.input_layouts, plan3.input_layouts)

  def test_a_wrapped_model_has_the_plan_of_the_model(self):
    model = fixtures.unit_residual_net(keras)
    wrapped = ltp_tfmot.prune_lottery_ticket(model, granularity='unit')
    self.assertEqual(unit_groups.unit_plan(wrapped).group_of, unit_groups.unit_plan(model).group_of)

  def test_a_sigmoid_after_a_group_is_a_problem(self):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation='sigmoid', name='hidden'),
                              keras.layers.Dense(2, name='output')])
    self.assertIn('sigmoid', ltp_tfmot.unit_plan(model).groups['hidden'].problems[0])

  def test_a_model_without_a_graph_or_with_a_shared_layer_is_refused(self):
    with self.assertRaisesRegex(ValueError, 'not a Sequential or functional model with a known input'):
      unit_groups.unit_plan(keras.Sequential([keras.layers.Dense(2)]))
    dense = keras.layers.Dense(2, name='shared')
    inputs = keras.Input((2,))
    with self.assertRaisesRegex(ValueError, "layer 'shared' is called 2 times"):
      unit_groups.unit_plan(keras.Model(inputs, dense(dense(inputs))))

  def test_layers_with_units_are_dense_convolutions_depthwise_and_batchnorm_but_not_transposed_or_separable(self):
    for layer in (keras.layers.Dense(2), keras.layers.Conv1D(2, 1), keras.layers.Conv2D(2, 1),
                  keras.layers.Conv3D(2, 1), keras.layers.DepthwiseConv2D(1), keras.layers.BatchNormalization()):
      self.assertTrue(wrapper_lib.UNIT_KINDS.has_units(layer), type(layer).__name__)
    for layer in (keras.layers.Conv2DTranspose(2, 1), keras.layers.SeparableConv2D(2, 1),
                  keras.layers.DepthwiseConv1D(1), keras.layers.LSTM(2), keras.layers.Flatten()):
      self.assertFalse(wrapper_lib.UNIT_KINDS.has_units(layer), type(layer).__name__)


class UnitWrapperTest(tf.test.TestCase):

  def test_a_unit_wrapper_masks_the_bias_and_batchnorm_gamma_and_beta_with_the_units(self):
    wrapped = ltp_tfmot.prune_lottery_ticket(fixtures.unit_residual_net(keras), granularity='unit')
    wrappers = {w.layer.name: w for w in ltp_tfmot.lottery_wrappers(wrapped)}
    self.assertEqual([w.path.split('/')[-1] for w in wrappers['stem'].prunable_weights], ['kernel', 'bias'])
    self.assertEqual((wrappers['stem'].ranked_count, wrappers['stem'].unit_axis(1)), (1, 0))
    self.assertEqual([w.path.split('/')[-1] for w in wrappers['stem_bn'].prunable_weights], ['gamma', 'beta'])
    self.assertEqual(wrappers['stem_bn'].ranked_count, 0)
    self.assertEqual({w.unit_group for w in wrappers.values() if w.layer.name != 'fc'} - {'output'}, {'stem'})

  def test_a_layer_without_units_is_refused_in_unit_granularity(self):
    with self.assertRaisesRegex(ValueError, "granularity='unit' prunes the units of Dense"):
      wrapper_lib.PruneLotteryTicket(keras.layers.Embedding(4, 2, name='embedding'), granularity='unit')

  def test_units_that_cannot_be_removed_exactly_are_refused_unless_their_rate_is_0(self):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation='sigmoid', name='hidden'),
                              keras.layers.Dense(2, name='output')])
    with self.assertRaisesRegex(ValueError, r"the units of layers \['hidden'\] cannot be removed exactly"):
      ltp_tfmot.prune_lottery_ticket(model, granularity='unit')
    wrapped = ltp_tfmot.prune_lottery_ticket(model, granularity='unit', layer_rates={'hidden': 0.0})
    self.assertEqual([w.layer_rate for w in ltp_tfmot.lottery_wrappers(wrapped)], [0.0, 0.0])


class SameUnitMasksAsKeras2Test(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(scope=['layer', 'global'], unit_pooling=['L1', 'L2'])
  def test_unit_rounds_give_the_masks_of_keras_2(self, scope, unit_pooling):
    keras2_masks, keras3_masks = fixtures.masks_after_rounds(
        _twin_models(seed=1), [0, 1], pruning_schedule=ltp_tfmot.LotteryTicketSchedule(0.4), scope=scope, seed=3,
        granularity='unit', unit_pooling=unit_pooling)
    fixtures.assert_same_masks(self, keras2_masks, keras3_masks)
    self.assertFalse(keras3_masks['stem'][1].all() and keras3_masks['fc'][1].all())  # units went, biases with them
    self.assertAllEqual(keras3_masks['stem_bn'][0], keras3_masks['stem'][1])


if __name__ == '__main__':
  tf.test.main()
