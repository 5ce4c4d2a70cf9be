"""Benchmark 1: mask computation (one pruning round) for models of 1M, 4M and 12M prunable weights.

For each size, the same weights (a trained-looking copy of a Glorot-normal
initialisation) are pruned by 20% with each implementation:

- ours: `ltp_tfmot.compute_next_masks(model)` on a wide MLP wrapped with
  `prune_lottery_ticket(..., scope='global' | 'layer', criterion=...)`. Masks
  and round counter are reset (outside the timed region) before each call, so
  every repetition does the same work: round 1 of an unpruned model.
- numpy floor: the least any implementation pays, `np.partition` of the
  concatenated scores (one tensor at a time for 'layer') and a comparison.
- older package: `lottery-ticket-pruner==0.8.1`, fed the same arrays through
  its module-level pruning functions (`_prune_func_smallest_weights_global` for
  global magnitude pruning, `_prune_func_large_final` per layer). It has no
  magnitude_increase criterion.

Also records the first call (XLA compilation included) and a cProfile of our
global large_final call at the largest size.
"""

import importlib.util
import types

import numpy as np
import tensorflow as tf
import tf_keras as keras

from benchmarks import common
import ltp_tfmot

# Hidden width -> Dense 784-w-w-w-w/2-10: about 1M, 4M and 12M prunable weights.
WIDTHS = {'1M': 512, '4M': 1120, '12M': 2048}
QUICK_WIDTHS = {'1M': 512, '4M': 1120}
SCOPES = ('global', 'layer')
CRITERIA = ('large_final', 'magnitude_increase')
RATE = 0.2


