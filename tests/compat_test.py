"""Tests for the older lottery_ticket_pruner API: LotteryTicketPruner and PrunerCallback."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot.keras2 import compat
from tests import fixtures

# Hand-made kernels: |A| flat is .1 .6 .3 .2 .5 .4 and |B| flat is .9 .05 .7 .8 .15 1.
KERNEL_A = np.array([[0.1, -0.6, 0.3], [-0.2, 0.5, -0.4]], np.float32)
KERNEL_B = np.array([[0.9, -0.05], [0.7, 0.8], [-0.15, 1.0]], np.float32)


def _two_dense(kernel_a=KERNEL_A, kernel_b=KERNEL_B, units_a=3):
  """A 2-3-2 MLP with the given kernels and biases of 0.25."""
  model = keras.Sequential([
      keras.layers.Dense(units_a, input_shape=(2,), name='a'),
      keras.layers.Dense(2, name='b'),
  ])
  if units_a == 3:
    model.set_weights([kernel_a, np.full(3, 0.25, np.float32), kernel_b, np.full(2, 0.25, np.float32)])
  return model


def _masks(pruner, model):
  return [p.mask for p in pruner.iterate_prunables(model)]


def _alive_counts(pruner, model):
  return [int(np.count_nonzero(mask)) for mask in _masks(pruner, model)]


def _mixed_model(seed=0):
  """Three branches (1D, 2D, 3D) covering every prunable layer type, with BatchNormalization."""
  init = lambda offset: keras.initializers.GlorotUniform(seed=seed + offset)
  in1 = keras.Input((12, 2), name='in1')
  x1 = keras.layers.Conv1D(3, 3, kernel_initializer=init(0), name='conv1d')(in1)
  x1 = keras.layers.SeparableConv1D(4, 3, depthwise_initializer=init(1), pointwise_initializer=init(2),
                                    name='sepconv1d')(x1)
  x1 = keras.layers.DepthwiseConv1D(3, depthwise_initializer=init(3), name='depthwise1d')(x1)
  x1 = keras.layers.Conv1DTranspose(2, 3, kernel_initializer=init(4), name='conv1d_t')(x1)
  x1 = keras.layers.GlobalAveragePooling1D(name='pool1d')(x1)
  in2 = keras.Input((8, 8, 2), name='in2')
  x2 = keras.layers.Conv2D(4, 3, padding='same', kernel_initializer=init(5), name='conv2d')(in2)
  x2 = keras.layers.BatchNormalization(name='bn2d')(x2)
  x2 = keras.layers.DepthwiseConv2D(3, depthwise_initializer=init(6), name='depthwise2d')(x2)
  x2 = keras.layers.SeparableConv2D(4, 3, depthwise_initializer=init(7), pointwise_initializer=init(8),
                                    name='sepconv2d')(x2)
  x2 = keras.layers.Conv2DTranspose(3, 3, kernel_initializer=init(9), name='conv2d_t')(x2)
  x2 = keras.layers.GlobalAveragePooling2D(name='pool2d')(x2)
  in3 = keras.Input((4, 4, 4, 1), name='in3')
  x3 = keras.layers.Conv3D(2, 3, kernel_initializer=init(10), name='conv3d')(in3)
  x3 = keras.layers.Conv3DTranspose(2, 3, kernel_initializer=init(11), name='conv3d_t')(x3)
  x3 = keras.layers.GlobalAveragePooling3D(name='pool3d')(x3)
  x = keras.layers.Concatenate(name='concat')([x1, x2, x3])
  x = keras.layers.Dense(8, kernel_initializer=init(12), name='dense')(x)
  x = keras.layers.BatchNormalization(name='bn')(x)
  outputs = keras.layers.Dense(3, kernel_initializer=init(13), name='output')(x)
  return keras.Model([in1, in2, in3], outputs, name='mixed')


MIXED_PRUNABLES = [
    ('conv1d', 'kernel'), ('sepconv1d', 'depthwise_kernel'), ('sepconv1d', 'pointwise_kernel'),
    ('depthwise1d', 'depthwise_kernel'), ('conv1d_t', 'kernel'), ('conv2d', 'kernel'),
    ('depthwise2d', 'depthwise_kernel'), ('sepconv2d', 'depthwise_kernel'), ('sepconv2d', 'pointwise_kernel'),
    ('conv2d_t', 'kernel'), ('conv3d', 'kernel'), ('conv3d_t', 'kernel'), ('dense', 'kernel'), ('output', 'kernel'),
]


def _mixed_data(n=16, seed=0):
  rng = np.random.RandomState(seed)
  x = [rng.randn(n, 12, 2), rng.randn(n, 8, 8, 2), rng.randn(n, 4, 4, 4, 1)]
  return [a.astype(np.float32) for a in x], rng.randint(0, 3, n)


class CalcPruneMaskTest(tf.test.TestCase, parameterized.TestCase):

  def test_percentages_are_of_remaining_weights_and_accumulate(self):
    model = fixtures.mlp()
    pruner = compat.LotteryTicketPruner(model)
    pruner.calc_prune_mask(model, 0.5, 'smallest_weights')
    self.assertAlmostEqual(pruner.cumulative_pruning_rate, 0.5)
    self.assertEqual(_alive_counts(pruner, model), [64, 96, 24])
    pruner.calc_prune_mask(model, 0.2, 'smallest_weights')
    self.assertAlmostEqual(pruner.cumulative_pruning_rate, 0.6)
    self.assertEqual(_alive_counts(pruner, model), [51, 77, 19])  # round(0.4 * n) of 128, 192, 48
    pruner.calc_prune_mask(model, 0.5, 'smallest_weights_global')
    self.assertAlmostEqual(pruner.cumulative_pruning_rate, 0.8)
    self.assertEqual(sum(_alive_counts(pruner, model)), 74)  # round(0.5 * 147) of 368

  def test_smallest_weights_prunes_smallest_current_magnitudes_per_layer(self):
    model = _two_dense()
    pruner = compat.LotteryTicketPruner(model)
    pruner.set_pretrained_weights(_two_dense(kernel_a=-KERNEL_A[::-1], kernel_b=KERNEL_B[::-1]))
    pruner.calc_prune_mask(model, 0.5, 'smallest_weights')
    mask_a, mask_b = _masks(pruner, model)
    self.assertAllEqual(mask_a, [[0, 1, 0], [0, 1, 1]])
    self.assertAllEqual(mask_b, [[1, 0], [0, 1], [0, 1]])

  def test_smallest_weights_global_ranks_across_layers(self):
    model = _two_dense()
    pruner = compat.LotteryTicketPruner(model)
    pruner.calc_prune_mask(model, 0.5, 'smallest_weights_global')
    mask_a, mask_b = _masks(pruner, model)
    self.assertAllEqual(mask_a, [[0, 1, 0], [0, 1, 0]])
    self.assertAllEqual(mask_b, [[1, 0], [1, 1], [0, 1]])
    pruner.calc_prune_mask(model, 0.5, 'smallest_weights_global')
    mask_a, mask_b = _masks(pruner, model)
    self.assertAllEqual(mask_a, np.zeros((2, 3)))
    self.assertAllEqual(mask_b, [[1, 0], [0, 1], [0, 1]])

  def test_large_final_keeps_largest_pretrained_weights_whatever_the_current_ones(self):
    model = _two_dense()
    pruner = compat.LotteryTicketPruner(model)
    pruner.set_pretrained_weights(_two_dense(kernel_a=KERNEL_A[::-1], kernel_b=KERNEL_B[::-1]))
    pruner.calc_prune_mask(model, 0.5, 'large_final')
    mask_a, mask_b = _masks(pruner, model)
    self.assertAllEqual(mask_a, [[0, 1, 1], [0, 1, 0]])
    self.assertAllEqual(mask_b, [[0, 1], [0, 1], [1, 0]])

  def test_large_final_same_sign_keeps_same_sign_weights_first(self):
    pretrained_a = np.array([[-0.9, -0.6, 0.3], [-0.2, 0.5, 0.4]], np.float32)  # (0, 0) and (1, 2) flip sign
    model = _two_dense()
    pruner = compat.LotteryTicketPruner(model)
    pruner.set_pretrained_weights(_two_dense(kernel_a=pretrained_a))
    pruner.calc_prune_mask(model, 0.5, 'large_final_same_sign')
    self.assertAllEqual(_masks(pruner, model)[0], [[0, 1, 1], [0, 1, 0]])
    pruner.reset_masks()
    pruner.calc_prune_mask(model, 0.5, 'large_final')
    self.assertAllEqual(_masks(pruner, model)[0], [[1, 1, 0], [0, 1, 0]])

  @parameterized.parameters('magnitude_increase', 'movement', 'small_init')
  def test_core_criterion_by_name_scores_initial_and_pretrained_weights(self, name):
    rng = np.random.RandomState(0)
    model = fixtures.mlp()
    initial = [p.initial_weights for p in compat.LotteryTicketPruner(model).iterate_prunables(model)]
    pretrained = fixtures.mlp()
    for layer in pretrained.layers:
      layer.kernel.assign_add(0.3 * rng.randn(*layer.kernel.shape).astype(np.float32))
    pruner = compat.LotteryTicketPruner(model)
    pruner.set_pretrained_weights(pretrained)
    pruner.calc_prune_mask(model, 0.25, name)
    criterion = ltp_tfmot.get_criterion(name)
    for mask, wi, layer in zip(_masks(pruner, model), initial, pretrained.layers, strict=True):
      scores = criterion.score(tf.constant(wi), layer.kernel, tf.ones(wi.shape, tf.bool), [0, 0]).numpy()
      self.assertEqual(int(mask.sum()), round(0.75 * mask.size))
      self.assertGreaterEqual(scores[mask == 1].min(), scores[mask == 0].max())

  def test_global_suffix_ranks_a_core_criterion_across_layers(self):
    model = _two_dense()
    pruner = compat.LotteryTicketPruner(model)
    pruner.set_pretrained_weights(model)
    pruner.calc_prune_mask(model, 0.5, 'large_final_global')
    mask_a, mask_b = _masks(pruner, model)
    self.assertAllEqual(mask_a, [[0, 1, 0], [0, 1, 0]])
    self.assertAllEqual(mask_b, [[1, 0], [1, 1], [0, 1]])

  def test_strategy_names_hold_old_names_and_every_criterion_with_global(self):
    names = compat.strategy_names()
    for name in ['random', 'smallest_weights', 'smallest_weights_global', 'large_final', 'large_final_same_sign']:
      self.assertIn(name, names)
    for name in ltp_tfmot.criterion_names():
      if ltp_tfmot.get_criterion(name).needs_model:  # needs the model and data, which a pruner has not
        self.assertNotIn(name, names)
        continue
      self.assertIn(name, names)
      self.assertIn(name + '_global', names)

  def test_random_prunes_exact_count_per_layer_and_seed_repeats(self):
    masks = []
    for seed in (3, 3, 4):
      model = fixtures.mlp()
      pruner = compat.LotteryTicketPruner(model, seed=seed)
      pruner.calc_prune_mask(model, 0.3, 'random')
      self.assertEqual(_alive_counts(pruner, model), [90, 134, 34])
      masks.append(_masks(pruner, model))
    for a, b in zip(masks[0], masks[1], strict=True):
      self.assertAllEqual(a, b)
    self.assertFalse(all(np.array_equal(a, b) for a, b in zip(masks[0], masks[2], strict=True)))

  def test_random_without_seed_follows_numpys_global_seed(self):
    masks = []
    for _ in range(2):
      model = fixtures.mlp()
      pruner = compat.LotteryTicketPruner(model)
      np.random.seed(7)
      pruner.calc_prune_mask(model, 0.5, 'random')
      masks.append(_masks(pruner, model))
    for a, b in zip(*masks, strict=True):
      self.assertAllEqual(a, b)

  @parameterized.parameters('smallest_weights', 'smallest_weights_global', 'large_final')
  def test_ties_prune_exact_count_keeping_earlier_weights(self, strategy):
    model = _two_dense(kernel_a=np.full((2, 3), 0.5, np.float32), kernel_b=np.full((3, 2), -0.5, np.float32))
    pruner = compat.LotteryTicketPruner(model)
    pruner.set_pretrained_weights(model)
    pruner.calc_prune_mask(model, 0.5, strategy)
    mask_a, mask_b = _masks(pruner, model)
    if strategy.endswith('_global'):
      self.assertAllEqual(mask_a, np.ones((2, 3)))
      self.assertAllEqual(mask_b, np.zeros((3, 2)))
    else:
      self.assertAllEqual(mask_a, [[1, 1, 1], [0, 0, 0]])
      self.assertAllEqual(mask_b, [[1, 1], [1, 0], [0, 0]])

  def test_pruned_weights_are_never_revived_and_zeros_do_not_count(self):
    model = _two_dense()
    pruner = compat.LotteryTicketPruner(model)
    pruner.calc_prune_mask(model, 0.5, 'smallest_weights')
    pruner.apply_pruning(model)  # the pruned weights are zeros now, and must not be ranked as the smallest
    kernel = model.layers[0].kernel
    kernel.assign(kernel + np.array([[9.0, 0.0, 9.0], [9.0, 0.0, 0.0]], np.float32))  # pruned ones grow large
    pruner.calc_prune_mask(model, 0.5, 'smallest_weights')
    self.assertAllEqual(_masks(pruner, model)[0], [[0, 1, 0], [0, 1, 0]])  # keeps 2 of the alive .6 .5 .4

  def test_each_call_prunes_its_fraction_of_every_pools_remaining_weights(self):
    model = fixtures.mlp()
    pruner = compat.LotteryTicketPruner(model, seed=0)
    previous = _masks(pruner, model)
    for strategy in ['random', 'smallest_weights_global', 'smallest_weights', 'random_global', 'large_init']:
      alive = _alive_counts(pruner, model)
      pruner.set_pretrained_weights(model)
      pruner.calc_prune_mask(model, 0.3, strategy)
      if strategy.endswith('_global'):
        self.assertEqual(sum(_alive_counts(pruner, model)), int(np.floor(sum(alive) * 0.7 + 0.5)), strategy)
      else:
        self.assertEqual(_alive_counts(pruner, model), [int(np.floor(n * 0.7 + 0.5)) for n in alive], strategy)
      current = _masks(pruner, model)
      for before, after in zip(previous, current, strict=True):
        self.assertTrue(np.all(after <= before), strategy)
      previous = current
    self.assertAlmostEqual(pruner.cumulative_pruning_rate, 1 - 0.7**5)


class ApplyTest(tf.test.TestCase):

  def test_apply_pruning_zeroes_pruned_kernel_weights_only(self):
    model = _two_dense()
    pruner = compat.LotteryTicketPruner(model)
    pruner.calc_prune_mask(model, 0.5, 'smallest_weights')
    pruner.apply_pruning(model)
    self.assertAllClose(model.layers[0].kernel, [[0.0, -0.6, 0.0], [0.0, 0.5, -0.4]])
    self.assertAllClose(model.layers[0].bias, [0.25] * 3)
    self.assertAllClose(model.layers[1].bias, [0.25] * 2)

  def test_apply_dwr_scales_survivors_by_weights_over_kept(self):
    model = _two_dense()
    pruner = compat.LotteryTicketPruner(model)
    pruner.calc_prune_mask(model, 0.5, 'smallest_weights_global')  # A keeps 2 of 6, B keeps 4 of 6
    pruner.apply_pruning(model)
    pruner.apply_dwr(model)
    self.assertAllClose(model.layers[0].kernel, [[0.0, -1.8, 0.0], [0.0, 1.5, 0.0]])
    self.assertAllClose(model.layers[1].kernel, KERNEL_B * [[1, 0], [1, 1], [0, 1]] * 1.5)
    self.assertAllClose(model.layers[0].bias, [0.25] * 3)

  def test_apply_dwr_leaves_a_fully_pruned_tensor_at_zero(self):
    model = _two_dense(kernel_a=KERNEL_A * 0.01)
    pruner = compat.LotteryTicketPruner(model)
    pruner.calc_prune_mask(model, 0.5, 'smallest_weights_global')
    pruner.apply_pruning(model)
    pruner.apply_dwr(model)
    self.assertAllEqual(model.layers[0].kernel, np.zeros((2, 3)))
    self.assertAllClose(model.layers[1].kernel, KERNEL_B)  # all 6 kept: scale 1

  def test_reset_masks_restores_ones_and_the_cumulative_rate(self):
    model = _two_dense()
    pruner = compat.LotteryTicketPruner(model)
    pruner.calc_prune_mask(model, 0.5, 'smallest_weights')
    pruner.reset_masks()
    self.assertEqual(pruner.cumulative_pruning_rate, 0.0)
    self.assertEqual(_alive_counts(pruner, model), [6, 6])
    pruner.calc_prune_mask(model, 0.5, 'smallest_weights')
    self.assertEqual(_alive_counts(pruner, model), [3, 3])

  def test_iterate_prunables_yields_old_seven_tuples_of_copies(self):
    model = _two_dense()
    pruner = compat.LotteryTicketPruner(model)
    model.layers[0].kernel.assign(KERNEL_A * 2)
    prunables = list(pruner.iterate_prunables(model))
    self.assertLen(prunables, 2)
    tpl, layer, index, initial, pretrained, current, mask = prunables[0]
    self.assertEqual((tpl, layer, index), ((0, (0,)), model.layers[0], 0))
    self.assertAllEqual(initial, KERNEL_A)
    self.assertIsNone(pretrained)
    self.assertAllEqual(current, KERNEL_A * 2)
    self.assertAllEqual(mask, np.ones((2, 3)))
    current[:] = 0.0
    self.assertAllEqual(model.layers[0].kernel, KERNEL_A * 2)
    pruner.set_pretrained_weights(model)
    self.assertAllEqual(next(iter(pruner.iterate_prunables(model))).pretrained_weights, KERNEL_A * 2)

  def test_nested_models_are_walked_in_order(self):
    inner = keras.Sequential([keras.layers.Dense(4, input_shape=(3,), name='inner')], name='block')
    model = keras.Sequential([keras.layers.Dense(3, input_shape=(2,), name='first'), inner,
                              keras.layers.Dense(1, name='last')])
    pruner = compat.LotteryTicketPruner(model)
    self.assertEqual([p.layer.name for p in pruner.iterate_prunables(model)], ['first', 'inner', 'last'])


class MixedLayersTest(tf.test.TestCase):

  def test_every_prunable_layer_type_has_its_kernels_found(self):
    model = _mixed_model()
    pruner = compat.LotteryTicketPruner(model)
    found = [(p.layer.name, p.layer.weights[p.index].name.split('/')[-1].split(':')[0])
             for p in pruner.iterate_prunables(model)]
    self.assertCountEqual(found, MIXED_PRUNABLES)
    layer_order = [layer.name for layer in model.layers]
    self.assertEqual(found, sorted(found, key=lambda item: layer_order.index(item[0])))  # in the model's order

  def test_pruning_a_mixed_model_leaves_biases_and_batch_norm_alone(self):
    model = _mixed_model()
    before = {w.name: w.numpy() for w in model.weights}
    pruner = compat.LotteryTicketPruner(model)
    pruner.calc_prune_mask(model, 0.5, 'smallest_weights')
    pruner.apply_pruning(model)
    kernels = set()
    for p in pruner.iterate_prunables(model):
      kernels.add(p.layer.weights[p.index].name)
      self.assertEqual(int(p.mask.sum()), int(np.floor(p.mask.size * 0.5 + 0.5)))
      self.assertAllEqual(p.current_weights, p.initial_weights * p.mask)
    for w in model.weights:
      if w.name not in kernels:
        self.assertAllEqual(w, before[w.name])

  def test_callback_keeps_a_mixed_model_pruned_through_fit(self):
    model = _mixed_model()
    pruner = compat.LotteryTicketPruner(model)
    pruner.calc_prune_mask(model, 0.6, 'smallest_weights_global')
    fixtures.compile_for_training(model)
    x, y = _mixed_data()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[compat.PrunerCallback(pruner)])
    for p in pruner.iterate_prunables(model):
      self.assertAllEqual(p.current_weights[p.mask == 0], np.zeros(int((p.mask == 0).sum())))


class _PrunedWeightProbe(keras.callbacks.Callback):
  """Records the largest |weight| at pruned positions before every batch."""

  def __init__(self, pruner):
    super().__init__()
    self.pruner = pruner
    self.largest = []

  def on_train_batch_begin(self, batch, logs=None):
    self.largest.append(max(float(np.abs(p.current_weights[p.mask == 0]).max(initial=0.0))
                            for p in self.pruner.iterate_prunables(self.model)))


class PrunerCallbackTest(tf.test.TestCase):

  def _pruned_mlp(self, learning_rate=0.05):
    model = fixtures.mlp()
    pruner = compat.LotteryTicketPruner(model)
    pruner.calc_prune_mask(model, 0.7, 'smallest_weights')
    return fixtures.compile_for_training(model, learning_rate), pruner

  def test_pruned_weights_are_zero_before_every_batch_and_after_fit(self):
    model, pruner = self._pruned_mlp()
    initial = [p.initial_weights for p in pruner.iterate_prunables(model)]
    probe = _PrunedWeightProbe(pruner)
    x, y = fixtures.classification_data()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[compat.PrunerCallback(pruner), probe])
    self.assertLen(probe.largest, 16)
    self.assertEqual(max(probe.largest), 0.0)
    for p, wi in zip(pruner.iterate_prunables(model), initial, strict=True):
      self.assertAllEqual(p.current_weights[p.mask == 0], np.zeros(int((p.mask == 0).sum())))
      self.assertNotAllClose(p.current_weights[p.mask == 1], wi[p.mask == 1])

  def test_without_the_callback_training_moves_pruned_weights(self):
    model, pruner = self._pruned_mlp()
    pruner.apply_pruning(model)
    x, y = fixtures.classification_data()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    self.assertGreater(max(np.abs(p.current_weights[p.mask == 0]).max() for p in pruner.iterate_prunables(model)), 0)

  def test_use_dwr_rescales_once_when_training_begins(self):
    model, pruner = self._pruned_mlp()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss='mse')
    x = np.zeros((8, 8), np.float32)
    model.fit(x, np.zeros((8, 4), np.float32), epochs=3, batch_size=4, verbose=0,
              callbacks=[compat.PrunerCallback(pruner, use_dwr=True)])
    for p in pruner.iterate_prunables(model):
      self.assertAllClose(p.current_weights, p.initial_weights * p.mask * p.mask.size / p.mask.sum())

  def test_callback_on_a_model_of_another_architecture_raises_when_training_begins(self):
    _, pruner = self._pruned_mlp()
    other = fixtures.compile_for_training(_two_dense())
    with self.assertRaisesRegex(ValueError, r"layer 0 \('a'\) has input shape \(None, 2\)"):
      other.fit(np.zeros((4, 2)), np.zeros(4), verbose=0, callbacks=[compat.PrunerCallback(pruner)])

  def test_callback_needs_a_pruner(self):
    with self.assertRaisesRegex(TypeError, r'pruner must be a LotteryTicketPruner, got Sequential'):
      compat.PrunerCallback(fixtures.mlp())


class BadInputTest(tf.test.TestCase, parameterized.TestCase):

  def _pruned_once(self):
    model = _two_dense()
    pruner = compat.LotteryTicketPruner(model)
    pruner.calc_prune_mask(model, 0.5, 'smallest_weights')
    return model, pruner

  def _assert_unchanged(self, pruner, model, masks, weights):
    self.assertAlmostEqual(pruner.cumulative_pruning_rate, 0.5)
    for want, got in zip(masks, _masks(pruner, model), strict=True):
      self.assertAllEqual(want, got)
    for want, got in zip(weights, model.get_weights(), strict=True):
      self.assertAllEqual(want, got)

  @parameterized.parameters(0.0, 1.0, -0.1, 1.5, float('nan'), '0.5', True, None)
  def test_bad_percentage_raises_naming_it_and_changes_nothing(self, percentage):
    model, pruner = self._pruned_once()
    masks, weights = _masks(pruner, model), model.get_weights()
    with self.assertRaisesRegex(ValueError, r'prune_percentage must be .* strictly between 0.0 and 1.0 .*got'):
      pruner.calc_prune_mask(model, percentage, 'smallest_weights')
    self._assert_unchanged(pruner, model, masks, weights)

  @parameterized.parameters('smallest', 'large_final_globalx', '', None)
  def test_unknown_strategy_raises_listing_the_allowed_ones(self, strategy):
    model, pruner = self._pruned_once()
    masks, weights = _masks(pruner, model), model.get_weights()
    with self.assertRaisesRegex(ValueError, r"prune_strategy must be one of \[.*'smallest_weights_global'.*\], got"):
      pruner.calc_prune_mask(model, 0.5, strategy)
    self._assert_unchanged(pruner, model, masks, weights)

  @parameterized.parameters('large_final', 'large_final_same_sign', 'magnitude_increase_global')
  def test_pretrained_strategy_without_pretrained_weights_raises(self, strategy):
    model, pruner = self._pruned_once()
    masks, weights = _masks(pruner, model), model.get_weights()
    with self.assertRaisesRegex(ValueError, rf"prune_strategy='{strategy}' ranks the pretrained weights, and none "
                                r'were set: call pruner.set_pretrained_weights'):
      pruner.calc_prune_mask(model, 0.5, strategy)
    self._assert_unchanged(pruner, model, masks, weights)

  @parameterized.parameters('calc_prune_mask', 'apply_pruning', 'apply_dwr', 'iterate_prunables',
                            'set_pretrained_weights')
  def test_model_with_other_layer_shapes_raises(self, method):
    model, pruner = self._pruned_once()
    masks, weights = _masks(pruner, model), model.get_weights()
    other = _two_dense(units_a=4)
    args = (0.5, 'smallest_weights') if method == 'calc_prune_mask' else ()
    with self.assertRaisesRegex(ValueError, r"layer 0 \('a'\) has output shape \(None, 4\), but layer 0 of the "
                                r'initial model has \(None, 3\)'):
      getattr(pruner, method)(other, *args)
    self._assert_unchanged(pruner, model, masks, weights)

  def test_model_missing_a_prunable_layer_raises(self):
    model, pruner = self._pruned_once()
    short = keras.Sequential([keras.layers.Dense(3, input_shape=(2,), name='a')])
    with self.assertRaisesRegex(ValueError, r"has 1 layers, but the initial model has a prunable layer at index 1 "
                                r"\('b'\)"):
      pruner.apply_pruning(short)
    del model

  def test_non_finite_weight_raises_before_changing_anything(self):
    model, pruner = self._pruned_once()
    masks = _masks(pruner, model)
    model.layers[1].kernel.assign(tf.tensor_scatter_nd_update(model.layers[1].kernel, [[0, 0]], [np.nan]))
    weights = model.get_weights()
    with self.assertRaisesRegex(ValueError, r"model weight .*kernel.* of layer 'b' has NaN or inf values"):
      pruner.calc_prune_mask(model, 0.5, 'smallest_weights_global')
    self._assert_unchanged(pruner, model, masks, weights)

  def test_unbuilt_model_raises(self):
    with self.assertRaisesRegex(ValueError, r'initial_model .* is not built yet'):
      compat.LotteryTicketPruner(keras.Sequential([keras.layers.Dense(2)]))

  def test_model_without_prunable_layer_raises(self):
    model = keras.Sequential([keras.layers.BatchNormalization(input_shape=(3,))])
    with self.assertRaisesRegex(ValueError, r'has no prunable layer; prunable are \[.*Dense.*\]'):
      compat.LotteryTicketPruner(model)

  def test_wrapped_model_points_to_the_tfmot_native_api(self):
    model = ltp_tfmot.prune_lottery_ticket(fixtures.mlp())
    with self.assertRaisesRegex(ValueError, r'wrapped for pruning .* use ltp_tfmot.run_lottery_round'):
      compat.LotteryTicketPruner(model)

  def test_non_keras_model_raises_type_error(self):
    with self.assertRaisesRegex(TypeError, r'initial_model must be a tf_keras Model, got builtins.list'):
      compat.LotteryTicketPruner([1, 2])

  @parameterized.parameters(1.5, '3', True)
  def test_bad_seed_raises(self, seed):
    with self.assertRaisesRegex(ValueError, r'seed must be an integer or None'):
      compat.LotteryTicketPruner(fixtures.mlp(), seed=seed)


if __name__ == '__main__':
  tf.test.main()
