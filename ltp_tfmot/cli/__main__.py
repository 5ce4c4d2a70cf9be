"""`python -m ltp_tfmot.cli`: the `ltp-tfmot` command line (see `ltp_tfmot.cli`)."""

import sys

from ltp_tfmot import cli

if __name__ == '__main__':
  sys.exit(cli.main())
