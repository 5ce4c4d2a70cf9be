"""Tests for structured tickets: unit masks (granularity='unit'), unit groups and shrink."""

import itertools
import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot import models
from ltp_tfmot.core import masks as masks_lib
from tests import fixtures

# name: (builder, input shape)
NETS = {
    'mlp': (fixtures.mlp, (8,)),
    'conv_flatten': (fixtures.conv_flatten_net, (8, 8, 2)),
    'residual': (fixtures.residual_net, (8, 8, 3)),
    'mobilenet_v2': (fixtures.mobilenet_v2_blocks, (8, 8, 4)),
    'concat': (fixtures.concat_net, (6, 6, 2)),
}
REGISTERED = {
    'lenet_300_100': (lambda seed: models.lenet_300_100(seed=seed), (784,)),
    'conv2': (lambda seed: models.conv2((16, 16, 3), 10, seed), (16, 16, 3)),
    'conv4': (lambda seed: models.conv4((16, 16, 3), 10, seed), (16, 16, 3)),
    'conv6': (lambda seed: models.conv6((16, 16, 3), 10, seed), (16, 16, 3)),
    'resnet20': (lambda seed: models.cifar_resnet(20, (8, 8, 3), seed=seed), (8, 8, 3)),
    'vgg11': (lambda seed: models.cifar_vgg(11, (16, 16, 3), seed=seed), (16, 16, 3)),
}


def _wrapped(name, rate=0.5, nets=None, **kwargs):
  build, shape = (nets or NETS)[name]
  model = ltp_tfmot.prune_lottery_ticket(build(seed=0), ltp_tfmot.LotteryTicketSchedule(rate), granularity='unit',
                                         **kwargs)
  model.build((None,) + shape)
  return model, shape


def _train_like(model, seed, scale=0.1):
  """Stands in for training: moves every weight (removed units' too, BatchNorm's statistics included)."""
  rng = np.random.RandomState(seed)
  for weight in model.weights:
    name = weight.name
    if 'moving_variance' in name:
      weight.assign(weight * rng.uniform(0.5, 2.0, weight.shape).astype(np.float32))
    elif weight.trainable or 'moving_mean' in name:
      weight.assign_add(scale * rng.randn(*weight.shape).astype(np.float32))


def _units_alive(w, index=0):
  return masks_lib.alive_units(w.masks[index], w.unit_axis(index)).numpy()


def _group_units(model):
  """{group label: [alive-unit vectors of its wrappers' masks]}."""
  groups = {}
  for w in ltp_tfmot.lottery_wrappers(model):
    groups.setdefault(w.unit_group, []).extend(_units_alive(w, i) for i in range(len(w.masks)))
  return groups


