"""One worker of tests/multiworker_test.py: a lottery round under MultiWorkerMirroredStrategy.

Usage (TF_CONFIG describes the cluster and this worker's task; the strategy
reads it when it is created, so each worker is a process of its own):

  TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:P0", "127.0.0.1:P1"]}, "task": {"type": "worker", "index": 0}}' \
      python -m tests.multiworker_worker --out=worker_0.npz

It trains the tests' MLP for one round (`LotteryTicketSchedule(rate,
round_steps, rounds=1)` driven by `UpdateLotteryStep`: train, prune, rewind)
and writes an .npz with the masks, the weights and snapshots of every wrapped
layer, and every local replica copy of each of them (`copy_<name>_<i>`).
`lottery_round` is also what the test runs on one device for the reference.
"""

import argparse
import json
import os
import sys

import numpy as np

RATE = 0.5
ROUND_STEPS = 4
BATCH_SIZE = 16
EXAMPLES = 64


def lottery_round(strategy):
  """Builds, wraps and compiles the MLP in `strategy.scope()`, then trains one round; returns the model."""
  import ltp_tfmot  # pylint: disable=g-import-not-at-top
  from tests import fixtures  # pylint: disable=g-import-not-at-top
  with strategy.scope():
    schedule = ltp_tfmot.LotteryTicketSchedule(rate=RATE, round_steps=ROUND_STEPS, rounds=1)
    model = fixtures.compile_for_training(
        ltp_tfmot.prune_lottery_ticket(fixtures.mlp(), schedule, scope='global', criterion='large_final'),
        learning_rate=0.05)
  x, y = fixtures.classification_data(n=EXAMPLES)
  model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, shuffle=False, verbose=0,
            callbacks=[ltp_tfmot.UpdateLotteryStep()])
  return model


def model_arrays(model):
  """{name: array} of the round's result: masks, weights, snapshots (primary copies), and every local copy."""
  import ltp_tfmot  # pylint: disable=g-import-not-at-top
  arrays = {}
  for w in ltp_tfmot.lottery_wrappers(model):
    variables = [(f'mask/{w.layer.name}/{i}', mask) for i, (_, mask, _) in enumerate(w.pruning_vars)]
    variables += [(f'weight/{w.layer.name}/{i}', v) for i, v in enumerate(w.layer.weights)]
    variables += [(f'snapshot/{w.layer.name}/{i}', v) for i, v in enumerate(w.snapshots)]
    for name, variable in variables:
      arrays[name] = variable.numpy()
      for i, copy in enumerate(getattr(variable, 'values', ())):
        arrays[f'copy/{name}/{i}'] = copy.numpy()
  arrays['rounds_done'] = np.array([int(w.rounds_done.numpy()) for w in ltp_tfmot.lottery_wrappers(model)])
  return arrays


def main(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', required=True, help='the .npz file to write')
  args = parser.parse_args(argv)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  task = json.loads(os.environ['TF_CONFIG'])['task']
  # Created first, before any other TensorFlow op: it configures the collective ops of this process.
  strategy = tf.distribute.MultiWorkerMirroredStrategy()
  print(f'worker {task["index"]}: {strategy.num_replicas_in_sync} replicas in sync', flush=True)
  arrays = model_arrays(lottery_round(strategy))
  arrays['num_replicas_in_sync'] = np.array(strategy.num_replicas_in_sync)
  temp = args.out + '.tmp.npz'
  np.savez(temp, **arrays)
  os.replace(temp, args.out)
  print(f'worker {task["index"]}: wrote {args.out}', flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
