"""Tests for the Keras 3 lottery-ticket wrapper (ltp_tfmot.keras3.wrapper), on the backend KERAS_BACKEND names."""

import os

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from ltp_tfmot.core import schedule as schedule_lib
from ltp_tfmot.keras3 import wrapper as wrapper_lib


class _Masked(keras.constraints.Constraint):
  """Holds a plain kernel at `kernel * mask + frozen * (1 - mask)` after every optimizer step."""

  def __init__(self, mask, frozen):
    self.mask = mask
    self.frozen = frozen

  def __call__(self, w):
    return w * self.mask + self.frozen * (1 - self.mask)


def _mlp(kernel_constraints=(None, None)):
  """An 8-6-3 MLP with seeded weights (the same at every build)."""
  return keras.Sequential([
      keras.Input((8,)),
      keras.layers.Dense(6, activation='relu', kernel_initializer=keras.initializers.GlorotUniform(1),
                         bias_initializer=keras.initializers.RandomUniform(seed=2),
                         kernel_constraint=kernel_constraints[0], name='hidden'),
      keras.layers.Dense(3, kernel_initializer=keras.initializers.GlorotUniform(3),
                         kernel_constraint=kernel_constraints[1], name='output'),
  ])


def _wrapped_mlp(**kwargs):
  """`_mlp()` with both layers wrapped (the wrapper's arguments), and its wrappers."""
  plain = _mlp()
  wrappers = [wrapper_lib.PruneLotteryTicket(layer, **kwargs) for layer in plain.layers]
  model = keras.Sequential([keras.Input((8,))] + wrappers)
  return model, wrappers


class PruneLotteryTicketTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    keras.utils.set_random_seed(0)
    self.rng = np.random.RandomState(0)

  @parameterized.named_parameters(
      ('zero_jit', 'zero', dict(jit_compile=True)),
      ('zero_two_steps_per_execution', 'zero', dict(steps_per_execution=2)),
      ('freeze_jit', 'freeze', dict(jit_compile=True)),
      ('freeze_two_steps_per_execution', 'freeze', dict(steps_per_execution=2)),
  )
  def test_masks_act_in_fit_as_on_a_hand_masked_plain_model(self, mask_0_action, compile_args):
    model, wrappers = _wrapped_mlp(mask_0_action=mask_0_action)
    constraints = []
    for w in wrappers:
      mask = (self.rng.rand(*w.masks[0].shape) > 0.5).astype('float32')
      frozen = self.rng.randn(*w.masks[0].shape).astype('float32') if mask_0_action == 'freeze' else 0 * mask
      w.masks[0].assign(mask)
      w.prunable_snapshots[0].assign(frozen)
      constraints.append(_Masked(mask, frozen))
    plain = _mlp(constraints)
    plain.set_weights([weight.numpy() for weight in model.weights if 'prune_lottery_ticket' not in weight.path])
    for layer, constraint in zip(plain.layers, constraints, strict=True):
      layer.kernel.assign(constraint(layer.kernel.numpy()))
    x = self.rng.randn(16, 8).astype('float32')
    y = self.rng.randn(16, 3).astype('float32')
    for m in (model, plain):
      m.compile(keras.optimizers.SGD(0.1), 'mse', **compile_args)
      m.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    self.assertAllClose(model.predict(x, verbose=0), plain.predict(x, verbose=0), atol=1e-5)
    for w, layer in zip(wrappers, plain.layers, strict=True):
      ((_, masked),) = w.masked_values()
      self.assertAllClose(keras.ops.convert_to_numpy(masked), layer.kernel.numpy(), atol=1e-5)

  def test_pruned_weights_contribute_nothing_to_the_output(self):
    model, (hidden, _) = _wrapped_mlp()
    x = self.rng.randn(4, 8).astype('float32')
    mask = np.ones((8, 6), 'float32')
    mask[:, :3] = 0
    hidden.masks[0].assign(mask)
    before = model.predict(x, verbose=0)
    hidden.layer.kernel.assign(hidden.layer.kernel.numpy() + 100 * (1 - mask))
    self.assertAllClose(model.predict(x, verbose=0), before)

  def test_masking_under_mixed_precision_keeps_the_float32_weights_exact(self):
    keras.mixed_precision.set_global_policy('mixed_float16')
    try:
      model, (hidden, _) = _wrapped_mlp()
      kernel = np.full((8, 6), 1 + 2**-20, 'float32')  # not a float16 number
      hidden.layer.kernel.assign(kernel)
      mask = (self.rng.rand(8, 6) > 0.5).astype('float32')
      hidden.masks[0].assign(mask)
      self.assertEqual(hidden.masks[0].dtype, 'float32')
      self.assertEqual(hidden.snapshots[0].dtype, 'float32')
      outputs = model(self.rng.randn(2, 8).astype('float32'))
      self.assertEqual(keras.backend.standardize_dtype(outputs.dtype), 'float16')
      self.assertAllEqual(hidden.layer.kernel.numpy(), kernel * mask)
      model.compile(keras.optimizers.SGD(0.1), 'mse')
      model.fit(self.rng.randn(4, 8), self.rng.randn(4, 3), verbose=0)
    finally:
      keras.mixed_precision.set_global_policy('float32')

  def test_variables_start_as_a_fresh_wrapper_s(self):
    _, (hidden, _) = _wrapped_mlp()
    self.assertEqual([v.name for v in hidden.weights[:7]],
                     ['mask', 'snapshot_kernel', 'snapshot_bias', 'snapshot_step', 'rounds_done', 'step_offset',
                      'pruning_step'])
    self.assertAllEqual(hidden.masks[0].numpy(), np.ones((8, 6)))
    self.assertIs(hidden.prunable_snapshots[0], hidden.snapshots[0])
    self.assertEqual(int(hidden.snapshot_step.numpy()), wrapper_lib.NO_SNAPSHOT)
    self.assertEqual(int(hidden.step_offset.numpy()), wrapper_lib.NOT_COUNTING)
    self.assertEqual(int(hidden.rounds_done.numpy()), 0)
    self.assertFalse(hidden.has_snapshot)
    hidden.snapshot_step.assign(0)
    self.assertTrue(hidden.has_snapshot)
    self.assertEqual(hidden.prunable_weight_paths, ('kernel',))
    self.assertEqual(hidden.ranked_count, 1)

  def test_rate_is_the_layer_rate_if_given_else_the_schedule_s(self):
    schedule = schedule_lib.LotteryTicketSchedule(0.3)
    self.assertEqual(wrapper_lib.PruneLotteryTicket(keras.layers.Dense(2), schedule).rate, 0.3)
    self.assertEqual(wrapper_lib.PruneLotteryTicket(keras.layers.Dense(2), schedule, layer_rate=0.0).rate, 0.0)

  def test_block_shape_applies_to_2d_kernels_and_unit_axis_to_output_units(self):
    inputs = keras.Input((6, 6, 2))
    conv = keras.layers.Conv2D(4, 3)
    depthwise = keras.layers.DepthwiseConv2D(3)
    keras.Model(inputs, [conv(inputs), depthwise(inputs)])
    conv_wrapper = wrapper_lib.PruneLotteryTicket(conv, block_size=(2, 1))
    depthwise_wrapper = wrapper_lib.PruneLotteryTicket(depthwise)
    _, (dense_wrapper, _) = _wrapped_mlp(block_size=[4, 1])
    for w in (conv_wrapper, depthwise_wrapper):
      w.build((None, 6, 6, 2))
    self.assertEqual(dense_wrapper.block_shape(0), (4, 1))
    self.assertIsNone(conv_wrapper.block_shape(0))
    self.assertEqual(dense_wrapper.unit_axis(0), 1)
    self.assertEqual(conv_wrapper.unit_axis(0), 3)
    self.assertEqual(depthwise_wrapper.unit_axis(0), 2)

  def test_config_round_trips_the_arguments_and_the_schedule(self):
    schedule = schedule_lib.OneShotLotterySchedule(target_sparsity=0.8, prune_step=10)
    w = wrapper_lib.PruneLotteryTicket(
        keras.layers.Dense(3, name='dense'), schedule, criterion='magnitude_increase', scope='global',
        layer_rate=0.1, mask_0_action='freeze', mask_1_action='reshuffle', dynamic_weight_rescaling=True,
        rewind_step=2, seed=7, position=3, unit_pooling='L2', unit_group='g', block_size=(2, 1),
        block_pooling_type='MAX')
    config = w.get_config()
    copy = wrapper_lib.PruneLotteryTicket.from_config(config)
    self.assertEqual(copy.get_config(), config)
    self.assertEqual(copy.pruning_schedule, schedule)
    self.assertEqual((copy.layer.name, copy.name, copy.block_size), ('dense', 'prune_lottery_ticket_dense', (2, 1)))

  def test_a_saved_keras_file_loads_with_every_variable_and_config(self):
    inputs = keras.Input((4, 3))
    lstm = keras.layers.LSTM(4, return_sequences=True, name='lstm')
    attention = keras.layers.MultiHeadAttention(2, 2, name='attention')
    output = keras.layers.Dense(2, name='output')
    features = lstm(inputs)
    output(attention(features, features))
    wrappers = [wrapper_lib.PruneLotteryTicket(layer, seed=5) for layer in (lstm, attention, output)]
    features = wrappers[0](inputs)
    model = keras.Model(inputs, wrappers[2](wrappers[1](features, features)))
    for i, w in enumerate(wrappers):
      for variable in w.masks + w.snapshots:
        variable.assign(self.rng.rand(*variable.shape).round())
      w.snapshot_step.assign(3 + i)
      w.rounds_done.assign(2)
      w.step_offset.assign(-5)
      w.pruning_step.assign(4)
    path = os.path.join(self.get_temp_dir(), 'model.keras')
    model.save(path)
    loaded = keras.models.load_model(path)
    self.assertEqual([v.path for v in loaded.weights], [v.path for v in model.weights])
    for want, got in zip(model.weights, loaded.weights, strict=True):
      self.assertAllEqual(got.numpy(), want.numpy(), msg=want.path)
    for want, got in zip(wrappers, loaded.layers[1:], strict=True):
      self.assertIsInstance(got, wrapper_lib.PruneLotteryTicket)
      want_config, got_config = want.get_config(), got.get_config()
      self.assertEqual(got_config.pop('layer')['config'], want_config.pop('layer')['config'])
      self.assertEqual(got_config, want_config)
      self.assertEqual(got.prunable_weight_paths, want.prunable_weight_paths)
    self.assertEqual(loaded.layers[2].prunable_weight_paths,
                     ('query/kernel', 'key/kernel', 'value/kernel', 'attention_output/kernel'))
    x = self.rng.rand(2, 4, 3)
    self.assertAllClose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))

  @parameterized.named_parameters(
      ('layer_of_no_keras', dict(layer='dense'), TypeError, 'layer must be a Keras 3 layer'),
      ('unprunable_layer', dict(layer=keras.layers.ReLU()), ValueError, 'has no prunable weight'),
      ('schedule', dict(pruning_schedule=0.2), TypeError, 'pruning_schedule must be'),
      ('criterion', dict(criterion='largest'), ValueError, 'criterion must be one of'),
      ('scope', dict(scope='model'), ValueError, 'scope must be one of'),
      ('layer_rate', dict(layer_rate=1.0), ValueError, r"layer_rates\['dense'\] must be in \[0, 1\)"),
      ('mask_0_action', dict(mask_0_action='drop'), ValueError, 'mask_0_action must be one of'),
      ('mask_1_action', dict(mask_1_action='keep'), ValueError, 'mask_1_action must be one of'),
      ('rescaling', dict(dynamic_weight_rescaling=1), TypeError, 'dynamic_weight_rescaling must be True or False'),
      ('rewind_step', dict(rewind_step=-1), ValueError, 'rewind_step must be an integer >= 0'),
      ('rewind_after_the_first_round', dict(pruning_schedule=schedule_lib.LotteryTicketSchedule(0.2, 5, 2),
                                            rewind_step=5), ValueError, 'must come before the end of the first'),
      ('seed', dict(seed=1.5), TypeError, 'seed must be an integer'),
      ('position', dict(position=-1), ValueError, 'position must be an integer >= 0'),
      ('unit_granularity_with_freeze', dict(granularity='unit', mask_0_action='freeze'), ValueError,
       "granularity='unit' needs mask_0_action='zero'"),
      ('granularity', dict(granularity='filter'), ValueError, 'granularity must be one of'),
      ('unit_pooling', dict(unit_pooling='max'), ValueError, 'unit_pooling must be one of'),
      ('unit_group', dict(unit_group=3), TypeError, 'unit_group must be a string or None'),
      ('block_size', dict(block_size=(0, 1)), ValueError, 'block_size must be two integers >= 1'),
      ('block_pooling_type', dict(block_pooling_type='SUM'), ValueError, 'block_pooling_type must be one of'),
  )
  def test_a_bad_argument_gives_a_one_line_error(self, arguments, error, message):
    arguments = {'layer': keras.layers.Dense(2, name='dense'), **arguments}
    with self.assertRaisesRegex(error, message) as raised:
      wrapper_lib.PruneLotteryTicket(**arguments)
    self.assertNotIn('\n', str(raised.exception))

  def test_an_attention_layer_never_called_is_refused_when_built(self):
    w = wrapper_lib.PruneLotteryTicket(keras.layers.MultiHeadAttention(2, 2, name='attention'))
    with self.assertRaisesRegex(ValueError, "'attention' must be called once before it is wrapped"):
      w.build((None, 4, 3))


