"""The report of an instability analysis: the earliest stable rewind step, a table, a plot, and both as files.

`instability.instability_analysis` measures the instability of a run's level
at each rewind step k; what is made of its results of one level is here:
`earliest_stable_rewind_step` (the rewind step to use for late rewinding),
`instability_table` (Markdown), `plot_instability` (error along each path, and
instability against k) and `write_instability_report`, which writes the
table and the plot to instability.md and instability.png. With results of
several replicates, each k's instability is their mean. matplotlib is
imported when a plot is made (`plots.new_figure`).

Example:

```python
from ltp_tfmot import experiment

results = experiment.load_instability('runs/lottery_44136fa355b3', level=0)
print(experiment.instability_table(results))
experiment.write_instability_report(results, experiment.instability_dir('runs/lottery_44136fa355b3', 0))
```
"""

import os

import numpy as np

from ltp_tfmot.experiment import instability
from ltp_tfmot.experiment import plots
from ltp_tfmot.experiment import storage


def _single_level(results, what):
  results = list(results)
  if not results:
    raise ValueError(f'{what} needs at least one instability result (from instability_analysis)')
  levels = {(r['replicate'], r['level']) for r in results}
  if len({level for _, level in levels}) > 1:
    raise ValueError(f'{what} takes the results of one level, got levels {sorted({lv for _, lv in levels})}')
  return results


def _by_rewind_step(results):
  """{k: mean instability across the replicates given}, sorted by k."""
  groups = {}
  for r in results:
    groups.setdefault(r['rewind_step'], []).append(r['instability'])
  return {k: float(np.mean(v)) for k, v in sorted(groups.items())}


def earliest_stable_rewind_step(results, threshold=instability.DEFAULT_THRESHOLD):
  """The earliest rewind step k whose instability is below `threshold`: the rewind step to use.

  With results of several replicates, the instability at each k is their mean.

  Args:
    results: Instability results of one level (`instability_analysis` or
      `load_instability`).
    threshold: The largest error rise still counted as stable, in (0, 1]
      (Frankle et al. use 0.02, i.e. 2 percentage points).

  Returns:
    The smallest k with instability < threshold.

  Raises:
    NoStableRewindStepError: (a ValueError) if no k given is below the
      threshold; the message lists each k's instability.
    ValueError: for a bad threshold, no results, or results of several levels.

  Example:

  ```python
  k = experiment.earliest_stable_rewind_step(experiment.load_instability(run_dir, level=0))
  ```
  """
  threshold = instability.check_threshold(threshold)
  by_step = _by_rewind_step(_single_level(results, 'earliest_stable_rewind_step'))
  for k, value in by_step.items():
    if value < threshold:
      return k
  listing = ', '.join(f'k={k}: {100 * v:.2f}%' for k, v in by_step.items())
  raise instability.NoStableRewindStepError(
      f'No rewind step analysed has an instability below {100 * threshold:g}% ({listing}); analyse later rewind '
      f'steps than {max(by_step)}')


def instability_table(results):
  """A Markdown table: per rewind step k, the instability, the ends' mean error and the path's largest error.

  Args:
    results: Instability results of one level.

  Returns:
    The table as a string (errors in %; with several replicates, means).

  Example:

  ```python
  print(experiment.instability_table(experiment.load_instability(run_dir, level=0)))
  ```
  """
  results = _single_level(results, 'instability_table')
  lines = ['| Rewind step k | Instability | Error at the ends (mean) | Largest error on the path | Copy A error | '
           'Copy B error |', '|---:|---:|---:|---:|---:|---:|']
  groups = {}
  for r in results:
    groups.setdefault(r['rewind_step'], []).append(r)
  for k, rows in sorted(groups.items()):

    def mean(fn, rows=rows):
      return 100 * float(np.mean([fn(r) for r in rows]))

    lines.append(f'| {k} | {mean(lambda r: r["instability"]):.2f}% | {mean(lambda r: r["end_error_mean"]):.2f}% | '
                 f'{mean(lambda r: max(p["test_error"] for p in r["path"])):.2f}% | '
                 f'{mean(lambda r: r["copies"][0]["test_error"]):.2f}% | '
                 f'{mean(lambda r: r["copies"][1]["test_error"]):.2f}% |')
  return '\n'.join(lines)


