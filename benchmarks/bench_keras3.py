"""Keras 3 against Keras 2: the cost of the masks in `fit`, and a global mask of 12M weights, per backend.

Usage, from the repository root:

  PYTHONPATH=. .venv/bin/python benchmarks/bench_keras3.py            # 11 epochs per variant, 7 mask repetitions
  PYTHONPATH=. .venv/bin/python benchmarks/bench_keras3.py --quick    # smoke run

Three processes, one per front end and backend: Keras 3 on TensorFlow, Keras
3 on JAX (KERAS_BACKEND) and Keras 2 (tf_keras, tfmot). In each:

- `fit`: LeNet-300-100 on 12,000 random MNIST-sized examples, batch 60 (200
  steps, so that a fit's fixed costs weigh as in real epochs), Adam, as Keras
  compiles by default; *dense* is the model as built, *masked* the same model
  through `prune_lottery_ticket` with its masks at 50% (one
  `compute_next_masks`), trained with `UpdateLotteryStep` in the middle of a
  round (`LotteryTicketSchedule(0.5, round_steps=10**9, rounds=1)`). One
  warm-up epoch each, then one-epoch `fit` calls interleaved in a rotated
  order; the ratio is the median of the per-repetition ratios masked / dense.
- mask: one global large_final round of an MLP 784-2048-2048-2048-1024-10
  (12,101,632 prunable weights) with `compute_next_masks` (masks reset
  between repetitions, outside the timed region), against the NumPy floor
  (`np.partition` of the concatenated |weights| and a comparison, on the same
  weights).

It writes benchmarks/keras3_results.md.
"""

import datetime
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

from benchmarks import common  # noqa: E402

FRONT_ENDS = (('Keras 3, TensorFlow', 'keras3', 'tensorflow'), ('Keras 3, JAX', 'keras3', 'jax'),
              ('Keras 2 (tf_keras)', 'keras2', None))
WIDTHS = (784, 2048, 2048, 2048, 1024, 10)


def _keras(front_end):
  if front_end == 'keras2':
    import tf_keras as keras  # pylint: disable=g-import-not-at-top
  else:
    import keras  # pylint: disable=g-import-not-at-top
  return keras


def _mlp(keras, widths, seed):
  keras.utils.set_random_seed(seed)
  layers = [keras.layers.Dense(w, activation='relu', name=f'dense{i}') for i, w in enumerate(widths[1:-1])]
  return keras.Sequential([keras.Input((widths[0],))] + layers + [keras.layers.Dense(widths[-1], name='output')])


def _fit_times(front_end, epochs):
  import numpy as np  # pylint: disable=g-import-not-at-top

  import ltp_tfmot  # pylint: disable=g-import-not-at-top
  keras = _keras(front_end)
  rng = np.random.default_rng(0)
  x, y = rng.standard_normal((12000, 784)).astype(np.float32), rng.integers(0, 10, 12000)
  models = {}
  for variant in ('dense', 'masked'):
    model = _mlp(keras, (784, 300, 100, 10), seed=0)
    callbacks = []
    if variant == 'masked':
      model = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.LotteryTicketSchedule(0.5, 10**9, 1))
      ltp_tfmot.compute_next_masks(model)
      callbacks = [ltp_tfmot.UpdateLotteryStep()]
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=60, epochs=1, verbose=0, callbacks=callbacks)  # warm-up: tracing, compiling
    models[variant] = (model, callbacks)

  def fit(variant):
    model, callbacks = models[variant]
    return lambda: model.fit(x, y, batch_size=60, epochs=1, verbose=0, callbacks=callbacks)

  return common.interleaved({name: (fit(name), None) for name in models}, epochs)


