"""Tests for the round boundaries: the next masks' exact counts, blocks, reports and refusals."""

import itertools

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot.core import masks
from tests import fixtures

# The criteria a pruning round ranks with (not those scoring from the model and data: see init_pruning_test).
CRITERIA = [name for name in ltp_tfmot.criterion_names() if not ltp_tfmot.get_criterion(name).needs_model]


def _alive_counts(model):
  return [int(np.count_nonzero(mask)) for mask in fixtures.masks_of(model).values()]


class ExactCountTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(itertools.product(CRITERIA, ['layer', 'global']))
  def test_each_round_prunes_exact_count(self, criterion, scope):
    model = fixtures.wrapped_mlp(criterion=criterion, scope=scope, schedule=ltp_tfmot.LotteryTicketSchedule(0.3))
    ltp_tfmot.take_snapshot(model)
    sizes = [128, 192, 48]
    for r in range(1, 4):
      fixtures.perturb(model, seed=r)
      ltp_tfmot.run_lottery_round(model)
      counts = _alive_counts(model)
      if scope == 'layer':
        self.assertEqual(counts, [int(np.floor(n * 0.7 ** r + 0.5)) for n in sizes])
      else:
        self.assertEqual(sum(counts), int(np.floor(sum(sizes) * 0.7 ** r + 0.5)))

  def test_global_scope_prunes_exact_count_with_its_own_ranking(self):
    model = fixtures.wrapped_mlp(scope='global', schedule=ltp_tfmot.LotteryTicketSchedule(0.5))
    ltp_tfmot.take_snapshot(model)
    weights = [w.layer.kernel for w in model.layers]
    weights[2].assign(weights[2] * 100.0)  # the output layer dominates a global ranking
    flat = np.concatenate([np.abs(w.numpy()).ravel() for w in weights])
    threshold = np.sort(flat)[-184]
    expected = [int((np.abs(w.numpy()) >= threshold).sum()) for w in weights]
    ltp_tfmot.compute_next_masks(model)
    self.assertEqual(_alive_counts(model), expected)
    self.assertEqual(expected[2], 48)

  def test_layer_rate_zero_excludes_a_layer_and_output_at_half_rate(self):
    model = fixtures.wrapped_mlp(scope='global', layer_rates={'hidden2': 0.0, 'output': 0.1},
                                 schedule=ltp_tfmot.LotteryTicketSchedule(0.2))
    ltp_tfmot.take_snapshot(model)
    ltp_tfmot.run_lottery_round(model)
    self.assertEqual(_alive_counts(model), [102, 192, 43])

  @parameterized.parameters(CRITERIA)
  def test_masks_never_revive(self, criterion):
    model = fixtures.wrapped_mlp(criterion=criterion, schedule=ltp_tfmot.LotteryTicketSchedule(0.4))
    ltp_tfmot.take_snapshot(model)
    previous = fixtures.masks_of(model)
    for r in range(4):
      fixtures.perturb(model, seed=10 + r, scale=2.0)
      ltp_tfmot.run_lottery_round(model)
      current = fixtures.masks_of(model)
      for name in current:
        self.assertTrue(np.all(current[name] <= previous[name]), name)
      previous = current

  def test_same_seed_gives_same_random_masks_and_other_seed_differs(self):
    masks = []
    for seed in (3, 3, 4):
      model = fixtures.wrapped_mlp(criterion='random', seed=seed, schedule=ltp_tfmot.LotteryTicketSchedule(0.5))
      ltp_tfmot.compute_next_masks(model)
      masks.append(fixtures.masks_of(model))
    for name in masks[0]:
      self.assertAllEqual(masks[0][name], masks[1][name])
    self.assertFalse(all(np.array_equal(masks[0][n], masks[2][n]) for n in masks[0]))

  def test_same_architecture_built_twice_draws_the_same_random_masks_and_reinit_weights(self):
    def run(seed):
      # Automatic layer names: the second build's layers are dense_2, dense_3, ... where the first had dense, ...
      model = keras.Sequential([keras.layers.Dense(6, input_shape=(4,)), keras.layers.Dense(3)])
      model = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(0.5), criterion='random',
                                             mask_1_action='reinit', seed=seed)
      ltp_tfmot.take_snapshot(model)
      ltp_tfmot.run_lottery_round(model)
      return [w.layer.name for w in model.layers], [v.numpy() for w in model.layers for v in w.layer.weights] + [
          mask.numpy() for w in model.layers for _, mask, _ in w.pruning_vars]

    names, first = run(3)
    other_names, second = run(3)
    self.assertNotEqual(names, other_names)
    for want, got in zip(first, second, strict=True):
      self.assertAllEqual(got, want)
    _, third = run(4)
    self.assertFalse(all(np.array_equal(want, got) for want, got in zip(first, third, strict=True)))

  def test_a_wrapper_given_alone_draws_what_it_draws_in_its_model(self):
    whole = fixtures.wrapped_mlp(criterion='random', schedule=ltp_tfmot.LotteryTicketSchedule(0.5))
    ltp_tfmot.compute_next_masks(whole)
    alone = fixtures.wrapped_mlp(criterion='random', schedule=ltp_tfmot.LotteryTicketSchedule(0.5))
    ltp_tfmot.compute_next_masks(alone.layers[2])
    self.assertAllEqual(alone.layers[2].pruning_vars[0][1], whole.layers[2].pruning_vars[0][1])

  def test_same_shaped_kernels_of_one_layer_draw_different_random_masks(self):
    inputs = keras.Input((4, 3))
    model = ltp_tfmot.prune_lottery_ticket(keras.Model(inputs, keras.layers.LSTM(3)(inputs)),
                                           ltp_tfmot.LotteryTicketSchedule(0.5), criterion='random')
    ltp_tfmot.compute_next_masks(model)
    (_, kernel_mask, _), (_, recurrent_mask, _) = model.layers[1].pruning_vars
    self.assertEqual(kernel_mask.shape, recurrent_mask.shape)
    self.assertNotAllEqual(kernel_mask, recurrent_mask)

  def test_large_final_keeps_the_largest_trained_weights(self):
    model = fixtures.wrapped_mlp(schedule=ltp_tfmot.LotteryTicketSchedule(0.5))
    ltp_tfmot.compute_next_masks(model)
    for w in model.layers:
      kernel, mask = np.abs(w.layer.kernel.numpy()), w.pruning_vars[0][1].numpy()
      self.assertGreaterEqual(kernel[mask == 1].min(), kernel[mask == 0].max())


