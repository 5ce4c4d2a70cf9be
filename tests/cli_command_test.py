"""Tests for what every `ltp-tfmot` command shares (`ltp_tfmot.cli.command`)."""

import os
from unittest import mock

from absl import flags
import tensorflow as tf

from ltp_tfmot.cli import command


class CommandTest(tf.test.TestCase):

  def test_common_flags_are_listed_in_their_own_help_section(self):
    flag_values = flags.FlagValues()
    command.define_common_flags(flag_values)
    flag_values(['ltp-tfmot', '-h', '--verbose'])
    self.assertEqual((flag_values.help, flag_values.helpfull, flag_values.helpshort, flag_values.verbose),
                     (True, False, False, True))
    self.assertCountEqual([flag.name for flag in flag_values.get_flags_for_module(command.EVERY_COMMAND)],
                          ['help', 'helpfull', 'helpshort', 'verbose'])
    self.assertEqual(command.section('export'), 'Flags of ltp-tfmot export')

  def test_quiet_tensorflow_sets_the_log_level_only_if_unset_and_not_verbose(self):
    for verbose, preset, expected in ((False, None, '2'), (True, None, None), (False, '0', '0')):
      environ = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
      if preset is not None:
        environ['TF_CPP_MIN_LOG_LEVEL'] = preset
      with mock.patch.dict(os.environ, environ, clear=True):
        command.quiet_tensorflow(verbose)
        self.assertEqual(os.environ.get('TF_CPP_MIN_LOG_LEVEL'), expected, (verbose, preset))


if __name__ == '__main__':
  tf.test.main()
