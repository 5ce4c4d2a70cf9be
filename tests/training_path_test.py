"""Tests of the numeric training path: XLA against Keras' loop, the runner's choice, its record, and resuming."""

import os
import shutil
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

from ltp_tfmot import experiment
from ltp_tfmot import models as models_lib
from ltp_tfmot.experiment import factory as factory_lib
from ltp_tfmot.experiment import report as report_lib
from ltp_tfmot.experiment import storage
from ltp_tfmot.experiment import training_path
from ltp_tfmot.keras2 import callbacks as callbacks_lib
from tests import fixtures

STEPS = 10


def _images(n, seed):
  """Learnable CIFAR-shaped images: each class has its own mean colour, plus noise."""
  rng = np.random.RandomState(seed)
  means = np.random.RandomState(99).uniform(-1, 1, (10, 1, 1, 3))
  y = rng.randint(0, 10, n)
  return (means[y] + rng.normal(0, 1, (n, 32, 32, 3))).astype(np.float32), y


class _PerStepLoss(keras.callbacks.Callback):
  """The loss of each training step (Keras reports a running mean: reset before every step)."""

  def __init__(self):
    super().__init__()
    self.losses = []

  def on_train_batch_begin(self, batch, logs=None):
    self.model.reset_metrics()

  def on_train_batch_end(self, batch, logs=None):
    self.losses.append(float(logs['loss']))


class Conv4PathsTest(tf.test.TestCase):
  """Conv-4 (Adam 3e-4, its preset) trained from one state on the same batches, with and without XLA."""

  def _train(self, jit_compile, steps_per_execution=1, nudge=False, steps=STEPS):
    config = experiment.RunConfig.for_model(
        'conv4', data={'name': 'toy_images'},
        training={'batch_size': 16, 'training_steps': f'{steps}it', 'jit_compile': jit_compile,
                  'steps_per_execution': steps_per_execution})
    factory = factory_lib.RunFactory(config, data=_images(240, 0) + _images(40, 1))
    factory.load_data()
    model = factory.wrap(factory.build_model(0), 0)
    factory.compile(model)
    if nudge:  # the smallest change a float32 start can have: one ulp up in every weight
      for variable in model.trainable_weights:
        variable.assign(np.nextafter(variable.numpy(), np.float32(np.inf)))
    losses = _PerStepLoss()
    model.fit(factory.train_dataset(0, 0), epochs=1, steps_per_epoch=steps, verbose=0,
              callbacks=[callbacks_lib.UpdateLotteryStep(), losses])
    return np.array(losses.losses), [v.numpy() for v in model.weights]

  def test_xla_and_the_loop_differ_only_by_rounding_that_training_amplifies_as_it_does_a_one_ulp_start(self):
    loop, _ = self._train(False)
    xla, _ = self._train(True)
    nudged, _ = self._train(False, nudge=True)
    self.assertLen(xla, STEPS)
    xla_gap, ulp_gap = np.abs(xla - loop) / loop, np.abs(nudged - loop) / loop
    # The first step sees the same batch, weights and loss: a defect (another data order, another loss, layers
    # handled otherwise) would show here far above float32 rounding.
    self.assertLess(xla_gap[0], 1e-5)
    # Training amplifies a change of one ulp in the start to 100x float32 rounding within a few steps ...
    self.assertGreater(ulp_gap.max(), 1e-5)
    # ... and the gap between the paths stays within what one ulp grows to: rounding, not a defect of a path.
    self.assertLessEqual(xla_gap.max(), 10 * ulp_gap.max())

  def test_steps_per_execution_leaves_each_paths_floats_unchanged(self):
    for jit_compile in (False, True):
      _, one = self._train(jit_compile, steps_per_execution=1, steps=6)
      _, several = self._train(jit_compile, steps_per_execution=4, steps=6)  # an execution of 4, one of 2
      for a, b in zip(one, several, strict=True):
        self.assertAllEqual(a, b, msg=f'jit_compile={jit_compile}')


class ChoiceTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ('dense_on_a_cpu', False, False, True), ('convolutions_on_a_cpu', True, False, False),
      ('convolutions_on_a_gpu', True, True, True))
  def test_auto_chooses_xla_unless_a_cpu_runs_convolutions(self, convolutions, gpu, expected):
    model = models_lib.conv2(input_shape=(8, 8, 3), seed=0) if convolutions else fixtures.mlp(0)
    jit, reason = training_path.choose_jit_compile(model, gpu=gpu)
    self.assertEqual(jit, expected)
    self.assertStartsWith(reason, 'auto: ')

  def test_convolutions_are_found_inside_the_lottery_wrappers(self):
    config = experiment.RunConfig.for_model('conv4', data={'name': 'toy_images'},
                                            training={'batch_size': 16, 'training_steps': '2it'})
    factory = factory_lib.RunFactory(config, data=_images(40, 0) + _images(10, 1))
    factory.load_data()
    self.assertTrue(training_path.has_convolutions(factory.wrap(factory.build_model(0), 0)))

  @parameterized.named_parameters(('forced_on', True), ('forced_off', False))
  def test_a_forced_setting_wins_over_the_choice(self, forced):
    config = experiment.RunConfig.for_model('conv4', data={'name': 'toy_images'},
                                            training={'batch_size': 16, 'training_steps': '2it',
                                                      'jit_compile': forced})
    factory = factory_lib.RunFactory(config, data=_images(40, 0) + _images(10, 1))
    factory.load_data()
    self.assertEqual(factory.jit_compile(factory.build_model(0)), forced)
    self.assertEqual(factory.jit_compile_reason, 'set by training.jit_compile')


