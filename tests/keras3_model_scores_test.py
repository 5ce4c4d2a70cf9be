"""Tests for the model criteria on Keras 3 models: SNIP, GraSP and SynFlow scores as Keras 2's, on either backend."""

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

import ltp_tfmot
from ltp_tfmot.keras3 import model_scores
from tests import fixtures

_MODEL_CRITERIA = ('snip', 'grasp', 'synflow', 'snip_inverted', 'grasp_inverted', 'synflow_inverted')
# GraSP's Hessian-gradient product is a second derivative: float32 rounding differs more between its two ways.
_RTOL = {'grasp': 1e-3}


def _batch(seed=0):
  rng = np.random.default_rng(seed)
  return rng.standard_normal((8, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, 8)


def _kernels(model):
  return [weight for w in ltp_tfmot.lottery_wrappers(model) for weight in w.prunable_weights]


def _masks(model):
  return [np.asarray(mask) for w in ltp_tfmot.lottery_wrappers(model) for mask in w.masks]


def _criterion(name):
  base = name.removesuffix('_inverted')
  return ltp_tfmot.inverted_criterion(base) if base != name else ltp_tfmot.get_criterion(name)


class ScoresAsKeras2Test(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(*_MODEL_CRITERIA)
  def test_scores_are_those_of_keras_2_on_the_same_weights_and_batch(self, name):
    criterion = _criterion(name)
    keras2_model, keras3_model = fixtures.keras2_and_keras3_twins(keras)
    batch = criterion.batch(_batch())
    want = criterion.score_model(keras2_model, _kernels(keras2_model), batch)
    got = model_scores.model_scores(keras3_model, criterion, _kernels(keras3_model), batch)
    for got_scores, want_scores in zip(got, want, strict=True):
      self.assertEqual(got_scores.dtype, tf.float32)
      fixtures.assert_close_to_scale(self, got_scores, want_scores, rtol=_RTOL.get(name.split('_')[0], 1e-5))

  @parameterized.parameters('snip', 'grasp')
  def test_scores_use_the_compiled_loss(self, name):
    criterion = ltp_tfmot.get_criterion(name)
    keras2_model, keras3_model = fixtures.keras2_and_keras3_twins(keras, seed=1)
    keras2_model.compile(loss='mse')
    keras3_model.compile(loss='mse')
    x, labels = _batch(seed=1)
    batch = criterion.batch((x, np.eye(3, dtype=np.float32)[labels]))
    want = criterion.score_model(keras2_model, _kernels(keras2_model), batch)
    got = model_scores.model_scores(keras3_model, criterion, _kernels(keras3_model), batch)
    for got_scores, want_scores in zip(got, want, strict=True):
      fixtures.assert_close_to_scale(self, got_scores, want_scores, rtol=_RTOL.get(name, 1e-5))

  def test_scores_count_pruned_weights_as_zero_and_leave_the_weights_as_they_were(self):
    criterion = ltp_tfmot.get_criterion('snip')
    keras2_model, keras3_model = fixtures.keras2_and_keras3_twins(keras, seed=2)
    for model in (keras2_model, keras3_model):
      ltp_tfmot.prune_at_initialization(model, 'large_init', 0.5)
    before = [np.asarray(v) for v in keras3_model.variables]
    batch = criterion.batch(_batch(seed=2))
    want = criterion.score_model(keras2_model, _kernels(keras2_model), batch)
    got = model_scores.model_scores(keras3_model, criterion, _kernels(keras3_model), batch)
    for got_scores, want_scores, mask in zip(got, want, _masks(keras3_model), strict=True):
      fixtures.assert_close_to_scale(self, got_scores, want_scores)
      self.assertAllEqual(np.asarray(got_scores)[mask == 0], np.zeros(int(np.sum(mask == 0))))
    for variable, value in zip(keras3_model.variables, before, strict=True):
      self.assertAllEqual(np.asarray(variable), value)


class RoundsWithModelCriteriaTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(name=('snip', 'grasp', 'synflow'), scope=('layer', 'global'))
  def test_a_round_scores_the_rewind_point_as_keras_2(self, name, scope):
    masks = []
    settings = {'pruning_schedule': ltp_tfmot.LotteryTicketSchedule(0.4), 'criterion': name, 'scope': scope}
    for model in fixtures.keras2_and_keras3_twins(keras, seed=3, **settings):
      ltp_tfmot.take_snapshot(model)
      for w in ltp_tfmot.lottery_wrappers(model):
        w.layer.kernel.assign(np.asarray(w.layer.kernel) * 2.0)  # trained weights differ from the rewind point
      ltp_tfmot.run_lottery_round(model, data=_batch(seed=3))
      masks.append(_masks(model))
    for want, got in zip(*masks, strict=True):
      self.assertAllEqual(got, want)


class CriteriaOfYourOwnTest(tf.test.TestCase):

  def test_a_criterion_of_your_own_runs_on_tensorflow_and_is_refused_on_jax_naming_the_fix(self):
    criterion = ltp_tfmot.get_criterion(ltp_tfmot.ModelCriterion(
        'keras3_model_scores_test_ones', lambda model, kernels, batch, loss: [tf.ones(k.shape) for k in kernels],
        needs_data=False))
    _, model = fixtures.keras2_and_keras3_twins(keras)
    if keras.backend.backend() == 'jax':
      with self.assertRaisesRegex(ValueError, r"'keras3_model_scores_test_ones' .* KERAS_BACKEND=tensorflow"):
        model_scores.model_scores(model, criterion, _kernels(model), None)
    else:
      scores = model_scores.model_scores(model, criterion, _kernels(model), None)
      self.assertAllEqual([s.shape for s in scores], [k.shape for k in _kernels(model)])


if __name__ == '__main__':
  tf.test.main()
