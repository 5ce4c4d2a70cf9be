"""Tests for pruning at initialization: SNIP, GraSP and SynFlow scores, and `prune_at_initialization`."""

import itertools
import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot import experiment
from ltp_tfmot.experiment import storage
from tests import fixtures

PAI_CRITERIA = ('snip', 'grasp', 'synflow', 'large_init', 'random')
SIZES = (128, 192, 48)  # the kernels of fixtures.mlp()


def _wrapped(model):
  wrapped = ltp_tfmot.prune_lottery_ticket(model)
  wrapped.build(model.input_shape)
  return wrapped


def _kernels(model):
  return [weight for w in ltp_tfmot.lottery_wrappers(model) for weight in w.prunable_weights]


def _masks(model):
  return [mask.numpy() for w in ltp_tfmot.lottery_wrappers(model) for mask in w.masks]


def _assert_masks(test, model, expected):
  for got, want in zip(_masks(model), expected, strict=True):
    test.assertAllEqual(got.astype(bool), want)


def _state(model):
  return [v.numpy().copy() for v in model.variables]


def _tiny(seed=0):
  """A 4-3-2 tanh network with biases: small enough to differentiate by hand."""
  init = lambda offset: keras.initializers.RandomNormal(stddev=0.8, seed=seed + offset)
  return keras.Sequential([
      keras.layers.Dense(3, activation='tanh', input_shape=(4,), kernel_initializer=init(0),
                         bias_initializer=init(1), name='hidden'),
      keras.layers.Dense(2, kernel_initializer=init(2), bias_initializer=init(3),
                         name='output'),
  ])


def _tiny_batch():
  rng = np.random.RandomState(3)
  return rng.randn(5, 4).astype(np.float32), np.array([0, 1, 1, 0, 1], np.int64)


def _tiny_gradients(params, x, y, example_weights=None):
  """Gradients of the tiny network's mean (weighted) softmax cross-entropy, by the chain rule in float64."""
  w1, b1, w2, b2 = params
  h = np.tanh(x @ w1 + b1)
  z = h @ w2 + b2
  p = np.exp(z - z.max(axis=1, keepdims=True))
  p /= p.sum(axis=1, keepdims=True)
  weights = np.ones(len(x)) if example_weights is None else example_weights
  dz = (p - np.eye(2)[y]) * weights[:, None] / len(x)
  da = (dz @ w2.T) * (1.0 - h**2)
  return [x.T @ da, da.sum(axis=0), h.T @ dz, dz.sum(axis=0)]


def _tiny_params(model):
  return [v.numpy().astype(np.float64) for v in
          (model.layers[0].layer.kernel, model.layers[0].layer.bias, model.layers[1].layer.kernel,
           model.layers[1].layer.bias)]


def _no_bias_convnet(seed=0):
  init = lambda offset: keras.initializers.GlorotUniform(seed=seed + offset)
  inputs = keras.Input((6, 6, 2))
  x = keras.layers.Conv2D(4, 3, use_bias=False, kernel_initializer=init(0), name='conv1')(inputs)
  x = keras.layers.BatchNormalization(name='bn')(x)
  x = keras.layers.ReLU()(x)
  x = keras.layers.Conv2D(3, 3, use_bias=False, kernel_initializer=init(1), name='conv2')(x)
  x = keras.layers.Flatten()(x)
  return keras.Model(inputs, keras.layers.Dense(5, use_bias=False, kernel_initializer=init(2), name='dense')(x))


def _no_bias_mlp(seed=0):
  init = lambda offset: keras.initializers.GlorotUniform(seed=seed + offset)
  return keras.Sequential([
      keras.layers.Dense(16, activation='relu', use_bias=False, input_shape=(8,), kernel_initializer=init(0)),
      keras.layers.Dense(12, activation='relu', use_bias=False, kernel_initializer=init(1)),
      keras.layers.Dense(4, use_bias=False, kernel_initializer=init(2)),
  ])


class _Holder(keras.Model):
  """A subclassed model around one lottery wrapper."""

  def __init__(self):
    super().__init__()
    self.dense = ltp_tfmot.prune_lottery_ticket(keras.layers.Dense(3))

  def call(self, inputs):
    return self.dense(inputs)


