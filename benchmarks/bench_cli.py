"""Start-up time of the command line: `ltp-tfmot --help`, a flag error and `report`, against bare interpreters.

Usage, from the repository root:

  PYTHONPATH=. .venv/bin/python benchmarks/bench_cli.py                        # this checkout
  PYTHONPATH=. .venv/bin/python benchmarks/bench_cli.py --baseline=OLD_CHECKOUT  # and an older one, side by side

Each command runs as a whole process (start-up included), the variants interleaved repetition by repetition;
the report gives the median wall time of each and the median of the per-repetition ratios to this checkout's
`--help`. It writes benchmarks/cli_results.md, which run_all.py appends to BENCHMARKS.md.
"""

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

from benchmarks import common  # noqa: E402


def _commands(report_dir):
  python = sys.executable
  return [
      ('python -c pass', [python, '-c', 'pass']),
      ('python -c "import tensorflow"', [python, '-c', 'import tensorflow']),
      ('ltp-tfmot --help', [python, '-m', 'ltp_tfmot.cli', '--help']),
      ('ltp-tfmot run --rate=1.5 (flag error)', [python, '-m', 'ltp_tfmot.cli', 'run', '--rate=1.5']),
      ('ltp-tfmot report RUN_DIR', [python, '-m', 'ltp_tfmot.cli', 'report', report_dir,
                                    f'--report_dir={report_dir}']),
  ]


def _time(argv, path):
  env = dict(os.environ, PYTHONPATH=path)
  env.pop('TF_CPP_MIN_LOG_LEVEL', None)  # the command line must keep TensorFlow quiet by itself
  start = time.perf_counter()
  # Run from the checkout itself: `python -m` puts the working directory first on sys.path.
  result = subprocess.run(argv, env=env, cwd=path, capture_output=True, text=True, check=False)
  elapsed = time.perf_counter() - start
  return elapsed, result


def _tiny_run(directory):
  """A finished one-level run directory to report on (made once, not timed)."""
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2')
  subprocess.run([sys.executable, '-m', 'ltp_tfmot.cli', 'run', f'--run_dir={directory}', '--dataset_source=embedded',
                  '--train_size=300', '--test_size=50', '--epochs=1', '--levels=1', '--notensorboard'],
                 env=env, check=True, capture_output=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--baseline', help='an older checkout of the repository to time beside this one')
  parser.add_argument('--repetitions', type=int, default=7)
  parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'cli_results.md'))
  args = parser.parse_args()

  with tempfile.TemporaryDirectory() as tmp:
    run_dir = os.path.join(tmp, 'run')
    _tiny_run(run_dir)
    variants = [(name, argv, ROOT, 'this checkout') for name, argv in _commands(run_dir)]
    if args.baseline:
      variants += [(name, argv, args.baseline, 'baseline') for name, argv in _commands(run_dir)
                   if name.startswith('ltp-tfmot')]
    times = {key: [] for key in [(name, where) for name, _, _, where in variants]}
    tf_lines = {}
    for rep in range(args.repetitions):
      order = variants[rep % len(variants):] + variants[:rep % len(variants)]
      for name, argv, path, where in order:
        elapsed, result = _time(argv, path)
        times[name, where].append(elapsed)
        # TensorFlow's start-up lines (cuda probes, absl warnings) that reach the user's terminal.
        tf_lines[name, where] = sum(('cuda' in line or 'absl::InitializeLog' in line or 'oneDNN' in line)
                                    for line in (result.stdout + result.stderr).splitlines())
  reference = times['ltp-tfmot --help', 'this checkout']
  lines = [
      '# Command-line start-up',
      '',
      f'Written by `benchmarks/bench_cli.py`. Command: `PYTHONPATH=. .venv/bin/python benchmarks/bench_cli.py'
      f'{" --baseline=OLD_CHECKOUT" if args.baseline else ""}`',
      '',
      f'- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {args.repetitions} '
      f'interleaved repetitions of each whole process; `nproc` = {os.cpu_count()}; load average '
      f'{os.getloadavg()[0]:.1f} at the end (shared cores: read the ratios)',
      '- baseline: the checkout before the lazy imports (its `--help` imported TensorFlow and tfmot)'
      if args.baseline else '- no baseline checkout given',
      '',
      '| command | code | wall median (s) | min - max (s) | / this --help | TensorFlow start-up lines printed |',
      '|---|---|---:|---:|---:|---:|',
  ]
  for (name, where), values in times.items():
    ratio = common.paired_ratio(values, reference)
    lines.append(f'| `{name}` | {where} | {statistics.median(values):.2f} | {min(values):.2f} - {max(values):.2f} | '
                 f'{ratio:.2f}x | {tf_lines[name, where]} |')
  common.write_markdown(lines, args.out)


if __name__ == '__main__':
  main()