class UnitMaskTest(tf.test.TestCase, parameterized.TestCase):

  def _assert_whole_units(self, model):
    for w in ltp_tfmot.lottery_wrappers(model):
      for i, mask in enumerate(w.masks):
        columns = tf.reshape(tf.experimental.numpy.moveaxis(mask, w.unit_axis(i), -1), [-1, mask.shape[w.unit_axis(i)]])
        columns = columns.numpy()
        self.assertTrue(np.all((columns == columns[:1]) & ((columns == 0) | (columns == 1))),
                        f'{w.layer.name}: a unit is partly masked')

  @parameterized.parameters(itertools.product(['conv_flatten', 'residual', 'mobilenet_v2'], ['layer', 'global']))
  def test_unit_masks_remove_whole_filters_with_exact_counts(self, name, scope):
    model, _ = _wrapped(name, rate=0.3, scope=scope)
    ltp_tfmot.take_snapshot(model)
    sizes = {label: len(units[0]) for label, units in _group_units(model).items() if label != 'output'}
    for r in range(1, 4):
      _train_like(model, seed=r)
      ltp_tfmot.run_lottery_round(model)
      self._assert_whole_units(model)
      groups = _group_units(model)
      for label, units in groups.items():
        for other in units[1:]:
          self.assertAllEqual(units[0], other, f'group {label}: tied layers disagree')
      kept = {label: int(units[0].sum()) for label, units in groups.items()}
      self.assertEqual(kept['output'], 3)  # model outputs are kept whole
      if scope == 'layer':
        self.assertEqual({label: kept[label] for label in sizes},
                         {label: masks_lib.keep_count(n, 0.7 ** r) for label, n in sizes.items()})
      else:
        self.assertEqual(sum(kept[label] for label in sizes), masks_lib.keep_count(sum(sizes.values()), 0.7 ** r))

  @parameterized.parameters(itertools.product(
      [name for name in ltp_tfmot.criterion_names() if not ltp_tfmot.get_criterion(name).needs_model],
      ['L1', 'L2', 'mean']))
  def test_every_criterion_of_weight_values_and_pooling_prunes_whole_units_with_exact_counts(self, criterion,
                                                                                             pooling):
    model, _ = _wrapped('mlp', rate=0.4, criterion=criterion, unit_pooling=pooling)
    ltp_tfmot.take_snapshot(model)
    _train_like(model, seed=1)
    ltp_tfmot.run_lottery_round(model)
    self._assert_whole_units(model)
    self.assertEqual([int(_units_alive(w).sum()) for w in ltp_tfmot.lottery_wrappers(model)], [10, 7, 4])

  def test_unit_score_pools_the_criterion_scores_of_its_weights(self):
    model, _ = _wrapped('mlp', rate=0.5, layer_rates={'hidden2': 0.0})
    hidden = ltp_tfmot.lottery_wrappers(model)[0]
    kernel = np.zeros([8, 16], np.float32)
    kernel[0, :] = np.arange(16)        # column sums 0..15 ...
    kernel[1, 3] = -100.0               # ... but |w| makes unit 3 the largest
    hidden.layer.kernel.assign(kernel)
    ltp_tfmot.take_snapshot(model)
    ltp_tfmot.compute_next_masks(model)
    self.assertAllEqual(np.flatnonzero(_units_alive(hidden)), [3, 9, 10, 11, 12, 13, 14, 15])

  def test_pool_units_keeps_the_sign_of_the_scores(self):
    scores = tf.constant([[3.0, -1.0], [4.0, -2.0]])
    self.assertAllClose(masks_lib.pool_units(scores, -1, 'L1'), [7.0, -3.0])
    self.assertAllClose(masks_lib.pool_units(scores, -1, 'L2'), [5.0, -np.sqrt(5.0)])
    self.assertAllClose(masks_lib.pool_units(scores, -1, 'mean'), [3.5, -1.5])
    self.assertAllClose(masks_lib.pool_units(scores, 0, 'L1'), [2.0, 2.0])

  def test_iterative_rounds_never_revive_units(self):
    model, _ = _wrapped('residual', rate=0.3, criterion='random')
    ltp_tfmot.take_snapshot(model)
    previous = None
    for r in range(1, 5):
      ltp_tfmot.run_lottery_round(model)
      alive = {w.name: _units_alive(w) for w in ltp_tfmot.lottery_wrappers(model)}
      if previous is not None:
        for name, units in alive.items():
          self.assertFalse(np.any(units & ~previous[name]), f'{name} revived a unit in round {r}')
      previous = alive

  def test_removed_units_bias_and_batchnorm_stay_zero_through_fit(self):
    build, shape = NETS['residual']
    schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=2, rounds=2)
    model = ltp_tfmot.prune_lottery_ticket(build(seed=0), schedule, granularity='unit')
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.SparseCategoricalCrossentropy(True))
    rng = np.random.RandomState(0)
    x, y = rng.randn(32, *shape).astype(np.float32), rng.randint(0, 3, 32)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])
    ltp_tfmot.apply_masks(model)
    bn = next(w for w in ltp_tfmot.lottery_wrappers(model) if w.layer.name == 'block0_bn1')
    removed = ~_units_alive(bn)
    self.assertEqual(int(removed.sum()), 6 - masks_lib.keep_count(6, 0.25))
    self.assertAllEqual(bn.layer.gamma.numpy()[removed], np.zeros(removed.sum()))
    self.assertAllEqual(bn.layer.beta.numpy()[removed], np.zeros(removed.sum()))
    conv = next(w for w in ltp_tfmot.lottery_wrappers(model) if w.layer.name == 'block0_conv1')
    self.assertAllEqual(_units_alive(conv), ~removed)


