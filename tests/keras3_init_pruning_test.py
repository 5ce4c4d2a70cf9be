"""Tests for pruning Keras 3 models at initialization: the masks of Keras 2 for the same weights, on either backend."""

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

import ltp_tfmot
from ltp_tfmot.keras3 import init_pruning
from tests import fixtures


def _data(seed=0):
  rng = np.random.default_rng(seed)
  return rng.standard_normal((8, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, 8)


def _masks(model):
  return [np.asarray(mask) for w in ltp_tfmot.lottery_wrappers(model) for mask in w.masks]


def _state(model):
  return [np.asarray(v) for v in model.variables]


class SameMasksAsKeras2Test(tf.test.TestCase, parameterized.TestCase):

  def assert_same_masks(self, criterion, **arguments):
    results = []
    for model in fixtures.keras2_and_keras3_twins(keras, seed=arguments.pop('seed', 0)):
      sparsity = ltp_tfmot.prune_at_initialization(model, criterion, data=_data(), **arguments)
      results.append((sparsity, _masks(model)))
    (keras2_sparsity, keras2_masks), (keras3_sparsity, keras3_masks) = results
    self.assertEqual(keras3_sparsity, keras2_sparsity)
    for got, want in zip(keras3_masks, keras2_masks, strict=True):
      self.assertAllEqual(got, want)

  @parameterized.product(criterion=('snip', 'grasp', 'large_init', 'random', 'snip_inverted'),
                         scope=('layer', 'global'))
  def test_one_iteration_gives_the_masks_of_keras_2(self, criterion, scope):
    if criterion.endswith('_inverted'):
      ltp_tfmot.inverted_criterion(criterion.removesuffix('_inverted'))
    self.assert_same_masks(criterion, weights_remaining=0.3, scope=scope)

  @parameterized.product(criterion=('synflow', 'grasp', 'random'), scope=('layer', 'global'))
  def test_iterations_rescore_the_weights_alive_as_keras_2(self, criterion, scope):
    self.assert_same_masks(criterion, weights_remaining=0.2, scope=scope, iterations=3, seed=1)

  def test_pruned_weights_are_zero_and_the_sparsity_is_exact(self):
    _, model = fixtures.keras2_and_keras3_twins(keras)
    sparsity = ltp_tfmot.prune_at_initialization(model, 'snip', 0.25, data=_data())
    for w in ltp_tfmot.lottery_wrappers(model):
      mask, kernel = np.asarray(w.masks[0]), np.asarray(w.layer.kernel)
      self.assertAllEqual(kernel[mask == 0], np.zeros(int(np.sum(mask == 0))))
      self.assertEqual(sparsity[w.layer.name], 1 - round(0.25 * mask.size) / mask.size)


class NothingChangedOnFailureTest(tf.test.TestCase):

  def test_a_failing_iteration_leaves_masks_and_weights_as_they_were(self):
    calls = []

    def fails_at_the_second_iteration(initial, final):
      del initial
      calls.append(None)
      if len(calls) > 3:  # one call per kernel in layer scope: the second iteration's first
        raise RuntimeError('scores failed')
      return tf.abs(final)

    ltp_tfmot.register_criterion(ltp_tfmot.Criterion('keras3_init_pruning_test_fails', fails_at_the_second_iteration,
                                                     needs_initial=False), overwrite=True)
    _, model = fixtures.keras2_and_keras3_twins(keras)
    before = _state(model)
    with self.assertRaisesRegex(RuntimeError, 'scores failed'):
      ltp_tfmot.prune_at_initialization(model, 'keras3_init_pruning_test_fails', 0.5, iterations=2)
    for got, want in zip(_state(model), before, strict=True):
      self.assertAllEqual(got, want)

  def test_a_model_criterion_needs_the_whole_model(self):
    _, model = fixtures.keras2_and_keras3_twins(keras)
    with self.assertRaisesRegex(TypeError, 'pass the whole keras.Model'):
      ltp_tfmot.prune_at_initialization(model.layers, 'snip', 0.5, data=_data())

  def test_a_model_is_told_to_be_keras_3_by_its_classes(self):
    keras2_model, keras3_model = fixtures.keras2_and_keras3_twins(keras)
    self.assertTrue(init_pruning.holds_keras3(keras3_model))
    self.assertTrue(init_pruning.holds_keras3(keras3_model.layers))
    self.assertFalse(init_pruning.holds_keras3(keras2_model))
    self.assertFalse(init_pruning.holds_keras3(keras2_model.layers))


class KerasThreeOnlyTest(tf.test.TestCase):

  def test_pruning_a_keras_3_model_loads_neither_tf_keras_nor_tfmot(self):
    # Importing tfmot sets TF_USE_LEGACY_KERAS=1, which switches tf.keras to Keras 2.
    code = ('import sys; import keras; import ltp_tfmot; '
            'model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]); '
            "ltp_tfmot.prune_at_initialization(ltp_tfmot.prune_lottery_ticket(model), 'synflow', 0.5, iterations=1); "
            "print(sorted(name for name in ('tf_keras', 'tensorflow_model_optimization') if name in sys.modules))")
    result = fixtures.run_python(code, unset=('TF_USE_LEGACY_KERAS',))
    self.assertEqual(result.returncode, 0, result.stderr[-2000:])
    self.assertEqual(result.stdout.split()[-1], '[]')

if __name__ == '__main__':
  tf.test.main()
