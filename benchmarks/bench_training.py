"""Benchmark 2: training overhead, time per epoch of dense vs. tfmot-pruned vs. lottery-ticket training.

Models: LeNet-300-100 and Conv-4 (conv 64-64-pool-128-128-pool, FC 256-256-10)
on MNIST-sized random data (28x28x1 / 784 inputs, 10 classes), Adam, batch 60.

Variants, all built from the same seeded initial weights:

- dense: the plain model.
- tfmot: `prune_low_magnitude` with `ConstantSparsity(0.5, begin_step=1,
  frequency=10**9)`: masks set to 50% on the first step of the warm-up epoch
  (the step count is 1 there) and never recomputed (tfmot still evaluates its schedule every step), with
  tfmot's `UpdatePruningStep` callback.
- ours: `prune_lottery_ticket` with `LotteryTicketSchedule(0.5,
  round_steps=10**9, rounds=1)` after one `compute_next_masks` (masks at 50%),
  trained with `UpdateLotteryStep`: the middle of a round.
- ours, tfmot callback: the same wrapped model trained with tfmot's
  `UpdatePruningStep` instead of `UpdateLotteryStep` (no round can end): splits
  our overhead into the wrapper's share and the callback's.

Each model trains one untimed warm-up epoch (tracing), then epochs are timed
from the first `on_epoch_begin` to the last `on_epoch_end` of the callbacks, in
separate `fit` calls interleaved across the variants. Ratios are medians of
the per-repetition ratios (epochs of one repetition run back to back).
"""

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from benchmarks import common
import ltp_tfmot
from ltp_tfmot import models

BATCH = 60
NEVER = 10**9


class _EpochTimer:
  """Two callbacks around the others: the first starts the clock, the last stops it."""

  def __init__(self):
    self.times = []
    timer = self

    class Start(keras.callbacks.Callback):

      def on_epoch_begin(self, epoch, logs=None):
        timer.start = tf.timestamp().numpy()

    class Stop(keras.callbacks.Callback):

      def on_epoch_end(self, epoch, logs=None):
        timer.times.append(tf.timestamp().numpy() - timer.start)

    self.first, self.last = Start(), Stop()

  def around(self, callbacks):
    return [self.first] + list(callbacks) + [self.last]


def build_model(name, seed=0):
  if name == 'lenet_300_100':
    return models.lenet_300_100(seed=seed)
  return models.conv4(input_shape=(28, 28, 1), seed=seed)


def compile_model(model):
  model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=['accuracy'])
  return model


def variants(name, input_shape):
  """A dict from variant name to (compiled model, callbacks)."""
  dense = compile_model(build_model(name))

  tfmot_schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=1, frequency=NEVER)
  pruned = compile_model(tfmot.sparsity.keras.prune_low_magnitude(build_model(name), pruning_schedule=tfmot_schedule))

  def lottery():
    schedule = ltp_tfmot.LotteryTicketSchedule(0.5, round_steps=NEVER, rounds=1)
    model = ltp_tfmot.prune_lottery_ticket(build_model(name), schedule)
    model.build((None,) + input_shape)
    ltp_tfmot.take_snapshot(model)
    ltp_tfmot.compute_next_masks(model)
    ltp_tfmot.rewind_weights(model)
    return compile_model(model)

  return {
      'dense': (dense, []),
      'tfmot': (pruned, [tfmot.sparsity.keras.UpdatePruningStep()]),
      'ours': (lottery(), [ltp_tfmot.UpdateLotteryStep()]),
      'ours, tfmot callback': (lottery(), [tfmot.sparsity.keras.UpdatePruningStep()]),
  }


def bench_model(name, samples, reps):
  input_shape = (784,) if name == 'lenet_300_100' else (28, 28, 1)
  rng = np.random.default_rng(0)
  x = rng.random((samples,) + input_shape, dtype=np.float32)
  y = rng.integers(0, 10, samples)
  runs = {}
  for variant, (model, callbacks) in variants(name, input_shape).items():
    timer = _EpochTimer()
    fit = lambda model=model, callbacks=callbacks, timer=timer: model.fit(
        x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=timer.around(callbacks))
    fit()  # warm-up: traces the train function (and sets tfmot's masks)
    timer.times.clear()
    runs[variant] = (fit, timer, model)
  common.interleaved({variant: (fit, None) for variant, (fit, _, _) in runs.items()}, reps)
  dense_times, tfmot_times = runs['dense'][1].times, runs['tfmot'][1].times
  result = {'model': name, 'samples': samples, 'batch': BATCH, 'steps_per_epoch': -(-samples // BATCH),
            'variants': {}}
  for variant, (_, timer, model) in runs.items():
    masks = [mask for layer in model.layers for _, mask, _ in getattr(layer, 'pruning_vars', [])]
    density = (sum(float(tf.reduce_sum(m)) for m in masks) / sum(int(tf.size(m)) for m in masks)) if masks else 1.0
    if variant != 'dense' and abs(density - 0.5) > 0.01:
      raise RuntimeError(f'{variant}: masks at density {density:.3f}, not 0.5')
    result['variants'][variant] = dict(common.summary(timer.times), density=density,
                                       vs_dense=common.paired_ratio(timer.times, dense_times),
                                       vs_tfmot=common.paired_ratio(timer.times, tfmot_times))
  line = ', '.join(f"{v} {r['median']:.3f}s ({r['vs_dense']:.3f}x)" for v, r in result['variants'].items())
  print(f'{name}: {line}', flush=True)
  return result


def main():
  args = common.parse_args(__doc__.splitlines()[0])
  common.quiet_logs()
  if args.quick:
    plan = [('lenet_300_100', 1200, 2), ('conv4', 120, 2)]
  else:
    plan = [('lenet_300_100', 3000, 15), ('conv4', 360, 11)]
  results = [bench_model(name, samples, reps) for name, samples, reps in plan]
  common.write_results({'training': results, 'load_after': common.load_average()}, args.out)


if __name__ == '__main__':
  main()
