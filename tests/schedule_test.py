"""Tests for the lottery-ticket pruning schedules."""

from absl.testing import parameterized
import tensorflow as tf
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_schedule

import ltp_tfmot
from ltp_tfmot.core import schedule as schedule_lib


class LotteryTicketScheduleTest(tf.test.TestCase, parameterized.TestCase):

  def test_is_a_tfmot_pruning_schedule_once_the_keras_2_front_end_is_loaded(self):
    from ltp_tfmot.keras2 import wrapper  # noqa: F401  # pylint: disable=g-import-not-at-top,unused-import
    self.assertIsInstance(ltp_tfmot.LotteryTicketSchedule(0.2, 10, 3), pruning_schedule.PruningSchedule)

  def test_rounds_end_every_round_steps_and_stop_after_the_last(self):
    schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.5, round_steps=10, rounds=2)
    fired = [step for step in range(0, 50) if bool(schedule(tf.constant(step))[0])]
    self.assertEqual(fired, [10, 20])
    self.assertEqual([schedule.rounds_due(s) for s in (0, 9, 10, 19, 20, 100)], [0, 0, 1, 1, 2, 2])

  def test_target_sparsity_compounds_per_round(self):
    schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.2, round_steps=5, rounds=3)
    self.assertAllClose(schedule(tf.constant(15))[1], 1 - 0.8 ** 3)
    self.assertAllClose(schedule(tf.constant(7))[1], 0.2)
    self.assertAlmostEqual(schedule.density_after(7), 0.8 ** 7)
    self.assertEqual(schedule.total_steps, 20)

  def test_schedule_without_rounds_never_fires(self):
    schedule = ltp_tfmot.LotteryTicketSchedule(rate=0.3)
    self.assertFalse(bool(schedule(tf.constant(1000))[0]))
    self.assertEqual(schedule.rounds_due(10 ** 6), 0)
    self.assertIsNone(schedule.total_steps)

  @parameterized.named_parameters(
      ('lottery', ltp_tfmot.LotteryTicketSchedule(0.2, 100, 4)),
      ('by_hand', ltp_tfmot.LotteryTicketSchedule(0.35)),
      ('one_shot', ltp_tfmot.OneShotLotterySchedule(0.9, 500)),
  )
  def test_config_round_trips(self, schedule):
    config = schedule.get_config()
    self.assertEqual(config['class_name'], type(schedule).__name__)
    self.assertEqual(schedule_lib.deserialize_schedule(config), schedule)

  def test_one_shot_prunes_once_to_the_target(self):
    schedule = ltp_tfmot.OneShotLotterySchedule(target_sparsity=0.9, prune_step=50)
    self.assertEqual((schedule.rate, schedule.round_steps, schedule.rounds), (0.9, 50, 1))
    self.assertAllClose(schedule(tf.constant(50))[1], 0.9)

  @parameterized.named_parameters(
      ('rate_above_one', dict(rate=1.5), r'rate must be in \(0, 1\), got 1.5'),
      ('rate_zero', dict(rate=0.0), r'rate must be in \(0, 1\), got 0.0'),
      ('rate_string', dict(rate='0.2'), r"rate must be a number in \(0, 1\), got '0.2'"),
      ('round_steps_zero', dict(rate=0.2, round_steps=0, rounds=1), r'round_steps must be an integer >= 1'),
      ('rounds_zero', dict(rate=0.2, round_steps=5, rounds=0), r'rounds must be an integer >= 1'),
      ('rounds_float', dict(rate=0.2, round_steps=5, rounds=1.5), r'rounds must be an integer >= 1'),
      ('only_round_steps', dict(rate=0.2, round_steps=5), r'round_steps and rounds must be given together'),
  )
  def test_bad_arguments_raise_naming_the_argument(self, kwargs, message):
    with self.assertRaisesRegex((TypeError, ValueError), message):
      ltp_tfmot.LotteryTicketSchedule(**kwargs)

  def test_one_shot_rejects_bad_target(self):
    with self.assertRaisesRegex(ValueError, r'target_sparsity must be in \(0, 1\), got 1'):
      ltp_tfmot.OneShotLotterySchedule(target_sparsity=1, prune_step=10)


class _Wrapper:

  def __init__(self, schedule, rewind_step=0):
    self.pruning_schedule, self.rewind_step = schedule, rewind_step


class SharedScheduleTest(tf.test.TestCase):

  def test_the_wrappers_schedule_and_rewind_step(self):
    schedule = ltp_tfmot.LotteryTicketSchedule(0.2, round_steps=10, rounds=2)
    self.assertEqual(schedule_lib.shared_schedule([_Wrapper(schedule, 3), _Wrapper(schedule, 3)]), (schedule, 3))

  def test_wrappers_that_disagree_raise(self):
    one, other = ltp_tfmot.LotteryTicketSchedule(0.2, 10, 2), ltp_tfmot.LotteryTicketSchedule(0.5, 10, 2)
    with self.assertRaisesRegex(ValueError, r'must share one schedule and rewind_step'):
      schedule_lib.shared_schedule([_Wrapper(one), _Wrapper(other)])
    with self.assertRaisesRegex(ValueError, r'needs a model wrapped'):
      schedule_lib.shared_schedule([])

  def test_next_boundary_is_the_snapshot_then_each_round_end(self):
    schedule = ltp_tfmot.LotteryTicketSchedule(0.2, round_steps=10, rounds=2)
    self.assertEqual(schedule_lib.next_boundary(schedule, 4, has_snapshot=False, rounds_done=0), 4)
    self.assertEqual(schedule_lib.next_boundary(schedule, 4, has_snapshot=True, rounds_done=1), 20)
    self.assertIsNone(schedule_lib.next_boundary(schedule, 4, has_snapshot=True, rounds_done=2))


if __name__ == '__main__':
  tf.test.main()
