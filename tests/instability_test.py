"""Tests for the instability analysis: two copies forked at k, the error along the path between them, the CLI."""

import dataclasses
import errno
import os
import shutil
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot import experiment
from ltp_tfmot.experiment import instability
from tests import fixtures

DATA = fixtures.RUN_DATA
POINTS = 5
REWIND_STEP = 2


def _bn_mlp(input_shape, num_classes, seed):
  """8-16-BN-4: a BatchNormalization layer outside the wrappers, whose moving statistics the path interpolates."""
  del input_shape, num_classes
  init = lambda offset: keras.initializers.GlorotUniform(seed=seed + offset)
  return keras.Sequential([
      keras.layers.Dense(16, input_shape=(8,), kernel_initializer=init(0), name='hidden'),
      keras.layers.BatchNormalization(name='bn'),
      keras.layers.Activation('relu'),
      keras.layers.Dense(4, kernel_initializer=init(1), name='output'),
  ])


def _mlp(input_shape, num_classes, seed):
  """8-16-4 without BatchNorm."""
  del input_shape, num_classes
  init = lambda offset: keras.initializers.GlorotUniform(seed=seed + offset)
  return keras.Sequential([
      keras.layers.Dense(16, activation='relu', input_shape=(8,), kernel_initializer=init(0), name='hidden'),
      keras.layers.Dense(4, kernel_initializer=init(1), name='output'),
  ])


def _config(rewind_step=REWIND_STEP, levels=1, precision='float32'):
  return experiment.RunConfig(
      model='bn_mlp', data=experiment.DataConfig(name='toy'),
      training=experiment.TrainingConfig(learning_rate=0.02, batch_size=16, epochs=2, eval_every=9, jit_compile=False,
                                         precision=precision),
      pruning=experiment.PruningConfig(rate=0.5, layer_rates={}, levels=levels, rewind_step=rewind_step))


class _CountSteps(experiment.RunHooks):

  def __init__(self):
    self.steps = 0

  def after_train_step(self):
    self.steps += 1


class _FailWriting(experiment.RunHooks):
  """Fails the write of one file name as a full disk would."""

  def __init__(self, name):
    self.name = name

  def write_file(self, path, file, data):
    if os.path.basename(path) == self.name:
      raise OSError(errno.ENOSPC, 'No space left on device')
    file.write(data)


def _quiet(line):
  del line


class InstabilityTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._root = tempfile.mkdtemp()
    cls.template = os.path.join(cls._root, 'run')
    experiment.run_experiment(_config(), run_dir=cls.template, model_fn=_bn_mlp, data=DATA, tensorboard=False,
                              log=_quiet)
    cls.iterations = experiment.load_level_metrics(cls.template)[0]['iterations']

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls._root, ignore_errors=True)
    super().tearDownClass()

  def _run_dir(self):
    """A fresh copy of the finished run, so that each test starts without instability results."""
    run_dir = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'run')
    shutil.copytree(self.template, run_dir)
    return run_dir

  def _analyse(self, run_dir, level, rewind_steps, **kwargs):
    return experiment.instability_analysis(run_dir, level, rewind_steps, points=POINTS, model_fn=_bn_mlp, data=DATA,
                                           log=_quiet, **kwargs)

  @parameterized.named_parameters(('dense', 0, 0), ('dense_late', 0, 3), ('ticket', 1, REWIND_STEP),
                                  ('ticket_late', 1, 4))
  def test_identical_copies_have_zero_instability(self, level, k):
    (result,) = self._analyse(self._run_dir(), level, [k], same_data_order=True)
    self.assertEqual(result['copies'][0]['data_seed'], result['copies'][1]['data_seed'])
    self.assertEqual(result['instability'], 0.0)
    self.assertEqual({p['test_error'] for p in result['path']}, {result['copies'][0]['test_error']})

  def test_dense_copy_with_the_runs_data_order_is_the_runs_level_0(self):
    run_dir = self._run_dir()
    (result,) = self._analyse(run_dir, 0, [3])
    level_0 = experiment.load_level_metrics(run_dir)[0]
    self.assertEqual((level_0['level'], level_0['branch']), (0, 'main'))
    self.assertAllClose(result['copies'][0]['test_loss'], level_0['test_loss'], rtol=1e-5)
    self.assertAllClose(result['copies'][0]['test_error'], 1.0 - level_0['test_accuracy'])

  @parameterized.named_parameters(('dense', 0, 0), ('ticket', 1, REWIND_STEP))
  def test_path_ends_are_the_trained_copies(self, level, k):
    run_dir = self._run_dir()
    (result,) = self._analyse(run_dir, level, [k])
    self.assertNotEqual(result['copies'][0]['data_seed'], result['copies'][1]['data_seed'])
    self.assertGreaterEqual(result['instability'], 0.0)
    errors_on_path = [p['test_error'] for p in result['path']]
    self.assertAllClose(result['instability'], max(errors_on_path) - (errors_on_path[0] + errors_on_path[-1]) / 2)
    self.assertEqual([p['alpha'] for p in result['path']], list(np.linspace(0, 1, POINTS)))
    for end, copy in ((result['path'][0], result['copies'][0]), (result['path'][-1], result['copies'][1])):
      self.assertEqual(end['test_error'], copy['test_error'])
      self.assertAllClose(end['test_loss'], copy['test_loss'], rtol=1e-6)
    (run_level,) = [m for m in experiment.load_level_metrics(run_dir) if m['level'] == level]
    self.assertAllClose(result['copies'][0]['test_loss'], run_level['test_loss'], rtol=1e-5)  # copy A: the run's
    weights_a, weights_b, names = experiment.load_copies(run_dir, level, k)
    self.assertTrue(any('bn/moving_mean' in name for name in names), names)
    self.assertTrue(any(not np.array_equal(a, b) for a, b in zip(weights_a, weights_b, strict=True)))

  def test_masks_are_held_along_the_path(self):
    run_dir = self._run_dir()
    self._analyse(run_dir, 1, [REWIND_STEP])
    weights_a, weights_b, _ = experiment.load_copies(run_dir, 1, REWIND_STEP)
    model, _ = experiment.load_trained_model(run_dir, level=1, model_fn=_bn_mlp, data=DATA)
    pruned = {w.name: np.count_nonzero(w.masks[0].numpy() == 0) for w in ltp_tfmot.lottery_wrappers(model)}
    self.assertTrue(all(pruned.values()), pruned)
    for alpha in np.linspace(0, 1, POINTS):
      for variable, value in zip(experiment.path_variables(model),
                                 experiment.interpolate_weights(weights_a, weights_b, float(alpha)), strict=True):
        variable.assign(value)
      for w in ltp_tfmot.lottery_wrappers(model):
        for weight, mask, _ in w.pruning_vars:
          self.assertAllEqual(weight.numpy()[mask.numpy() == 0], np.zeros(pruned[w.name]), f'{w.name} at {alpha}')

  def test_rerun_skips_the_finished_rewind_steps(self):
    run_dir = self._run_dir()
    t = self.iterations
    counts = []
    for steps in ([0], [0, 4], [4, 0]):
      hooks = _CountSteps()
      results = self._analyse(run_dir, 0, steps, hooks=hooks)
      counts.append(hooks.steps)
      if steps == [0]:
        result_json = os.path.join(experiment.instability_dir(run_dir, 0), 'rewind_0', instability.RESULT)
        written = (os.stat(result_json).st_mtime_ns, open(result_json).read())
    # k=0: two copies of T steps; k=4 then: 4 steps to the fork and two copies of T - 4; then nothing.
    self.assertEqual(counts, [2 * t, 4 + 2 * (t - 4), 0])
    self.assertEqual([r['rewind_step'] for r in results], [0, 4])
    self.assertEqual((os.stat(result_json).st_mtime_ns, open(result_json).read()), written)
    self.assertEqual([r['rewind_step'] for r in experiment.load_instability(run_dir, 0)], [0, 4])

  def test_a_failed_write_leaves_the_rewind_step_unfinished_and_a_rerun_completes_it(self):
    run_dir = self._run_dir()
    with self.assertRaisesRegex(experiment.StorageError, 'result.json.*No space left'):
      self._analyse(run_dir, 0, [0], hooks=_FailWriting(instability.RESULT))
    folder = os.path.join(experiment.instability_dir(run_dir, 0), 'rewind_0')
    self.assertFalse(os.path.exists(os.path.join(folder, instability.RESULT)))
    self.assertEqual([n for n in os.listdir(folder) if n.endswith('.tmp')], [])
    self.assertEqual(experiment.load_instability(run_dir, 0), [])
    hooks = _CountSteps()
    (result,) = self._analyse(run_dir, 0, [0], hooks=hooks)
    self.assertEqual(hooks.steps, 2 * self.iterations)
    self.assertEqual(experiment.load_instability(run_dir, 0), [result])

  def test_a_damaged_result_is_redone(self):
    run_dir = self._run_dir()
    self._analyse(run_dir, 0, [0])
    path_csv = os.path.join(experiment.instability_dir(run_dir, 0), 'rewind_0', instability.PATH_CSV)
    with open(path_csv, 'a') as f:
      f.write('1,2,3\n')
    self.assertEqual(experiment.load_instability(run_dir, 0), [])
    lines, hooks = [], _CountSteps()
    experiment.instability_analysis(run_dir, 0, [0], points=POINTS, model_fn=_bn_mlp, data=DATA, hooks=hooks,
                                    log=lines.append)
    self.assertEqual(hooks.steps, 2 * self.iterations)
    self.assertTrue(any('damaged and will be redone' in line for line in lines), lines)

  @parameterized.named_parameters(
      ('level_not_done', dict(level=3), r'level must be a finished level .* got 3; finished: \[0, 1\]'),
      ('negative_k', dict(rewind_steps=[-1]), r'every rewind step must be an integer in \[0, 18\).*got -1'),
      ('k_beyond_training', dict(rewind_steps=[0, 18]), r'in \[0, 18\).*got 18'),
      ('k_not_an_integer', dict(rewind_steps=[1.5]), r'got 1.5'),
      ('no_k', dict(rewind_steps=[]), r'at least one iteration'),
      ('k_before_the_tickets_rewind_step', dict(level=1, rewind_steps=[1]),
       r'rewind step 1 is before the run\'s rewind step 2.*use k >= 2'),
      ('one_point', dict(points=1), r'points must be an integer >= 2 .*got 1'),
      ('replicate', dict(replicate=1), r'replicate must be an integer in \[0, 1\)'),
      ('not_a_run', dict(run_dir='elsewhere'), r'is not a run directory'),
  )
  def test_bad_input_raises_before_anything_is_written(self, changes, message):
    run_dir = self._run_dir()
    arguments = dict(run_dir=run_dir, level=0, rewind_steps=[0], points=POINTS)
    arguments.update(changes)
    if arguments['run_dir'] == 'elsewhere':
      arguments['run_dir'] = tempfile.mkdtemp(dir=self.get_temp_dir())
    with self.assertRaisesRegex(ValueError, message):
      experiment.instability_analysis(model_fn=_bn_mlp, data=DATA, log=_quiet, **arguments)
    self.assertFalse(os.path.exists(os.path.join(run_dir, instability.DIRECTORY)))

  def test_an_unfinished_level_is_refused(self):
    run_dir = self._run_dir()
    os.remove(os.path.join(run_dir, 'replicate_0', 'level_1', 'main.manifest.json'))
    with self.assertRaisesRegex(ValueError, r'level must be a finished level .* got 1; finished: \[0\]'):
      self._analyse(run_dir, 1, [REWIND_STEP])
    self.assertFalse(os.path.exists(os.path.join(run_dir, instability.DIRECTORY)))

  def test_other_settings_than_a_finished_rewind_step_are_refused(self):
    run_dir = self._run_dir()
    self._analyse(run_dir, 0, [0])
    with self.assertRaisesRegex(ValueError, r'measured with points=5, same_data_order=False.*delete its rewind_0'):
      experiment.instability_analysis(run_dir, 0, [0, 4], points=7, model_fn=_bn_mlp, data=DATA, log=_quiet)
    self.assertFalse(os.path.exists(os.path.join(experiment.instability_dir(run_dir, 0), 'rewind_4')))

  def test_mixed_precision_copies_fork_from_one_state(self):
    run_dir = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'run')
    experiment.run_experiment(_config(levels=0, precision='mixed_float16'), run_dir=run_dir, model_fn=_bn_mlp,
                              data=DATA, tensorboard=False, log=_quiet)
    results = self._analyse(run_dir, 0, [0, 3], same_data_order=True)
    self.assertEqual([r['instability'] for r in results], [0.0, 0.0])
    level_0 = experiment.load_level_metrics(run_dir)[0]
    for result in results:
      self.assertEqual([c['test_loss'] for c in result['copies']], [result['copies'][0]['test_loss']] * 2)
      self.assertAllClose(result['copies'][0]['test_loss'], level_0['test_loss'], rtol=1e-5)

  def test_a_mirrored_strategy_measures_what_one_device_does(self):
    # Without BatchNorm: over several replicas (pytest's conftest makes two logical CPUs) MirroredStrategy's
    # BatchNorm normalises each replica's part of the batch, which is another computation than one device's.
    run_dir = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'run')
    config = dataclasses.replace(_config(), model='mlp')
    experiment.run_experiment(config, run_dir=run_dir, model_fn=_mlp, data=DATA, tensorboard=False, log=_quiet)
    analyse = lambda **kwargs: experiment.instability_analysis(run_dir, 1, [REWIND_STEP], points=POINTS,
                                                               model_fn=_mlp, data=DATA, log=_quiet, **kwargs)
    (plain,) = analyse()
    shutil.rmtree(instability.instability_dir(run_dir, 1))
    (mirrored,) = analyse(strategy='mirrored')
    for a, b in zip(plain['copies'], mirrored['copies'], strict=True):
      self.assertAllClose(a['test_loss'], b['test_loss'], rtol=1e-5)
    self.assertAllClose([p['test_loss'] for p in plain['path']], [p['test_loss'] for p in mirrored['path']],
                        rtol=1e-5)

  def test_another_initialisation_is_refused(self):
    run_dir = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'run')
    experiment.run_experiment(_config(rewind_step=0, levels=0), run_dir=run_dir, model_fn=_bn_mlp, data=DATA,
                              tensorboard=False, log=_quiet)
    other_seed = lambda shape, classes, seed: _bn_mlp(shape, classes, seed + 1)
    with self.assertRaisesRegex(ValueError, r'does not have the initial weights stored .*model builder changed'):
      experiment.instability_analysis(run_dir, 0, [0], points=POINTS, model_fn=other_seed, data=DATA, log=_quiet)


