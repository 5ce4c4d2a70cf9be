"""Tests of the experiment runner under tf.distribute strategies, in one process.

MirroredStrategy runs on two logical CPU devices (set here at module set-up,
as tests/distributed_test.py does; under pytest tests/conftest.py does it).
The chief-only-writes logic of multi-worker runs is tested with a simulated
cluster resolver; tests/multiworker_test.py runs real worker processes.
"""

import os
import tempfile
from unittest import mock

import tensorflow as tf

from ltp_tfmot import cli
from ltp_tfmot import experiment
from ltp_tfmot.experiment import level as level_lib
from ltp_tfmot.experiment import storage
from tests import fixtures

DATA = fixtures.classification_data(n=160, seed=0) + fixtures.classification_data(n=64, seed=1)


def setUpModule():
  fixtures.split_cpu_in_two()


def _mlp(input_shape, num_classes, seed):
  del input_shape, num_classes
  return fixtures.mlp(seed)


def _config(levels=2, controls=('reinit', 'random_prune')):
  return experiment.RunConfig(
      model='mlp',
      data=experiment.DataConfig(name='toy'),
      # Strategies on CPUs train without XLA: so does the default-strategy run they are compared with, exactly.
      training=experiment.TrainingConfig(learning_rate=0.01, batch_size=16, epochs=1, eval_every=3,
                                         jit_compile=False),
      pruning=experiment.PruningConfig(rate=0.5, layer_rates={}, levels=levels),
      controls=controls)


def _experiment(run_dir, config=None, log=None, **kwargs):
  return experiment.LotteryExperiment(config or _config(), run_dir=run_dir, model_fn=_mlp, data=DATA,
                                      tensorboard=False, log=log or (lambda line: None), **kwargs)


def _without_time(results):
  return [{k: v for k, v in r.items() if k != 'wall_time_s'} for r in results]


class MirroredRunnerTest(tf.test.TestCase):

  def test_mirrored_run_matches_the_default_strategy_and_replicas_agree(self):
    if len(tf.config.list_logical_devices('CPU')) < 2:
      self.skipTest('needs two logical CPU devices; run this file on its own (bazel does)')
    config = _config(levels=1)
    default_dir, mirrored_dir = tempfile.mkdtemp(dir=self.get_temp_dir()), tempfile.mkdtemp(dir=self.get_temp_dir())
    default = _experiment(default_dir, config).run()
    runner = _experiment(mirrored_dir, config, strategy='mirrored')
    self.assertEqual(runner.strategy.num_replicas_in_sync, 2)
    self.assertTrue(runner.is_chief)
    trained = []
    original = level_lib.LevelTrainer.train_and_measure

    def spy(self, job, model, evaluate, seed, span, extra_callbacks):
      metrics = original(self, job, model, evaluate, seed, span, extra_callbacks)
      trained.append(model)
      return metrics

    with mock.patch.object(level_lib.LevelTrainer, 'train_and_measure', spy):
      mirrored = runner.run()
    self.assertEqual([(r['level'], r['branch']) for r in mirrored], [(r['level'], r['branch']) for r in default])
    self.assertLen(mirrored, 2 + 2)
    for got, want in zip(mirrored, default, strict=True):
      self.assertEqual(got['weights_alive'], want['weights_alive'])
      self.assertEqual(got['layer_weights_remaining'], want['layer_weights_remaining'])
      for key in ('test_accuracy', 'test_loss', 'best_val_accuracy', 'supermask_accuracy', 'supermask_loss',
                  'early_stop_val_loss'):
        self.assertAllClose(got[key], want[key], rtol=1e-4, atol=1e-5, msg=f'{got["level"]} {got["branch"]} {key}')
    for level, branch in ((0, 'main'), (1, 'main'), (1, 'reinit'), (1, 'random_prune')):
      got = experiment.load_masks(mirrored_dir, 0, level, branch)
      want = experiment.load_masks(default_dir, 0, level, branch)
      for a, b in zip(got['masks'], want['masks'], strict=True):
        self.assertAllEqual(a, b)
      for a, b in zip(got['snapshots'], want['snapshots'], strict=True):
        self.assertAllClose(a, b, rtol=1e-5, atol=1e-6)
    # Every variable (weights, masks, snapshots, counters) is mirrored, and both replicas hold the same values.
    self.assertLen(trained, 4)
    for model in trained:
      for variable in model.weights:
        copies = [v.numpy() for v in variable.values]
        self.assertLen(copies, 2, variable.name)
        self.assertAllEqual(copies[0], copies[1], msg=variable.name)
    # The run directory of a mirrored run is an ordinary one: a default-strategy run resumes it.
    again = _experiment(mirrored_dir, config)
    again.run()
    self.assertEqual(again.jobs_run, 0)


