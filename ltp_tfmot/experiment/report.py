"""Reports of lottery runs: per-level summaries across replicates, Markdown tables, the report files.

Example:

```python
from ltp_tfmot import experiment

md_path, png_path = experiment.write_report(['runs/lottery_1a2b3c4d5e6f'])
print(open(md_path).read())
```
"""

import collections
import math
import os

from ltp_tfmot import files
from ltp_tfmot.experiment import branches
from ltp_tfmot.experiment import plots
from ltp_tfmot.experiment import storage
from ltp_tfmot.experiment import training_path

REPORT_MD = 'report.md'
REPORT_PNG = 'accuracy.png'

Stat = collections.namedtuple('Stat', ['mean', 'std', 'min', 'max', 'n'])


def stat(values):
  """Mean, sample standard deviation (0 for one value), min, max and count of numbers."""
  values = [float(v) for v in values]
  n = len(values)
  mean = sum(values) / n
  std = math.sqrt(sum((v - mean)**2 for v in values) / (n - 1)) if n > 1 else 0.0
  return Stat(mean, std, min(values), max(values), n)


def summarize(results):
  """Per level and branch, statistics across replicates.

  Args:
    results: Level metrics dicts (as `LotteryExperiment.run` or
      `load_run(...)['results']` return them).

  Returns:
    A dict {(level, branch): {metric: Stat}} for the metrics test_accuracy,
    test_loss, weights_remaining, best_val_accuracy, early_stop_iteration,
    supermask_accuracy and wall_time_s.
  """
  groups = collections.defaultdict(list)
  for row in results:
    groups[(row['level'], row['branch'])].append(row)
  keys = ('test_accuracy', 'test_loss', 'weights_remaining', 'best_val_accuracy', 'early_stop_iteration',
          'supermask_accuracy', 'wall_time_s')
  return {group: {key: stat([row[key] for row in rows]) for key in keys} for group, rows in sorted(groups.items())}


def _percent(s, digits=2):
  if s is None:
    return '–'
  text = f'{100 * s.mean:.{digits}f}'
  return text + (f' ± {100 * s.std:.{digits}f}' if s.n > 1 else '') + '%'


def _count(s):
  if s is None:
    return '–'
  return f'{s.mean:.0f}' + (f' ± {s.std:.0f}' if s.n > 1 else '')


def markdown_table(summary):
  """A Markdown table: level, weights remaining, ticket and control accuracy, early-stop iteration, supermask.

  Accuracies are test accuracies at the end of training, as mean ± sample
  standard deviation across replicates when there are several. The
  early-stop iteration (minimum validation loss) and the supermask accuracy
  (the masked, untrained rewind point) are the ticket's.

  Args:
    summary: The output of `summarize`.
  """
  levels = sorted({level for level, _ in summary})
  present = {branch for _, branch in summary}
  columns = [b for b in branches.display_order(present) if b in present or b == storage.MAIN]
  header = (['Level', 'Weights remaining'] + [f'{branches.style(b)[0]} acc.' for b in columns]
            + ['Early-stop it.', 'Supermask acc.'])
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---:|' * len(header)]
  for level in levels:
    main = summary.get((level, storage.MAIN))
    any_branch = main or next(v for (lv, _), v in summary.items() if lv == level)
    cells = [str(level), f'{100 * any_branch["weights_remaining"].mean:.3g}%']
    cells += [_percent((summary.get((level, b)) or {}).get('test_accuracy')) for b in columns]
    cells += [_count(main['early_stop_iteration']) if main else '–',
              _percent(main['supermask_accuracy'], 1) if main else '–']
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def comparison_table(runs, labels):
  """A Markdown table of several runs' tickets side by side: test accuracy at each weights remaining.

  Rows are the fractions of weights remaining the runs' main levels reach
  (runs with the same rates reach the same ones), largest first; a run
  without a level there shows '–'. This is how retraining modes
  (`pruning.retrain`) and criteria (IMP against pruning at initialization)
  compare at matched weights remaining and budgets.

  Args:
    runs: Loaded runs (`load_run`).
    labels: One column title per run.
  """
  cells = collections.defaultdict(dict)
  for column, run in enumerate(runs):
    for (_, branch), stats in summarize(run['results']).items():
      if branch == storage.MAIN:
        cells[float(f'{stats["weights_remaining"].mean:.4g}')][column] = stats['test_accuracy']
  lines = ['| Weights remaining | ' + ' | '.join(labels) + ' |', '|' + '---:|' * (len(labels) + 1)]
  for remaining in sorted(cells, reverse=True):
    row = [f'{100 * remaining:.3g}%'] + [_percent(cells[remaining].get(column)) for column in range(len(runs))]
    lines.append('| ' + ' | '.join(row) + ' |')
  return '\n'.join(lines) + '\n'


def load_run(run_dir):
  """A run directory's config.json and finished level metrics.

  Returns:
    A dict with 'path', 'name', 'meta' (config.json), 'description' and
    'results' (level metrics sorted by replicate, level, branch).

  Raises:
    CorruptFileError: if a finished level's files are missing or do not match
      its manifest (the run redoes it when run again).
  """
  meta = storage.read_json(os.path.join(run_dir, storage.CONFIG))
  return {
      'path': files.abspath(run_dir),
      'name': os.path.basename(files.abspath(run_dir).rstrip('/')),
      'meta': meta,
      'description': meta.get('description', ''),
      'results': storage.load_level_metrics(run_dir, verify=True),
  }


