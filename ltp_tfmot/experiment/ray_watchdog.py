"""Ends the processes of a local Ray when the process that started it ends, however it ends (SIGKILL too).

`ray.init` on this machine starts a GCS server, a raylet, agents and worker
processes. When the driver is killed, most of them notice and exit, but Ray's
dashboard and runtime-env agents see their raylet die and then hang, trying
to report it to the dead GCS server. So `WorkerPool` starts this watchdog in
a session of its own (Ctrl-C does not reach it), holding the read end of a
pipe whose write end only the driver holds. The pipe reads end-of-file when
the driver closes it (`WorkerPool.close`, after `ray.shutdown`) or dies; the
watchdog then SIGKILLs every process of that Ray, and exits. They are the
processes whose environment holds the pool's random token (Ray's processes
inherit it from the driver) or that name or hold open a file of the Ray
session's directory: the agents rewrite the memory /proc shows as their
environment when they set their process titles, but keep their logs there
open. The driver itself is spared. Processes are found through Linux's /proc;
on other systems the watchdog finds none.

  python -m ltp_tfmot.experiment.ray_watchdog TOKEN SESSION_DIR DRIVER_PID FD
"""

import os
import signal
import subprocess
import sys
import time

# The environment variable that marks the processes of a local Ray; its value is the pool's token.
MARKER = 'LTP_TFMOT_LOCAL_RAY'
# Rounds of looking for marked processes after the driver ended: one may start another while it is killed.
_ROUNDS = 5
_ROUND_PAUSE_S = 0.2


class Watchdog:
  """A running watchdog: `stop` (or the end of this process) has it end the marked processes."""

  def __init__(self, process, pipe):
    self.process = process
    self._pipe = pipe

  def stop(self, timeout=10):
    """Has the watchdog end the marked processes now, and waits for it (at most `timeout` seconds)."""
    if self._pipe is None:
      return
    os.close(self._pipe)
    self._pipe = None
    try:
      self.process.wait(timeout)
    except subprocess.TimeoutExpired:
      pass  # it goes on by itself


def start(token, session_dir):
  """Starts a watchdog for the local Ray of this process (see the module docstring); returns its `Watchdog`.

  Args:
    token: The value of MARKER in the environment of the Ray's processes.
    session_dir: The Ray session's directory (`ray.init(...).address_info['session_dir']`).
  """
  read_end, write_end = os.pipe()
  env = {k: v for k, v in os.environ.items() if k != MARKER}
  env['PYTHONPATH'] = os.pathsep.join(p for p in [os.getcwd()] + sys.path if p)
  command = [sys.executable, '-m', __name__, token, session_dir, str(os.getpid()), str(read_end)]
  try:
    process = subprocess.Popen(command, pass_fds=(read_end,), start_new_session=True, env=env,
                               stdin=subprocess.DEVNULL)
  except BaseException:
    os.close(write_end)
    raise
  finally:
    os.close(read_end)
  return Watchdog(process, write_end)


def ray_processes(token, session_dir, driver_pid):
  """The pids of a local Ray's processes but its driver's (see the module docstring; Linux, elsewhere none)."""
  spared = {driver_pid, os.getpid()}
  return [int(pid) for pid in filter(str.isdigit, os.listdir('/proc') if os.path.isdir('/proc') else [])
          if int(pid) not in spared and _of_ray(pid, token, session_dir)]


def _of_ray(pid, token, session_dir):
  try:
    with open(f'/proc/{pid}/environ', 'rb') as f:
      if f'{MARKER}={token}'.encode() in f.read().split(b'\0'):
        return True
    with open(f'/proc/{pid}/cmdline', 'rb') as f:
      if session_dir.encode() in f.read():
        return True
    fds = f'/proc/{pid}/fd'
    return any(os.readlink(os.path.join(fds, fd)).startswith(session_dir + os.sep) for fd in os.listdir(fds))
  except OSError:  # gone, or another user's
    return False


def end_ray_processes(token, session_dir, driver_pid):
  """SIGKILLs a local Ray's processes until none is left (or a few rounds passed)."""
  for _ in range(_ROUNDS):
    pids = ray_processes(token, session_dir, driver_pid)
    if not pids:
      return
    for pid in pids:
      try:
        os.kill(pid, signal.SIGKILL)
      except OSError:
        pass
    time.sleep(_ROUND_PAUSE_S)


def main(argv):
  token, session_dir, driver_pid, fd = argv[1], argv[2], int(argv[3]), int(argv[4])
  while os.read(fd, 1):  # end-of-file: the driver closed its end or died
    pass
  end_ray_processes(token, session_dir, driver_pid)


if __name__ == '__main__':
  main(sys.argv)