class StrategyArgumentTest(tf.test.TestCase):

  def test_unknown_strategy_is_refused(self):
    with self.assertRaisesRegex(ValueError, r"strategy must be one of \['default', 'mirrored', 'multi_worker'\].*"
                                r"'tpu'"):
      _experiment(tempfile.mkdtemp(dir=self.get_temp_dir()), strategy='tpu')

  def test_cli_strategy_flag(self):
    cli.FLAGS.unparse_flags()
    cli.FLAGS(['ltp-tfmot', '--strategy=mirrored'])
    self.assertEqual(cli.FLAGS.strategy, 'mirrored')
    cli.FLAGS.unparse_flags()
    self.assertEqual(cli.main(['ltp-tfmot', 'run', '--strategy=parameter_server']), 2)


class ChiefOnlyWritesTest(tf.test.TestCase):
  """A simulated two-worker cluster: worker 1 must leave the run directory alone."""

  def test_non_chief_writes_nothing_and_returns_the_chiefs_results(self):
    config = _config(levels=1, controls=())
    chief_dir, other_dir = tempfile.mkdtemp(dir=self.get_temp_dir()), tempfile.mkdtemp(dir=self.get_temp_dir())
    cluster = {'worker': ['127.0.0.1:1', '127.0.0.1:2']}
    strategy = tf.distribute.MirroredStrategy(['/cpu:0'])
    with fixtures.simulated_worker(strategy, 'worker', 0, cluster):
      chief = _experiment(chief_dir, config, strategy=strategy)
      self.assertTrue(chief.is_chief)
      chief_results = chief.run()
    self.assertEqual(chief.jobs_run, 2)
    self.assertTrue(os.path.exists(os.path.join(chief_dir, 'config.json')))

    lines = []
    with fixtures.simulated_worker(strategy, 'worker', 1, cluster):
      other = _experiment(other_dir, config, strategy=strategy, log=lines.append)
      self.assertFalse(other.is_chief)
      other_results = other.run()
    self.assertEqual(other.jobs_run, 2)
    self.assertEqual(os.listdir(other_dir), [])  # not even config.json
    shadow = [line for line in lines if 'writes its files to' in line][0].split('writes its files to ')[1].split()[0]
    self.assertFalse(os.path.exists(shadow))
    self.assertEqual([(r['level'], r['branch']) for r in other_results],
                     [(r['level'], r['branch']) for r in chief_results])
    for got, want in zip(_without_time(other_results), _without_time(chief_results), strict=True):
      got, want = dict(got), dict(want)
      got.pop('run')
      want.pop('run')
      self.assertEqual(got, want)

  def test_non_chief_resumes_from_the_run_directory_without_changing_it(self):
    config = _config(levels=2, controls=())
    run_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    _experiment(run_dir, config).run()
    whole = storage.load_level_metrics(run_dir)
    os.remove(storage.RunDirectory(run_dir).manifest_path(0, 2))  # level 2 is unfinished now
    chief = storage.RunDirectory(run_dir)
    chief.lock.take()  # the chief's run holds the directory: a non-chief worker neither takes the lock nor is refused
    self.addCleanup(chief.lock.release)
    before = fixtures.file_stats(run_dir)
    strategy = tf.distribute.MirroredStrategy(['/cpu:0'])
    with fixtures.simulated_worker(strategy, 'worker', 1, {'worker': ['127.0.0.1:1', '127.0.0.1:2']}):
      other = _experiment(run_dir, config, strategy=strategy)
      results = other.run()
    self.assertEqual(other.jobs_run, 1)  # level 2, from level 1's weights in the run directory
    self.assertEqual(fixtures.file_stats(run_dir), before)
    self.assertEqual(_without_time(results), _without_time(whole))
    self.assertEqual([r['level'] for r in storage.load_level_metrics(run_dir)], [0, 1])

  def test_non_chief_refuses_a_run_directory_of_another_run(self):
    run_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    _experiment(run_dir, _config(levels=0, controls=())).run()
    before = fixtures.file_stats(run_dir)
    strategy = tf.distribute.MirroredStrategy(['/cpu:0'])
    other_config = experiment.RunConfig(
        model='mlp', data=experiment.DataConfig(name='toy'),
        training=experiment.TrainingConfig(learning_rate=0.02, batch_size=16, epochs=1, eval_every=3),
        pruning=experiment.PruningConfig(rate=0.5, layer_rates={}, levels=0))
    with fixtures.simulated_worker(strategy, 'worker', 1, {'worker': ['127.0.0.1:1', '127.0.0.1:2']}):
      with self.assertRaisesRegex(ValueError, 'holds a run with other settings'):
        _experiment(run_dir, other_config, strategy=strategy).run()
    self.assertEqual(fixtures.file_stats(run_dir), before)


if __name__ == '__main__':
  tf.test.main()
