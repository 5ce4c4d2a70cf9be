"""Ends the processes of a local Ray when the process that started it ends, however it ends (SIGKILL too).

`ray.init` on this machine starts a GCS server, a raylet, agents and worker
processes. When the driver is killed, most of them notice and exit, but Ray's
dashboard and runtime-env agents see their raylet die and then hang, trying
to report it to the dead GCS server. So `WorkerPool` marks every process of
the Ray it starts with an environment variable holding a random token (each
inherits it) and starts this watchdog in a session of its own (Ctrl-C does
not reach it), holding the read end of a pipe whose write end only the driver
holds. The pipe reads end-of-file when the driver closes it (`WorkerPool.close`,
after `ray.shutdown`) or dies; the watchdog then SIGKILLs every process that
carries the token, and exits. Processes are found through Linux's /proc; on
other systems the watchdog finds none.

  python -m ltp_tfmot.experiment.ray_watchdog TOKEN FD
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


def start(token):
  """Starts a watchdog for the processes whose environment has MARKER=token; returns its `Watchdog`."""
  read_end, write_end = os.pipe()
  env = {k: v for k, v in os.environ.items() if k != MARKER}
  env['PYTHONPATH'] = os.pathsep.join(p for p in [os.getcwd()] + sys.path if p)
  try:
    process = subprocess.Popen([sys.executable, '-m', __name__, token, str(read_end)], pass_fds=(read_end,),
                               start_new_session=True, env=env, stdin=subprocess.DEVNULL)
  except BaseException:
    os.close(write_end)
    raise
  finally:
    os.close(read_end)
  return Watchdog(process, write_end)


def marked_processes(token):
  """The pids of the processes started with MARKER=token in their environment (Linux; elsewhere none)."""
  wanted = f'{MARKER}={token}'.encode()
  found = []
  for pid in filter(str.isdigit, os.listdir('/proc') if os.path.isdir('/proc') else []):
    try:
      with open(f'/proc/{pid}/environ', 'rb') as f:
        if wanted in f.read().split(b'\0'):
          found.append(int(pid))
    except OSError:  # gone, or another user's
      continue
  return found


def end_marked_processes(token):
  """SIGKILLs the processes carrying the token until none is left (or a few rounds passed)."""
  for _ in range(_ROUNDS):
    pids = marked_processes(token)
    if not pids:
      return
    for pid in pids:
      try:
        os.kill(pid, signal.SIGKILL)
      except OSError:
        pass
    time.sleep(_ROUND_PAUSE_S)


def main(argv):
  token, fd = argv[1], int(argv[2])
  while os.read(fd, 1):  # end-of-file: the driver closed its end or died
    pass
  end_marked_processes(token)


if __name__ == '__main__':
  main(sys.argv)
