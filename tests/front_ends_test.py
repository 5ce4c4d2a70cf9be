"""Tests for the public names that take a model: each goes to its model's front end."""

import os
import subprocess
import sys

import keras
import tensorflow as tf
import tf_keras

import ltp_tfmot
from ltp_tfmot import front_ends


class FrontEndOfTest(tf.test.TestCase):

  def test_tf_keras_objects_go_to_keras_2_and_keras_3_objects_to_keras_3(self):
    self.assertEqual(front_ends.front_end_of(tf_keras.layers.Dense(2)), front_ends.KERAS2)
    self.assertEqual(front_ends.front_end_of(keras.layers.Dense(2)), front_ends.KERAS3)
    self.assertEqual(front_ends.front_end_of(keras.optimizers.SGD()), front_ends.KERAS3)
    self.assertEqual(front_ends.front_end_of([keras.layers.Dense(2), tf_keras.layers.Dense(2)]), front_ends.KERAS3)

  def test_other_objects_go_to_keras_2_whose_errors_name_what_is_expected(self):
    self.assertEqual(front_ends.front_end_of('model'), front_ends.KERAS2)
    with self.assertRaisesRegex(TypeError, r'to_prune must be a tf_keras'):
      ltp_tfmot.prune_lottery_ticket('model')

  def test_a_dispatched_name_says_where_its_documentation_is(self):
    self.assertEqual(ltp_tfmot.run_lottery_round.__name__, 'run_lottery_round')
    self.assertIn('ltp_tfmot.keras3.rounds.run_lottery_round', ltp_tfmot.run_lottery_round.__doc__)

  def test_a_keras_3_program_keeps_tf_keras_as_it_was_and_never_loads_tfmot(self):
    program = '\n'.join([
        'import os, sys',
        'import numpy as np',
        'import tensorflow as tf',
        'import keras',
        'import ltp_tfmot',
        'model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])',
        'model = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(0.5, 2, 1))',
        "model.compile('sgd', keras.losses.SparseCategoricalCrossentropy(from_logits=True))",
        'model.fit(np.ones((8, 4)), np.zeros(8), batch_size=2, verbose=0,',
        '          callbacks=[ltp_tfmot.UpdateLotteryStep()])',
        "assert 'tensorflow_model_optimization' not in sys.modules",
        "assert 'TF_USE_LEGACY_KERAS' not in os.environ",
        'assert tf.keras.Model is keras.Model',
        'print(round(ltp_tfmot.weights_remaining(model), 2))',
    ])
    env = {k: v for k, v in os.environ.items() if k not in ('TF_USE_LEGACY_KERAS', 'KERAS_BACKEND')}
    result = subprocess.run([sys.executable, '-c', program], env=env, capture_output=True, text=True, timeout=300,
                            check=False)
    self.assertEqual(result.returncode, 0, result.stderr[-2000:])
    self.assertEqual(result.stdout.strip(), '0.5')


if __name__ == '__main__':
  tf.test.main()
