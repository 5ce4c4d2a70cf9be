"""Tests for learned supermasks (`train_supermask`): Bernoulli and edge-popup masks over frozen weights."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from tests import fixtures

METHODS = ('bernoulli', 'edge_popup')


def _data(n=128, seed=0):
  return fixtures.classification_data(n=n, seed=seed)


def _convnet(seed=0):
  init = lambda offset: keras.initializers.GlorotUniform(seed=seed + offset)
  return keras.Sequential([
      keras.layers.Conv2D(4, 3, activation='relu', input_shape=(6, 6, 2), kernel_initializer=init(0), name='conv'),
      keras.layers.Flatten(name='flatten'),
      keras.layers.Dense(4, kernel_initializer=init(1), name='output'),
  ])


def _kernels(model):
  return {layer.name: layer.kernel.numpy() for layer in model.layers if hasattr(layer, 'kernel')}


def _accuracy(model, x, y):
  return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=-1) == y))


class SupermaskTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(*METHODS)
  def test_weights_stay_frozen_and_only_scores_change(self, method):
    model = fixtures.mlp(seed=0)
    before = [w.copy() for w in model.get_weights()]
    x, y = _data()
    result = ltp_tfmot.train_supermask(model, x, y, method=method, epochs=2, batch_size=32, seed=0)
    for got, want in zip(model.get_weights(), before, strict=True):
      self.assertAllEqual(got, want)  # bit-identical: the caller's model is not touched
    for name, kernel in _kernels(model).items():
      self.assertAllEqual(result.frozen_weights[name], kernel)
      self.assertAllEqual(_kernels(result.model)[name], kernel * result.masks[name])
    for layer, original in zip(result.model.layers, model.layers, strict=True):
      self.assertAllEqual(layer.bias.numpy(), original.bias.numpy())
    untrained = ltp_tfmot.train_supermask(model, x, y, method=method, epochs=1, batch_size=len(x),
                                          optimizer=keras.optimizers.SGD(0.0), seed=0)
    for name in result.layer_names:
      self.assertGreater(np.sum(result.scores[name] != untrained.scores[name]), 0, name)

  @parameterized.parameters(0.1, 0.5, 0.75)
  def test_edge_popup_keeps_exactly_k_weights_per_layer(self, density):
    x, y = _data()
    for model in (fixtures.mlp(seed=1), _convnet(seed=1)):
      images = x if model.input_shape[1:] == (8,) else np.resize(x, (len(x), 6, 6, 2))
      result = ltp_tfmot.train_supermask(model, images, y, method='edge_popup', weights='signed_constant',
                                         density=density, epochs=2, batch_size=32, seed=3)
      for name, kernel in _kernels(result.model).items():
        k = int(np.floor(kernel.size * density + 0.5))
        self.assertEqual(int(np.sum(result.masks[name])), k, name)
        self.assertEqual(np.count_nonzero(kernel), k, name)  # signed constants are never 0
      self.assertAllClose(list(result.density.values()), [density] * len(result.layer_names), atol=0.01)

  def test_bernoulli_masks_are_binary_and_the_straight_through_gradient_reaches_the_scores(self):
    x, y = _data()
    result = ltp_tfmot.train_supermask(fixtures.mlp(seed=2), x, y, method='bernoulli', epochs=1, batch_size=32,
                                       seed=0)
    sampled = result.sampled_model(seed=5)
    for name in result.layer_names:
      # The scores start at 0; one epoch of straight-through gradients moves every layer's.
      self.assertGreater(np.count_nonzero(result.scores[name]), 0.5 * result.scores[name].size, name)
      self.assertAllEqual(np.unique(result.masks[name]), [0.0, 1.0])
      self.assertAllEqual(result.masks[name], (result.scores[name] > 0).astype(np.float32))
      kernel, frozen = _kernels(sampled)[name], result.frozen_weights[name]
      self.assertTrue(np.all((kernel == 0) | (kernel == frozen)), name)
    again = result.sampled_model(seed=5)
    for name in result.layer_names:
      self.assertAllEqual(_kernels(again)[name], _kernels(sampled)[name])

  def test_signed_constant_weights_are_the_layer_std_with_the_initial_signs(self):
    model = fixtures.mlp(seed=4)
    x, y = _data()
    result = ltp_tfmot.train_supermask(model, x, y, weights='signed_constant', epochs=1, batch_size=64)
    for name, kernel in _kernels(model).items():
      frozen = result.frozen_weights[name]
      self.assertAllClose(np.abs(frozen), np.full(kernel.shape, np.std(kernel.astype(np.float64))), rtol=1e-6)
      self.assertAllEqual(np.sign(frozen), np.sign(kernel))

  @parameterized.parameters(*METHODS)
  def test_dynamic_weight_rescaling_scales_survivors_by_n_over_n_kept(self, method):
    x, y = _data()
    result = ltp_tfmot.train_supermask(fixtures.mlp(seed=5), x, y, method=method,
                                       density=0.25 if method == 'edge_popup' else None,
                                       dynamic_weight_rescaling=True, epochs=1, batch_size=32)
    for name, kernel in _kernels(result.model).items():
      mask = result.masks[name]
      self.assertAllClose(kernel, result.frozen_weights[name] * mask * (mask.size / mask.sum()), rtol=1e-6)
      if method == 'edge_popup':
        kept = mask > 0
        self.assertAllClose(kernel[kept], 4 * result.frozen_weights[name][kept], rtol=1e-6)

  @parameterized.parameters(*METHODS)
  def test_training_beats_a_random_mask_on_a_separable_problem(self, method):
    x, y = _data(n=512, seed=0)
    x_test, y_test = _data(n=256, seed=1)
    model = fixtures.mlp(seed=6)
    rng = np.random.RandomState(0)
    random_masked = keras.models.clone_model(model)
    random_masked.set_weights([w * (rng.rand(*w.shape) < 0.5) if w.ndim == 2 else w for w in model.get_weights()])
    result = ltp_tfmot.train_supermask(model, x, y, method=method, weights='signed_constant', epochs=8,
                                       batch_size=32, validation_data=(x_test, y_test), seed=0)
    trained = _accuracy(result.sampled_model(seed=0) if method == 'bernoulli' else result.model, x_test, y_test)
    self.assertGreater(trained, _accuracy(random_masked, x_test, y_test) + 0.2)
    self.assertLen(result.history['val_accuracy'], 8)
    self.assertEqual('val_sampled_accuracy' in result.history, method == 'bernoulli')

  def test_bad_input_raises_a_clear_error(self):
    x, y = _data(n=16)
    model = fixtures.mlp(seed=0)
    cases = [
        (dict(method='gradient'), ValueError, "method must be one of \\['bernoulli', 'edge_popup'\\]"),
        (dict(weights='reinit'), ValueError, 'weights must be one of'),
        (dict(density=0.5), ValueError, "leave density=None with method='bernoulli'"),
        (dict(method='edge_popup', density=1.5), ValueError, 'density must be in \\(0, 1\\], got 1.5'),
        (dict(method='edge_popup', density='half'), TypeError, 'density must be a number'),
        (dict(epochs=0), ValueError, 'epochs must be an integer >= 1, got 0'),
        (dict(dynamic_weight_rescaling=1), TypeError, 'dynamic_weight_rescaling must be True or False'),
        (dict(validation_data=x), ValueError, 'validation_data must be a pair'),
    ]
    for kwargs, error, message in cases:
      with self.assertRaisesRegex(error, message):
        ltp_tfmot.train_supermask(model, x, y, **kwargs)
    with self.assertRaisesRegex(ValueError, '16 inputs but 15 labels'):
      ltp_tfmot.train_supermask(model, x, y[:15])
    with self.assertRaisesRegex(ValueError, 'labels must be integer class indices'):
      ltp_tfmot.train_supermask(model, x, y.astype(np.float32))
    with self.assertRaisesRegex(ValueError, 'pruning wrappers.*strip_pruning'):
      ltp_tfmot.train_supermask(ltp_tfmot.prune_lottery_ticket(fixtures.mlp(seed=0)), x, y)
    lstm = keras.Sequential([keras.layers.LSTM(3, input_shape=(2, 8), name='lstm'), keras.layers.Dense(4)])
    with self.assertRaisesRegex(ValueError, r"layers \['lstm \(LSTM\)'\] have kernels it cannot mask"):
      ltp_tfmot.train_supermask(lstm, x.reshape(16, 1, 8).repeat(2, axis=1), y)
    with self.assertRaisesRegex(ValueError, 'model is not built'):
      ltp_tfmot.train_supermask(keras.Sequential([keras.layers.Dense(4)]), x, y)
    result = ltp_tfmot.train_supermask(model, x, y, method='edge_popup', epochs=1)
    with self.assertRaisesRegex(ValueError, 'sampled_model samples Bernoulli masks'):
      result.sampled_model(seed=0)


if __name__ == '__main__':
  tf.test.main()
