"""Tests for Conv-2/4/6 and Frankle & Carbin's set-ups for them."""

import tensorflow as tf

import ltp_tfmot
from ltp_tfmot.keras2 import prune as prune_lib
from ltp_tfmot.zoo import conv
from ltp_tfmot.zoo import preset as preset_lib


class ConvTest(tf.test.TestCase):

  def test_convs_pools_and_dense_layers_are_named(self):
    model = conv.conv6(input_shape=(8, 8, 3), num_classes=5, seed=0)
    self.assertEqual([layer.name for layer in model.layers],
                     ['conv1', 'conv2', 'pool1', 'conv3', 'conv4', 'pool2', 'conv5', 'conv6', 'pool3', 'flatten',
                      'fc1', 'fc2', 'output'])
    self.assertEqual(model.output_shape, (None, 5))
    self.assertEqual(sorted(conv.MODELS), ['conv2', 'conv4', 'conv6'])

  def test_conv4_is_frankle_and_carbins_setup(self):
    training, pruning = conv.PRESETS['conv4'].training, conv.PRESETS['conv4'].pruning
    self.assertEqual((training['optimizer'], training['learning_rate'], training['batch_size'],
                      training['training_steps']), ('adam', 3e-4, 60, 25000))
    self.assertEqual((pruning['scope'], pruning['rate'], pruning['layer_rates']),
                     ('layer', 0.2, {'conv*': 0.1, 'output': 0.1}))

  def test_conv4_preset_rates_prune_the_model_as_the_paper(self):
    model = conv.conv4(seed=0)
    pruning = conv.PRESETS['conv4'].pruning
    rates = preset_lib.expand_layer_rates(pruning['layer_rates'], prune_lib.prunable_layer_names(model))
    self.assertEqual(rates, {'conv1': 0.1, 'conv2': 0.1, 'conv3': 0.1, 'conv4': 0.1, 'output': 0.1})
    wrapped = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(pruning['rate']),
                                             layer_rates=rates)
    self.assertEqual({w.layer.name: w.rate for w in ltp_tfmot.lottery_wrappers(wrapped)},
                     {'conv1': 0.1, 'conv2': 0.1, 'conv3': 0.1, 'conv4': 0.1, 'fc1': 0.2, 'fc2': 0.2, 'output': 0.1})


if __name__ == '__main__':
  tf.test.main()