class LayerWeightsTest(tf.test.TestCase):

  def test_weight_paths_are_relative_to_the_layer_and_unique(self):
    inputs = keras.Input((4, 3))
    bidirectional = keras.layers.Bidirectional(keras.layers.GRU(2, name='gru'), name='bidirectional')
    keras.Model(inputs, bidirectional(inputs))
    self.assertEqual(wrapper_lib.weight_paths(bidirectional)[:3],
                     ('forward_gru/gru_cell/kernel', 'forward_gru/gru_cell/recurrent_kernel',
                      'forward_gru/gru_cell/bias'))
    self.assertEqual(wrapper_lib.variable_suffixes(bidirectional)[:2],
                     ('forward_gru_gru_cell_kernel', 'forward_gru_gru_cell_recurrent_kernel'))

  def test_unpruned_reason_names_the_dense_kernels_of_unknown_layers_only(self):
    inputs = keras.Input((4, 3))
    transpose = keras.layers.Conv1DTranspose(2, 2, name='transpose')
    distributed = keras.layers.TimeDistributed(keras.layers.Dense(2, name='inner'), name='distributed')
    norm = keras.layers.LayerNormalization()
    dense = keras.layers.Dense(2)
    keras.Model(inputs, [transpose(inputs), distributed(inputs), norm(inputs), dense(inputs)])
    self.assertRegex(wrapper_lib.unpruned_reason(transpose), r'^Conv1DTranspose is none of the layers .*dense: kernel$')
    self.assertRegex(wrapper_lib.unpruned_reason(distributed),
                     r'^a TimeDistributed around a Dense: .*dense: inner/kernel$')
    self.assertIsNone(wrapper_lib.unpruned_reason(norm))
    self.assertIsNone(wrapper_lib.unpruned_reason(dense))


if __name__ == '__main__':
  tf.test.main()