class InterpolateTest(tf.test.TestCase):

  def test_ends_are_exact_and_equal_weights_stay_exact(self):
    a = [np.array([0.1, 0.0, 3.0], np.float32)]
    b = [np.array([0.7, 0.0, 3.0], np.float32)]
    self.assertAllEqual(experiment.interpolate_weights(a, b, 0.0)[0], a[0])
    self.assertAllEqual(experiment.interpolate_weights(a, b, 1.0)[0], b[0])
    middle = experiment.interpolate_weights(a, b, 0.3)[0]
    self.assertEqual(middle.dtype, np.float32)
    self.assertAllClose(middle, [0.28, 0.0, 3.0])
    self.assertAllEqual(middle[1:], [0.0, 3.0])

  def test_bad_alpha_is_refused(self):
    with self.assertRaisesRegex(ValueError, r'alpha must be a number in \[0, 1\], got 1.5'):
      experiment.interpolate_weights([np.zeros(2)], [np.ones(2)], 1.5)


# LeNet-300-100 on 300 embedded MNIST digits, one epoch at batch 50: 5 iterations per level.
RUN_FLAGS = ['--model=lenet_300_100', '--dataset=mnist', '--dataset_source=embedded', '--train_size=300',
             '--test_size=200', '--epochs=1', '--batch_size=50', '--eval_every=5', '--levels=1', '--nojit_compile',
             '--notensorboard']


