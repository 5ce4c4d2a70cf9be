"""`ltp-tfmot` with pause points, for the tests that kill or interrupt a run at a chosen point.

Usage:

  python -m tests.paused_cli --pause_at=<phase>@<n>[,<phase>@<n>...] run [ltp-tfmot flags]

Phases: 'train' (after a training step), 'masks' (at a level's round boundary:
new masks computed and weights rewound, before training) and 'write' (halfway
through writing a run-directory file, at its temporary name, the first half
flushed). The n-th time the process reaches a phase it prints
`LTP_TFMOT_PAUSED <phase>@<n>` and sleeps `PAUSE_SECONDS`, so that the test
can kill (or interrupt) it exactly there. Everything else is `ltp_tfmot.cli`.
"""

import collections
import sys
import time

from ltp_tfmot import cli
from ltp_tfmot.experiment import hooks as hooks_lib

MARKER = 'LTP_TFMOT_PAUSED'
PHASES = ('train', 'masks', 'write')
PAUSE_SECONDS = 600
_FLAG = '--pause_at='


class PausingHooks(hooks_lib.RunHooks):
  """Prints `MARKER <phase>@<n>` and sleeps at the n-th arrival at each phase of `spec` ('train@3,write@1')."""

  def __init__(self, spec):
    self.points = set()
    for item in filter(None, (item.strip() for item in spec.split(','))):
      phase, _, nth = item.partition('@')
      if phase not in PHASES:
        raise ValueError(f'pause phase must be one of {list(PHASES)}, got {item!r}')
      self.points.add((phase, int(nth or 1)))
    self.counts = collections.Counter()

  def _reached(self, phase):
    self.counts[phase] += 1
    if (phase, self.counts[phase]) in self.points:
      print(f'{MARKER} {phase}@{self.counts[phase]}', flush=True)
      time.sleep(PAUSE_SECONDS)

  def after_train_step(self):
    self._reached('train')

  def after_round(self):
    self._reached('masks')

  def write_file(self, path, file, data):
    half = len(data) // 2
    file.write(data[:half])
    file.flush()
    self._reached('write')
    file.write(data[half:])


def main(argv):
  spec = argv.pop(0)[len(_FLAG):] if argv and argv[0].startswith(_FLAG) else ''
  return cli.main(['ltp-tfmot'] + argv, hooks=PausingHooks(spec))


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