class CustomLoopTest(tf.test.TestCase):

  def test_custom_loop_trains_and_prunes_after_take_snapshot(self):
    model = fixtures.wrapped_mlp(scope='global', schedule=ltp_tfmot.LotteryTicketSchedule(0.5))
    optimizer = keras.optimizers.Adam(0.01)
    x, y = fixtures.classification_data()
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def train_step():
      with tf.GradientTape() as tape:  # two training calls in one step
        loss = loss_fn(y[:32], model(x[:32], training=True)) + loss_fn(y[32:], model(x[32:], training=True))
      grads = tape.gradient(loss, model.trainable_variables)
      optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))

    ltp_tfmot.take_snapshot(model)  # no UpdateLotteryStep: the snapshot starts the step count
    for level in range(2):
      for _ in range(3):
        train_step()
      ltp_tfmot.run_lottery_round(model, optimizer)
      self.assertEqual(sum(_alive_counts(model)), int(np.floor(368 * 0.5 ** (level + 1) + 0.5)))
    train_step()
    ltp_tfmot.apply_masks(model)
    self.assertEqual(ltp_tfmot.steps_done(model, optimizer), 7)  # optimizer steps, through two resets
    for w in model.layers:
      self.assertEqual(np.count_nonzero(w.layer.kernel.numpy()[w.pruning_vars[0][1].numpy() == 0]), 0)