def markdown_report(runs, plot_name=None):
  """The Markdown text of a report on loaded runs (see `load_run`): with several, their tickets side by side first."""
  parts = ['# Lottery ticket report\n']
  if plot_name:
    parts.append(f'![Test accuracy vs. weights remaining]({plot_name})\n')
  if len(runs) > 1:
    parts.append('## Tickets side by side\n')
    parts.append('Test accuracy of each run\'s ticket (the main levels) at the end of training.\n')
    parts.append(comparison_table(runs, short_labels(runs)))
  for run in runs:
    meta = run['meta']
    data = meta.get('data', {})
    replicates = len({r['replicate'] for r in run['results']})
    parts.append(f'## {run["name"]}\n')
    parts.append(f'{run["description"]}. Data: {data.get("source", "?")} ({data.get("train", "?")} train, '
                 f'{data.get("validation", "?")} validation, {data.get("test", "?")} test); '
                 f'{replicates} replicate{"s" if replicates != 1 else ""}; directory `{run["path"]}`.\n')
    if run['results']:
      parts.append(markdown_table(summarize(run['results'])))
      parts.append(training_path_text(run['results']))
    else:
      parts.append('No level has finished yet.\n')
  return '\n'.join(parts)


def training_path_text(results):
  """What numeric path the levels trained on (`training_path`), and any change a resume accepted, as Markdown."""
  paths = collections.defaultdict(list)
  for row in results:
    path = row.get('training_path')
    if path:
      paths[training_path.describe(path), path.get('accepted_change')].append(
          f'{row["level"]}' + ('' if row['branch'] == 'main' else f' {row["branch"]}'))
  if not paths:
    return ''
  if len(paths) == 1 and not next(iter(paths))[1]:
    return f'Training path: {next(iter(paths))[0]}.\n'
  lines = ['Training paths (the floats of levels on different paths differ; a resume accepted the change):\n']
  for (text, change), levels in paths.items():
    lines.append(f'- {text}' + (f' (accepted change: {change})' if change else '') + f': levels {", ".join(levels)}')
  return '\n'.join(lines) + '\n'



def write_report(run_dirs, out_dir=None):
  """Writes report.md and accuracy.png for one or more runs, comparing them in one figure.

  Args:
    run_dirs: Run directories, or folders holding run directories.
    out_dir: Where to write; default: the run directory for one run, else
      the folder the runs have in common.

  Returns:
    (path of report.md, path of accuracy.png).

  Raises:
    ValueError: for a path that is not a run directory nor holds any, or an
      `out_dir` that is (or lies in) a file; `CorruptFileError` (a
      ValueError) for a finished level whose files do not match its
      manifest. Nothing is written then.
    StorageError: if `out_dir` cannot be written.
  """
  paths = storage.find_runs(run_dirs)
  if out_dir is None:
    out_dir = paths[0] if len(paths) == 1 else files.commonpath(paths)
  _check_report_dir(out_dir)
  runs = [load_run(path) for path in paths]
  files.makedirs(out_dir)
  png_path = os.path.join(out_dir, REPORT_PNG)
  md_path = os.path.join(out_dir, REPORT_MD)
  labels = short_labels(runs) if len(runs) > 1 else ['']
  plots.plot_accuracy([(label, run['results']) for label, run in zip(labels, runs, strict=True)], png_path)
  storage.write_text(md_path, markdown_report(runs, plot_name=REPORT_PNG))
  return md_path, png_path


def _check_report_dir(out_dir):
  """Raises unless the report files can be written in `out_dir`, which is made if missing (a local folder)."""
  if not files.is_local(out_dir):
    return  # object stores have no folders to check; a missing bucket fails at the write
  existing = os.path.abspath(out_dir)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise ValueError(f'the report folder {out_dir} cannot be made: {existing} is a file. Name a folder for '
                     f'{REPORT_MD} and {REPORT_PNG} (it is made if missing)')
  files.check_directory_of(os.path.join(existing, REPORT_MD))


def short_labels(runs):
  """A title per run from the settings in which the runs differ ('retrain=lr_rewind'); else the run's name."""
  settings = [run['meta'].get('config', {}) for run in runs]
  flat = [dict(_flat_items(s)) for s in settings]
  keys = sorted({k for f in flat for k in f if len({repr(g.get(k)) for g in flat}) > 1})
  labels = [', '.join(f'{k.split(".")[-1]}={f.get(k)}' for k in keys) for f in flat]
  if len(set(labels)) < len(runs) or not all(labels):
    return [run['name'] for run in runs]
  return labels


def _flat_items(values, prefix=''):
  for key, value in values.items():
    if isinstance(value, dict) and key != 'layer_rates':
      yield from _flat_items(value, f'{prefix}{key}.')
    elif key not in ('replicates', 'controls', 'control_levels', 'levels'):
      yield prefix + key, value