def _mask_times(front_end, reps):
  import numpy as np  # pylint: disable=g-import-not-at-top

  import ltp_tfmot  # pylint: disable=g-import-not-at-top
  keras = _keras(front_end)
  model = ltp_tfmot.prune_lottery_ticket(_mlp(keras, WIDTHS, seed=1), ltp_tfmot.LotteryTicketSchedule(0.2),
                                         scope='global')
  wrappers = ltp_tfmot.lottery_wrappers(model)
  kernels = [np.asarray(w.layer.kernel.numpy()) for w in wrappers]  # the arrays the floor ranks
  ones = [np.ones(k.shape, np.float32) for k in kernels]
  total = sum(k.size for k in kernels)
  keep = total - round(0.2 * total)

  def reset():
    for w, one in zip(wrappers, ones, strict=True):
      w.masks[0].assign(one)
      w.rounds_done.assign(0)

  def numpy_floor():
    scores = np.concatenate([np.abs(k).ravel() for k in kernels])
    threshold = np.partition(scores, total - keep)[total - keep]
    return [np.abs(k) >= threshold for k in kernels]

  times = common.interleaved({'ours': (lambda: ltp_tfmot.compute_next_masks(model), reset),
                              'numpy floor': (numpy_floor, None)}, reps)
  return times, total


def child(front_end, quick):
  """Times one front end (the backend is the process's KERAS_BACKEND); prints one JSON line."""
  common.quiet_logs()
  fit = _fit_times(front_end, 3 if quick else 11)
  masks, total = _mask_times(front_end, 2 if quick else 7)
  print(json.dumps({'fit': fit, 'masks': masks, 'weights': total}))


def main():
  quick = '--quick' in sys.argv
  rows = []
  for label, front_end, backend in FRONT_ENDS:
    env = dict(os.environ, **common.TF_ENV, PYTHONPATH=ROOT)
    if backend:  # a Keras 3 program: Keras 3 as tf.keras too
      env['KERAS_BACKEND'] = backend
      del env['TF_USE_LEGACY_KERAS']
    command = [sys.executable, os.path.abspath(__file__), '--child', front_end] + (['--quick'] if quick else [])
    print(f'>>> {label}', flush=True)
    process = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=ROOT)
    if process.returncode:
      sys.stderr.write(process.stderr[-3000:])
      raise SystemExit(f'{label}: exit status {process.returncode}')
    rows.append((label, json.loads(process.stdout.strip().splitlines()[-1])))
  lines = ['# Keras 3 and Keras 2: masks in `fit`, and a global mask of 12M weights', '',
           f'Command: `PYTHONPATH=. .venv/bin/python benchmarks/bench_keras3.py{" --quick" if quick else ""}` '
           f'({datetime.date.today().isoformat()}; {common.machine_info()["cpu"]}, '
           f'{os.cpu_count()} logical CPUs). One process per row; see the script\'s docstring for the set-up.', '',
           '| front end, backend | dense epoch | masked epoch | masked / dense | 12M global mask | NumPy floor '
           '| ours / NumPy |', '| --- | --- | --- | --- | --- | --- | --- |']
  for label, result in rows:
    fit, masks = result['fit'], result['masks']
    lines.append(
        f'| {label} | {common.median(fit["dense"]):.3f} s | {common.median(fit["masked"]):.3f} s '
        f'| {common.paired_ratio(fit["masked"], fit["dense"]):.2f}x | {1e3 * common.median(masks["ours"]):.0f} ms '
        f'| {1e3 * common.median(masks["numpy floor"]):.0f} ms '
        f'| {common.paired_ratio(masks["ours"], masks["numpy floor"]):.2f}x |')
  out = os.path.join(ROOT, 'benchmarks', 'out', 'keras3_quick.md') if quick else os.path.join(
      ROOT, 'benchmarks', 'keras3_results.md')
  os.makedirs(os.path.dirname(out), exist_ok=True)
  common.write_markdown(lines, out)


if __name__ == '__main__':
  if '--child' in sys.argv:
    child(sys.argv[sys.argv.index('--child') + 1], '--quick' in sys.argv)
  else:
    main()