def mlp(width):
  return keras.Sequential([
      keras.layers.Dense(width, input_shape=(784,)),
      keras.layers.Dense(width),
      keras.layers.Dense(width),
      keras.layers.Dense(width // 2),
      keras.layers.Dense(10),
  ])


def kernel_shapes(width):
  dims = [784, width, width, width, width // 2, 10]
  return list(zip(dims[:-1], dims[1:], strict=True))


def make_weights(width, seed=0):
  """(initial, final) kernels: Glorot-normal initial values, final = initial + noise of 0.3 std."""
  rng = np.random.default_rng(seed)
  initial, final = [], []
  for fan_in, fan_out in kernel_shapes(width):
    std = np.float32(np.sqrt(2.0 / (fan_in + fan_out)))
    w0 = rng.standard_normal((fan_in, fan_out), dtype=np.float32) * std
    initial.append(w0)
    final.append(w0 + np.float32(0.3) * std * rng.standard_normal((fan_in, fan_out), dtype=np.float32))
  assert all(w.dtype == np.float32 for w in initial + final)
  return initial, final


class Ours:
  """A wrapped MLP holding the benchmark weights, with `initial` as its rewind snapshot."""

  def __init__(self, width, scope, criterion, initial, final):
    model = ltp_tfmot.prune_lottery_ticket(mlp(width), ltp_tfmot.LotteryTicketSchedule(RATE), scope=scope,
                                           criterion=criterion)
    model.build((None, 784))
    self.model = model
    self.wrappers = ltp_tfmot.lottery_wrappers(model)
    for w, value in zip(self.wrappers, initial, strict=True):
      w.layer.kernel.assign(value)
    ltp_tfmot.take_snapshot(model)
    for w, value in zip(self.wrappers, final, strict=True):
      w.layer.kernel.assign(value)

  def reset(self):
    """Back to an unpruned model before round 1 (the weights are not changed by compute_next_masks)."""
    for w in self.wrappers:
      for _, mask, _ in w.pruning_vars:
        mask.assign(tf.ones_like(mask))
      w.rounds_done.assign(0)

  def run(self):
    ltp_tfmot.compute_next_masks(self.model)

  def kept(self):
    return sum(int(tf.math.count_nonzero(mask)) for w in self.wrappers for _, mask, _ in w.pruning_vars)


def numpy_floor(scope, criterion, initial, final):
  """The floor: scores, np.partition threshold, comparison (per tensor for 'layer')."""

  def scores(wi, wf):
    return np.abs(wf) if criterion == 'large_final' else np.abs(wf) - np.abs(wi)

  def keep_top(flat, k):
    threshold = np.partition(flat, flat.size - k)[flat.size - k]
    return flat >= threshold

  def run():
    if scope == 'layer':
      return [keep_top(scores(wi, wf).ravel(), int(wf.size * (1 - RATE) + 0.5)).reshape(wf.shape)
              for wi, wf in zip(initial, final, strict=True)]
    flat = np.concatenate([scores(wi, wf).ravel() for wi, wf in zip(initial, final, strict=True)])
    kept = keep_top(flat, int(flat.size * (1 - RATE) + 0.5))
    offsets = np.cumsum([wf.size for wf in final])[:-1]
    return [part.reshape(wf.shape) for part, wf in zip(np.split(kept, offsets), final, strict=True)]

  return run


def older_package(scope, initial, final):
  """The older package's large_final pruning (global or per layer), fed the same arrays."""
  from lottery_ticket_pruner import lottery_ticket_pruner as old  # pylint: disable=g-import-not-at-top
  layers = [types.SimpleNamespace(name=f'dense_{i}') for i in range(len(final))]
  state = {}

  def setup():
    # What its LotteryTicketPruner holds: float64 masks of ones, the current (= trained) weights.
    state['prunables'] = [((i, (0,)), layers[i], 0, wi, wf.copy(), wf.copy(), np.ones(wf.shape))
                          for i, (wi, wf) in enumerate(zip(initial, final, strict=True))]
    state['masks'] = {}

  def update_mask(tpl, index, new_mask):
    state['masks'][tpl] = new_mask

  def run():
    if scope == 'global':
      old._prune_func_smallest_weights_global(iter(state['prunables']), update_mask, prune_percentage=RATE)  # pylint: disable=protected-access
    else:
      old._prune_func_large_final(iter(state['prunables']), update_mask, prune_percentage=RATE)  # pylint: disable=protected-access

  return run, setup, state


def older_package_available():
  return importlib.util.find_spec('lottery_ticket_pruner') is not None


def bench_size(label, width, reps, old_reps, profile):
  initial, final = make_weights(width)
  n = sum(w.size for w in final)
  rows = []
  for scope in SCOPES:
    for criterion in CRITERIA:
      ours = Ours(width, scope, criterion, initial, final)
      ours.reset()
      first = common.time_once(ours.run)
      kept = ours.kept()
      variants = {'ours': (ours.run, ours.reset), 'numpy': (numpy_floor(scope, criterion, initial, final), None)}
      old_state = None
      if criterion == 'large_final' and older_package_available():
        run, setup, old_state = older_package(scope, initial, final)
        variants['older'] = (run, setup)
      times = common.interleaved(variants, reps, reps_for={'older': old_reps})
      row = {'size': label, 'weights': n, 'scope': scope, 'criterion': criterion, 'ours_first_call_s': first,
             'ours_kept': kept, 'expected_kept': int(n * (1 - RATE) + 0.5) if scope == 'global' else None}
      for name, values in times.items():
        row[name] = common.summary(values)
      row['ours_over_numpy'] = common.paired_ratio(times['ours'], times['numpy'])
      if 'older' in times:
        row['older_over_ours'] = common.paired_ratio(times['older'], times['ours'])
      if old_state is not None:
        row['older_kept'] = int(sum(np.count_nonzero(m) for m in old_state['masks'].values()))
      if profile and scope == 'global' and criterion == 'large_final':
        ours.reset()
        row['profile'] = common.profile_call(ours.run)
      rows.append(row)
      print(f"{label} {scope:6s} {criterion:18s} ours {row['ours']['median']:.4f}s  numpy "
            f"{row['numpy']['median']:.4f}s" + (f"  older {row['older']['median']:.4f}s" if 'older' in row else ''),
            flush=True)
      del ours
  return rows


def main():
  args = common.parse_args(__doc__.splitlines()[0])
  common.quiet_logs()
  widths = QUICK_WIDTHS if args.quick else WIDTHS
  reps = 2 if args.quick else 7
  rows = []
  for label, width in widths.items():
    # The older package's global pruning builds Python lists of every weight (seconds at 12M): fewer reps.
    old_reps = 1 if args.quick else (3 if label == '12M' else 5)
    rows += bench_size(label, width, reps, old_reps, profile=label == list(widths)[-1])
  common.write_results({'masks': rows, 'older_package': older_package_available(),
                        'load_after': common.load_average()}, args.out)


if __name__ == '__main__':
  main()
