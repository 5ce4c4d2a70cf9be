"""Plots of lottery runs with matplotlib's Agg canvas (no display, no global backend change).

matplotlib is imported when a plot is made, so the runner works without it.
`new_figure` and `save_png` are the set-up every plot of the package shares
(the instability report's too).
"""

import collections
import io
import math

from ltp_tfmot import errors
from ltp_tfmot.experiment import branches
from ltp_tfmot.experiment import storage

Line = collections.namedtuple('Line', ['run', 'branch', 'label', 'line_style', 'marker', 'color', 'metric', 'points'])
Line.__doc__ = """One line of `plot_accuracy`: a branch's metric per level, (x, mean, min, max) points."""


def _series(results, branch, key):
  """(x = weights remaining in %, mean, min, max) per level of one branch, across replicates."""
  by_level = collections.defaultdict(list)
  for row in results:
    if row['branch'] == branch:
      by_level[row['level']].append(row)
  points = []
  for level in sorted(by_level):
    rows = by_level[level]
    values = [float(r[key]) for r in rows]
    x = 100.0 * sum(r['weights_remaining'] for r in rows) / len(rows)
    points.append((x, sum(values) / len(values), min(values), max(values)))
  return points


# The two panels: metric -> scale of its axis.
_METRICS = {'test_accuracy': 100.0, 'early_stop_iteration': 1.0}


def plot_lines(runs):
  """The lines `plot_accuracy` draws: per run, per branch present (main first, then the registry's order), per panel.

  Args:
    runs: A list of (label, level metrics) pairs; label may be ''.

  Returns:
    A list of `Line`s. Colours: one per run, or with one run one per branch.
  """
  lines = []
  for index, (run_label, results) in enumerate(runs):
    present = {row['branch'] for row in results}
    for position, branch in enumerate(branches.display_order(present)):
      if branch not in present:
        continue  # the position still counts: a branch keeps its colour whichever others ran
      _, label, line_style, marker = branches.style(branch)
      color = f'C{position % 10}' if len(runs) == 1 else f'C{index % 10}'
      for metric in _METRICS:
        points = _series(results, branch, metric)
        if points:
          lines.append(Line(run_label, branch, f'{run_label}: {label}' if run_label else label, line_style, marker,
                            color, metric, points))
  return lines


def plot_accuracy(runs, path, title='Lottery tickets: accuracy vs. weights remaining'):
  """Writes a PNG: test accuracy and early-stop iteration vs. weights remaining (log x).

  Each branch has its registered line style and marker (the ticket solid,
  the random-reinit control dashed, the random-pruning control dotted); with
  several runs each run has a colour (with one, each branch has). Lines are means
  across replicates; shaded bands span their min and max.

  Args:
    runs: A list of (label, level metrics) pairs; label may be ''.
    path: The PNG file to write.
    title: The figure title.

  Returns:
    `path`.

  Raises:
    MissingDependencyError: (an ImportError) if matplotlib is not installed.
  """
  fig = new_figure()
  from matplotlib import ticker  # pylint: disable=g-import-not-at-top  # new_figure checked that matplotlib loads
  axes = dict(zip(_METRICS, fig.subplots(1, 2), strict=True))
  xs = set()
  for line in plot_lines(runs):
    ax, scale = axes[line.metric], _METRICS[line.metric]
    x = [p[0] for p in line.points]
    xs.update(x)
    ax.plot(x, [scale * p[1] for p in line.points], linestyle=line.line_style, marker=line.marker, color=line.color,
            label=line.label, markersize=4)
    if any(p[3] > p[2] for p in line.points):
      ax.fill_between(x, [scale * p[2] for p in line.points], [scale * p[3] for p in line.points], color=line.color,
                      alpha=0.15, linewidth=0)
  accuracy_ax, stop_ax = axes.values()
  for ax, ylabel in ((accuracy_ax, 'test accuracy (%) at the end of training'),
                     (stop_ax, 'early-stop iteration (min. validation loss)')):
    ax.set_xscale('log')
    ax.set_xlabel('weights remaining (%)')
    ax.set_ylabel(ylabel)
    ax.grid(True, which='both', alpha=0.3)
    if xs:
      ax.set_xlim(max(xs) * 1.15, min(xs) / 1.15)  # sparser to the right, as in the paper
      ticks = sorted(xs, reverse=True)
      step = max(1, math.ceil(len(ticks) / 10))
      ax.xaxis.set_major_locator(ticker.FixedLocator(ticks[::step]))
      ax.xaxis.set_minor_locator(ticker.NullLocator())
      ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f'{v:.3g}'))
  if xs:
    accuracy_ax.legend(fontsize='small', loc='best')
  fig.suptitle(title)
  return save_png(fig, path)


def new_figure():
  """A 12 x 4.8 inch figure on matplotlib's Agg canvas (no display, no global backend change).

  Returns:
    A `matplotlib.figure.Figure`.

  Raises:
    MissingDependencyError: (an ImportError) if matplotlib is not installed.
  """
  try:
    from matplotlib import figure as figure_lib  # pylint: disable=g-import-not-at-top
    from matplotlib.backends import backend_agg  # pylint: disable=g-import-not-at-top
  except ImportError as error:
    raise errors.MissingDependencyError('plots need matplotlib, which is not installed: pip install matplotlib (or '
                                        'ltp_tfmot[examples])') from error
  fig = figure_lib.Figure(figsize=(12, 4.8), dpi=100)
  backend_agg.FigureCanvasAgg(fig)
  return fig


def save_png(fig, path):
  """Lays `fig` out and writes it to `path` as a PNG, atomically (`storage.atomic_write`); returns `path`."""
  fig.tight_layout()
  buffer = io.BytesIO()
  fig.savefig(buffer, format='png')
  storage.atomic_write(path, lambda f: f.write(buffer.getvalue()), binary=True)
  return path