def _config(levels, jit_compile, steps_per_execution=50):
  return experiment.RunConfig(
      model='mlp', data=experiment.DataConfig(name='toy'),
      training=experiment.TrainingConfig(learning_rate=0.01, batch_size=16, epochs=1, eval_every=3,
                                         jit_compile=jit_compile, steps_per_execution=steps_per_execution),
      pruning=experiment.PruningConfig(rate=0.5, layer_rates={}, levels=levels))


class ResumeTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # Level 0 trained with XLA, where four of the tests start: trained once, each test works on a copy.
    cls.xla_level_0 = fixtures.finished_run(cls, _config(levels=0, jit_compile=True))

  def _xla_level_0(self):
    """A copy of a run directory with level 0 trained by `_config(levels=0, jit_compile=True)`."""
    run_dir = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'run')
    shutil.copytree(self.xla_level_0, run_dir)
    return run_dir

  def _run(self, run_dir, config, **kwargs):
    return experiment.LotteryExperiment(config, run_dir=run_dir, model_fn=fixtures.run_model_fn, data=fixtures.RUN_DATA,
                                        tensorboard=False, log=lambda line: None, **kwargs).run()

  def test_every_level_records_the_path_it_trained_on(self):
    run_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    results = self._run(run_dir, _config(levels=1, jit_compile=None))
    for metrics in results:
      path = metrics['training_path']
      self.assertEqual((path['jit_compile'], path['steps_per_execution'], path['precision'], path['tensorflow']),
                       (True, 50, 'float32', tf.__version__))
      self.assertEqual(path['cpu'], training_path.cpu_model())
      self.assertEqual((path['threads'], path['inter_op_threads']), training_path.threads())
      self.assertStartsWith(path['jit_compile_reason'], 'auto: on for a model without convolutions')
    row = storage.read_json(os.path.join(run_dir, 'replicate_0', 'level_1', 'main', 'metrics.json'))
    self.assertEqual(row['training_path'], results[1]['training_path'])

  def test_resuming_on_another_jit_setting_is_refused_before_anything_changes(self):
    run_dir = self._xla_level_0()
    before = fixtures.file_stats(run_dir)
    with self.assertRaisesRegex(training_path.TrainingPathChangedError,
                                r'^run directory .* trained replicate 0 level 0 main on another numeric path '
                                r'\(jit_compile was True there and is False here\).*rerun with --jit_compile .*'
                                r'or pass --accept_training_path_change') as caught:
      self._run(run_dir, _config(levels=1, jit_compile=False))
    self.assertNotIn('\n', str(caught.exception))
    self.assertEqual(fixtures.file_stats(run_dir), before)

  def test_levels_trained_before_paths_were_recorded_are_held_to_the_jit_setting_of_config_json(self):
    run_dir = self._xla_level_0()
    # As an older version wrote the level: no path record (its manifest rewritten to match).
    paths = storage.RunDirectory(run_dir)
    metrics_path = paths.file(0, 0, 'main', storage.METRICS_JSON)
    metrics = storage.read_json(metrics_path)
    del metrics['training_path']
    storage.write_json(metrics_path, metrics)
    paths.write_manifest(0, 0, 'main', {name: storage.file_sha256(paths.file(0, 0, 'main', name))
                                        for name in paths.needed_files('main')})
    self.assertEqual(paths.verify(0, 0, 'main'), '')
    with self.assertRaisesRegex(training_path.TrainingPathChangedError, 'jit_compile was True there and is False'):
      self._run(run_dir, _config(levels=1, jit_compile=False))

  def test_an_accepted_change_is_recorded_in_the_levels_and_the_report(self):
    run_dir = self._xla_level_0()
    results = self._run(run_dir, _config(levels=1, jit_compile=False), accept_training_path_change=True)
    self.assertNotIn('accepted_change', results[0]['training_path'])
    self.assertEqual(results[1]['training_path']['accepted_change'], 'jit_compile True -> False')
    # Accepted once, the change goes on without the flag on the new path, and is refused on the old one.
    results = self._run(run_dir, _config(levels=2, jit_compile=False))
    self.assertEqual(results[2]['training_path']['accepted_change'], 'jit_compile True -> False')
    with self.assertRaisesRegex(training_path.TrainingPathChangedError, 'jit_compile was False there and is True'):
      self._run(run_dir, _config(levels=3, jit_compile=True))
    text = report_lib.markdown_report([report_lib.load_run(run_dir)])
    self.assertIn('(accepted change: jit_compile True -> False): levels 1, 2', text)
    self.assertIn('- XLA, 50 steps per execution', text)

  def test_steps_per_execution_may_change_on_resume(self):
    run_dir = self._xla_level_0()
    results = self._run(run_dir, _config(levels=1, jit_compile=True, steps_per_execution=1))
    self.assertEqual([m['training_path']['steps_per_execution'] for m in results], [50, 1])

  def test_a_machine_setting_cannot_be_rerun_with_and_the_refusal_says_so(self):
    error = training_path.refusal('runs/x', [('cpu', 'CPU A', 'CPU B')], 'replicate 0 level 0 main')
    self.assertRegex(str(error), r"cpu was 'CPU A' there and is 'CPU B' here.*run on a machine with the recorded "
                                 r'cpu \(it cannot be set here\), or pass --accept_training_path_change')


if __name__ == '__main__':
  tf.test.main()
