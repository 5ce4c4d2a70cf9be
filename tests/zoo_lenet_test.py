"""Tests for LeNet-300-100 and Frankle & Carbin's set-up for it."""

import tensorflow as tf

from ltp_tfmot import settings
from ltp_tfmot.zoo import lenet


class LenetTest(tf.test.TestCase):

  def test_layers_and_seeded_initialisation(self):
    model = lenet.lenet_300_100(input_dim=12, num_classes=3, seed=0)
    self.assertEqual([layer.name for layer in model.layers], ['hidden_300', 'hidden_100', 'output'])
    self.assertEqual((model.input_shape, model.output_shape), ((None, 12), (None, 3)))
    again = lenet.lenet_300_100(input_dim=12, num_classes=3, seed=0)
    self.assertAllEqual(model.get_layer('hidden_300').kernel, again.get_layer('hidden_300').kernel)

  def test_registered_builder_flattens_the_input_shape(self):
    model = lenet.MODELS['lenet_300_100'].build((28, 28, 1), 10, 0)
    self.assertEqual(model.input_shape, (None, 784))
    self.assertTrue(lenet.MODELS['lenet_300_100'].flat_input)

  def test_lenet_is_frankle_and_carbins_setup(self):
    preset = lenet.PRESETS['lenet_300_100']
    training = settings.TrainingConfig(**preset.training)
    self.assertEqual((training.optimizer, training.learning_rate, training.batch_size, training.length(),
                      settings.PruningConfig(**preset.pruning).layer_rates, preset.data['name']),
                     ('adam', 1.2e-3, 60, '50ep', {'output': 0.1}, 'mnist'))


if __name__ == '__main__':
  tf.test.main()
