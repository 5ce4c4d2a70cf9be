"""Runs every benchmark and writes BENCHMARKS.md.

Usage, from the repository root:

  PYTHONPATH=. .venv/bin/python benchmarks/run_all.py           # the full run (under 10 minutes on 2 cores)
  PYTHONPATH=. .venv/bin/python benchmarks/run_all.py --quick   # smoke run (writes benchmarks/out/quick.md)

Each benchmark module runs in its own process (one section of BENCHMARKS.md):
bench_masks (mask computation), bench_training (training overhead), bench_round
(round boundary) and bench_memory (peak memory of the mask step). The raw results go to benchmarks/results.json;
`--render-only` rewrites BENCHMARKS.md from that file (after editing the
analysis) without running anything.
The older package the mask benchmark compares with is installed with
`.venv/bin/pip install --no-deps -r benchmarks/requirements.txt`; without it,
its columns stay empty. benchmarks/analysis.md (hand-written: where the time
goes, what limits it) is appended to the report, then the reports that
tflite_sparsity.py, bench_cli.py, bench_compiled.py, bench_parallel.py, bench_threads.py and
bench_structured.py write themselves (benchmarks/tflite_results.md, cli_results.md, compiled_results.md,
training_path_results.md, parallel_results.md, threads_results.md, structured_results.md) and bench_keras3.py
(keras3_results.md).
"""

import argparse
import datetime
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

from benchmarks import common  # noqa: E402

SECTIONS = ('masks', 'training', 'round', 'memory')
GOAL_SIZE = '12M'
MIB = 2**20


