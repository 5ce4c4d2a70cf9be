"""Tests for the models and data of a run (ltp_tfmot.experiment.factory): one builder for every job of a run."""

import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot import experiment
from ltp_tfmot.core import seeds
from ltp_tfmot.experiment import factory as factory_lib
from tests import fixtures


def _factory(**pruning):
  factory = factory_lib.RunFactory(fixtures.tiny_run_config(**pruning), model_fn=fixtures.run_model_fn,
                                   data=fixtures.RUN_DATA)
  factory.load_data()
  return factory


class RunFactoryTest(tf.test.TestCase):

  def test_load_data_sets_the_split_and_the_iterations_of_a_level(self):
    factory = _factory()
    # 160 examples less the 10% validation split: 144, 9 batches of 16; one epoch per level.
    self.assertEqual((len(factory.split.x_train), len(factory.split.x_val)), (144, 16))
    self.assertEqual((factory.num_classes, factory.steps_per_epoch, factory.iterations), (4, 9, 9))

  def test_models_are_built_from_the_seed_and_wrapped_with_the_runs_settings(self):
    factory = _factory(criterion='large_init')
    first, again = factory.build_model(0), factory.build_model(0)
    for a, b in zip(first.get_weights(), again.get_weights(), strict=True):
      self.assertAllEqual(a, b)
    wrapped = factory.wrap(first, seed=5)
    wrappers = ltp_tfmot.lottery_wrappers(wrapped)
    self.assertEqual({(w.criterion, w.rate, w.seed) for w in wrappers}, {('large_init', 0.5, 5)})
    self.assertEqual(factory.wrap(factory.build_model(0), seed=5, criterion='random').layers[0].criterion, 'random')

  def test_the_evaluator_gives_the_mean_loss_and_accuracy_keras_gives(self):
    factory = _factory()
    model = factory.wrap(factory.build_model(0), seed=0)
    _, evaluate = factory.compile(model)
    x, y = factory.split.x_test, factory.split.y_test
    loss, accuracy = evaluate(x, y)
    keras_loss, keras_accuracy = model.evaluate(x, y, batch_size=len(x), verbose=0)
    self.assertAllClose((loss, accuracy), (keras_loss, keras_accuracy), rtol=1e-5)
    self.assertFalse(factory.jit_compile())
    self.assertEqual(factory.jit_compile_reason, 'set by training.jit_compile')

  def test_the_training_batches_resume_the_replicates_order_at_any_iteration(self):
    factory = _factory()
    whole = [y.numpy() for _, y in factory.train_dataset(seed=0, start_step=0)]
    self.assertLen(whole, factory.iterations)
    resumed = [y.numpy() for _, y in factory.train_dataset(seed=0, start_step=4, end_step=7)]
    self.assertAllEqual(np.stack(resumed), np.stack(whole[4:7]))
    self.assertEqual(factory.data_seed(0), seeds.derived_seed(0, 'data'))

  def test_a_model_fn_that_is_not_callable_is_refused(self):
    with self.assertRaisesRegex(TypeError, r'model_fn must be callable \(input_shape, num_classes, seed\) -> model'):
      experiment.RunFactory(fixtures.tiny_run_config(), model_fn='mlp')

  def test_a_model_with_other_outputs_than_the_classes_is_refused(self):
    factory = factory_lib.RunFactory(fixtures.tiny_run_config(), data=fixtures.RUN_DATA,
                                     model_fn=lambda shape, classes, seed: keras.Sequential(
                                         [keras.layers.Dense(3, input_shape=shape)]))
    factory.load_data()
    with self.assertRaisesRegex(ValueError, r'the model outputs 3 values per example, but the data have 4 classes'):
      factory.build_model(0)

  def test_a_batch_larger_than_the_training_split_is_refused(self):
    config = fixtures.tiny_run_config()
    factory = factory_lib.RunFactory(config, model_fn=fixtures.run_model_fn,
                                     data=tuple(a[:8] for a in fixtures.RUN_DATA))
    with self.assertRaisesRegex(ValueError, r'training\.batch_size \(16\) is larger than the 7 training examples'):
      factory.load_data()


if __name__ == '__main__':
  tf.test.main()