def plot_instability(results, path, title=None, threshold=None):
  """Writes a PNG: test error along the path (one line per k) and instability against k.

  Args:
    results: Instability results of one level (with several replicates,
      one line per replicate and k on the left, means on the right).
    path: The PNG file to write.
    title: The figure title (default: names the run and level).
    threshold: If given, drawn as a dashed line on the instability panel.

  Returns:
    `path`.

  Raises:
    MissingDependencyError: (an ImportError) if matplotlib is not installed.

  Example:

  ```python
  experiment.plot_instability(experiment.load_instability(run_dir, level=0), 'instability.png', threshold=0.02)
  ```
  """
  results = _single_level(results, 'plot_instability')
  fig = plots.new_figure()
  path_ax, k_ax = fig.subplots(1, 2)
  steps = sorted({r['rewind_step'] for r in results})
  colors = {k: f'C{i % 10}' for i, k in enumerate(steps)}
  for r in sorted(results, key=lambda r: (r['rewind_step'], r['replicate'])):
    path_ax.plot([p['alpha'] for p in r['path']], [100 * p['test_error'] for p in r['path']], marker='o',
                 markersize=3, color=colors[r['rewind_step']], label=f'k={r["rewind_step"]}')
  handles, labels = path_ax.get_legend_handles_labels()
  unique = dict(zip(labels, handles, strict=True))
  path_ax.legend(unique.values(), unique.keys(), fontsize='small', loc='best')
  path_ax.set_xlabel('interpolation alpha (0: copy A, 1: copy B)')
  path_ax.set_ylabel('test error (%)')
  by_step = _by_rewind_step(results)
  k_ax.plot(list(by_step), [100 * v for v in by_step.values()], marker='o', color='C0')
  k_ax.set_xlabel('rewind step k (iteration the copies fork at)')
  if threshold is not None:
    k_ax.axhline(100 * instability.check_threshold(threshold), linestyle='--', color='C3',
                 label=f'threshold {100 * threshold:g}%')
    k_ax.legend(fontsize='small', loc='best')
  k_ax.set_ylim(bottom=0)
  k_ax.set_ylabel('instability (%): max error rise along the path')
  for ax in (path_ax, k_ax):
    ax.grid(True, alpha=0.3)
  first = results[0]
  fig.suptitle(title or f'Instability of {first["run"]}, level {first["level"]} '
               f'({100 * first["weights_remaining"]:.3g}% of the weights)')
  return plots.save_png(fig, path)


def write_instability_report(results, out_dir, threshold=instability.DEFAULT_THRESHOLD):
  """Writes instability.md (the table and the earliest stable k) and instability.png for results of one level.

  Args:
    results: Instability results of one level.
    out_dir: Where the files go, e.g. the level's folder in the run
      directory, `instability_dir(run_dir, level)`.
    threshold: The threshold of `earliest_stable_rewind_step`.

  Returns:
    (markdown path, png path, the Markdown text).

  Example:

  ```python
  results = experiment.load_instability(run_dir, level=0)
  md_path, png_path, text = experiment.write_instability_report(results, experiment.instability_dir(run_dir, 0))
  ```
  """
  threshold = instability.check_threshold(threshold)
  results = _single_level(results, 'write_instability_report')
  first = results[0]
  try:
    verdict = (f'Earliest rewind step with instability below {100 * threshold:g}%: '
               f'k={earliest_stable_rewind_step(results, threshold)}.')
  except instability.NoStableRewindStepError as error:
    verdict = f'{error}.'
  order = "; both copies on the run's data order" if first['same_data_order'] else ''
  text = (f'# Instability of {first["run"]}, level {first["level"]}\n\n'
          f'{100 * first["weights_remaining"]:.3g}% of the weights; {first["iterations"]} iterations per level; '
          f'{first["points"]} points per path{order}.\n\n{instability_table(results)}\n\n{verdict}\n')
  md_path = os.path.join(out_dir, instability.REPORT_MD)
  storage.write_text(md_path, text)
  png_path = plot_instability(results, os.path.join(out_dir, instability.REPORT_PNG), threshold=threshold)
  return md_path, png_path, text
