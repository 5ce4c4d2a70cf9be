"""Tests of one job in a worker process: what it needs, what a worker is sent, its level equal to the serial one."""

import os
import shutil
import tempfile

import tensorflow as tf

from ltp_tfmot import experiment
from ltp_tfmot.experiment import branches
from ltp_tfmot.experiment import storage
from ltp_tfmot.experiment import worker
from tests import fixtures


def _spec(config, run_dir):
  return worker.worker_spec(config, run_dir, model_fn=fixtures.run_model_fn, data=fixtures.RUN_DATA, verbose=False,
                            tensorboard=False, hooks=experiment.RunHooks(), training_path_change=None)


class _Flip(branches.Reinit):
  name = 'flip'
  title = 'Flip'
  label = 'flip'


class JobNeedsTest(tf.test.TestCase):

  def test_a_main_level_needs_the_level_before(self):
    self.assertEqual(worker.job_needs((0, 0, 'main')), [])
    self.assertEqual(worker.job_needs((1, 3, 'main')), [(1, 2, 'main')])

  def test_a_branch_needs_the_main_levels_it_names(self):
    self.assertEqual(worker.job_needs((0, 2, 'reinit')), [(0, 2, 'main')])
    self.assertEqual(worker.job_needs((1, 2, 'inverted_scores')), [(1, 1, 'main'), (1, 2, 'main')])


class WorkerSpecTest(tf.test.TestCase):

  def test_the_spec_carries_the_branches_a_worker_process_lacks(self):
    experiment.register_branch(_Flip())
    self.addCleanup(experiment.unregister_branch, 'flip')
    spec = _spec(fixtures.tiny_run_config(controls=('reinit', 'flip')), '/runs/r')
    self.assertEqual([b.name for b in spec['branches']], ['flip'])
    self.assertEqual(spec['criteria'], [])  # the run's criterion is built in
    self.assertEqual((spec['run_dir'], spec['training_path_change']), ('/runs/r', None))


class JobWorkerTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.config = fixtures.tiny_run_config(controls=('reinit',))
    cls.whole = fixtures.finished_run(cls, cls.config)

  def _unfinished_copy(self, *jobs):
    run_dir = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'run')
    shutil.copytree(self.whole, run_dir)
    for job in jobs:
      os.remove(storage.RunDirectory(run_dir).manifest_path(*job))
    return run_dir

  def _assert_same_level(self, run_dir, job, metrics):
    want = storage.read_json(storage.RunDirectory(self.whole).file(*job, storage.METRICS_JSON))
    for key in ('weights_alive', 'test_accuracy', 'test_loss', 'early_stop_iteration', 'curve'):
      self.assertEqual(metrics[key], want[key], f'{job} {key}')
    for got, expected in zip(storage.load_masks(run_dir, *job)['masks'], storage.load_masks(self.whole, *job)['masks'],
                             strict=True):
      self.assertAllEqual(got, expected)

  def test_levels_rebuilt_from_the_run_directory_equal_the_serial_run(self):
    run_dir = self._unfinished_copy((0, 1, 'main'), (0, 1, 'reinit'))
    jobs = worker.JobWorker(_spec(self.config, run_dir))
    for job in ((0, 1, 'main'), (0, 1, 'reinit')):
      self._assert_same_level(run_dir, job, jobs.run_job(job))

  def test_a_main_level_goes_on_in_the_model_of_the_level_before(self):
    run_dir = self._unfinished_copy((0, 0, 'main'), (0, 1, 'main'))
    jobs = worker.JobWorker(_spec(self.config, run_dir))
    self._assert_same_level(run_dir, (0, 0, 'main'), jobs.run_job((0, 0, 'main')))
    os.remove(storage.RunDirectory(run_dir).file(0, 0, 'main', storage.WEIGHTS))  # level 1 must not read it
    self._assert_same_level(run_dir, (0, 1, 'main'), jobs.run_job((0, 1, 'main')))


if __name__ == '__main__':
  tf.test.main()
