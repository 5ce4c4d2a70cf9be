"""Tests for the rewind point of Keras 3 models: snapshots, mask-0/mask-1 actions, normalisation and optimizer."""

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf
import tf_keras

import ltp_tfmot


def _layers(library):
  return [library.layers.Dense(8, name='hidden'), library.layers.BatchNormalization(name='norm'),
          library.layers.Dense(3, name='output')]


def _twin_models(seed=0):
  """A Keras 2 and a Keras 3 model of one architecture holding the same weights."""
  k2 = tf_keras.Sequential([tf_keras.Input((5,))] + _layers(tf_keras))
  k3 = keras.Sequential([keras.Input((5,))] + _layers(keras))
  rng = np.random.default_rng(seed)
  weights = [rng.standard_normal(w.shape).astype(np.float32) for w in k2.get_weights()]
  k2.set_weights(weights)
  k3.set_weights(weights)
  return k2, k3


def _move(model, seed):
  """Changes the layers' weights by the same amounts in both front ends, as training would."""
  rng = np.random.default_rng(seed)
  wrapped = {w.layer.name: w.layer for w in ltp_tfmot.lottery_wrappers(model)}
  for name in ('hidden', 'norm', 'output'):
    layer = wrapped.get(name) or model.get_layer(name)
    for variable in layer.weights:
      value = np.asarray(variable.numpy())
      variable.assign(value + rng.standard_normal(value.shape).astype(np.float32))


def _kernels(model):
  return {w.layer.name: np.asarray(w.layer.kernel.numpy()) for w in ltp_tfmot.lottery_wrappers(model)}


class RewindLikeKeras2Test(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ('rewind', {}), ('reshuffle', {'mask_1_action': 'reshuffle'}),
      ('signed_constant', {'mask_1_action': 'signed_constant'}), ('freeze', {'mask_0_action': 'freeze'}),
      ('dynamic_weight_rescaling', {'dynamic_weight_rescaling': True}))
  def test_a_round_starts_the_survivors_where_keras_2_does(self, settings):
    kernels = []
    for model in _twin_models():
      wrapped = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(0.5), seed=3, **settings)
      ltp_tfmot.take_snapshot(wrapped)
      _move(wrapped, seed=1)
      ltp_tfmot.compute_next_masks(wrapped)
      ltp_tfmot.rewind_weights(wrapped)
      kernels.append(_kernels(wrapped))
    for name, want in kernels[0].items():
      self.assertAllClose(kernels[1][name], want, rtol=1e-6, atol=1e-6, msg=name)


class RewindPointTest(tf.test.TestCase):

  def test_normalisation_weights_go_back_to_the_snapshot(self):
    _, model = _twin_models()
    wrapped = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(0.5))
    norm = wrapped.get_layer('norm')
    before = [np.asarray(v.numpy()) for v in norm.weights]
    ltp_tfmot.take_snapshot(wrapped)
    _move(wrapped, seed=2)
    ltp_tfmot.rewind_weights(wrapped)
    for variable, value in zip(norm.weights, before, strict=True):
      self.assertAllEqual(np.asarray(variable.numpy()), value)

  def test_reinit_draws_fresh_values_from_the_seed(self):
    def rewound(seed):
      _, model = _twin_models()
      wrapped = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(0.5), mask_1_action='reinit',
                                               seed=seed)
      ltp_tfmot.take_snapshot(wrapped)
      ltp_tfmot.rewind_weights(wrapped)
      return _kernels(wrapped)['hidden']

    snapshot = _kernels(ltp_tfmot.prune_lottery_ticket(_twin_models()[1]))['hidden']
    self.assertAllEqual(rewound(1), rewound(1))
    self.assertNotAllClose(rewound(1), rewound(2))
    self.assertNotAllClose(rewound(1), snapshot)

  def test_late_rewinding_sets_the_optimizer_to_the_rewind_step_with_fresh_slots(self):
    _, model = _twin_models()
    wrapped = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(0.5))
    wrapped.compile(keras.optimizers.Adam(1e-2), 'mse')
    x = np.random.default_rng(0).standard_normal((16, 5)).astype(np.float32)
    wrapped.fit(x, np.zeros((16, 3), np.float32), batch_size=4, epochs=1, verbose=0)  # 4 steps
    ltp_tfmot.take_snapshot(wrapped, step=4)
    wrapped.fit(x, np.zeros((16, 3), np.float32), batch_size=4, epochs=1, verbose=0)
    ltp_tfmot.run_lottery_round(wrapped)
    self.assertEqual(int(wrapped.optimizer.iterations.numpy()), 4)
    slots = [v for v in wrapped.optimizer.variables if 'momentum' in v.path or 'velocity' in v.path]
    self.assertTrue(slots)
    self.assertTrue(all(not np.asarray(v.numpy()).any() for v in slots))
    self.assertEqual(float(np.asarray(wrapped.optimizer.learning_rate.numpy())), np.float32(1e-2))

  def test_reset_optimizer_refuses_a_keras_2_optimizer(self):
    with self.assertRaisesRegex(TypeError, r'optimizer must be a Keras 3 optimizer'):
      from ltp_tfmot.keras3 import rewind  # pylint: disable=g-import-not-at-top
      rewind.reset_optimizer(tf_keras.optimizers.SGD())


class CustomLoopTest(tf.test.TestCase):

  def test_rounds_in_a_loop_of_your_own(self):
    """A round between steps of a user's loop: `stateless_call` values are put into the variables first."""
    _, model = _twin_models()
    wrapped = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(0.5))
    optimizer = keras.optimizers.SGD(0.1)
    optimizer.build(wrapped.trainable_variables)
    loss_fn = keras.losses.MeanSquaredError()
    x = np.random.default_rng(0).standard_normal((8, 5)).astype(np.float32)
    y = np.zeros((8, 3), np.float32)
    ltp_tfmot.take_snapshot(wrapped)
    step = _jax_step if keras.backend.backend() == 'jax' else _tf_step
    for _ in range(3):
      step(wrapped, optimizer, loss_fn, x, y)
    ltp_tfmot.run_lottery_round(wrapped, optimizer)
    self.assertAllClose(ltp_tfmot.weights_remaining(wrapped), 0.5, atol=0.02)
    self.assertEqual(ltp_tfmot.steps_done(wrapped, optimizer), 3)


def _tf_step(model, optimizer, loss_fn, x, y):
  with tf.GradientTape() as tape:
    loss = loss_fn(y, model(x, training=True))
  gradients = tape.gradient(loss, model.trainable_variables)
  optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))


def _jax_step(model, optimizer, loss_fn, x, y):
  import jax  # pylint: disable=g-import-not-at-top
  trainable = [v.value for v in model.trainable_variables]
  non_trainable = [v.value for v in model.non_trainable_variables]

  def loss(trainable_values):
    outputs, _ = model.stateless_call(trainable_values, non_trainable, x, training=True)
    return loss_fn(y, outputs)

  gradients = jax.grad(loss)(trainable)
  trainable, optimizer_values = optimizer.stateless_apply([v.value for v in optimizer.variables], gradients,
                                                          trainable)
  # Put the step's values into the variables, where a round (and the next step) reads them.
  for variable, value in zip(model.trainable_variables, trainable, strict=True):
    variable.assign(value)
  for variable, value in zip(optimizer.variables, optimizer_values, strict=True):
    variable.assign(value)


if __name__ == '__main__':
  tf.test.main()
