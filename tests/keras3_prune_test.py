"""Tests for wrapping Keras 3 models (ltp_tfmot.keras3.prune), on the backend KERAS_BACKEND names."""

import os
import subprocess
import sys

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from ltp_tfmot.core import schedule as schedule_lib
from ltp_tfmot.keras3 import prune
from ltp_tfmot.keras3 import wrapped_model
from ltp_tfmot.keras3 import wrapper as wrapper_lib


def _mlp(name='mlp'):
  """A seeded 8-6-5-3 Sequential MLP."""
  return keras.Sequential([
      keras.Input((8,)),
      keras.layers.Dense(6, activation='relu', kernel_initializer=keras.initializers.GlorotUniform(1), name='h1'),
      keras.layers.Dense(5, activation='relu', kernel_initializer=keras.initializers.GlorotUniform(2), name='h2'),
      keras.layers.Dense(3, kernel_initializer=keras.initializers.GlorotUniform(3), name='output'),
  ], name=name)


def _transformer_classifier():
  """Token ids (6 per example, 20 words) -> 2 logits: Embedding, one attention block, pooling, Dense."""
  tokens = keras.Input((6,), dtype='int32')
  embedded = keras.layers.Embedding(20, 8, name='embedding')(tokens)
  attended = keras.layers.MultiHeadAttention(2, 4, name='attention')(embedded, embedded)
  features = keras.layers.LayerNormalization(name='norm')(keras.layers.Add()([embedded, attended]))
  features = keras.layers.Dense(8, activation='relu', name='feed_forward')(features)
  pooled = keras.layers.GlobalAveragePooling1D()(features)
  return keras.Model(tokens, keras.layers.Dense(2, name='logits')(pooled))


# Each prunable layer type: (input shape, layer, the paths of the weights the wrapper prunes).
_LAYER_CASES = (
    ('dense', (5,), lambda: keras.layers.Dense(3), ('kernel',)),
    ('einsum_dense', (5,), lambda: keras.layers.EinsumDense('ab,bc->ac', output_shape=3), ('kernel',)),
    ('conv1d', (6, 2), lambda: keras.layers.Conv1D(3, 2), ('kernel',)),
    ('conv2d', (5, 5, 2), lambda: keras.layers.Conv2D(3, 2), ('kernel',)),
    ('conv3d', (4, 4, 4, 2), lambda: keras.layers.Conv3D(3, 2), ('kernel',)),
    ('depthwise_conv2d', (5, 5, 2), lambda: keras.layers.DepthwiseConv2D(2), ('kernel',)),
    ('separable_conv2d', (5, 5, 2), lambda: keras.layers.SeparableConv2D(3, 2),
     ('depthwise_kernel', 'pointwise_kernel')),
    ('lstm', (4, 3), lambda: keras.layers.LSTM(2), ('lstm_cell/kernel', 'lstm_cell/recurrent_kernel')),
    ('gru', (4, 3), lambda: keras.layers.GRU(2), ('gru_cell/kernel', 'gru_cell/recurrent_kernel')),
    ('simple_rnn', (4, 3), lambda: keras.layers.SimpleRNN(2),
     ('simple_rnn_cell/kernel', 'simple_rnn_cell/recurrent_kernel')),
    ('bidirectional', (4, 3), lambda: keras.layers.Bidirectional(keras.layers.LSTM(2)),
     ('forward_lstm/lstm_cell/kernel', 'forward_lstm/lstm_cell/recurrent_kernel',
      'backward_lstm/lstm_cell/kernel', 'backward_lstm/lstm_cell/recurrent_kernel')),
)


class PruneLotteryTicketTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    keras.utils.set_random_seed(0)
    self.rng = np.random.RandomState(0)

  @parameterized.named_parameters(*_LAYER_CASES)
  def test_each_prunable_layer_type_is_wrapped_with_its_weights_found(self, shape, make_layer, paths):
    inputs = keras.Input(shape)
    layer = make_layer()
    model = keras.Model(inputs, layer(inputs))
    x = self.rng.rand(2, *shape).astype('float32')
    want = model.predict(x, verbose=0)
    wrapped = prune.prune_lottery_ticket(model)
    (w,) = wrapped_model.lottery_wrappers(wrapped)
    self.assertIs(w.layer, layer)
    self.assertEqual(w.prunable_weight_paths, paths)
    self.assertLen(w.masks, len(paths))
    self.assertLen(w.snapshots, len(layer.weights))
    self.assertEqual(prune.unprunable_layers(wrapped), {})
    self.assertAllClose(wrapped.predict(x, verbose=0), want)
    w.masks[0].assign(np.zeros(w.masks[0].shape))
    wrapped.predict(x, verbose=0)
    self.assertAllEqual(keras.ops.convert_to_numpy(w.masked_values()[0][1]), np.zeros(w.masks[0].shape))

  def test_a_transformer_classifier_wraps_fits_and_strips(self):
    model = prune.prune_lottery_ticket(_transformer_classifier(), seed=3)
    wrappers = wrapped_model.lottery_wrappers(model)
    self.assertEqual([w.layer.name for w in wrappers], ['embedding', 'attention', 'feed_forward', 'logits'])
    self.assertEqual([w.position for w in wrappers], [0, 1, 2, 3])
    self.assertEqual(wrappers[1].prunable_weight_paths,
                     ('query/kernel', 'key/kernel', 'value/kernel', 'attention_output/kernel'))
    masks = []
    for w in wrappers:
      masks.append([(self.rng.rand(*mask.shape) > 0.5).astype('float32') for mask in w.masks])
      for mask, value in zip(w.masks, masks[-1], strict=True):
        mask.assign(value)
    tokens = self.rng.randint(0, 20, (16, 6))
    labels = self.rng.randint(0, 2, (16,))
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(tokens, labels, batch_size=8, epochs=2, verbose=0)
    want = model.predict(tokens, verbose=0)
    stripped = prune.strip_pruning(model)
    self.assertEqual(wrapped_model.lottery_wrappers(stripped), [])
    for w, layer_masks in zip(wrappers, masks, strict=True):
      self.assertIn(w.layer, stripped.layers)
      for weight, mask in zip(w.prunable_weights, layer_masks, strict=True):
        self.assertAllEqual(weight.numpy()[mask == 0], np.zeros(int((mask == 0).sum())))
    self.assertAllClose(stripped.predict(tokens, verbose=0), want, atol=1e-5)

  def test_layers_of_nested_models_are_wrapped_and_numbered_in_order(self):
    inner = _mlp('inner')
    inputs = keras.Input((8,))
    outer = keras.Model(inputs, keras.layers.Dense(2, name='head')(inner(inputs)))
    names = prune.prunable_layer_names(outer)
    wrapped = prune.prune_lottery_ticket(outer, layer_rates={'h1': 0.5, 'head': 0.0})
    wrappers = wrapped_model.lottery_wrappers(wrapped)
    self.assertEqual(names, ['h1', 'h2', 'output', 'head'])
    self.assertEqual(prune.prunable_layer_names(wrapped), names)
    self.assertEqual([w.layer.name for w in wrappers], names)
    self.assertEqual([w.position for w in wrappers], [0, 1, 2, 3])
    self.assertEqual([w.rate for w in wrappers], [0.5, 0.2, 0.2, 0.0])
    x = self.rng.rand(3, 8)
    self.assertAllClose(wrapped.predict(x, verbose=0), outer.predict(x, verbose=0))

  def test_the_settings_reach_every_wrapper(self):
    schedule = schedule_lib.LotteryTicketSchedule(0.3, round_steps=10, rounds=2)
    model = prune.prune_lottery_ticket(_mlp(), schedule, criterion='large_init', scope='global', rewind_step=4,
                                       mask_0_action='freeze', mask_1_action='reinit', dynamic_weight_rescaling=True,
                                       block_size=[2, 1], block_pooling_type='MAX', seed=9)
    for w in wrapped_model.lottery_wrappers(model):
      self.assertEqual((w.pruning_schedule, w.criterion, w.scope, w.rewind_step, w.mask_0_action, w.mask_1_action,
                        w.dynamic_weight_rescaling, w.block_size, w.block_pooling_type, w.seed, w.granularity),
                       (schedule, 'large_init', 'global', 4, 'freeze', 'reinit', True, (2, 1), 'MAX', 9, 'weight'))

  def test_a_single_layer_and_a_list_are_wrapped(self):
    self.assertIsInstance(prune.prune_lottery_ticket(keras.layers.Dense(3)), wrapper_lib.PruneLotteryTicket)
    layers = prune.prune_lottery_ticket([keras.layers.Dense(3), keras.layers.ReLU(), keras.layers.Dense(2)])
    self.assertEqual([type(layer).__name__ for layer in layers], ['PruneLotteryTicket', 'ReLU', 'PruneLotteryTicket'])
    self.assertEqual([w.position for w in wrapped_model.lottery_wrappers(layers)], [0, 1])

  def test_kernels_left_dense_are_reported_and_logged(self):
    inputs = keras.Input((4, 3))
    x = keras.layers.TimeDistributed(keras.layers.Dense(3, name='inner'), name='distributed')(inputs)
    x = keras.layers.Conv1DTranspose(2, 2, name='transpose')(x)
    x = keras.layers.BatchNormalization(name='norm')(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name='output')(x))
    reasons = prune.unprunable_layers(model)
    self.assertEqual(sorted(reasons), ['distributed', 'transpose'])
    self.assertEqual(prune.prunable_layer_names(model), ['output'])
    with self.assertLogs(level='WARNING') as logs:
      prune.prune_lottery_ticket(model)
    self.assertIn('leaves the kernels of 2 layers dense', '\n'.join(logs.output))

  @parameterized.named_parameters(('zero', 'zero'), ('freeze', 'freeze'))
  def test_strip_pruning_applies_the_masks_exactly(self, mask_0_action):
    model = prune.prune_lottery_ticket(_mlp(), mask_0_action=mask_0_action)
    expected = []
    for w in wrapped_model.lottery_wrappers(model):
      kernel = w.prunable_weights[0].numpy()
      mask = (self.rng.rand(*kernel.shape) > 0.5).astype('float32')
      snapshot = self.rng.randn(*kernel.shape).astype('float32')
      w.masks[0].assign(mask)
      w.prunable_snapshots[0].assign(snapshot)
      expected.append(kernel * mask + (snapshot * (1 - mask) if mask_0_action == 'freeze' else 0))
    biases = [w.layer.bias.numpy() for w in wrapped_model.lottery_wrappers(model)]
    stripped = prune.strip_pruning(model)
    self.assertEqual([type(layer).__name__ for layer in stripped.layers], ['Dense'] * 3)
    for layer, kernel, bias in zip(stripped.layers, expected, biases, strict=True):
      self.assertAllEqual(layer.kernel.numpy(), kernel)
      self.assertAllEqual(layer.bias.numpy(), bias)

  def test_a_keras_2_model_is_refused_by_name(self):
    import tf_keras  # pylint: disable=g-import-not-at-top
    model = tf_keras.Sequential([tf_keras.layers.Dense(2, input_shape=(3,))])
    for call in (prune.prune_lottery_ticket, prune.strip_pruning):
      with self.assertRaisesRegex(TypeError, r'is a Keras 2 \(tf_keras\) object') as raised:
        call(model)
      self.assertNotIn('\n', str(raised.exception))

  @parameterized.named_parameters(
      ('criterion', dict(criterion='largest'), ValueError, 'criterion must be one of'),
      ('schedule', dict(pruning_schedule=0.2), TypeError, 'pruning_schedule must be a'),
      ('layer_rate', dict(layer_rates={'h1': 1.5}), ValueError, r"layer_rates\['h1'\] must be in \[0, 1\)"),
      ('layer_rates_of_no_layer', dict(layer_rates={'hidden': 0.5}), ValueError,
       r"layer_rates names \['hidden'\], which are not prunable layers here"),
      ('layer_rates_type', dict(layer_rates=[0.5]), TypeError, 'layer_rates must be a dict'),
      ('unit_granularity_with_blocks', dict(granularity='unit', block_size=(2, 2)), ValueError,
       r"granularity='unit' removes whole units, so block_size must be \(1, 1\)"),
      ('block_size', dict(block_size=4), ValueError, 'block_size must be two integers'),
      ('seed', dict(seed='0'), TypeError, 'seed must be an integer'),
      ('to_prune', dict(to_prune='model'), TypeError, 'to_prune must be a Keras 3 layer'),
  )
  def test_a_bad_argument_gives_a_one_line_error_and_changes_nothing(self, arguments, error, message):
    model = _mlp()
    layers, weights = list(model.layers), [w.numpy() for w in model.weights]
    arguments = {'to_prune': model, **arguments}
    with self.assertRaisesRegex(error, message) as raised:
      prune.prune_lottery_ticket(**arguments)
    self.assertNotIn('\n', str(raised.exception))
    self.assertEqual(model.layers, layers)
    self.assertEqual(wrapped_model.lottery_wrappers(model), [])
    for want, got in zip(weights, model.weights, strict=True):
      self.assertAllEqual(got.numpy(), want)

  def test_a_subclassed_a_wrapped_or_a_prunable_free_model_is_refused(self):

    class Subclassed(keras.Model):

      def call(self, inputs):
        return inputs

    inputs = keras.Input((3,))
    wrapped = prune.prune_lottery_ticket(_mlp())
    for model, message in ((Subclassed(), 'is a subclassed model'), (wrapped, 'is already wrapped'),
                           (keras.Model(inputs, keras.layers.ReLU()(inputs)), 'has no prunable layer')):
      with self.assertRaisesRegex(ValueError, message):
        prune.prune_lottery_ticket(model)

  def test_the_front_end_loads_neither_tf_keras_nor_tfmot(self):
    # Importing tfmot sets TF_USE_LEGACY_KERAS=1, which switches tf.keras to Keras 2.
    code = ('import sys; from ltp_tfmot.keras3 import prune; '
            "print(sorted(name for name in ('tf_keras', 'tensorflow_model_optimization') if name in sys.modules))")
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    environment.pop('TF_USE_LEGACY_KERAS', None)
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True, env=environment)
    self.assertEqual(run.stdout.strip().splitlines()[-1], '[]')


if __name__ == '__main__':
  tf.test.main()
