"""Tests for the experiment runner: files, resuming, refusal, branches, the training path, registered models."""

import dataclasses
import os
import shutil
import socket
import tempfile
from unittest import mock
import uuid

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot import experiment
from ltp_tfmot import models as models_lib
from ltp_tfmot.experiment import data as data_lib
from ltp_tfmot.experiment import level as level_lib
from ltp_tfmot.experiment import pipeline
from ltp_tfmot.experiment import storage
from tests import fixtures

_X, _Y = fixtures.classification_data(n=160, seed=0)
_XT, _YT = fixtures.classification_data(n=64, seed=1)
DATA = (_X, _Y, _XT, _YT)
SIZES = [128, 192, 48]  # prunable weights of fixtures.mlp per layer


def _mlp(input_shape, num_classes, seed):
  del input_shape, num_classes
  return fixtures.mlp(seed)


# Keras' loop (jit_compile=False): compiling a step with XLA costs these small runs more than their training.
def _config(levels=2, controls=(), rate=0.5, **pruning):
  return experiment.RunConfig(
      model='mlp',
      data=experiment.DataConfig(name='toy'),
      training=experiment.TrainingConfig(learning_rate=0.01, batch_size=16, epochs=1, eval_every=3, jit_compile=False),
      pruning=experiment.PruningConfig(rate=rate, layer_rates={}, levels=levels, **pruning),
      controls=controls)


def _experiment(run_dir, config=None, **kwargs):
  kwargs.setdefault('data', DATA)
  return experiment.LotteryExperiment(config or _config(), run_dir=run_dir, model_fn=_mlp, tensorboard=False,
                                      log=lambda line: None, **kwargs)


def _comparable(results):
  keys = ('level', 'branch', 'weights_remaining', 'test_accuracy', 'test_loss', 'best_val_accuracy',
          'early_stop_iteration', 'supermask_accuracy', 'supermask_loss')
  return [{k: r[k] for k in keys} for r in results]


class _TestCase(tf.test.TestCase):

  def _new_dir(self):
    return tempfile.mkdtemp(dir=self.get_temp_dir())


