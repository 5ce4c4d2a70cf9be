"""Tests for wrapping layers and models with prune_lottery_ticket."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper
import tf_keras as keras

import ltp_tfmot
from tests import fixtures


class PruneLotteryTicketTest(tf.test.TestCase, parameterized.TestCase):

  def test_wraps_every_prunable_layer_of_a_sequential_model(self):
    model = ltp_tfmot.prune_lottery_ticket(fixtures.mlp())
    self.assertLen(model.layers, 3)
    for layer in model.layers:
      self.assertIsInstance(layer, ltp_tfmot.PruneLotteryTicket)
      self.assertIsInstance(layer, pruning_wrapper.PruneLowMagnitude)

  def test_prunable_layer_names_of_a_wrapped_model_are_those_of_the_model_before_wrapping(self):
    model = fixtures.convnet()
    names = ltp_tfmot.prunable_layer_names(model)
    self.assertEqual(names, ['conv', 'depthwise', 'output'])
    self.assertEqual(ltp_tfmot.prunable_layer_names(ltp_tfmot.prune_lottery_ticket(model)), names)

  def test_wraps_conv_and_depthwise_and_leaves_other_layers_alone(self):
    model = ltp_tfmot.prune_lottery_ticket(fixtures.convnet())
    kinds = {type(layer).__name__ for layer in model.layers}
    self.assertIn('BatchNormalization', kinds)
    self.assertIn('Flatten', kinds)
    wrapped = {w.layer.name: [v.name for v in w.prunable_weights] for w in ltp_tfmot.lottery_wrappers(model)}
    self.assertEqual(sorted(wrapped), ['conv', 'depthwise', 'output'])
    self.assertIn('depthwise_kernel', wrapped['depthwise'][0])

  def test_wraps_a_single_layer_and_a_list(self):
    layer = ltp_tfmot.prune_lottery_ticket(keras.layers.Dense(3))
    self.assertIsInstance(layer, ltp_tfmot.PruneLotteryTicket)
    layers = ltp_tfmot.prune_lottery_ticket([keras.layers.Dense(3), keras.layers.ReLU(), keras.layers.Dense(2)])
    self.assertEqual([type(layer).__name__ for layer in layers], ['PruneLotteryTicket', 'ReLU', 'PruneLotteryTicket'])

  def test_wraps_layers_of_nested_models(self):
    inner = fixtures.mlp(name='inner')
    inputs = keras.Input((8,))
    outer = keras.Model(inputs, keras.layers.Dense(2, name='head')(inner(inputs)))
    wrapped = ltp_tfmot.prune_lottery_ticket(outer, layer_rates={'hidden1': 0.5})
    names = [w.layer.name for w in ltp_tfmot.lottery_wrappers(wrapped)]
    self.assertEqual(names, ['hidden1', 'hidden2', 'output', 'head'])
    self.assertEqual(ltp_tfmot.lottery_wrappers(wrapped)[0].rate, 0.5)

  def test_bidirectional_rnn_is_wrapped_with_both_directions_pruned(self):
    inputs = keras.Input((4, 3))
    outputs = keras.layers.Bidirectional(keras.layers.GRU(4), name='bidirectional')(inputs)
    model = ltp_tfmot.prune_lottery_ticket(keras.Model(inputs, outputs), ltp_tfmot.LotteryTicketSchedule(0.5))
    self.assertEqual(ltp_tfmot.unprunable_layers(model), {})
    (w,) = ltp_tfmot.lottery_wrappers(model)
    self.assertEqual(w.prunable_weight_paths, ('forward_gru/gru_cell/kernel', 'forward_gru/gru_cell/recurrent_kernel',
                                               'backward_gru/gru_cell/kernel',
                                               'backward_gru/gru_cell/recurrent_kernel'))
    ltp_tfmot.take_snapshot(model)
    sparsity = ltp_tfmot.run_lottery_round(model)
    self.assertAllClose(sparsity['bidirectional'], 0.5)
    for weight, mask, _ in w.pruning_vars:
      self.assertAllEqual(weight.numpy()[mask.numpy() == 0], np.zeros(int((mask.numpy() == 0).sum())))

  def test_layers_with_dense_kernels_are_reported_and_layers_without_kernels_are_not(self):
    inputs = keras.Input((4, 6))
    x = keras.layers.TimeDistributed(keras.layers.Dense(3), name='per_step')(inputs)
    x = keras.layers.LayerNormalization(name='norm')(x)
    x = keras.layers.MultiHeadAttention(2, 2, name='attention')(x, x)
    x = keras.layers.Reshape((4, 3, 1))(x)
    x = keras.layers.SeparableConv2D(2, 2, name='separable')(x)
    x = keras.layers.BatchNormalization(name='bn')(x)
    model = keras.Model(inputs, keras.layers.PReLU(shared_axes=[1, 2], name='prelu')(x))
    reasons = ltp_tfmot.unprunable_layers(model)
    self.assertEqual(sorted(reasons), ['per_step', 'separable'])
    self.assertRegex(reasons['per_step'], r'a TimeDistributed around a Dense.*; dense: dense(_\d+)?/kernel')
    self.assertRegex(reasons['separable'], r'only pointwise_kernel is pruned.*; dense: depthwise_kernel')
    self.assertEqual(ltp_tfmot.prunable_layer_names(model), ['attention', 'separable'])
    with self.assertLogs(level='WARNING') as logs:
      ltp_tfmot.prune_lottery_ticket(model)
    self.assertIn("leaves the kernels of 2 layers dense: 'per_step': a TimeDistributed", '\n'.join(logs.output))

  def test_a_model_whose_kernels_are_all_pruned_gives_no_warning(self):
    with self.assertNoLogs(level='WARNING'):
      ltp_tfmot.prune_lottery_ticket(fixtures.convnet())
    self.assertEqual(ltp_tfmot.unprunable_layers(fixtures.convnet()), {})

  def test_attention_layer_wrapped_before_its_first_call_is_refused_with_the_fix(self):
    inputs = keras.Input((3, 4))
    wrapped = ltp_tfmot.prune_lottery_ticket(keras.layers.MultiHeadAttention(2, 2))
    with self.assertRaisesRegex(ValueError, 'must be called once before it is wrapped'):
      wrapped(inputs, value=inputs)

  def test_layer_rates_override_the_schedule_rate(self):
    schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.2)
    model = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), schedule, layer_rates={'output': 0.1, 'hidden2': 0})
    self.assertEqual([w.rate for w in model.layers], [0.2, 0.0, 0.1])

  def test_wrapped_model_keeps_the_original_outputs(self):
    x, _ = fixtures.classification_data()
    original = fixtures.mlp()
    expected = original(x)
    self.assertAllClose(ltp_tfmot.prune_lottery_ticket(original)(x), expected)


class PruneLotteryTicketBadInputTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ('unknown_criterion', dict(criterion='largest'), ValueError, r"criterion must be one of \[.*got 'largest'"),
      ('bad_scope', dict(scope='model'), ValueError, r"scope must be one of \['layer', 'global'\], got 'model'"),
      ('bad_mask_0', dict(mask_0_action='drop'), ValueError, r'mask_0_action must be one of'),
      ('bad_mask_1', dict(mask_1_action='x'), ValueError, r'mask_1_action must be one of'),
      ('negative_rewind', dict(rewind_step=-1), ValueError, r'rewind_step must be an integer >= 0'),
      ('layer_rate_too_big', dict(layer_rates={'output': 1.5}), ValueError,
       r"layer_rates\['output'\] must be in \[0, 1\), got 1.5"),
      ('unknown_layer_name', dict(layer_rates={'outptu': 0.1}), ValueError,
       r"layer_rates names \['outptu'\], which are not prunable layers"),
      ('schedule_of_tfmot', dict(pruning_schedule='constant'), TypeError,
       r'pruning_schedule must be a ltp_tfmot.LotteryTicketSchedule'),
      ('layer_rates_list', dict(layer_rates=[0.1]), TypeError, r'layer_rates must be a dict'),
  )
  def test_bad_argument_raises_before_anything_changes(self, kwargs, error, message):
    model = fixtures.mlp()
    before = [w.numpy() for w in model.weights]
    with self.assertRaisesRegex(error, message):
      ltp_tfmot.prune_lottery_ticket(model, **kwargs)
    self.assertEqual([type(layer).__name__ for layer in model.layers], ['Dense'] * 3)
    for want, got in zip(before, model.weights, strict=True):
      self.assertAllEqual(want, got)

  def test_a_keras_3_model_gets_keras_3_wrappers(self):
    import keras as keras3  # pylint: disable=g-import-not-at-top
    model = keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(2)])
    wrapped = ltp_tfmot.prune_lottery_ticket(model)
    self.assertIsInstance(wrapped, keras3.Model)
    self.assertEqual(type(ltp_tfmot.lottery_wrappers(wrapped)[0]).__module__, 'ltp_tfmot.keras3.wrapper')

  def test_subclassed_model_is_refused(self):
    with self.assertRaisesRegex(ValueError, r'subclassed model \(Subclassed\)'):
      ltp_tfmot.prune_lottery_ticket(fixtures.Subclassed())

  def test_model_without_prunable_layer_is_refused(self):
    model = keras.Sequential([keras.layers.Flatten(input_shape=(2, 2)), keras.layers.ReLU()])
    with self.assertRaisesRegex(ValueError, r'has no prunable layer'):
      ltp_tfmot.prune_lottery_ticket(model)

  def test_non_layer_is_refused(self):
    with self.assertRaisesRegex(TypeError, r'to_prune must be a tf_keras layer.*got int'):
      ltp_tfmot.prune_lottery_ticket(3)


if __name__ == '__main__':
  tf.test.main()
