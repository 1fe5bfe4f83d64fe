"""Client of tests/kfp_zygote.py: starts `python -m MODULE ARGS` commands as
children forked from one process that imported their libraries once.

Used by the KFP harness (every compiled task) and by the tests that start
`ssd run` as real processes (tests/crash_util.py kills one mid-step,
tests/test_concurrency_e2e.py runs two side by side). A forked child does
what `python -m` does (tests/kfp_zygote.py), ~5-7 CPU-s sooner.
"""

import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Sequence

from tests import kfp_zygote

SERVER = os.path.abspath(kfp_zygote.__file__)   # run as a script, never imported there

# What `python -m ssd.cli run` imports before it runs anything: the local TFX
# runner, TensorFlow, tf_keras, tensorflow_text, Beam. Third-party modules only:
# the project's are imported fresh by each child, from its working directory.
RUN_PRELOAD = ('tfx.orchestration.local.local_dag_runner', 'tfx.components',
               'tensorflow_text', 'tf_keras', 'apache_beam')


def forkable(command: List[str]) -> bool:
  """Whether a zygote can run `command`: `<this interpreter> -m MODULE ...`."""
  return command[0] == sys.executable and command[1:2] == ['-m']


class Child:
  """A started command: its pid (to signal it) and its exit status."""

  def __init__(self, pid: int, status: concurrent.futures.Future):
    self.pid = pid
    self._status = status

  def poll(self) -> Optional[int]:
    """The exit status once it exited, else None (as Popen.poll)."""
    return self._status.result() if self._status.done() else None

  def wait(self, timeout: Optional[float] = None) -> int:
    return self._status.result(timeout)


class Zygote:
  """tests/kfp_zygote.py as a subprocess, in an empty directory under an empty
  HOME, that imported `preload`."""

  def __init__(self, preload: Sequence[str], work_dir: str,
               env: Optional[Dict[str, str]] = None):
    home = os.path.join(work_dir, 'home')
    os.makedirs(home, exist_ok=True)
    self.log_path = os.path.join(work_dir, 'zygote.log')
    with open(self.log_path, 'w', encoding='utf-8') as log:
      self.proc = subprocess.Popen(
          [sys.executable, SERVER, *preload], cwd=home,
          env=dict(os.environ if env is None else env, HOME=home),
          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
    self._lock = threading.Lock()
    self._pids: Dict[int, concurrent.futures.Future] = {}
    self._codes: Dict[int, concurrent.futures.Future] = {}
    self._next = 0
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()

  def _read(self) -> None:
    for line in self.proc.stdout:
      answer = json.loads(line)
      with self._lock:
        if 'pid' in answer:
          self._pids.pop(answer['id']).set_result(answer['pid'])
        else:
          self._codes.pop(answer['id']).set_result(answer['code'])
    with self._lock:   # the zygote died: nothing more will answer
      for future in [*self._pids.values(), *self._codes.values()]:
        future.set_exception(RuntimeError(f'the zygote exited ({self.proc.poll()}); '
                                          f'see {self.log_path}'))
      self._pids.clear()
      self._codes.clear()

  def start(self, command: List[str], cwd: str, env: Dict[str, str], log: str,
            err: Optional[str] = None) -> Child:
    """Starts `command` ([sys.executable, '-m', module, args...]) in `cwd` with
    exactly `env`; stdout to `log`, stderr to `err` (default: `log`)."""
    if not forkable(command):
      raise ValueError(f'a zygote runs `{sys.executable} -m ...` commands only: {command}')
    pid: concurrent.futures.Future = concurrent.futures.Future()
    code: concurrent.futures.Future = concurrent.futures.Future()
    with self._lock:
      self._next += 1
      request = {'id': self._next, 'argv': command, 'cwd': cwd, 'env': env, 'log': log,
                 'err': err}
      self._pids[self._next], self._codes[self._next] = pid, code
      self.proc.stdin.write((json.dumps(request) + '\n').encode('utf-8'))
      self.proc.stdin.flush()
    return Child(pid.result(), code)

  def run(self, command: List[str], cwd: str, env: Dict[str, str], log: str):
    """Runs `command` to its end: (exit status, seconds, the log's text)."""
    t0 = time.time()
    code = self.start(command, cwd, env, log).wait()
    with open(log, encoding='utf-8', errors='replace') as f:
      return code, time.time() - t0, f.read()

  def close(self) -> None:
    self.proc.stdin.close()
    try:
      self.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
      self.proc.kill()
      self.proc.wait()
    self._reader.join(timeout=10)