class SynFlowTest(tf.test.TestCase, parameterized.TestCase):

  def _scores(self, model, batch):
    return [s.numpy() for s in ltp_tfmot.get_criterion('synflow').score_model(model, _kernels(model), batch)]

  def test_scores_are_the_same_for_any_data_or_none(self):
    model = _wrapped(fixtures.convnet())
    rng = np.random.RandomState(0)
    without = self._scores(model, None)
    for seed in (1, 2):
      x = rng.randn(3 * seed, 8, 8, 2).astype(np.float32)
      for got, want in zip(self._scores(model, (x, np.zeros(len(x), np.int64))), without, strict=True):
        self.assertAllEqual(got, want)

  def test_each_layer_scores_sum_to_the_synaptic_flow_of_the_network(self):
    model = _wrapped(_no_bias_mlp())
    kernels = [np.abs(k.numpy().astype(np.float64)) for k in _kernels(model)]
    flow = np.ones((1, 8)) @ kernels[0] @ kernels[1] @ kernels[2]
    for layer_sum in (s.sum() for s in self._scores(model, None)):
      self.assertAllClose(layer_sum, flow.sum(), rtol=1e-5)

  def test_flow_is_conserved_across_conv_batchnorm_and_dense_layers(self):
    model = _wrapped(_no_bias_convnet())
    sums = [s.sum() for s in self._scores(model, None)]
    self.assertGreater(sums[0], 0.0)
    self.assertAllClose(sums, [sums[0]] * len(sums), rtol=1e-5)

  def test_scoring_and_pruning_restore_the_signed_weights(self):
    model = _wrapped(fixtures.convnet())
    before = _state(model)
    self._scores(model, None)
    for got, want in zip(_state(model), before, strict=True):
      self.assertAllEqual(got, want)
    self.assertLess(before[0].min(), 0.0)  # a kernel with negative weights, which scoring made positive
    ltp_tfmot.prune_at_initialization(model, 'synflow', 0.4, iterations=3)
    for w in ltp_tfmot.lottery_wrappers(model):
      kernel = dict(zip([v.ref() for v in model.variables], before, strict=True))[w.prunable_weights[0].ref()]
      self.assertAllEqual(w.prunable_weights[0].numpy(), kernel * w.masks[0].numpy())

  def test_prunes_in_the_papers_100_iterations_by_default(self):
    masks = {}
    for iterations in (None, 100, 1):
      model = _wrapped(_tiny())
      ltp_tfmot.prune_at_initialization(model, 'synflow', 0.3, scope='global', iterations=iterations)
      masks[iterations] = np.concatenate([m.ravel() for m in _masks(model)])
    self.assertAllEqual(masks[None], masks[100])
    self.assertNotAllEqual(masks[100], masks[1])  # iterating changes which weights survive

  def test_pruned_weights_carry_no_flow(self):
    model = _wrapped(_no_bias_mlp())
    ltp_tfmot.prune_at_initialization(model, 'synflow', 0.5, iterations=2)
    for score, mask in zip(self._scores(model, None), _masks(model), strict=True):
      self.assertAllEqual(score[mask == 0], np.zeros(int(np.sum(mask == 0))))


class SnipTest(tf.test.TestCase):

  def test_scores_are_the_loss_gradient_times_the_weight(self):
    model = _wrapped(_tiny())
    x, y = _tiny_batch()
    params = _tiny_params(model)
    gradients = _tiny_gradients(params, x.astype(np.float64), y)
    scores = ltp_tfmot.get_criterion('snip').score_model(model, _kernels(model), (x, y))
    self.assertAllClose(scores[0], np.abs(gradients[0] * params[0]), rtol=1e-4, atol=1e-7)
    self.assertAllClose(scores[1], np.abs(gradients[2] * params[2]), rtol=1e-4, atol=1e-7)

  def test_masks_keep_the_highest_hand_computed_scores_of_the_compiled_loss(self):
    class_weights = np.array([1.0, 10.0])

    def weighted_cross_entropy(y, logits):
      losses = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
      return losses * tf.gather(tf.constant(class_weights, tf.float32), tf.cast(y, tf.int32))

    model = _wrapped(_tiny())
    model.compile(loss=weighted_cross_entropy)
    x, y = _tiny_batch()
    params = _tiny_params(model)

    def hand_masks(example_weights):
      gradients = _tiny_gradients(params, x.astype(np.float64), y, example_weights)
      hand = [np.abs(gradients[0] * params[0]), np.abs(gradients[2] * params[2])]
      return fixtures.reference_keep(hand, [np.ones_like(s, bool) for s in hand], 9)

    expected = hand_masks(class_weights[y])
    # The weights change the ranking: masks of the plain cross-entropy would differ.
    self.assertTrue(any(np.any(a != b) for a, b in zip(expected, hand_masks(None), strict=True)))
    ltp_tfmot.prune_at_initialization(model, 'snip', 0.5, data=(x, y), scope='global')
    _assert_masks(self, model, expected)