class RefusalTest(tf.test.TestCase, parameterized.TestCase):

  def _assert_refused_unchanged(self, model, pattern, **kwargs):
    before = [w.copy() for w in model.get_weights()]
    layers = [type(layer) for layer in model.layers]
    with self.assertRaisesRegex(ValueError, pattern):
      ltp_tfmot.prune_lottery_ticket(model, granularity='unit', **kwargs)
    for old, new in zip(before, model.get_weights(), strict=True):
      self.assertAllEqual(old, new)
    self.assertEqual(layers, [type(layer) for layer in model.layers])
    self.assertFalse(any(hasattr(layer, 'get_prunable_weights') for layer in model.layers
                         if isinstance(layer, keras.layers.BatchNormalization)))

  def test_a_group_that_cannot_be_followed_raises_before_changing_anything(self):
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(4, 3, padding='same', name='conv')(inputs)
    x = keras.layers.BatchNormalization(name='bn')(x)
    x = keras.layers.Reshape((8, 8), name='reshape')(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name='output')(keras.layers.Flatten()(x)))
    self._assert_refused_unchanged(model, r"units of layers \['conv'\] cannot be removed exactly.*'reshape'.*"
                                   r"layer_rates=\{'conv': 0.0")
    wrapped = ltp_tfmot.prune_lottery_ticket(model, granularity='unit', layer_rates={'conv': 0.0})
    self.assertEqual([w.layer.name for w in ltp_tfmot.lottery_wrappers(wrapped)], ['conv', 'output'])

  def test_an_activation_not_mapping_zero_to_zero_raises(self):
    model = keras.Sequential([keras.layers.Dense(6, activation='sigmoid', input_shape=(3,), name='hidden'),
                              keras.layers.Dense(2, name='output')])
    self._assert_refused_unchanged(model, r"'hidden' applies sigmoid, which does not map 0 to 0")

  def test_a_layer_without_units_raises(self):
    inputs = keras.Input((5, 3))
    x = keras.layers.LSTM(4, name='lstm')(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name='output')(x))
    self._assert_refused_unchanged(model, r"cannot prune layer 'lstm'.*layer_rates \{'lstm': 0.0\}")

  def test_tied_layers_with_different_rates_raise(self):
    self._assert_refused_unchanged(fixtures.residual_net(), r"prune the same units.*same rate",
                                   layer_rates={'block0_conv2': 0.1})

  def test_model_output_units_cannot_be_given_a_rate(self):
    self._assert_refused_unchanged(fixtures.mlp(), r"units of layers \['output'\] cannot be removed \(they are model "
                                   "outputs\\)", layer_rates={'output': 0.1})

  @parameterized.named_parameters(
      ('unknown_granularity', {'granularity': 'filter'}, r"granularity must be one of \['weight', 'unit'\]"),
      ('blocks', {'granularity': 'unit', 'block_size': (4, 1)}, r'block_size must be \(1, 1\).*granularity=.weight'),
      ('freeze', {'granularity': 'unit', 'mask_0_action': 'freeze'}, r"needs mask_0_action='zero'"),
      ('pooling', {'granularity': 'unit', 'unit_pooling': 'max'}, r"unit_pooling must be one of \['L1', 'L2'"),
  )
  def test_bad_arguments_raise_before_changing_anything(self, kwargs, pattern):
    model = fixtures.mlp()
    with self.assertRaisesRegex(ValueError, pattern):
      ltp_tfmot.prune_lottery_ticket(model, **kwargs)
    self.assertFalse(ltp_tfmot.lottery_wrappers(model))

  def test_model_criteria_refuse_unit_granularity_before_changing_anything(self):
    with self.assertRaisesRegex(ValueError, r"criterion 'snip' scores weights by running the model, which "
                                "granularity='unit' does not pool yet"):
      ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), granularity='unit', criterion='snip')
    model = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), granularity='unit')
    model.build((None, 8))
    before = fixtures.masks_of(model)
    data = fixtures.classification_data(n=16)
    with self.assertRaisesRegex(ValueError, r"prune_at_initialization sets masks weight by weight, but layers "
                                r"\['hidden1'.*granularity='weight'"):
      ltp_tfmot.prune_at_initialization(model, 'snip', 0.5, data=data)
    for name, mask in fixtures.masks_of(model).items():
      self.assertAllEqual(mask, before[name])

  def test_unit_granularity_on_a_list_of_layers_raises(self):
    with self.assertRaisesRegex(ValueError, r"needs a Sequential or functional tf_keras model"):
      ltp_tfmot.prune_lottery_ticket(fixtures.mlp().layers, granularity='unit')


