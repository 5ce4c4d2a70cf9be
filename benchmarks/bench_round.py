"""Benchmark 3: the round boundary, `run_lottery_round` (prune + rewind + optimizer reset), at 12M weights.

The 12M-weight MLP of benchmark 1 is wrapped (global and layer scope,
large_final), compiled with Adam and trained for one step with
`UpdateLotteryStep` (so the rewind snapshot is taken and Adam's slots exist).
Before each timed call, masks, round counter and weights are put back to their
state after that step (outside the timed region), so every repetition runs the
same round 1. The three parts, `compute_next_masks`, `rewind_weights` and
`reset_optimizer`, are timed on their own too, interleaved with the whole.
"""

import numpy as np
import tensorflow as tf
import tf_keras as keras

from benchmarks import bench_masks
from benchmarks import common
import ltp_tfmot

WIDTH = bench_masks.WIDTHS['12M']
QUICK_WIDTH = bench_masks.WIDTHS['1M']


class TrainedModel:
  """A wrapped MLP after one Adam step, restorable to that state."""

  def __init__(self, width, scope):
    model = ltp_tfmot.prune_lottery_ticket(bench_masks.mlp(width), ltp_tfmot.LotteryTicketSchedule(0.2),
                                           scope=scope)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.random((64, 784), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    model.fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=[ltp_tfmot.UpdateLotteryStep()])
    self.model = model
    self.wrappers = ltp_tfmot.lottery_wrappers(model)
    self.weights = [(w, w.numpy()) for wrapper in self.wrappers for w in wrapper.layer.weights]
    self.weights_count = sum(int(tf.size(m)) for wrapper in self.wrappers for _, m, _ in wrapper.pruning_vars)
    self.slots = len(model.optimizer.variables())

  def reset(self):
    for wrapper in self.wrappers:
      for _, mask, _ in wrapper.pruning_vars:
        mask.assign(tf.ones_like(mask))
      wrapper.rounds_done.assign(0)
    for variable, value in self.weights:
      variable.assign(value)

  def round(self):
    ltp_tfmot.run_lottery_round(self.model, self.model.optimizer)

  def masks(self):
    ltp_tfmot.compute_next_masks(self.model)

  def rewind(self):
    ltp_tfmot.rewind_weights(self.model)

  def reset_optimizer(self):
    ltp_tfmot.reset_optimizer(self.model.optimizer)


def bench_scope(width, scope, reps):
  trained = TrainedModel(width, scope)
  trained.reset()
  first = common.time_once(trained.round)
  parts = {
      'run_lottery_round': (trained.round, trained.reset),
      'compute_next_masks': (trained.masks, trained.reset),
      'rewind_weights': (trained.rewind, None),
      'reset_optimizer': (trained.reset_optimizer, None),
  }
  times = common.interleaved(parts, reps)
  trained.reset()
  result = {'scope': scope, 'weights': trained.weights_count, 'optimizer_variables': trained.slots,
            'first_call_s': first, 'profile': common.profile_call(trained.round)}
  result.update({name: common.summary(values) for name, values in times.items()})
  print(f"{scope}: run_lottery_round {result['run_lottery_round']['median']:.3f}s (" +
        ', '.join(f"{name} {result[name]['median']:.3f}s" for name in list(parts)[1:]) + ')', flush=True)
  return result


def main():
  args = common.parse_args(__doc__.splitlines()[0])
  common.quiet_logs()
  width = QUICK_WIDTH if args.quick else WIDTH
  reps = 2 if args.quick else 7
  results = [bench_scope(width, scope, reps) for scope in ('global', 'layer')]
  common.write_results({'round': results, 'load_after': common.load_average()}, args.out)


if __name__ == '__main__':
  main()