class RoundBadInputTest(tf.test.TestCase, parameterized.TestCase):

  def _state(self, model):
    return [v.numpy().copy() for v in model.weights]

  def _assert_unchanged(self, model, state):
    for want, got in zip(state, model.weights, strict=True):
      self.assertAllEqual(want, got)

  @parameterized.parameters(float('nan'), float('inf'))
  def test_non_finite_weight_raises_before_changing_anything(self, bad):
    model = fixtures.wrapped_mlp()
    ltp_tfmot.take_snapshot(model)
    kernel = model.layers[1].layer.kernel
    kernel.assign(tf.tensor_scatter_nd_update(kernel, [[0, 0]], [bad]))
    state = self._state(model)
    with self.assertRaisesRegex(ValueError, r"kernel.*in layer 'hidden2' has NaN or inf values"):
      ltp_tfmot.run_lottery_round(model)
    self._assert_unchanged(model, state)

  @parameterized.parameters(itertools.product(['large_final', 'magnitude_increase', 'random', 'large_init_large_final'],
                                               [float('nan'), float('inf')]))
  def test_non_finite_snapshot_raises_before_changing_anything(self, criterion, bad):
    model = fixtures.wrapped_mlp(criterion=criterion)
    ltp_tfmot.take_snapshot(model)
    snapshot = model.layers[1].prunable_snapshots[0]
    snapshot.assign(tf.tensor_scatter_nd_update(snapshot, [[3, 2]], [bad]))
    state = self._state(model)
    with self.assertRaisesRegex(ValueError, r"the snapshot of .*kernel.* in layer 'hidden2' has NaN or inf values"):
      ltp_tfmot.compute_next_masks(model)
    self._assert_unchanged(model, state)

  def test_non_finite_weight_of_an_unpruned_layer_raises(self):
    model = fixtures.wrapped_mlp(scope='global', layer_rates={'output': 0.0})
    ltp_tfmot.take_snapshot(model)
    model.layers[2].layer.kernel[0, 0].assign(float('nan'))
    state = self._state(model)
    with self.assertRaisesRegex(ValueError, r"output/kernel:0 in layer 'output' has NaN or inf values"):
      ltp_tfmot.compute_next_masks(model)
    self._assert_unchanged(model, state)

  @parameterized.parameters('magnitude_increase', 'large_init', 'large_final_same_sign')
  def test_init_criterion_without_snapshot_raises(self, criterion):
    model = fixtures.wrapped_mlp(criterion=criterion)
    state = self._state(model)
    with self.assertRaisesRegex(ValueError, r'ranks by the rewind snapshot, and none was taken yet'):
      ltp_tfmot.compute_next_masks(model)
    self._assert_unchanged(model, state)

  def test_rewind_without_snapshot_raises(self):
    model = fixtures.wrapped_mlp()
    state = self._state(model)
    with self.assertRaisesRegex(ValueError, r'no rewind snapshot yet'):
      ltp_tfmot.run_lottery_round(model)
    self._assert_unchanged(model, state)


class BlockMaskTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(itertools.product(CRITERIA, ['layer', 'global'], [(4, 1), (2, 3)]))
  def test_block_masks_are_whole_blocks_with_exact_block_counts(self, criterion, scope, block):
    model = fixtures.wrapped_mlp(criterion=criterion, scope=scope, block_size=block,
                                 schedule=ltp_tfmot.LotteryTicketSchedule(0.3))
    ltp_tfmot.take_snapshot(model)
    previous = fixtures.masks_of(model)
    for r in range(1, 3):
      fixtures.perturb(model, seed=r)
      ltp_tfmot.run_lottery_round(model)
      block_counts = []
      for w in model.layers:
        mask = w.pruning_vars[0][1].numpy()
        blocks = masks.block_reduce(tf.constant(mask > 0), block).numpy()
        # Whole blocks: expanding the block mask gives the mask back.
        self.assertAllEqual(masks.block_expand(tf.constant(blocks), block, mask.shape), mask > 0)
        block_counts.append((int(blocks.sum()), blocks.size))
      if scope == 'layer':
        self.assertEqual([kept for kept, _ in block_counts],
                         [masks.keep_count(n, 0.7 ** r) for _, n in block_counts])
      else:
        self.assertEqual(sum(k for k, _ in block_counts), masks.keep_count(sum(n for _, n in block_counts), 0.7 ** r))
      current = fixtures.masks_of(model)
      for name in current:
        self.assertTrue(np.all(current[name] <= previous[name]), name)
      previous = current

  def test_block_scores_are_pooled(self):
    model = fixtures.wrapped_mlp(block_size=(4, 1), schedule=ltp_tfmot.LotteryTicketSchedule(0.5))
    kernel = model.layers[0].layer.kernel
    values = np.ones((8, 16), np.float32)
    values[:4, 0] = [10.0, 0.0, 0.0, 0.0]   # mean 2.5: kept with AVG pooling
    values[4:, 0] = [0.9, 0.9, 0.9, 0.9]   # mean 0.9: pruned
    kernel.assign(values)
    ltp_tfmot.compute_next_masks(model)
    mask = model.layers[0].pruning_vars[0][1].numpy()
    self.assertAllEqual(mask[:, 0], [1, 1, 1, 1, 0, 0, 0, 0])

  def test_convolution_kernels_are_pruned_weight_by_weight_beside_blocked_dense(self):
    model = ltp_tfmot.prune_lottery_ticket(fixtures.convnet(), ltp_tfmot.LotteryTicketSchedule(0.5),
                                           block_size=(4, 1))
    model.build((None, 8, 8, 2))
    ltp_tfmot.compute_next_masks(model)
    self.assertEqual(ltp_tfmot.layer_sparsity(model), {'conv': 0.5, 'depthwise': 0.5, 'output': 0.5})

  def test_bad_block_size_is_refused(self):
    with self.assertRaisesRegex(ValueError, r'block_size must be two integers >= 1, e.g. \(4, 1\), got \(0, 1\)'):
      fixtures.wrapped_mlp(block_size=(0, 1))


class SparsityReportTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(itertools.product(CRITERIA, ['layer', 'global']))
  def test_returned_sparsity_equals_the_masks(self, criterion, scope):
    model = fixtures.wrapped_mlp(criterion=criterion, scope=scope, layer_rates={'output': 0.0},
                                 schedule=ltp_tfmot.LotteryTicketSchedule(0.45))
    ltp_tfmot.take_snapshot(model)
    for r in range(2):
      fixtures.perturb(model, seed=r)
      self.assertEqual(ltp_tfmot.compute_next_masks(model), ltp_tfmot.layer_sparsity(model))

  def test_layer_sparsity_and_weights_remaining_read_the_masks(self):
    model = fixtures.wrapped_mlp(schedule=ltp_tfmot.LotteryTicketSchedule(0.25))
    ltp_tfmot.compute_next_masks(model)
    self.assertEqual(ltp_tfmot.layer_sparsity(model), {'hidden1': 0.25, 'hidden2': 0.25, 'output': 0.25})
    self.assertEqual(ltp_tfmot.weights_remaining(model), 0.75)


class CompiledScoresTest(tf.test.TestCase, parameterized.TestCase):
  """Tensors large enough for the XLA passes, with the scores computed inside them."""

  @parameterized.parameters([name for name in CRITERIA if ltp_tfmot.get_criterion(name).fusable])
  def test_compiled_scores_give_the_masks_of_eagerly_computed_scores(self, criterion):
    rows, cols = 520, 512  # 266,240 weights: above the size from which the passes are compiled
    self.assertGreaterEqual(rows * cols, masks._XLA_MIN_SIZE)  # pylint: disable=protected-access
    model = ltp_tfmot.prune_lottery_ticket(
        keras.Sequential([keras.layers.Dense(cols, input_shape=(rows,), name='wide')]),
        ltp_tfmot.LotteryTicketSchedule(0.3), criterion=criterion)
    model.build((None, rows))
    wrapper = model.layers[0]
    rng = np.random.RandomState(7)
    initial = rng.randn(rows, cols).astype(np.float32)
    # Rounded values: many ties at the cut-off, so the tie rule is exercised too.
    final = np.round(initial + 0.5 * rng.randn(rows, cols), 2).astype(np.float32)
    alive = rng.rand(rows, cols) < 0.9
    wrapper.layer.kernel.assign(initial)
    ltp_tfmot.take_snapshot(model)
    wrapper.layer.kernel.assign(final)
    wrapper.pruning_vars[0][1].assign(alive.astype(np.float32))
    scores = ltp_tfmot.get_criterion(criterion).score(tf.constant(initial), tf.constant(final), None, None)
    expected = fixtures.reference_keep([scores.numpy()], [alive], int(np.floor(rows * cols * 0.7 + 0.5)))[0]
    ltp_tfmot.compute_next_masks(model)
    self.assertAllEqual(wrapper.pruning_vars[0][1].numpy().astype(bool), expected)

  def test_one_global_ranking_of_large_conv_and_dense_kernels_keeps_the_exact_count(self):
    # Kernels of two ranks retrace the compiled pass without a static rank (as in Conv-6).
    model = ltp_tfmot.prune_lottery_ticket(keras.Sequential([
        keras.layers.Conv2D(256, 3, input_shape=(3, 3, 128)), keras.layers.Flatten(), keras.layers.Dense(1024),
        keras.layers.Dense(1024)]), ltp_tfmot.LotteryTicketSchedule(0.2), scope='global')
    model.build((None, 3, 3, 128))
    sizes = [3 * 3 * 128 * 256, 256 * 1024, 1024 * 1024]
    self.assertGreaterEqual(min(sizes), masks._XLA_MIN_SIZE)  # pylint: disable=protected-access
    ltp_tfmot.compute_next_masks(model)
    self.assertEqual(sum(_alive_counts(model)), int(np.floor(sum(sizes) * 0.8 + 0.5)))

  def test_models_of_several_widths_share_the_compiled_passes(self):
    for width in (512, 700, 1120):  # one compiled pass per shape, retraced with relaxed shapes after a few
      model = ltp_tfmot.prune_lottery_ticket(
          keras.Sequential([keras.layers.Dense(width, input_shape=(784,)), keras.layers.Dense(width)]),
          ltp_tfmot.LotteryTicketSchedule(0.2), scope='global')
      model.build((None, 784))
      ltp_tfmot.compute_next_masks(model)
      self.assertEqual(sum(_alive_counts(model)), int(np.floor((784 + width) * width * 0.8 + 0.5)))


if __name__ == '__main__':
  tf.test.main()