class ShrinkTest(tf.test.TestCase, parameterized.TestCase):

  def _ticket(self, name, nets=None, rounds=2, **kwargs):
    model, shape = _wrapped(name, rate=0.4, nets=nets, **kwargs)
    ltp_tfmot.take_snapshot(model)
    for r in range(rounds):
      _train_like(model, seed=r + 1)
      ltp_tfmot.run_lottery_round(model)
    _train_like(model, seed=7)  # removed units' biases and BatchNorm parameters move too ...
    ltp_tfmot.apply_masks(model)  # ... until the masks are applied, as at every training step
    return model, np.random.RandomState(0).randn(4, *shape).astype(np.float32)

  @parameterized.parameters(itertools.product(sorted(NETS), ['layer', 'global']))
  def test_shrunk_outputs_equal_masked_outputs(self, name, scope):
    model, x = self._ticket(name, scope=scope)
    expected = model(x, training=False).numpy()
    small = ltp_tfmot.shrink(model)
    fixtures.assert_close_to_scale(self, small(x, training=False), expected)
    self.assertLess(small.count_params(), ltp_tfmot.strip_pruning(model).count_params())
    self.assertEmpty(ltp_tfmot.lottery_wrappers(small))

  @parameterized.parameters(sorted(REGISTERED))
  def test_registered_models_shrink_exactly(self, name):
    model, x = self._ticket(name, nets=REGISTERED, rounds=1, layer_rates={'output': 0.0})
    expected = model(x, training=False).numpy()
    small = ltp_tfmot.shrink(model)
    fixtures.assert_close_to_scale(self, small(x, training=False), expected)
    self.assertLess(small.count_params(), 0.7 * ltp_tfmot.strip_pruning(model).count_params())

  def test_shrink_removes_units_from_layers_and_their_consumers(self):
    model, _ = self._ticket('conv_flatten', rounds=1)
    small = ltp_tfmot.shrink(model)
    kept = {w.layer.name: int(_units_alive(w).sum()) for w in ltp_tfmot.lottery_wrappers(model)}
    self.assertEqual(kept, {'conv1': 4, 'conv2': 5, 'fc': 6, 'output': 3})
    layers = {layer.name: layer for layer in small.layers}
    self.assertEqual(layers['conv1'].kernel.shape, (3, 3, 2, 4))
    self.assertEqual(layers['conv2'].kernel.shape, (3, 3, 4, 5))
    self.assertEqual(layers['fc'].kernel.shape, (4 * 5, 6))
    self.assertEqual(layers['output'].kernel.shape, (6, 3))

  def test_stripped_ticket_shrinks_as_the_wrapped_one(self):
    model, x = self._ticket('mobilenet_v2')
    from_wrapped = ltp_tfmot.shrink(model)
    from_stripped = ltp_tfmot.shrink(ltp_tfmot.strip_pruning(model))
    self.assertEqual(from_wrapped.count_params(), from_stripped.count_params())
    fixtures.assert_close_to_scale(self, from_stripped(x, training=False), from_wrapped(x, training=False))

  def test_shrunk_model_trains_saves_and_exports(self):
    model, x = self._ticket('residual')
    small = ltp_tfmot.shrink(model)
    small.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.SparseCategoricalCrossentropy(True))
    before = [w.copy() for w in small.get_weights()]
    small.fit(x, np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    self.assertTrue(any(np.any(a != b) for a, b in zip(before, small.get_weights(), strict=True)))
    path = os.path.join(self.get_temp_dir(), 'small.keras')
    small.save(path)
    fixtures.assert_close_to_scale(self, keras.models.load_model(path)(x, training=False), small(x, training=False))
    report = ltp_tfmot.export_tflite(small, os.path.join(self.get_temp_dir(), 'small.tflite'), sample_inputs=x)
    self.assertGreater(report.file_bytes, 0)

  def test_wrapped_unit_ticket_saves_and_loads(self):
    model, x = self._ticket('residual', rounds=1)
    path = os.path.join(self.get_temp_dir(), 'ticket.h5')
    model.save(path)
    with ltp_tfmot.prune_scope():
      loaded = keras.models.load_model(path)
    self.assertEqual({w.unit_group for w in ltp_tfmot.lottery_wrappers(loaded)},
                     {w.unit_group for w in ltp_tfmot.lottery_wrappers(model)})
    fixtures.assert_close_to_scale(self, ltp_tfmot.shrink(loaded)(x, training=False), model(x, training=False))

  def test_ticket_file_carries_unit_masks_to_a_fresh_model(self):
    model, x = self._ticket('residual', rounds=1)
    path = os.path.join(self.get_temp_dir(), 'residual.ticket.npz')
    ltp_tfmot.save_ticket(model, path)
    fresh, _ = _wrapped('residual', rate=0.4)
    ltp_tfmot.load_ticket(fresh, path)
    for old, new in zip(ltp_tfmot.lottery_wrappers(model), ltp_tfmot.lottery_wrappers(fresh), strict=True):
      for old_mask, new_mask in zip(old.masks, new.masks, strict=True):
        self.assertAllEqual(old_mask, new_mask)
    self.assertEqual(ltp_tfmot.shrink(fresh).count_params(), ltp_tfmot.shrink(model).count_params())

  def test_a_group_with_all_units_removed_keeps_one_zero_unit(self):
    model, x = _wrapped('mlp', rate=0.5, scope='global')
    ltp_tfmot.take_snapshot(model)
    hidden2 = ltp_tfmot.lottery_wrappers(model)[1]
    hidden2.layer.kernel.assign(hidden2.layer.kernel * 1e-3)  # the global ranking removes every unit of hidden2
    ltp_tfmot.run_lottery_round(model)
    self.assertFalse(_units_alive(hidden2).any())
    x = np.random.RandomState(0).randn(4, 8).astype(np.float32)
    small = ltp_tfmot.shrink(model)
    self.assertEqual({layer.name: layer.kernel.shape[-1] for layer in small.layers}['hidden2'], 1)
    fixtures.assert_close_to_scale(self, small(x), model(x))

  def test_shrink_cuts_units_that_are_exactly_zero_in_any_model(self):
    model = keras.Sequential([keras.layers.Dense(6, input_shape=(3,), name='hidden'),
                              keras.layers.BatchNormalization(name='bn'), keras.layers.ReLU(),
                              keras.layers.Dense(2, name='output')])
    hidden, bn = model.get_layer('hidden'), model.get_layer('bn')
    kernel, bias = hidden.kernel.numpy(), np.full([6], 0.2, np.float32)
    kernel[:, 0] = bias[0] = 0.0
    hidden.set_weights([kernel, bias])
    bn.beta.assign(np.full([6], 0.5, np.float32))  # unit 0 is 0 after hidden, 0.5 after bn: it stays
    x = np.random.RandomState(0).randn(4, 3).astype(np.float32)
    self.assertEqual(ltp_tfmot.shrink(model).get_layer('hidden').units, 6)
    bn.gamma.assign(np.where(np.arange(6) == 0, 0.0, 1.0).astype(np.float32))
    bn.beta.assign(np.where(np.arange(6) == 0, 0.0, 0.5).astype(np.float32))
    small = ltp_tfmot.shrink(model)
    self.assertEqual(small.get_layer('hidden').units, 5)
    fixtures.assert_close_to_scale(self, small(x, training=False), model(x, training=False))

  def test_shrink_refuses_a_subclassed_model(self):
    net = fixtures.Subclassed()
    net(np.zeros((1, 3), np.float32))
    with self.assertRaisesRegex(ValueError, r'shrink needs a Sequential or functional tf_keras model'):
      ltp_tfmot.shrink(net)


if __name__ == '__main__':
  tf.test.main()
