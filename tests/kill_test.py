"""Fault tests of the experiment runner: killed processes, damaged files, a full disk, an unwritable directory.

`KillAndResumeTest` runs `ltp-tfmot run` in subprocesses (`python -m
tests.paused_cli`, the command line with the pausing `RunHooks` of
tests/paused_cli.py) and SIGKILLs them at seeded random points: during
training, at a level's round boundary (new masks computed, not saved) and
halfway through writing a file (the hooks print a marker there and wait to be
killed). After every kill nothing at a final file name is half-written and no
finished level changed; the last run finishes with masks, weights and metrics
bit-identical to an uninterrupted run. LTP_TFMOT_KILL_SEED picks other kill
points. A run sent SIGINT (Ctrl-C) halfway through writing a file prints one
line saying where it stopped, exits with status 130 and leaves no temporary
file.

`FaultTest` runs the runner in-process on a tiny MLP: a damaged level is
redone with a warning, truncated files give clear errors, a full disk
(simulated: the hooks' writer raises ENOSPC) and a read-only run directory
(skipped as root, where chmod does not stop writes) stop the run with a clear
error and lose nothing.
"""

import contextlib
import errno
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

import tensorflow as tf

import ltp_tfmot
from ltp_tfmot import cli
from ltp_tfmot import experiment
from ltp_tfmot.experiment import run_lock
from ltp_tfmot.experiment import storage
from tests import fixtures
from tests import paused_cli

# LeNet-300-100 on 300 embedded MNIST digits: 270 train / 30 validation, 5 steps per level, levels 0..2.
# Keras' loop, not XLA: compiling costs each process more than its training.
RUN_FLAGS = ['--model=lenet_300_100', '--dataset=mnist', '--dataset_source=embedded', '--train_size=300',
             '--epochs=1', '--levels=2', '--batch_size=50', '--nojit_compile', '--notensorboard']
LEVELS = 3
STEPS_PER_LEVEL = 5
# Files a main level writes, in order: masks.npz, weights.npz, curve.csv, metrics.csv, metrics.json, its manifest,
# results.csv.
WRITES_PER_LEVEL = 7
PROCESS_TIMEOUT_S = 240


def _env(tmp):
  env = {k: v for k, v in os.environ.items() if k != 'TF_CONFIG'}
  env.update(PYTHONPATH=os.pathsep.join(p for p in sys.path if p), TF_CPP_MIN_LOG_LEVEL='2', TMPDIR=tmp)
  return env


def _run_command(out, pause=None):
  """`ltp-tfmot run` on RUN_FLAGS as a command line; with `pause` (e.g. 'train@3'), the pausing one."""
  program = ['tests.paused_cli', f'--pause_at={pause}'] if pause else ['ltp_tfmot.cli']
  return [sys.executable, '-m'] + program + ['run', f'--out={out}'] + RUN_FLAGS


def _read(path):
  with open(path, errors='replace') as f:
    return f.read()


def _final_files(run_dir):
  return sorted(os.path.relpath(os.path.join(root, name), run_dir) for root, _, files in os.walk(run_dir)
                for name in files if not storage.is_temp_file(name))


def _temp_files(run_dir):
  return [name for _, _, files in os.walk(run_dir) for name in files if storage.is_temp_file(name)]


def _done_levels(run_dir):
  """{level: {file: sha256}} of the finished (manifest-checked) main levels."""
  paths = storage.RunDirectory(run_dir)
  return {level: {name: storage.file_sha256(paths.file(0, level, 'main', name)) for name in paths.needed_files('main')}
          for level in range(LEVELS) if paths.verify(0, level) == ''}


class KillAndResumeTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='ltp_kill_test_')
    try:
      reference_out = os.path.join(cls.tmp, 'reference')
      result = subprocess.run(_run_command(reference_out), capture_output=True, text=True, env=_env(cls.tmp),
                              timeout=PROCESS_TIMEOUT_S, check=False)
      if result.returncode:
        raise AssertionError(f'the uninterrupted run failed:\n{result.stderr[-3000:]}')
      cls.reference_dir = storage.find_runs([reference_out])[0]
    except BaseException:
      shutil.rmtree(cls.tmp, ignore_errors=True)
      raise

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def _start(self, out, log, pause=None):
    with open(log, 'w') as f:
      proc = subprocess.Popen(_run_command(out, pause), stdout=f, stderr=subprocess.STDOUT, env=_env(self.tmp))

    def stop():
      if proc.poll() is None:
        proc.kill()
      proc.wait()

    self.addCleanup(stop)
    return proc

  def _stop_at(self, out, pause, log, sig=signal.SIGKILL):
    """Runs the command until it reaches `pause` (e.g. 'train@3'), then sends it `sig`; returns its exit status."""
    proc = self._start(out, log, pause)
    deadline = time.time() + PROCESS_TIMEOUT_S
    while paused_cli.MARKER not in _read(log):
      if proc.poll() is not None:
        self.fail(f'the run ended (status {proc.returncode}) before reaching {pause}:\n{_read(log)[-3000:]}')
      if time.time() > deadline:
        self.fail(f'the run did not reach {pause} in {PROCESS_TIMEOUT_S}s:\n{_read(log)[-3000:]}')
      time.sleep(0.02)
    proc.send_signal(sig)
    return proc.wait(timeout=60)

  def _check_nothing_half_written(self, run_dir, what):
    """Every file at a final name reads completely, and every manifest matches its level's files."""
    for name in _final_files(run_dir):
      path = os.path.join(run_dir, name)
      if name.endswith('.npz'):
        storage.load_arrays(path)
      elif name.endswith('.json'):
        storage.read_json(path)
      elif name.endswith('.csv'):
        self.assertTrue(_read(path).endswith('\n'), f'{what}: {name} is cut short')
    paths = storage.RunDirectory(run_dir)
    for level in range(LEVELS):
      self.assertIn(paths.verify(0, level), (None, ''), f'{what}: level {level}')

  def test_killed_at_seeded_points_then_resumed_equals_an_uninterrupted_run(self):
    seed = int(os.environ.get('LTP_TFMOT_KILL_SEED', '0'))
    rng = random.Random(seed)
    plan = [
        'write@1',  # config.json of the new run, half-written at its temporary name
        f'train@{rng.randint(1, STEPS_PER_LEVEL)}',  # during level 0's training
        f'write@{rng.randint(1, WRITES_PER_LEVEL)}',  # while level 0's files are written
        'masks@1',  # level 1's round boundary: new masks computed and weights rewound, nothing saved
        f'train@{rng.randint(1, STEPS_PER_LEVEL)}',  # during level 1's training
        f'write@{rng.randint(1, WRITES_PER_LEVEL)}',  # while level 1's files are written
    ]
    out = os.path.join(self.tmp, f'killed_{seed}')
    run_dir = os.path.join(out, os.path.basename(self.reference_dir))
    done = {}
    for index, pause in enumerate(plan):
      what = f'seed {seed}, kill {index + 1} at {pause} (plan {plan})'
      status = self._stop_at(out, pause, os.path.join(self.tmp, f'kill_{seed}_{index}.log'))
      self.assertEqual(status, -signal.SIGKILL, what)
      self._check_nothing_half_written(run_dir, what)
      now = _done_levels(run_dir)
      for level, digests in done.items():
        self.assertEqual(now.get(level), digests, f'{what}: finished level {level} changed or was lost')
      done = now
    self.assertTrue(os.path.exists(os.path.join(run_dir, storage.CONFIG)))
    self.assertIn(0, done)  # level 0 finished in the second-to-last process at the latest

    log = os.path.join(self.tmp, f'final_{seed}.log')
    proc = self._start(out, log)
    self.assertEqual(proc.wait(timeout=PROCESS_TIMEOUT_S), 0, _read(log)[-3000:])
    self.assertEqual(_temp_files(run_dir), [])
    self._check_nothing_half_written(run_dir, f'seed {seed}, after resuming')
    self.assertEqual(sorted(_done_levels(run_dir)), list(range(LEVELS)))
    for level, digests in done.items():
      self.assertEqual(_done_levels(run_dir)[level], digests, f'level {level} was redone')
    self.assertEqual(_final_files(run_dir), _final_files(self.reference_dir))
    for level in range(LEVELS):
      for name in (storage.MASKS, storage.WEIGHTS):
        got = storage.load_arrays(os.path.join(run_dir, 'replicate_0', f'level_{level}', 'main', name))
        want = storage.load_arrays(os.path.join(self.reference_dir, 'replicate_0', f'level_{level}', 'main', name))
        self.assertEqual(sorted(got), sorted(want))
        for key in want:
          self.assertAllEqual(got[key], want[key], msg=f'seed {seed}: level {level} {name}:{key} (plan {plan})')
    got, want = storage.load_level_metrics(run_dir), storage.load_level_metrics(self.reference_dir)
    self.assertLen(got, LEVELS)
    for a, b in zip(got, want, strict=True):
      a, b = dict(a), dict(b)
      self.assertGreater(a.pop('wall_time_s'), 0)
      b.pop('wall_time_s')
      self.assertEqual(a, b, f'seed {seed}: metrics of level {b["level"]} (plan {plan})')

  def test_ctrl_c_while_writing_prints_one_line_exits_130_and_leaves_no_temporary_file(self):
    out = os.path.join(self.tmp, 'interrupted')
    log = os.path.join(self.tmp, 'interrupted.log')
    # The second file written: level 0's masks.npz, half of it at its temporary name.
    status = self._stop_at(out, 'write@2', log, sig=signal.SIGINT)
    output = _read(log)
    self.assertEqual(status, 130, output[-3000:])
    self.assertNotIn('Traceback', output)
    self.assertEqual(output.splitlines()[-1],
                     'ltp-tfmot run: interrupted at replicate 0 level 0; run the same command to resume')
    run_dir = os.path.join(out, os.path.basename(self.reference_dir))
    self.assertEqual(_temp_files(run_dir), [])
    self.assertEqual(_final_files(run_dir), [storage.CONFIG])


