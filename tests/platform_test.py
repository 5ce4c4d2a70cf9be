"""Tests of where a run trains: the strategy of the runner's `strategy` argument, the chief, a lost worker."""

from absl.testing import parameterized
import tensorflow as tf

from ltp_tfmot import errors
from ltp_tfmot.experiment import platform
from tests import fixtures


class MakeStrategyTest(tf.test.TestCase):

  def test_strategy_names(self):
    self.assertIsNone(platform.make_strategy(None))
    self.assertIsNone(platform.make_strategy('default'))
    strategy = tf.distribute.OneDeviceStrategy('/cpu:0')
    self.assertIs(platform.make_strategy(strategy), strategy)
    with self.assertRaisesRegex(ValueError, r"strategy must be one of \['default', 'mirrored', 'multi_worker'\].*"
                                r"'tpu'"):
      platform.make_strategy('tpu')

  def test_the_default_strategy_has_no_scope_of_its_own(self):
    with platform.strategy_scope(None):
      self.assertFalse(tf.distribute.has_strategy())
    strategy = tf.distribute.OneDeviceStrategy('/cpu:0')
    with platform.strategy_scope(strategy):
      self.assertIs(tf.distribute.get_strategy(), strategy)


class WorkerRoleTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ('worker_0_without_chief', 'worker', 0, {'worker': ['a:1', 'b:1']}, True),
      ('worker_1', 'worker', 1, {'worker': ['a:1', 'b:1']}, False),
      ('chief', 'chief', 0, {'chief': ['a:1'], 'worker': ['b:1']}, True),
      ('worker_0_with_chief', 'worker', 0, {'chief': ['a:1'], 'worker': ['b:1']}, False),
      ('evaluator', 'evaluator', 0, {'worker': ['a:1'], 'evaluator': ['b:1']}, False),
  )
  def test_chief_is_the_chief_task_or_worker_0(self, task_type, task_id, cluster, chief):
    strategy = tf.distribute.MirroredStrategy(['/cpu:0'])
    self.assertEqual(platform.worker_role(strategy), (True, None))
    with fixtures.simulated_worker(strategy, task_type, task_id, cluster):
      self.assertEqual(platform.worker_role(strategy), (chief, f'{task_type}:{task_id}'))

  def test_a_process_without_a_strategy_is_its_own_chief(self):
    self.assertEqual(platform.worker_role(None), (True, None))


class PeerLostTest(tf.test.TestCase):

  def test_names_the_lost_task_and_how_to_resume(self):
    error = tf.errors.UnavailableError(None, None, 'Task /job:worker/replica:0/task:1 stopped sending heartbeats '
                                                   '(heartbeat timeout)')
    self.assertIsInstance(error, platform.PEER_ERRORS)
    lost = platform.peer_lost(error, 'worker:0', '/runs/r')
    self.assertIsInstance(lost, errors.WorkerLostError)
    self.assertEqual(str(lost), 'worker worker:0: another worker of this multi-worker run died or cannot be reached '
                     '(UnavailableError naming /job:worker/replica:0/task:1, which stopped sending heartbeats), so '
                     'this one stopped too. The level in progress was not written; finished levels in /runs/r are '
                     'intact. Start every worker again with the same command to resume.')


if __name__ == '__main__':
  tf.test.main()