class RunOutputsTest(tf.test.TestCase):
  """One small run with both controls, shared by the tests that only read its outputs."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.out = tempfile.mkdtemp(prefix='ltp_runner_test_')
    cls.config = _config(levels=2, controls=('reinit', 'random_prune'))
    cls.lines = []
    cls.experiment = experiment.LotteryExperiment(cls.config, cls.out, model_fn=_mlp, data=DATA,
                                                  log=cls.lines.append)
    cls.results = cls.experiment.run()
    cls.run_dir = cls.experiment.run_dir

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.out, ignore_errors=True)
    super().tearDownClass()

  def _masks(self, level, branch):
    return experiment.load_masks(self.run_dir, 0, level, branch)

  def test_run_directory_is_named_by_the_hash_and_holds_every_file(self):
    self.assertEqual(os.path.basename(self.run_dir), self.config.run_name())
    for level in range(3):
      for branch in ['main'] + (['reinit', 'random_prune'] if level else []):
        names = set(os.listdir(os.path.join(self.run_dir, 'replicate_0', f'level_{level}', branch)))
        expected = {'masks.npz', 'curve.csv', 'metrics.csv', 'metrics.json'} | ({'weights.npz'} if branch == 'main'
                                                                                 else set())
        self.assertEqual(names, expected, (level, branch))
    meta = storage.read_json(os.path.join(self.run_dir, 'config.json'))
    self.assertEqual(meta['hash'], self.config.hash())
    self.assertEqual(meta['data']['train'], 144)
    self.assertTrue(os.listdir(os.path.join(self.run_dir, 'tensorboard', 'replicate_0', 'main')))
    with open(os.path.join(self.run_dir, 'results.csv')) as f:
      self.assertLen(f.read().strip().splitlines(), 1 + 3 + 2 * 2)

  def test_tensorboard_has_per_level_scalars(self):
    tb_dir = os.path.join(self.run_dir, 'tensorboard', 'replicate_0', 'main')
    values = {}
    for name in os.listdir(tb_dir):
      for event in tf.compat.v1.train.summary_iterator(os.path.join(tb_dir, name)):
        for value in event.summary.value:
          self.assertEqual(value.metadata.plugin_data.plugin_name, 'scalars')
          values[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
    self.assertAlmostEqual(values[('test_accuracy', 2)], self.results[-3]['test_accuracy'], places=6)
    self.assertAlmostEqual(values[('sparsity/hidden2', 1)], 0.5)
    self.assertAlmostEqual(values[('weights_remaining', 2)], 0.25)

  def test_metrics_per_level(self):
    main = [r for r in self.results if r['branch'] == 'main']
    self.assertEqual([r['level'] for r in main], [0, 1, 2])
    for r in main:
      alive = [int(np.floor(n * 0.5**r['level'] + 0.5)) for n in SIZES]
      self.assertEqual(r['weights_alive'], sum(alive))
      self.assertAlmostEqual(r['weights_remaining'], sum(alive) / sum(SIZES))
      self.assertEqual(list(r['layer_weights_remaining']), ['hidden1', 'hidden2', 'output'])
      self.assertAllClose(list(r['layer_weights_remaining'].values()),
                          [a / n for a, n in zip(alive, SIZES, strict=True)])
      for key in ('test_accuracy', 'best_val_accuracy', 'supermask_accuracy'):
        self.assertBetween(r[key], 0.0, 1.0)
      self.assertEqual(r['iterations'], 9)  # 144 examples // 16
      self.assertEqual([p['iteration'] for p in r['curve']], [0, 3, 6, 9])
      stop = min(r['curve'], key=lambda p: p['val_loss'])
      self.assertEqual(r['early_stop_iteration'], stop['iteration'])
      self.assertEqual(r['best_val_accuracy'], max(p['val_accuracy'] for p in r['curve']))
      self.assertGreater(r['wall_time_s'], 0)
    self.assertGreater(main[0]['test_accuracy'], 0.4)  # it learns something (chance is 0.25)

  def test_one_progress_line_per_level_with_eta(self):
    progress = [line for line in self.lines if line.startswith('replicate 0 level')]
    self.assertLen(progress, 7)
    self.assertIn('weights left', progress[0])
    self.assertIn('ETA', progress[0])
    self.assertTrue(progress[-1].endswith('ETA done'))

  def test_main_masks_and_snapshot_on_disk(self):
    stored = self._masks(2, 'main')
    self.assertEqual([int(np.count_nonzero(m)) for m in stored['masks']], [32, 48, 12])
    self.assertEqual(stored['mask_names'], ['hidden1/kernel', 'hidden2/kernel', 'output/kernel'])
    self.assertEqual(stored['snapshot_names'][:2], ['hidden1/kernel', 'hidden1/bias'])
    initial = fixtures.mlp(self.config.seed)
    self.assertAllEqual(stored['snapshots'][0], initial.layers[0].kernel.numpy())
    self.assertEqual(stored['snapshot_step'], 0)
    self.assertEqual(stored['rounds_done'], 2)

  def test_reinit_control_has_identical_masks_and_fresh_weights(self):
    for level in (1, 2):
      main, reinit = self._masks(level, 'main'), self._masks(level, 'reinit')
      for a, b in zip(main['masks'], reinit['masks'], strict=True):
        self.assertAllEqual(a, b)
      main_start = main['snapshots'][0] * main['masks'][0]
      reinit_start = reinit['snapshots'][0]
      self.assertAllEqual(reinit_start == 0, main['masks'][0] == 0)
      self.assertFalse(np.allclose(main_start, reinit_start))

  def test_random_prune_control_has_same_counts_other_masks_same_rewind_point(self):
    for level in (1, 2):
      main, random = self._masks(level, 'main'), self._masks(level, 'random_prune')
      main_masks, random_masks = main['masks'], random['masks']
      self.assertEqual([int(np.count_nonzero(m)) for m in random_masks],
                       [int(np.count_nonzero(m)) for m in main_masks])
      self.assertFalse(all(np.array_equal(a, b) for a, b in zip(main_masks, random_masks, strict=True)))
      self.assertAllEqual(random['snapshots'][0], main['snapshots'][0])
    ranks = {r['branch']: r['weights_remaining'] for r in self.results if r['level'] == 2}
    self.assertEqual(len(set(ranks.values())), 1)

  def test_report_table_and_plot_for_one_and_two_runs(self):
    md_path, png_path = experiment.write_report([self.run_dir])
    self.assertEqual(os.path.dirname(md_path), self.run_dir)
    with open(md_path) as f:
      text = f.read()
    self.assertIn('| Level | Weights remaining | Ticket acc. | Reinit acc. | Random prune acc. | Early-stop it. | '
                  'Supermask acc. |', text)
    self.assertIn('| 1 | 50% |', text)
    self.assertIn('| 2 | 25% |', text)
    with open(png_path, 'rb') as f:
      self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')
    other = os.path.join(self.out, 'lottery_copy')
    shutil.copytree(self.run_dir, other, dirs_exist_ok=True)
    md_path, png_path = experiment.write_report([self.out])
    self.assertEqual(os.path.dirname(md_path), os.path.abspath(self.out))
    with open(md_path) as f:
      self.assertEqual(f.read().count('| Level |'), 2)
    self.assertGreater(os.path.getsize(png_path), 10000)


class ResumeTest(_TestCase):

  def test_rerun_skips_every_finished_level(self):
    run_dir = self._new_dir()
    first = _experiment(run_dir, _config(levels=1, controls=('reinit',)))
    results = first.run()
    self.assertEqual(first.jobs_run, 3)
    before = {k: v for k, v in fixtures.file_stats(run_dir).items() if k.startswith('replicate_')}
    again = _experiment(run_dir, _config(levels=1, controls=('reinit',)))
    self.assertEqual(again.run(), results)
    self.assertEqual(again.jobs_run, 0)
    self.assertEqual({k: v for k, v in fixtures.file_stats(run_dir).items() if k.startswith('replicate_')}, before)

  def test_resume_after_losing_the_last_level_matches_an_uninterrupted_run(self):
    resumed_dir = self._new_dir()
    whole = _experiment(resumed_dir).run()
    # The uninterrupted run's last level, kept aside before it is lost.
    whole_level_2 = os.path.join(self._new_dir(), 'level_2')
    shutil.move(os.path.join(resumed_dir, 'replicate_0', 'level_2'), whole_level_2)
    resumed = _experiment(resumed_dir)
    results = resumed.run()
    self.assertEqual(resumed.jobs_run, 1)
    self.assertEqual(_comparable(results), _comparable(whole))
    for name in ('masks.npz', 'weights.npz'):
      a = storage.load_arrays(os.path.join(whole_level_2, 'main', name))
      b = storage.load_arrays(os.path.join(resumed_dir, 'replicate_0', 'level_2', 'main', name))
      for key in a:
        self.assertAllEqual(a[key], b[key], msg=f'{name}:{key}')

  def test_a_run_killed_mid_level_resumes_from_that_level(self):
    run_dir = self._new_dir()


    class KillAtLevel2(experiment.RunHooks):
      rounds = 0

      def after_round(self):
        self.rounds += 1
        if self.rounds == 2:  # level 2's round: pruned, not yet trained
          raise KeyboardInterrupt('killed')

    with self.assertRaises(KeyboardInterrupt):
      _experiment(run_dir, hooks=KillAtLevel2()).run()
    self.assertFalse(os.path.exists(os.path.join(run_dir, 'replicate_0', 'level_2')))
    self.assertTrue(os.path.exists(os.path.join(run_dir, 'replicate_0', 'level_1', 'main', 'metrics.json')))
    resumed = _experiment(run_dir)
    results = resumed.run()
    self.assertEqual(resumed.jobs_run, 1)
    self.assertEqual([r['level'] for r in results], [0, 1, 2])

  def test_late_rewinding_snapshots_after_k_iterations(self):
    run_dir = self._new_dir()
    _experiment(run_dir, _config(levels=1, rewind_step=4)).run()
    stored = experiment.load_masks(run_dir, 0, 1)
    self.assertEqual(stored['snapshot_step'], 4)
    self.assertFalse(np.allclose(stored['snapshots'][0], fixtures.mlp(0).layers[0].kernel.numpy()))

  def test_levels_after_a_late_rewind_resume_at_the_rewind_step(self):
    # 144 training examples at batch 16: 9 iterations per epoch, T = 18; the learning rate drops x0.1 at 5.
    config = experiment.RunConfig(
        model='mlp', data=experiment.DataConfig(name='toy'),
        training=experiment.TrainingConfig(optimizer='sgd', learning_rate=0.1, momentum=0.9, batch_size=16,
                                           training_steps='2ep', lr_decay='step', milestones=('5it',), eval_every=4,
                                           jit_compile=False),
        pruning=experiment.PruningConfig(rate=0.5, layer_rates={}, levels=2, rewind_step=6), controls=('random_prune',))
    hooks = _CountingHooks()
    hooks.run_dir = self._new_dir()
    starts = []
    original = level_lib.LevelTrainer.train_and_measure

    class FirstStepRate(keras.callbacks.Callback):
      """The learning rate the first step of a level used (Keras sets it from the schedule at each step)."""

      def on_train_batch_end(self, batch, logs=None):
        if len(starts[-1]) == 4:
          starts[-1] += (float(self.model.optimizer.learning_rate.numpy()),)

    def recording(self, job, model, evaluate, seed, span, extra_callbacks):
      optimizer = model.optimizer
      starts.append((span, int(optimizer.iterations.numpy()), ltp_tfmot.steps_done(model, optimizer),
                     hooks.train_steps))
      return original(self, job, model, evaluate, seed, span, extra_callbacks + [FirstStepRate()])

    with mock.patch.object(level_lib.LevelTrainer, 'train_and_measure', recording), \
        mock.patch.object(pipeline, 'train_dataset', wraps=pipeline.train_dataset) as data:
      results = _experiment(hooks.run_dir, config, hooks=hooks).run()
    self.assertEqual(hooks.train_steps, 18 + 4 * (18 - 6))  # every level after 0 trains the remaining T - k
    self.assertEqual([it for _, it, _, _, _ in starts], [0, 6, 6, 6, 6])  # controls too start at k
    self.assertEqual([span for span, *_ in starts], [(0, 18)] + [(6, 18)] * 4)
    main_steps = [(r['level'], steps) for (_, _, steps, _, _), r in zip(starts, results, strict=True)
                  if r['branch'] == 'main']
    self.assertEqual(main_steps, [(0, 0), (1, 18), (2, 18 + 12)])  # the model's step count goes on
    self.assertAllClose([lr for *_, lr in starts], [0.1] + [0.01] * 4)  # the schedule continues from k
    self.assertEqual([call.kwargs['start_step'] for call in data.call_args_list], [0, 6, 6, 6, 6])
    self.assertEqual(len({call.args[3] for call in data.call_args_list}), 1)  # one data order for every level
    for r in results:
      self.assertEqual((r['curve'][0]['iteration'], r['curve'][-1]['iteration'], r['iterations']),
                       (0 if r['level'] == 0 else 6, 18, 18))

  def test_replicates_use_consecutive_seeds(self):
    run_dir = self._new_dir()
    config = dataclasses.replace(_config(levels=0), replicates=2)
    results = _experiment(run_dir, config).run()
    self.assertEqual([(r['replicate'], r['seed']) for r in results], [(0, 0), (1, 1)])
    self.assertNotEqual(results[0]['supermask_loss'], results[1]['supermask_loss'])


class CompiledPathTest(_TestCase, parameterized.TestCase):

  def _run(self, jit_compile, steps_per_execution, rewind_step):
    config = experiment.RunConfig(
        model='mlp', data=experiment.DataConfig(name='toy'),
        training=experiment.TrainingConfig(optimizer='sgd', learning_rate=0.05, momentum=0.9, batch_size=16, epochs=2,
                                           eval_every=3, jit_compile=jit_compile,
                                           steps_per_execution=steps_per_execution),
        pruning=experiment.PruningConfig(rate=0.5, layer_rates={}, levels=2, rewind_step=rewind_step),
        controls=('reinit',))
    run_dir = self._new_dir()
    return run_dir, _experiment(run_dir, config).run()

  @parameterized.named_parameters(('rewind_to_init', 0), ('late_rewind', 4))
  def test_compiled_path_gives_the_masks_and_metrics_of_the_step_by_step_loop(self, rewind_step):
    plain_dir, plain = self._run(False, 1, rewind_step)
    compiled_dir, compiled = self._run(True, 7, rewind_step)
    self.assertLen(compiled, len(plain))
    for a, b in zip(plain, compiled, strict=True):
      self.assertEqual((a['level'], a['branch'], a['early_stop_iteration'], a['best_val_iteration']),
                       (b['level'], b['branch'], b['early_stop_iteration'], b['best_val_iteration']))
      self.assertEqual([p['iteration'] for p in a['curve']], [p['iteration'] for p in b['curve']])
      self.assertEqual(a['weights_alive'], b['weights_alive'])
      for key in ('test_accuracy', 'test_loss', 'supermask_loss', 'best_val_accuracy'):
        self.assertAllClose(a[key], b[key], rtol=1e-4, atol=1e-5, msg=f'level {a["level"]} {a["branch"]} {key}')
    for level in (1, 2):
      a = storage.load_arrays(os.path.join(plain_dir, 'replicate_0', f'level_{level}', 'main', 'masks.npz'))
      b = storage.load_arrays(os.path.join(compiled_dir, 'replicate_0', f'level_{level}', 'main', 'masks.npz'))
      for key in a:
        if key.startswith('snapshot') and a[key].dtype.kind == 'f':
          self.assertAllClose(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
        else:  # masks, names, counters
          self.assertAllEqual(a[key], b[key], msg=key)


class _CountingHooks(experiment.RunHooks):

  def __init__(self):
    self.train_steps, self.rounds, self.writes = 0, 0, []

  def after_train_step(self):
    self.train_steps += 1

  def after_round(self):
    self.rounds += 1

  def write_file(self, path, file, data):
    self.writes.append(os.path.relpath(path, self.run_dir))
    super().write_file(path, file, data)


class HooksTest(_TestCase):

  def test_hooks_see_every_training_step_round_boundary_and_file(self):
    hooks = _CountingHooks()
    hooks.run_dir = self._new_dir()
    runner = _experiment(hooks.run_dir, _config(levels=1, controls=('reinit',)), hooks=hooks)
    runner.run()
    self.assertEqual(hooks.train_steps, 3 * runner.iterations)  # levels 0 and 1, and the control at level 1
    self.assertEqual(hooks.rounds, 1)
    level_0 = [os.path.join('replicate_0', 'level_0', 'main', name) for name in
               (storage.MASKS, storage.WEIGHTS, storage.CURVE, storage.METRICS_CSV, storage.METRICS_JSON)]
    self.assertEqual(hooks.writes[:7], [storage.CONFIG] + level_0 + ['replicate_0/level_0/main.manifest.json'])
    # Every file of the run went through the hooks.
    self.assertCountEqual(set(hooks.writes), fixtures.file_stats(hooks.run_dir))

  def test_hooks_of_another_type_are_refused(self):
    with self.assertRaisesRegex(TypeError, 'hooks must be a ltp_tfmot.experiment.RunHooks, got object'):
      _experiment(self._new_dir(), hooks=object())


class OtherFileSystemTest(_TestCase):

  def test_run_directory_on_a_tensorflow_file_system_runs_resumes_and_loads(self):
    local = self._new_dir()
    self.addCleanup(os.chdir, os.getcwd())
    os.chdir(local)  # where a local 'ram:' tree would appear if the path were taken for a local one
    out = f'ram://runner_test_{uuid.uuid4().hex}/runs'
    config = _config(levels=1)
    first = experiment.LotteryExperiment(config, out, model_fn=_mlp, data=DATA, log=lambda line: None)
    results = first.run()
    run_dir = f'{out}/{config.run_name()}'
    self.assertEqual(first.run_dir, run_dir)
    self.assertEqual(os.listdir(local), [])
    self.assertTrue(tf.io.gfile.exists(f'{run_dir}/{storage.CONFIG}'))
    self.assertTrue(tf.io.gfile.glob(f'{run_dir}/tensorboard/replicate_0/main/events.out.tfevents.*'))
    paths = storage.RunDirectory(run_dir)
    self.assertEqual([paths.verify(0, level) for level in range(2)], ['', ''])
    self.assertEqual(experiment.find_runs([out]), [run_dir])
    self.assertEqual([r['level'] for r in storage.load_level_metrics(run_dir)], [0, 1])
    again = experiment.LotteryExperiment(config, out, model_fn=_mlp, data=DATA, log=lambda line: None)
    self.assertEqual(again.run(), results)
    self.assertEqual(again.jobs_run, 0)
    model, _ = experiment.load_trained_model(run_dir, level=1, model_fn=_mlp, data=DATA)
    self.assertAllClose(ltp_tfmot.weights_remaining(model), results[1]['weights_remaining'])
    md_path, png_path = experiment.write_report([out])
    self.assertEqual((md_path, png_path), (f'{run_dir}/report.md', f'{run_dir}/accuracy.png'))
    self.assertIn('| Level |', tf.io.gfile.GFile(md_path).read())
    self.assertEqual(os.listdir(local), [])


class OtherLayersTest(_TestCase):

  def test_layers_without_prunable_weights_are_reset_at_each_level(self):
    rng = np.random.RandomState(0)
    images = (rng.randn(120, 8, 8, 2).astype(np.float32), rng.randint(0, 3, 120),
              rng.randn(30, 8, 8, 2).astype(np.float32), rng.randint(0, 3, 30))
    config = dataclasses.replace(_config(levels=1), model='convnet')
    seen = []  # per level, in order
    original = level_lib.LevelTrainer.train_and_measure

    def spy(self, job, model, evaluate, seed, span, extra_callbacks):
      seen.append([w.numpy() for w in model.get_layer('bn').weights])
      return original(self, job, model, evaluate, seed, span, extra_callbacks)

    run_dir = self._new_dir()
    with mock.patch.object(level_lib.LevelTrainer, 'train_and_measure', spy):
      experiment.LotteryExperiment(config, run_dir=run_dir, model_fn=lambda *args: fixtures.convnet(args[-1]),
                                   data=images, tensorboard=False, log=lambda line: None).run()
    trained = storage.load_arrays(os.path.join(run_dir, 'replicate_0', 'level_0', 'main', 'weights.npz'))
    trained_bn = [v for v, name in zip(storage.unpack(trained, 'weight'), trained['weight_names'], strict=True)
                  if 'bn/' in name]
    self.assertFalse(np.allclose(trained_bn[2], seen[0][2]))  # level 0 training moved the moving mean
    for before, after in zip(seen[0], seen[1], strict=True):
      self.assertAllEqual(before, after)  # level 1 starts from the rewind values again
    self.assertLen(experiment.load_masks(run_dir, 0, 1)['other'], 4)


class RefusalTest(_TestCase):

  def test_other_settings_are_refused_and_the_directory_left_untouched(self):
    run_dir = self._new_dir()
    _experiment(run_dir, _config(levels=0)).run()
    before = fixtures.file_stats(run_dir)
    with self.assertRaisesRegex(ValueError, r'holds a run with other settings.*pruning\.rate is 0\.5 there and 0\.3'):
      _experiment(run_dir, _config(levels=0, rate=0.3)).run()
    other_data = (_X + 1.0, _Y, _XT, _YT)
    with self.assertRaisesRegex(ValueError, 'the data differ'):
      _experiment(run_dir, _config(levels=0), data=other_data).run()
    self.assertEqual(fixtures.file_stats(run_dir), before)

  def test_non_run_directory_is_refused(self):
    run_dir = self._new_dir()
    with open(os.path.join(run_dir, 'notes.txt'), 'w') as f:
      f.write('mine')
    with self.assertRaisesRegex(ValueError, 'not an ltp_tfmot run directory'):
      _experiment(run_dir, _config(levels=0)).run()
    self.assertEqual(os.listdir(run_dir), ['notes.txt'])

  def test_bad_data_and_model_fail_before_writing(self):
    out = self._new_dir()
    with self.assertRaisesRegex(ValueError, r'y_train must hold one integer class per example'):
      _experiment(os.path.join(out, 'a'), data=(_X, _Y[:10], _XT, _YT)).run()
    with self.assertRaisesRegex(ValueError, r'model must be one of .*lenet_300_100'):
      experiment.LotteryExperiment(experiment.RunConfig(model='resnet'), out)
    with self.assertRaisesRegex(ValueError, r'rewind_step \(100\) must be smaller than the iterations'):
      _experiment(os.path.join(out, 'b'), _config(rewind_step=100)).run()
    self.assertEqual(os.listdir(out), [])

  def test_cifar10_offline_fails_fast_with_a_clear_error(self):
    with mock.patch.dict(os.environ, {'KERAS_HOME': self._new_dir()}), \
        mock.patch.object(socket, 'create_connection', side_effect=OSError('no network')):
      with self.assertRaisesRegex(ValueError, 'CIFAR-10 is not in the Keras cache .* cannot be downloaded'):
        data_lib.load_data(experiment.DataConfig(name='cifar10'))


class ModelsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((models_lib.conv2, 2, 8), (models_lib.conv4, 4, 4), (models_lib.conv6, 6, 2))
  def test_conv_nets_of_frankle_and_carbin(self, build, convs, side):
    model = build(input_shape=(16, 16, 3), seed=0)
    conv_layers = [layer for layer in model.layers if 'conv' in layer.name]
    self.assertLen(conv_layers, convs)
    self.assertEqual([layer.filters for layer in conv_layers], [64, 64, 128, 128, 256, 256][:convs])
    self.assertTrue(all(layer.kernel_size == (3, 3) for layer in conv_layers))
    self.assertEqual(model.get_layer('flatten').output_shape[-1], side * side * conv_layers[-1].filters)
    self.assertEqual([model.get_layer(n).units for n in ('fc1', 'fc2', 'output')], [256, 256, 10])
    self.assertIsInstance(model.get_layer('fc1').kernel_initializer, keras.initializers.GlorotNormal)
    wrapped = ltp_tfmot.prune_lottery_ticket(model, layer_rates={'output': 0.1})
    self.assertLen(ltp_tfmot.lottery_wrappers(wrapped), convs + 3)

  def test_conv4_preset_prunes_conv_layers_at_their_pattern_rate(self):
    x, y = fixtures.classification_data(n=40, seed=0)
    images = np.resize(x, (40, 8, 8, 3)).astype(np.float32)
    config = experiment.RunConfig.for_model(
        'conv4', data={'name': 'toy_images'}, training={'training_steps': '2it', 'batch_size': 8, 'eval_every': 2},
        pruning={'levels': 1})
    self.assertEqual(dict(config.pruning.layer_rates), {'conv*': 0.1, 'output': 0.1})
    run_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    results = experiment.run_experiment(config, run_dir=run_dir, data=(images, y, images[:16], y[:16]),
                                        tensorboard=False, log=lambda line: None)
    remaining = results[1]['layer_weights_remaining']
    self.assertEqual({name: round(v, 3) for name, v in remaining.items()},
                     {'conv1': 0.9, 'conv2': 0.9, 'conv3': 0.9, 'conv4': 0.9, 'fc1': 0.8, 'fc2': 0.8, 'output': 0.9})


if __name__ == '__main__':
  tf.test.main()