def _mlp(input_shape, num_classes, seed):
  del input_shape, num_classes
  return fixtures.mlp(seed)


DATA = fixtures.classification_data(n=160, seed=0) + fixtures.classification_data(n=64, seed=1)


# Keras' loop (jit_compile=False): compiling a step with XLA costs these small runs more than their training.
def _config(levels=2):
  return experiment.RunConfig(
      model='mlp',
      data=experiment.DataConfig(name='toy'),
      training=experiment.TrainingConfig(learning_rate=0.01, batch_size=16, epochs=1, eval_every=3, jit_compile=False),
      pruning=experiment.PruningConfig(rate=0.5, layer_rates={}, levels=levels))


def _experiment(run_dir, levels=2, log=None, hooks=None):
  return experiment.LotteryExperiment(_config(levels), run_dir=run_dir, model_fn=_mlp, data=DATA, tensorboard=False,
                                      log=log or (lambda line: None), hooks=hooks)


class _DiskFullAt(experiment.RunHooks):
  """Writes like a disk that fills up at the first file whose path ends with `suffix` ('': the first file)."""

  def __init__(self, suffix):
    self.suffix = suffix
    self.written = []  # (path, data) of the files written before

  def write_file(self, path, file, data):
    if path.endswith(self.suffix):
      file.write(data[:len(data) // 2])
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    file.write(data)
    self.written.append((path, data))


def _level_file(run_dir, level, name, branch='main'):
  return os.path.join(run_dir, 'replicate_0', f'level_{level}', branch, name)


def _truncate(path):
  with open(path, 'rb') as f:
    data = f.read()
  with open(path, 'wb') as f:
    f.write(data[:len(data) // 2])


def _tree(path):
  """{relative path: file content} of every file under path."""
  result = {}
  for root, _, files in os.walk(path):
    for name in files:
      with open(os.path.join(root, name), 'rb') as f:
        result[os.path.relpath(os.path.join(root, name), path)] = f.read()
  return result


class FaultTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='ltp_fault_test_')
    cls.whole_dir = os.path.join(cls.tmp, 'whole')
    try:
      cls.whole = _experiment(cls.whole_dir).run()
    except BaseException:
      shutil.rmtree(cls.tmp, ignore_errors=True)
      raise

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def _new_dir(self):
    return tempfile.mkdtemp(dir=self.get_temp_dir())

  def _copy_of_whole(self):
    path = os.path.join(self._new_dir(), 'run')
    shutil.copytree(self.whole_dir, path)
    return path

  def _assert_same_as_whole(self, run_dir):
    for level in range(3):
      self.assertEqual(storage.RunDirectory(run_dir).verify(0, level), '', f'level {level}')
      for name in (storage.MASKS, storage.WEIGHTS):
        got = storage.load_arrays(_level_file(run_dir, level, name))
        want = storage.load_arrays(_level_file(self.whole_dir, level, name))
        for key in want:
          self.assertAllEqual(got[key], want[key], msg=f'level {level} {name}:{key}')
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ('wall_time_s', 'run')} for r in rows]
    self.assertEqual(strip(storage.load_level_metrics(run_dir)), strip(self.whole))
    self.assertEqual(_temp_files(run_dir), [])

  def test_every_level_has_a_manifest_that_matches_its_files(self):
    paths = storage.RunDirectory(self.whole_dir)
    for level in range(3):
      manifest = storage.read_json(paths.manifest_path(0, level))
      self.assertEqual(sorted(manifest['files']), sorted(paths.needed_files('main')))
      for name, entry in manifest['files'].items():
        path = paths.file(0, level, 'main', name)
        self.assertEqual(entry['sha256'], storage.file_sha256(path))
        self.assertEqual(entry['bytes'], os.path.getsize(path))
    self.assertEqual(_temp_files(self.whole_dir), [])
    mode = stat.S_IMODE(os.stat(_level_file(self.whole_dir, 0, storage.MASKS)).st_mode)
    self.assertEqual(mode, 0o666 & ~_umask())  # as open() makes files, not mkstemp's 0o600

  def test_a_damaged_level_is_redone_with_a_warning(self):
    run_dir = self._copy_of_whole()
    _truncate(_level_file(run_dir, 1, storage.WEIGHTS))
    lines = []
    resumed = _experiment(run_dir, log=lines.append)
    resumed.run()
    self.assertEqual(resumed.jobs_run, 1)
    warnings = [line for line in lines if line.startswith('WARNING')]
    self.assertLen(warnings, 1)
    self.assertIn('replicate 0 level 1 main is damaged and will be redone', warnings[0])
    self.assertIn('weights.npz does not match its checksum', warnings[0])
    self._assert_same_as_whole(run_dir)

  def test_a_level_without_its_manifest_is_unfinished(self):
    run_dir = self._copy_of_whole()
    os.remove(storage.RunDirectory(run_dir).manifest_path(0, 2))
    self.assertEqual([r['level'] for r in storage.load_level_metrics(run_dir)], [0, 1])  # not reported
    lines = []
    resumed = _experiment(run_dir, log=lines.append)
    resumed.run()
    self.assertEqual(resumed.jobs_run, 1)
    self.assertFalse([line for line in lines if line.startswith('WARNING')])
    self._assert_same_as_whole(run_dir)

  def test_truncated_files_give_clear_errors(self):
    run_dir = self._copy_of_whole()
    masks, weights, metrics = (_level_file(run_dir, 2, name) for name in (storage.MASKS, storage.WEIGHTS,
                                                                            storage.METRICS_JSON))
    for path in (masks, weights, metrics):
      _truncate(path)
    with self.assertRaisesRegex(storage.CorruptFileError, f'{masks} is truncated or corrupt'):
      experiment.load_masks(run_dir, 0, 2)
    with self.assertRaisesRegex(storage.CorruptFileError, f'{weights} is truncated or corrupt'):
      storage.load_arrays(weights)
    with self.assertRaisesRegex(storage.CorruptFileError, f'{metrics} is truncated or corrupt'):
      storage.read_json(metrics)
    with self.assertRaisesRegex(ValueError, r'replicate 0 level 2 main of .* is damaged: .*masks.npz does not '
                                r'match its checksum.*Run the experiment again .* to redo it'):
      experiment.load_trained_model(run_dir, level=2, model_fn=_mlp, data=DATA)

  def test_a_second_run_on_a_directory_in_use_is_refused_naming_the_first(self):
    run_dir = os.path.join(self._new_dir(), 'run')
    refusals = []

    class _SecondRunAtFirstStep(experiment.RunHooks):

      def after_train_step(hooks):  # noqa: N805 (self is the test)
        if not refusals:
          with self.assertRaises(ltp_tfmot.RunLockedError) as refused:
            _experiment(run_dir).run()
          refusals.append(str(refused.exception))

    _experiment(run_dir, hooks=_SecondRunAtFirstStep()).run()
    self.assertLen(refusals, 1)
    self.assertRegex(refusals[0], f'^run directory {re.escape(run_dir)} is in use by process {os.getpid()} on '
                     f'{re.escape(socket.gethostname())} \\(started [-0-9: ]+ UTC: .*\\), so this run did nothing: '
                     'wait for it to end or stop it, then run the same command again$')
    self.assertNotIn(run_lock.LOCK, os.listdir(run_dir))  # released at the end
    self._assert_same_as_whole(run_dir)

  def test_the_lock_of_a_process_gone_from_this_host_is_taken_over_and_another_hosts_is_not(self):
    run_dir = self._copy_of_whole()
    lock = os.path.join(run_dir, run_lock.LOCK)
    gone = int(subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True,
                              text=True, check=True).stdout)
    holder = {'pid': gone, 'host': socket.gethostname(), 'started': '2026-01-01 00:00:00 UTC', 'command': 'ltp-tfmot'}
    with open(lock, 'w') as f:
      json.dump(holder, f)
    _experiment(run_dir).run()
    self.assertNotIn(run_lock.LOCK, os.listdir(run_dir))
    with open(lock, 'w') as f:
      json.dump(dict(holder, pid=1, host='elsewhere'), f)
    before = _tree(run_dir)
    with self.assertRaisesRegex(ltp_tfmot.RunLockedError, f'is in use by process 1 on elsewhere .*run the same '
                                f'command again \\(if it is gone, delete {re.escape(lock)}\\)$'):
      _experiment(run_dir).run()
    self.assertEqual(_tree(run_dir), before)

  def test_stale_temporary_files_are_ignored_then_removed(self):
    run_dir = os.path.join(self._new_dir(), 'run')
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, '.config.json.abc123.tmp'), 'w') as f:
      f.write('{"half')  # a run killed while writing its config.json
    lines = []
    _experiment(run_dir, log=lines.append).run()
    self.assertIn('Removed 1 temporary file(s) left by a process killed while writing.', lines)
    self._assert_same_as_whole(run_dir)

  def test_disk_full_while_writing_a_level_stops_cleanly_and_loses_nothing(self):
    run_dir = self._new_dir()
    disk_full = _DiskFullAt(os.path.join('level_1', 'main', storage.WEIGHTS))
    with self.assertRaisesRegex(storage.StorageError, r'could not write .*level_1/main/weights.npz: No space left '
                                r'on device\. Files written before are intact; free some space and run the same '
                                r'command again \(a run resumes from its last finished level\)'):
      _experiment(run_dir, hooks=disk_full).run()
    for path, data in disk_full.written:  # everything written before the disk filled up is there, whole
      with open(path, 'rb') as f:
        self.assertEqual(f.read(), data, path)
    self.assertEqual(_temp_files(run_dir), [])
    self.assertEqual(storage.RunDirectory(run_dir).verify(0, 0), '')
    self.assertIsNone(storage.RunDirectory(run_dir).verify(0, 1))  # not finished
    self.assertFalse(os.path.exists(_level_file(run_dir, 1, storage.WEIGHTS)))
    resumed = _experiment(run_dir)
    resumed.run()
    self.assertEqual(resumed.jobs_run, 2)  # levels 1 and 2
    self._assert_same_as_whole(run_dir)

  def test_cli_reports_a_full_disk_in_one_line(self):
    out = self._new_dir()
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
      status = cli.main(['ltp-tfmot', 'run', f'--out={out}'] + RUN_FLAGS, hooks=_DiskFullAt(''))
    self.assertEqual(status, 1)
    self.assertRegex(stderr.getvalue(), r'(?m)^ltp-tfmot run: error: could not write .*config\.json: No space left on '
                     r'device\. Files written before are intact')
    self.assertNotIn('Traceback', stderr.getvalue())
    run_dirs = os.listdir(out)
    self.assertLen(run_dirs, 1)
    self.assertEqual(os.listdir(os.path.join(out, run_dirs[0])), [])  # no config.json, no temporary file

  def test_read_only_run_directory_stops_cleanly_and_loses_nothing(self):
    run_dir = os.path.join(self._new_dir(), 'run')
    _experiment(run_dir, levels=1).run()
    before = _tree(run_dir)
    self._make_read_only(run_dir)
    with self.assertRaisesRegex(storage.StorageError, r'could not write .*level_2.*: (Permission denied|Operation not '
                                r'permitted)\. Files written before are intact; make the directory writable'):
      _experiment(run_dir, levels=2).run()
    self._restore_writable()
    self.assertEqual(_tree(run_dir), before)
    resumed = _experiment(run_dir, levels=2)
    resumed.run()
    self.assertEqual(resumed.jobs_run, 1)
    self._assert_same_as_whole(run_dir)

  def _make_read_only(self, path):
    """chmod a-w on every directory under path; as root (which chmod does not stop), chattr +i instead."""
    directories = [root for root, _, _ in os.walk(path)]
    self._restore_writable = lambda: None
    for directory in directories:
      os.chmod(directory, 0o555)
    chattr = shutil.which('chattr')

    def restore():
      if chattr:
        subprocess.run([chattr, '-i'] + directories, capture_output=True, check=False)
      for directory in directories:
        os.chmod(directory, 0o755)

    self._restore_writable = restore
    self.addCleanup(restore)
    if not _can_create_file_in(path):
      return
    if chattr and subprocess.run([chattr, '+i'] + directories, capture_output=True, check=False).returncode == 0 \
        and not _can_create_file_in(path):
      return
    self.skipTest('this process writes to read-only directories (it runs as root) and cannot make them immutable '
                  '(chattr +i), so the run directory cannot be made unwritable; test_disk_full_while_writing_a_level_'
                  'stops_cleanly_and_loses_nothing covers the same error path by simulating ENOSPC')


def _can_create_file_in(directory):
  probe = os.path.join(directory, '.probe.tmp')
  try:
    with open(probe, 'w'):
      pass
  except OSError:
    return False
  os.remove(probe)
  return True


def _umask():
  mask = os.umask(0)
  os.umask(mask)
  return mask


if __name__ == '__main__':
  tf.test.main()