def run_section(name, quick, workdir):
  """Runs benchmarks/bench_<name>.py in a fresh process; returns its results and wall time."""
  out = os.path.join(workdir, name + '.json')
  module = 'benchmarks.bench_' + name
  command = [sys.executable, '-m', module, '--out', out] + (['--quick'] if quick else [])
  env = dict(os.environ, **common.TF_ENV)
  env['PYTHONPATH'] = os.pathsep.join([ROOT] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
  print(f'>>> {" ".join(command[1:])}', flush=True)
  start = time.perf_counter()
  process = subprocess.run(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True, check=False)
  seconds = time.perf_counter() - start
  if process.returncode:
    sys.stderr.write(process.stderr)
    raise SystemExit(f'benchmark {name} failed with exit status {process.returncode}')
  with open(out, encoding='utf-8') as f:
    return json.load(f), seconds


def library_state():
  """The commit, whether the ltp_tfmot modules the benchmarks import differ from it, and a digest of their sources."""
  env = dict(os.environ, **common.TF_ENV, PYTHONPATH=ROOT)
  listing = ('import sys, benchmarks.bench_masks, benchmarks.bench_training, benchmarks.bench_round; '
             "print('\\n'.join(sorted(m.__file__ for n, m in sys.modules.items() if n.split('.')[0] == 'ltp_tfmot')))")
  files = subprocess.run([sys.executable, '-c', listing], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout.split()
  files = [f for f in files if f.endswith('.py')]
  digest = hashlib.sha256()
  for path in files:
    with open(path, 'rb') as f:
      digest.update(os.path.relpath(path, ROOT).encode() + f.read())
  git = lambda *args: subprocess.run(['git', *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout
  return {'commit': git('rev-parse', '--short', 'HEAD').strip() or 'unknown',
          'modified': bool(git('status', '--porcelain', '--', *files).strip()),
          'sources': digest.hexdigest()[:12]}


def machine_info():
  env = dict(os.environ, **common.TF_ENV, PYTHONPATH=ROOT)
  output = subprocess.run([sys.executable, '-m', 'benchmarks.common'], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=True).stdout
  return json.loads(output.strip().splitlines()[-1])


# Formatting.


def ms(seconds):
  return f'{seconds * 1e3:.1f} ms' if seconds < 10 else f'{seconds:.2f} s'


def ratio(value):
  return f'{value:.2f}x'


def table(header, rows):
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join(' --- ' for _ in header) + '|']
  lines += ['| ' + ' | '.join(str(cell) for cell in row) + ' |' for row in rows]
  return '\n'.join(lines)


def verdict(ok):
  return '**met**' if ok else '**missed**'


def spread(summary):
  return f"{ms(summary['median'])} ({ms(summary['min'])}-{ms(summary['max'])}, n={summary['n']})"


def profile_table(profile):
  rows = [[f"`{row['function']}`", f"`{row['source'][:70]}`", row['calls'], ms(row['cumulative_s']),
           f"{100 * row['cumulative_s'] / profile['total_s']:.0f}%"] for row in profile['functions']]
  return table(['function', 'source line', 'calls', 'cumulative', 'share'], rows)


# Sections.


def masks_section(data):
  rows = data['masks']
  lines = ['## 1. Mask computation', '',
           'One pruning round (20% of the weights) of MLPs 784-w-w-w-w/2-10 (w = 512, 1120, 2048), the same '
           'weights for every implementation. *ours*: `ltp_tfmot.compute_next_masks(model)` (masks reset between '
           'repetitions, outside the timed region); *numpy floor*: `np.partition` threshold of the concatenated '
           'scores (per tensor in layer scope) and a comparison; *older*: `lottery-ticket-pruner==0.8.1`, its '
           '`_prune_func_smallest_weights_global` (global) or `_prune_func_large_final` (layer), fed the same arrays '
           '(it has no magnitude_increase). Medians (min-max, n repetitions), interleaved in one process; ratios are '
           'medians of the per-repetition ratios; *first call* includes XLA compilation (shared by the variants of '
           'a size, so the first variant pays most).', '']
  if not data['older_package']:
    lines += ['The older package is not installed: `.venv/bin/pip install --no-deps -r benchmarks/requirements.txt`.',
              '']
  body = []
  for r in rows:
    numpy, older = r['numpy']['median'], r.get('older')
    body.append([r['size'], f"{r['weights']:,}", r['scope'], r['criterion'], spread(r['ours']),
                 ms(r['ours_first_call_s']), ms(numpy), ratio(r['ours_over_numpy']), spread(older) if older else 'n/a',
                 ratio(r['older_over_ours']) if older else 'n/a', f"{r['ours_kept']:,}"])
  lines += [table(['size', 'weights', 'scope', 'criterion', 'ours', 'ours, first call', 'numpy floor',
                   'ours / numpy', 'older package', 'older / ours', 'kept by ours'], body), '']
  lines += ['### Growth with the weight count', '',
            'Time per weight (ns) of the global large_final mask; the exponent is the slope of log(time) against '
            'log(weights) between consecutive sizes (1 = linear).', '']
  growth = []
  for criterion in ('large_final', 'magnitude_increase'):
    series = [r for r in rows if r['scope'] == 'global' and r['criterion'] == criterion]
    for i, r in enumerate(series):
      exponent = '' if i == 0 else f"{_exponent(series[i - 1], r, 'ours'):.2f}"
      older = r.get('older')
      growth.append([criterion, r['size'], f"{r['weights']:,}", f"{1e9 * r['ours']['median'] / r['weights']:.1f}",
                     exponent, f"{1e9 * r['numpy']['median'] / r['weights']:.1f}",
                     f"{1e9 * older['median'] / r['weights']:.1f}" if older else 'n/a'])
  lines += [table(['criterion', 'size', 'weights', 'ours ns/weight', 'ours exponent', 'numpy ns/weight',
                   'older ns/weight'], growth), '']
  profiled = [r for r in rows if 'profile' in r]
  if profiled:
    r = profiled[0]
    lines += [f"### Where the time goes: global large_final at {r['size']}", '',
              f"cProfile of one `compute_next_masks` call ({ms(r['profile']['total_s'])} under the profiler), "
              'ltp_tfmot functions by cumulative time (TensorFlow ops run inside them):', '',
              profile_table(r['profile']), '']
  return '\n'.join(lines)


def _exponent(small, large, key):
  return math.log(large[key]['median'] / small[key]['median']) / math.log(large['weights'] / small['weights'])


def training_section(data):
  lines = ['## 2. Training overhead', '',
           'Time per epoch (from the first `on_epoch_begin` to the last `on_epoch_end`), Adam, batch 60, random '
           'MNIST-sized data, masks at 50%; one warm-up epoch per model, then epochs in separate `fit` calls '
           'interleaved across the variants. *tfmot*: `prune_low_magnitude` with `ConstantSparsity(0.5, '
           'begin_step=1, frequency=10**9)` (pruned on the first warm-up step, never again) and '
           '`UpdatePruningStep`; *ours*: `prune_lottery_ticket` with `LotteryTicketSchedule(0.5, '
           'round_steps=10**9, rounds=1)` after one `compute_next_masks`, trained with `UpdateLotteryStep` '
           '(mid-round); *ours, tfmot callback*: the same model with tfmot\'s `UpdatePruningStep` (no per-batch '
           'hook), which separates the callback\'s cost from the wrapper\'s. *vs.* columns: medians of the '
           'per-repetition ratios; *fastest epochs*: ratio of the minima (the epochs least disturbed by other '
           'jobs).', '']
  body = []
  for result in data['training']:
    variants = result['variants']
    for name, v in variants.items():
      body.append([result['model'], f"{result['samples']:,} / {result['steps_per_epoch']}", name,
                   f"{v['density']:.2f}", f"{v['median']:.3f} s ({v['min']:.3f}-{v['max']:.3f}, n={v['n']})",
                   ratio(v['vs_dense']), ratio(v['vs_tfmot']),
                   ratio(v['min'] / variants['dense']['min'])])
  lines += [table(['model', 'samples / steps', 'variant', 'mask density', 'epoch (median, min-max)', 'vs. dense',
                   'vs. tfmot', 'vs. dense, fastest epochs'], body), '']
  return '\n'.join(lines)


def round_section(data):
  lines = ['## 3. Round boundary', '',
           '`run_lottery_round(model, optimizer)` on the 12M-weight MLP (large_final) after one Adam step with '
           '`UpdateLotteryStep` (snapshot taken, Adam slots exist); model state restored between repetitions '
           'outside the timed region. Its parts are timed on their own, interleaved with it.', '']
  body = []
  for r in data['round']:
    body.append([r['scope'], f"{r['weights']:,}", spread(r['run_lottery_round']), ms(r['first_call_s']),
                 ms(r['compute_next_masks']['median']), ms(r['rewind_weights']['median']),
                 ms(r['reset_optimizer']['median'])])
  lines += [table(['scope', 'weights', 'run_lottery_round', 'first call', 'compute_next_masks', 'rewind_weights',
                   'reset_optimizer'], body), '']
  r = data['round'][0]
  lines += [f"cProfile of one {r['scope']}-scope `run_lottery_round` ({ms(r['profile']['total_s'])} under the "
            'profiler):', '', profile_table(r['profile']), '']
  return '\n'.join(lines)


def memory_section(data):
  env = ' '.join(f'{k}={v}' for k, v in data['live_memory_env'].items())
  lines = ['## 4. Memory', '',
           'Peak extra resident memory of one mask step at 12M weights, each case in a fresh process: VmHWM '
           '(reset through /proc/self/clear_refs) minus VmRSS before the call. *live memory* cases run with '
           f'`{env}`, so that freed memory leaves the process and RSS follows the live working set (with the '
           'default allocator TensorFlow keeps a pool and a second call shows almost no growth: last row). '
           '*ours*: a later call (steady state; the first call, XLA compilation included, in its own column).',
           '']
  body = []
  for r in data['memory']:
    first = r.get('first_call_extra')
    body.append([r['case'], r['allocator'], f"{r['weight_bytes'] / MIB:.1f} MiB", f"{r['rss_before'] / MIB:.0f} MiB",
                 f"{r['extra'] / MIB:.1f} MiB", ratio(r['extra_over_weights']),
                 f"{first / MIB:.1f} MiB ({ratio(first / r['weight_bytes'])})" if first is not None else 'n/a'])
  lines += [table(['case', 'allocator', 'prunable weights', 'RSS before', 'peak extra', 'extra / weights',
                   'first call extra'], body), '']
  return '\n'.join(lines)


def goals_section(results, quick):
  """Each goal of the issue, measured, met or missed."""
  rows = []
  masks = results['masks']['masks']
  size = GOAL_SIZE if any(r['size'] == GOAL_SIZE for r in masks) else masks[-1]['size']
  for criterion in ('large_final', 'magnitude_increase'):
    series = [r for r in masks if r['scope'] == 'global' and r['criterion'] == criterion]
    r = series[-1]
    t = r['ours']['median']
    if r.get('older'):
      speedup = r['older_over_ours']
      rows.append([f'Global mask at {size} ({criterion}): >= 20x faster than the older package',
                   f"{ratio(speedup)} ({ms(r['older']['median'])} vs {ms(t)})", verdict(speedup >= 20)])
    rows.append([f'Global mask at {size} ({criterion}): <= 0.18 s', ms(t), verdict(t <= 0.18)])
    floor = r['ours_over_numpy']
    rows.append([f'Global mask at {size} ({criterion}): within 3x of the np.partition floor',
                 f"{ratio(floor)} ({ms(r['numpy']['median'])} floor)", verdict(floor <= 3)])
    exponents = [_exponent(a, b, 'ours') for a, b in zip(series, series[1:], strict=False)]
    if exponents:
      rows.append([f'Global mask ({criterion}): time grows no worse than linearly (exponent <= 1.1)',
                   ', '.join(f'{e:.2f}' for e in exponents), verdict(max(exponents) <= 1.1)])
  for result in results['training']['training']:
    ours = result['variants']['ours']
    rows.append([f"Training inside a round ({result['model']}): <= 1.10x dense", ratio(ours['vs_dense']),
                 verdict(ours['vs_dense'] <= 1.10)])
    rows.append([f"Training inside a round ({result['model']}): no slower than tfmot (ratio <= 1)",
                 ratio(ours['vs_tfmot']), verdict(ours['vs_tfmot'] <= 1.0)])
  for r in results['round']['round']:
    t = r['run_lottery_round']['median']
    rows.append([f"Round boundary ({r['scope']} scope, {r['weights']:,} weights): < 0.5 s", ms(t), verdict(t < 0.5)])
  for r in results['memory']['memory']:
    if r['case'].startswith('ours') and r['allocator'] == 'live memory':
      over = r['extra_over_weights']
      rows.append([f"Peak extra memory of the mask step ({r['case'][6:]}): <= 3x the prunable weights",
                   f"{ratio(over)} ({r['extra'] / MIB:.1f} MiB)", verdict(over <= 3)])
  lines = ['## Goals', '']
  if quick:
    lines += ['*Quick run: smaller models and fewer repetitions than the goals are stated for; verdicts are '
              'indicative only.*', '']
  lines += [table(['goal', 'measured', 'verdict'], rows), '']
  return '\n'.join(lines)


def render(results, info, command, started, wall, loads, quick, library=None):
  code = ''
  if library:
    code = (f" Library: ltp_tfmot at commit {library['commit']}"
            + (' with uncommitted changes' if library['modified'] else '') + f" (sources {library['sources']})"
            + ('; **the sources changed during the run**' if library['changed_during_run'] else '') + '.')
  header = [
      '# Benchmarks', '',
      f'Generated by `{command}` on {started:%Y-%m-%d %H:%M} UTC in {wall / 60:.1f} minutes; all tables below come '
      f'from that one run.{code}', '',
      f"Machine: {info['nproc']} CPU cores ({info['cpu']}), {info['memory_gib']:.0f} GiB memory, {info['platform']}; "
      f"Python {info['python']}, TensorFlow {info['tensorflow']}, tf_keras {info['tf_keras']}, tfmot "
      f"{info['tfmot']}, NumPy {info['numpy']}. The cores are shared with other jobs (1-minute load average: "
      + ', '.join(f'{load:.1f} {when}' for when, load in loads if load is not None) +
      '), so absolute times are noisy: compare variants by the ratios, which come from the same process with '
      'repetitions interleaved.', '']
  sections = [goals_section(results, quick), masks_section(results['masks']), training_section(results['training']),
              round_section(results['round']), memory_section(results['memory'])]
  text = '\n'.join(header) + '\n' + '\n'.join(sections)
  # The hand-written analysis, then the reports the TFLite, command-line, compiled-path, default-path,
  # parallel-run, thread, structured-ticket and Keras 3 benchmarks write themselves.
  for name in ('analysis.md', 'tflite_results.md', 'cli_results.md', 'compiled_results.md', 'training_path_results.md',
               'parallel_results.md', 'threads_results.md', 'structured_results.md', 'keras3_results.md'):
    extra = os.path.join(ROOT, 'benchmarks', name)
    if os.path.exists(extra):
      with open(extra, encoding='utf-8') as f:
        body = f.read()
      if name != 'analysis.md':
        body = '#' + body.replace('\n## ', '\n### ')  # its title becomes a section of this report
      text += '\n' + body
  return text.rstrip() + '\n'


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true', help='smoke run: small sizes, few repetitions')
  parser.add_argument('--output', help='the report to write (default: BENCHMARKS.md; benchmarks/out/quick.md '
                      'with --quick)')
  parser.add_argument('--results', help='where the raw results are written, or read with --render-only (default: '
                      'benchmarks/results.json; benchmarks/out/quick.json with --quick)')
  parser.add_argument('--render-only', action='store_true', help='rewrite the report from --results, run nothing')
  parser.add_argument('--sections', default=','.join(SECTIONS),
                      help='comma-separated subset of ' + ','.join(SECTIONS) + ' (a subset only prints its results)')
  args = parser.parse_args()
  quick_dir = os.path.join(ROOT, 'benchmarks', 'out')
  if args.quick:
    os.makedirs(quick_dir, exist_ok=True)
    args.output = args.output or os.path.join(quick_dir, 'quick.md')
    args.results = args.results or os.path.join(quick_dir, 'quick.json')
  args.output = args.output or os.path.join(ROOT, 'BENCHMARKS.md')
  args.results = args.results or os.path.join(ROOT, 'benchmarks', 'results.json')
  if args.render_only:
    with open(args.results, encoding='utf-8') as f:
      run = json.load(f)
  else:
    sections = args.sections.split(',')
    started = datetime.datetime.now(datetime.timezone.utc)
    start = time.perf_counter()
    loads = [('at the start', common.load_average())]
    info = machine_info()
    library = library_state()
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
      for name in sections:
        results[name], seconds = run_section(name, args.quick, workdir)
        print(f'<<< {name}: {seconds:.0f} s', flush=True)
    loads.append(('at the end', common.load_average()))
    if set(sections) != set(SECTIONS):
      print(json.dumps(results, indent=1))
      print('Not all sections ran: nothing written.')
      return
    library['changed_during_run'] = library_state()['sources'] != library['sources']
    if library['changed_during_run']:
      print('WARNING: ltp_tfmot changed during the run: its sections measured different code.')
    run = {'results': results, 'info': info, 'library': library, 'started': started.isoformat(),
           'wall_s': time.perf_counter() - start,
           'loads': loads, 'quick': args.quick,
           'command': 'PYTHONPATH=. .venv/bin/python benchmarks/run_all.py' + (' --quick' if args.quick else '')}
    with open(args.results, 'w', encoding='utf-8') as f:
      json.dump(run, f, indent=1, sort_keys=True)
  text = render(run['results'], run['info'], run['command'], datetime.datetime.fromisoformat(run['started']),
                run['wall_s'], run['loads'], run['quick'], run.get('library'))
  with open(args.output, 'w', encoding='utf-8') as f:
    f.write(text)
  print(f"Wrote {args.output} (benchmarks took {run['wall_s'] / 60:.1f} minutes).")


if __name__ == '__main__':
  main()