class InstabilityCommandTest(tf.test.TestCase):

  def test_command_writes_the_table_and_the_plot(self):
    out = tempfile.mkdtemp(dir=self.get_temp_dir())
    status, stdout, stderr = fixtures.run_cli('run', f'--out={out}', *RUN_FLAGS)
    self.assertEqual(status, 0, stderr)
    (run_dir,) = [os.path.join(out, name) for name in os.listdir(out)]
    status, stdout, stderr = fixtures.run_cli('instability', run_dir, '--level=1', '--rewind_steps=0,2', '--points=3')
    self.assertEqual(status, 0, stderr)
    self.assertIn('| Rewind step k | Instability |', stdout)
    self.assertRegex(stdout, r'\| 0 \| \d+\.\d\d% \|')
    self.assertRegex(stdout, r'\| 2 \| \d+\.\d\d% \|')
    folder = experiment.instability_dir(run_dir, 1)
    with open(os.path.join(folder, instability.REPORT_MD)) as f:
      self.assertIn('| Rewind step k |', f.read())
    with open(os.path.join(folder, instability.REPORT_PNG), 'rb') as f:
      self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')
    self.assertRegex(stdout, r'(Earliest rewind step with instability below 2%: k=\d|No rewind step analysed)')
    self.assertEqual([r['rewind_step'] for r in experiment.load_instability(run_dir, 1)], [0, 2])

  def test_command_refuses_bad_input_in_one_line(self):
    out = tempfile.mkdtemp(dir=self.get_temp_dir())
    for args, message in ((['--level=0', '--rewind_steps=0', '--threshold=2'], 'threshold must be'),
                          (['--level=0'], '--rewind_steps'),
                          (['--level=0', '--rewind_steps=a'], 'comma-separated integers')):
      status, _, stderr = fixtures.run_cli('instability', out, *args)
      self.assertIn(status, (1, 2), args)
      self.assertIn(message, stderr, args)
      self.assertEqual(len(stderr.strip().splitlines()), 1, stderr)
    self.assertEqual(os.listdir(out), [])


if __name__ == '__main__':
  tf.test.main()
