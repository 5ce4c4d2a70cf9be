"""Tests for the training steps a model's lottery wrappers count (`ltp_tfmot.core.steps`), on plain objects."""

import tensorflow as tf

from ltp_tfmot.core import steps

_NOT_COUNTING = -99


class _Counter:

  def __init__(self, value):
    self.value = value

  def assign(self, value):
    self.value = value


class _Wrapper:

  def __init__(self, offset=_NOT_COUNTING, recorded=-1):
    self.step_offset, self.pruning_step = _Counter(offset), _Counter(recorded)


def _read(counter):
  return counter.value


class StepsTest(tf.test.TestCase):

  def test_steps_are_the_offset_plus_iterations_never_below_the_recorded_count(self):
    self.assertEqual(steps.steps_done(_Wrapper(offset=5, recorded=3), 4, _read, _NOT_COUNTING), 9)
    self.assertEqual(steps.steps_done(_Wrapper(offset=0, recorded=12), 4, _read, _NOT_COUNTING), 12)

  def test_without_counting_or_an_optimizer_the_recorded_count_stands(self):
    self.assertEqual(steps.steps_done(_Wrapper(recorded=7), 4, _read, _NOT_COUNTING), 7)
    self.assertEqual(steps.steps_done(_Wrapper(offset=5, recorded=-1), None, _read, _NOT_COUNTING), 0)

  def test_counting_on_moves_every_wrappers_offset_and_record(self):
    wrappers = [_Wrapper(), _Wrapper()]
    self.assertEqual(steps.count_steps_with(wrappers, iterations=3, steps=10), 7)
    self.assertEqual([(w.step_offset.value, w.pruning_step.value) for w in wrappers], [(7, 10), (7, 10)])

  def test_counting_starts_once(self):
    w = _Wrapper(recorded=-1)
    steps.start_counting(w, _read, _NOT_COUNTING)
    self.assertEqual((w.step_offset.value, w.pruning_step.value), (0, 0))
    w.step_offset.assign(4)
    steps.start_counting(w, _read, _NOT_COUNTING)
    self.assertEqual(w.step_offset.value, 4)


if __name__ == '__main__':
  tf.test.main()
