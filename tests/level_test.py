"""Tests of training one level: the callbacks that act at exact iterations, the stop on divergence, the flat row."""

import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot import errors
from ltp_tfmot import experiment
from ltp_tfmot.experiment import level
from tests import fixtures

X, Y = fixtures.classification_data(n=160, seed=0)  # 10 steps at batch 16


class _CountSteps(experiment.RunHooks):

  def __init__(self):
    self.steps = 0

  def after_train_step(self):
    self.steps += 1


class CallbacksTest(tf.test.TestCase):

  def test_validation_curve_evaluates_at_the_start_every_few_iterations_and_at_the_end(self):
    model = fixtures.compile_for_training(fixtures.mlp(0))
    curve = level.ValidationCurve(lambda x, y: (1.0, 0.5), X[:8], Y[:8], every=4, total=10)
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0, callbacks=[curve])
    self.assertEqual([p['iteration'] for p in curve.curve], [0, 4, 8, 10])
    self.assertEqual(curve.curve[0], {'iteration': 0, 'val_loss': 1.0, 'val_accuracy': 0.5})

  def test_hooks_see_every_step_also_with_several_steps_per_execution(self):
    model = fixtures.mlp(0)
    fixtures.compile_for_training(model)
    model.compile(optimizer=model.optimizer, loss=model.loss, metrics=['accuracy'], steps_per_execution=5)
    hooks = _CountSteps()
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0, callbacks=[level.AfterTrainStep(hooks)])
    self.assertEqual(hooks.steps, 10)

  def test_rewind_point_snapshots_after_its_step(self):
    model = ltp_tfmot.prune_lottery_ticket(fixtures.mlp(0))
    fixtures.compile_for_training(model)
    snapshots = []
    rewind = level.RewindPoint(3, lambda: snapshots.append(level.iteration(model)))
    weights_at_3 = []

    class _Record(keras.callbacks.Callback):

      def on_train_batch_end(self, batch, logs=None):
        if level.iteration(model) == 3:
          weights_at_3.append(model.layers[0].layer.kernel.numpy())

    model.fit(X, Y, batch_size=16, epochs=1, verbose=0,
              callbacks=[ltp_tfmot.UpdateLotteryStep(), rewind, _Record()])
    self.assertEqual(snapshots, [3])
    self.assertTrue(rewind.taken)
    wrapper = model.layers[0]
    self.assertEqual(int(wrapper.snapshot_step.numpy()), 3)
    self.assertAllEqual(wrapper.snapshots[0].numpy(), weights_at_3[0])

  def test_a_nan_loss_stops_the_level_naming_it(self):
    model = fixtures.compile_for_training(fixtures.mlp(0))
    model.optimizer.iterations.assign(7)
    stop = level.StopOnDivergence((1, 2, 'reinit'))
    stop.set_model(model)
    stop.on_train_batch_end(0, {'loss': 0.5})
    with self.assertRaisesRegex(errors.TrainingDivergedError, r'^replicate 1 level 2 reinit: the training loss is '
                                r'nan at iteration 7, so training diverged and the level was not written\. Lower '
                                r'the learning rate'):
      stop.on_train_batch_end(0, {'loss': np.float32('nan')})


class FlatMetricsTest(tf.test.TestCase):

  def test_one_flat_row_per_level_without_the_curve(self):
    metrics = {'wall_time_s': 2.0, 'level': 1, 'run': 'r', 'weights_remaining': 0.5, 'extra': 'x',
               'layer_weights_remaining': {'h1': 0.25, 'out': 1.0}, 'curve': [{'iteration': 0}],
               'training_path': {'jit_compile': False, 'accepted_change': 'jit_compile True -> False'}}
    row = level.flat_metrics(metrics)
    self.assertEqual(list(row)[:4], ['run', 'level', 'weights_remaining', 'wall_time_s'])  # METRIC_COLUMNS' order
    self.assertEqual((row['remaining/h1'], row['remaining/out'], row['extra']), (0.25, 1.0, 'x'))
    self.assertEqual(row['training_path_change'], 'jit_compile True -> False')
    self.assertIn('training_path', row)
    self.assertNotIn('curve', row)
    self.assertNotIn('layer_weights_remaining', row)
    self.assertIs(experiment.flat_metrics, level.flat_metrics)


if __name__ == '__main__':
  tf.test.main()