class GraspTest(tf.test.TestCase):

  def _hand_scores(self, model, x, y):
    """w * (H g) for the kernels, H g from central differences of the hand gradients along the kernels' g."""
    params = _tiny_params(model)
    x = x.astype(np.float64)
    g = _tiny_gradients(params, x, y)
    direction = [g[0], np.zeros_like(g[1]), g[2], np.zeros_like(g[3])]
    eps = 1e-5
    plus = _tiny_gradients([p + eps * d for p, d in zip(params, direction, strict=True)], x, y)
    minus = _tiny_gradients([p - eps * d for p, d in zip(params, direction, strict=True)], x, y)
    hg = [(a - b) / (2 * eps) for a, b in zip(plus, minus, strict=True)]
    return [params[0] * hg[0], params[2] * hg[2]]

  def test_scores_are_the_weight_times_a_finite_difference_hessian_gradient_product(self):
    model = _wrapped(_tiny())
    x, y = _tiny_batch()
    hand = self._hand_scores(model, x, y)
    scores = ltp_tfmot.get_criterion('grasp').score_model(model, _kernels(model), (x, y))
    for got, want in zip(scores, hand, strict=True):
      self.assertGreater(np.abs(want).max(), 1e-4)
      self.assertAllClose(got, want, rtol=1e-3, atol=1e-4 * np.abs(want).max())

  def test_keeps_the_weights_whose_removal_reduces_gradient_flow_least(self):
    # GraSP's score is -w * Hg and it removes the highest: the kept ones have the highest w * Hg.
    model = _wrapped(_tiny(seed=5))
    x, y = _tiny_batch()
    hand = self._hand_scores(model, x, y)
    ltp_tfmot.prune_at_initialization(model, 'grasp', 0.5, data=(x, y), scope='global')
    expected = fixtures.reference_keep(hand, [np.ones_like(s, bool) for s in hand], 9)
    _assert_masks(self, model, expected)


class PruneAtInitializationTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(itertools.product(PAI_CRITERIA, ['layer', 'global'], [1, 3]))
  def test_masks_keep_exact_counts(self, criterion, scope, iterations):
    model = _wrapped(fixtures.mlp())
    x, y = fixtures.classification_data()
    sparsity = ltp_tfmot.prune_at_initialization(model, criterion, 0.3, data=(x, y), scope=scope,
                                                 iterations=iterations)
    counts = [int(np.count_nonzero(m)) for m in _masks(model)]
    if scope == 'layer':
      self.assertEqual(counts, [int(np.floor(n * 0.3 + 0.5)) for n in SIZES])
    else:
      self.assertEqual(sum(counts), int(np.floor(sum(SIZES) * 0.3 + 0.5)))
    self.assertEqual(sparsity, ltp_tfmot.layer_sparsity(model))
    for kernel, mask in zip(_kernels(model), _masks(model), strict=True):
      self.assertAllEqual(kernel.numpy()[mask == 0], np.zeros(int(np.sum(mask == 0))))

  @parameterized.parameters('snip', 'grasp', 'synflow')
  def test_model_criteria_prune_a_conv_network_with_batchnorm_to_exact_counts(self, criterion):
    model = _wrapped(fixtures.convnet())
    rng = np.random.RandomState(0)
    data = (rng.randn(6, 8, 8, 2).astype(np.float32), rng.randint(0, 3, 6))
    ltp_tfmot.prune_at_initialization(model, criterion, 0.2, data=data, scope='global', iterations=2)
    total = sum(m.size for m in _masks(model))
    self.assertEqual(sum(int(np.count_nonzero(m)) for m in _masks(model)), int(np.floor(total * 0.2 + 0.5)))

  @parameterized.parameters(*PAI_CRITERIA)
  def test_iterations_never_revive_a_pruned_weight(self, criterion):
    model = _wrapped(fixtures.mlp())
    rng = np.random.RandomState(1)
    pruned_before = [rng.rand(*mask.shape) < 0.5 for mask in _masks(model)]
    for w, pruned in zip(ltp_tfmot.lottery_wrappers(model), pruned_before, strict=True):
      w.masks[0].assign(np.where(pruned, 0.0, 1.0).astype(np.float32))
    data = fixtures.classification_data()
    ltp_tfmot.prune_at_initialization(model, criterion, 0.2, data=data, iterations=4)
    first = _masks(model)
    for mask, pruned, n in zip(first, pruned_before, SIZES, strict=True):
      self.assertFalse(np.any(mask[pruned]), 'a weight pruned before was revived')
      self.assertEqual(int(np.count_nonzero(mask)), int(np.floor(n * 0.2 + 0.5)))
    ltp_tfmot.prune_at_initialization(model, criterion, 0.1, data=data, scope='global', iterations=3)
    for later, earlier in zip(_masks(model), first, strict=True):
      self.assertFalse(np.any(later[earlier == 0]), 'a weight pruned by the first call was revived')

  def test_large_init_keeps_the_largest_initial_magnitudes(self):
    model = _wrapped(fixtures.mlp())
    magnitudes = [np.abs(k.numpy()) for k in _kernels(model)]
    ltp_tfmot.prune_at_initialization(model, 'large_init', 0.25, scope='global')
    expected = fixtures.reference_keep(magnitudes, [np.ones_like(m, bool) for m in magnitudes],
                                       int(np.floor(sum(SIZES) * 0.25 + 0.5)))
    _assert_masks(self, model, expected)

  def test_random_masks_repeat_with_the_wrappers_seed_and_differ_with_another(self):
    masks = []
    for seed in (4, 4, 5):
      model = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), seed=seed)
      model.build((None, 8))
      ltp_tfmot.prune_at_initialization(model, 'random', 0.5)
      masks.append(np.concatenate([m.ravel() for m in _masks(model)]))
    self.assertAllEqual(masks[0], masks[1])
    self.assertNotAllEqual(masks[0], masks[2])

  def test_snip_takes_the_first_batch_of_a_dataset(self):
    x, y = fixtures.classification_data()
    from_arrays, from_dataset = _wrapped(fixtures.mlp()), _wrapped(fixtures.mlp())
    ltp_tfmot.prune_at_initialization(from_arrays, 'snip', 0.3, data=(x[:16], y[:16]))
    ltp_tfmot.prune_at_initialization(from_dataset, 'snip', 0.3,
                                      data=tf.data.Dataset.from_tensor_slices((x, y)).batch(16))
    for a, b in zip(_masks(from_arrays), _masks(from_dataset), strict=True):
      self.assertAllEqual(a, b)

  def test_custom_model_criterion_is_ranked_like_the_built_in_ones(self):

    def output_gradient(model, kernels, batch, loss):
      del batch, loss
      with tf.GradientTape() as tape:
        total = tf.reduce_sum(model(tf.ones([1, 8]), training=False))
      return [tf.abs(g) for g in tape.gradient(total, kernels)]

    criterion = ltp_tfmot.ModelCriterion('output_gradient_test', output_gradient, needs_data=False)
    model = _wrapped(fixtures.mlp())
    scores = [s.numpy() for s in criterion.score_model(model, _kernels(model), None)]
    ltp_tfmot.prune_at_initialization(model, criterion, 0.5)
    for mask, score in zip(_masks(model), scores, strict=True):
      self.assertAllEqual(mask.astype(bool), fixtures.reference_keep([score], [np.ones_like(score, bool)],
                                                                     int(np.floor(score.size * 0.5 + 0.5)))[0])


class RoundTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(('snip', 'layer'), ('grasp', 'global'), ('synflow', 'layer'))
  def test_a_round_scores_the_rewind_point_and_never_revives(self, criterion, scope):
    schedule = ltp_tfmot.LotteryTicketSchedule(0.4)
    data = fixtures.classification_data()
    trained = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), schedule, criterion=criterion, scope=scope)
    at_init = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), schedule, criterion=criterion, scope=scope)
    for model in (trained, at_init):
      model.build((None, 8))
      ltp_tfmot.take_snapshot(model)
    snapshots = [w.prunable_snapshots[0].numpy() for w in ltp_tfmot.lottery_wrappers(trained)]
    previous = None
    for r in range(1, 3):
      fixtures.perturb(trained, seed=r)  # stands in for training: the round must score the rewind point
      ltp_tfmot.run_lottery_round(trained, data=data)
      ltp_tfmot.compute_next_masks(at_init, data=data)
      ltp_tfmot.apply_masks(at_init)
      masks = _masks(trained)
      _assert_masks(self, at_init, [m.astype(bool) for m in masks])
      counts = [int(np.count_nonzero(m)) for m in masks]
      if scope == 'layer':
        self.assertEqual(counts, [int(np.floor(n * 0.6**r + 0.5)) for n in SIZES])
      else:
        self.assertEqual(sum(counts), int(np.floor(sum(SIZES) * 0.6**r + 0.5)))
      for kernel, snapshot, mask in zip(_kernels(trained), snapshots, masks, strict=True):
        self.assertAllEqual(kernel.numpy(), snapshot * mask)
      if previous is not None:
        for mask, earlier in zip(masks, previous, strict=True):
          self.assertFalse(np.any(mask[earlier == 0]), 'a weight pruned in an earlier round was revived')
      previous = masks

  def test_fit_runs_synflow_rounds_on_its_schedule(self):
    model = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), ltp_tfmot.LotteryTicketSchedule(0.3, 4, 2),
                                           criterion='synflow', scope='global')
    fixtures.compile_for_training(model)
    x, y = fixtures.classification_data(n=48)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])
    self.assertEqual(sum(int(np.count_nonzero(m)) for m in _masks(model)), int(np.floor(sum(SIZES) * 0.49 + 0.5)))

  def test_a_failed_round_leaves_weights_masks_and_batchnorm_as_they_were(self):
    model = ltp_tfmot.prune_lottery_ticket(fixtures.convnet(), criterion='synflow')
    model.build((None, 8, 8, 2))
    ltp_tfmot.take_snapshot(model)
    fixtures.perturb(model)
    model.get_layer('bn').moving_mean.assign_add(tf.ones([4]))  # a rewind would put it back
    snapshot = ltp_tfmot.lottery_wrappers(model)[2].prunable_snapshots[0]
    snapshot.assign(tf.tensor_scatter_nd_update(snapshot, [[0, 0]], [np.nan]))
    before = _state(model)
    with self.assertRaisesRegex(ValueError, 'NaN or inf'):
      ltp_tfmot.run_lottery_round(model)
    for got, want in zip(_state(model), before, strict=True):
      self.assertAllEqual(got, want)


# Keras' loop (jit_compile=False): compiling a step with XLA costs these small runs more than their training.
_RUN_TRAINING = experiment.TrainingConfig(learning_rate=0.01, batch_size=16, epochs=1, eval_every=5, jit_compile=False)


class RunnerTest(tf.test.TestCase):

  def test_each_level_of_a_snip_run_is_scored_at_the_rewind_point_on_a_training_batch(self):
    config = experiment.RunConfig(
        model='mlp', data=experiment.DataConfig(name='toy'),
        training=_RUN_TRAINING,
        pruning=experiment.PruningConfig(rate=0.5, layer_rates={}, levels=2, criterion='snip'))
    x, y = fixtures.classification_data(n=96, seed=0)
    runner = experiment.LotteryExperiment(
        config, run_dir=self.get_temp_dir(), model_fn=lambda shape, classes, seed: fixtures.mlp(seed),
        data=(x, y) + fixtures.classification_data(n=32, seed=1), tensorboard=False, log=lambda line: None)
    results = runner.run()
    remaining = {m['level']: m['weights_alive'] for m in results}
    self.assertEqual(remaining, {k: sum(int(np.floor(n * 0.5**k + 0.5)) for n in SIZES) for k in range(3)})
    # The same masks by hand: SNIP of the initial weights on the first batch of the run's training data.
    model = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(config.seed), ltp_tfmot.LotteryTicketSchedule(0.5),
                                           criterion='snip')
    model.build((None, 8))
    ltp_tfmot.take_snapshot(model)
    batch = next(iter(runner.factory.train_dataset(config.seed, 0).take(1)))
    for level in (1, 2):
      ltp_tfmot.compute_next_masks(model, data=batch)
      ltp_tfmot.apply_masks(model)
      path = os.path.join(runner.run_dir, 'replicate_0', f'level_{level}', 'main', storage.MASKS)
      for got, want in zip(storage.masks_from_arrays(storage.load_arrays(path))['masks'], _masks(model),
                           strict=True):
        self.assertAllEqual(got, want)


class InversionTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters('large_final', 'snip')
  def test_inverted_scores_branch_keeps_the_counts_and_what_the_main_run_pruned(self, criterion):
    config = experiment.RunConfig(
        model='mlp', data=experiment.DataConfig(name='toy'),
        training=_RUN_TRAINING,
        pruning=experiment.PruningConfig(rate=0.5, layer_rates={}, levels=2, criterion=criterion),
        controls=('inverted_scores',))
    run_dir = self.get_temp_dir()
    results = experiment.LotteryExperiment(
        config, run_dir=run_dir, model_fn=fixtures.run_model_fn, data=fixtures.RUN_DATA, tensorboard=False,
        log=lambda line: None).run()
    self.assertEqual({(m['level'], m['branch']) for m in results},
                     {(0, 'main'), (1, 'main'), (2, 'main'), (1, 'inverted_scores'), (2, 'inverted_scores')})
    main = {level: storage.load_masks(run_dir, 0, level)['masks'] for level in (0, 1, 2)}
    for level in (1, 2):
      inverted = storage.load_masks(run_dir, 0, level, 'inverted_scores')
      for before, kept, flipped in zip(main[level - 1], main[level], inverted['masks'], strict=True):
        self.assertEqual(np.count_nonzero(flipped), np.count_nonzero(kept))
        # Half of the alive weights kept each level: the inverted half is exactly the other one.
        self.assertAllEqual(flipped, before * (1 - kept))
      rewind = storage.load_masks(run_dir, 0, 0)
      for got, want in zip(inverted['snapshots'], rewind['snapshots'], strict=True):
        self.assertAllEqual(got, want)

  def test_inverted_criterion_negates_the_scores_and_is_registered_once(self):
    inverted = ltp_tfmot.inverted_criterion('large_final')
    self.assertIs(ltp_tfmot.inverted_criterion('large_final'), inverted)
    self.assertIs(ltp_tfmot.get_criterion('large_final_inverted'), inverted)
    final = tf.constant([[-3.0, 0.5], [2.0, -0.1]])
    self.assertAllEqual(inverted.score(None, final, tf.ones_like(final, tf.bool), tf.constant([0, 0])),
                        -tf.abs(final))
    snip = ltp_tfmot.inverted_criterion('snip')
    self.assertTrue(snip.needs_model and snip.needs_data)
    model = _no_bias_mlp()
    batch = (tf.constant(np.random.RandomState(0).randn(4, 8), tf.float32), tf.constant([0, 1, 2, 0]))
    kernels = [layer.kernel for layer in model.layers if hasattr(layer, 'kernel')]
    for got, want in zip(snip.score_model(model, kernels, batch),
                         ltp_tfmot.get_criterion('snip').score_model(model, kernels, batch), strict=True):
      self.assertAllEqual(got, -want)

  def test_a_taken_inverted_name_is_refused(self):
    for name in ('taken_test', 'taken_test_inverted'):
      ltp_tfmot.register_criterion(ltp_tfmot.Criterion(name, lambda wi, wf: wf, needs_initial=False), overwrite=True)
    with self.assertRaisesRegex(ValueError, r"'taken_test_inverted' is registered that is not the inversion of "
                                r"'taken_test'"):
      ltp_tfmot.inverted_criterion('taken_test')


class BadInputTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ('snip_without_data', dict(data=None), ValueError, r"'snip' scores from gradients on data: pass data="),
      ('grasp_without_data', dict(criterion='grasp', data=None), ValueError, r"'grasp' .* pass data=\(x, y\)"),
      ('data_one_array', dict(data=np.zeros((4, 8), np.float32)), ValueError, r'data must be one batch \(x, y\)'),
      ('data_sizes_differ', dict(data=(np.zeros((4, 8), np.float32), np.zeros(3, np.int64))), ValueError,
       r'one label per example, got inputs of shapes \[\(4, 8\)\] and labels of shape \(3,\)'),
      ('empty_dataset', dict(data=tf.data.Dataset.from_tensor_slices((np.zeros((0, 8)), np.zeros(0))).batch(2)),
       ValueError, 'empty tf.data.Dataset'),
      ('weights_remaining_one', dict(weights_remaining=1.0), ValueError, r'weights_remaining must be in \(0, 1\)'),
      ('weights_remaining_zero', dict(weights_remaining=0.0), ValueError, r'weights_remaining must be in \(0, 1\)'),
      ('weights_remaining_text', dict(weights_remaining='0.1'), TypeError, 'weights_remaining must be a number'),
      ('unknown_scope', dict(scope='network'), ValueError, r"scope must be one of \['layer', 'global'\]"),
      ('zero_iterations', dict(iterations=0), ValueError, 'iterations must be an integer >= 1, got 0'),
      ('fractional_iterations', dict(iterations=1.5), TypeError, 'iterations must be an integer >= 1, got 1.5'),
      ('unknown_criterion', dict(criterion='snap'), ValueError, r"criterion must be one of \[.*'snip'.*\], got"),
  )
  def test_bad_arguments_raise_before_any_change(self, overrides, error, message):
    model = _wrapped(fixtures.mlp())
    kwargs = dict(criterion='snip', weights_remaining=0.5, data=fixtures.classification_data())
    kwargs.update(overrides)
    before = _state(model)
    with self.assertRaisesRegex(error, message):
      ltp_tfmot.prune_at_initialization(model, kwargs.pop('criterion'), **kwargs)
    for got, want in zip(_state(model), before, strict=True):
      self.assertAllEqual(got, want)

  def test_a_layer_list_is_refused_for_model_criteria(self):
    model = _wrapped(fixtures.mlp())
    with self.assertRaisesRegex(TypeError, "'synflow' scores by running the model: pass the whole keras.Model"):
      ltp_tfmot.prune_at_initialization(model.layers, 'synflow', 0.5)

  def test_model_without_wrappers_is_refused(self):
    with self.assertRaisesRegex(ValueError, 'wrap it with ltp_tfmot.prune_lottery_ticket first'):
      ltp_tfmot.prune_at_initialization(fixtures.mlp(), 'snip', 0.5, data=fixtures.classification_data())

  @parameterized.parameters('snip', 'synflow', 'large_init')
  def test_non_finite_scores_leave_masks_and_weights_as_they_were(self, criterion):
    model = _wrapped(fixtures.mlp())
    kernel = _kernels(model)[1]
    kernel.assign(tf.tensor_scatter_nd_update(kernel, [[0, 0]], [np.inf]))
    before = _state(model)
    with self.assertRaisesRegex(ValueError, 'NaN or inf'):
      ltp_tfmot.prune_at_initialization(model, criterion, 0.5, data=fixtures.classification_data(), iterations=2)
    for got, want in zip(_state(model), before, strict=True):
      self.assertAllEqual(got, want)

  def test_synflow_needs_an_input_shape_or_data(self):
    model = _Holder()
    model(tf.zeros([2, 4]))  # a subclassed model: no keras.Input to shape the ones from
    with self.assertRaisesRegex(ValueError, r'no fixed input shape: .* pass data=\(x, y\)'):
      ltp_tfmot.prune_at_initialization(model, 'synflow', 0.5, iterations=1)
    self.assertAllEqual(_masks(model)[0], np.ones([4, 3]))
    ltp_tfmot.prune_at_initialization(model, 'synflow', 0.5, iterations=1,
                                      data=(np.zeros((2, 4), np.float32), np.zeros(2, np.int64)))
    self.assertEqual(int(np.count_nonzero(_masks(model)[0])), 6)

  def test_a_pruning_round_without_data_refuses_snip_before_any_change(self):
    model = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), criterion='snip')
    model.build((None, 8))
    ltp_tfmot.take_snapshot(model)
    fixtures.perturb(model)
    before = _state(model)
    with self.assertRaisesRegex(ValueError, r"'snip' scores from gradients on data: pass data=\(x, y\)"):
      ltp_tfmot.run_lottery_round(model)
    for got, want in zip(_state(model), before, strict=True):
      self.assertAllEqual(got, want)
    with self.assertRaisesRegex(ValueError, 'prune_at_initialization'):
      ltp_tfmot.get_criterion('snip').score(tf.ones([2]), tf.ones([2]), tf.ones([2], tf.bool), None)

  def test_a_model_criterion_with_wrong_score_shapes_is_refused(self):
    criterion = ltp_tfmot.ModelCriterion('wrong_shapes_test', lambda model, kernels, batch, loss: [tf.ones([2])],
                                         needs_data=False)
    model = _wrapped(fixtures.mlp())
    before = _state(model)
    with self.assertRaisesRegex(ValueError, 'return one score tensor per kernel, shaped like it'):
      ltp_tfmot.prune_at_initialization(model, criterion, 0.5)
    for got, want in zip(_state(model), before, strict=True):
      self.assertAllEqual(got, want)


if __name__ == '__main__':
  tf.test.main()
