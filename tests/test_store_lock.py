"""The local runner's store lock, with real processes (no TFX needed)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from pipelines import store_lock
from tests import e2e_util

_TRY = ('import sys\n'
        'from pipelines import store_lock\n'
        'try:\n'
        '  with store_lock.hold(sys.argv[1]):\n'
        '    print("GOT")\n'
        'except store_lock.StoreLockedError as e:\n'
        '  print("LOCKED", e)\n')
_HOLD = ('import sys, time\n'
         'from pipelines import store_lock\n'
         'with store_lock.hold(sys.argv[1]):\n'
         '  print("HOLDING", flush=True)\n'
         '  time.sleep(120)\n')


def _try(path):
  return subprocess.run([sys.executable, '-c', _TRY, path], capture_output=True, text=True,
                        cwd=e2e_util.ROOT, env=dict(os.environ, PYTHONPATH=e2e_util.ROOT),
                        timeout=60, check=True).stdout


def test_a_second_process_is_refused_at_once_naming_the_holder(tmp_path):
  store = str(tmp_path / 'root' / 'metadata.sqlite')
  with store_lock.hold(store) as lock:
    assert lock == store + '.lock'
    with store_lock.hold(store):   # re-entrant in one process (CLI, then runner)
      pass
    t0 = time.time()
    out = _try(store)
    assert time.time() - t0 < 30
    assert out.startswith(f'LOCKED another run is using the ML Metadata store {store} '
                          f'(lock {lock} held by pid {os.getpid()} since ')
    assert 'wait for that run to finish, or give this one another pipeline_root' in out
  assert _try(store) == 'GOT\n'


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
  store = str(tmp_path / 'metadata.sqlite')
  holder = subprocess.Popen([sys.executable, '-c', _HOLD, store], stdout=subprocess.PIPE,
                            text=True, cwd=e2e_util.ROOT,
                            env=dict(os.environ, PYTHONPATH=e2e_util.ROOT))
  try:
    assert holder.stdout.readline().strip() == 'HOLDING'
    with pytest.raises(store_lock.StoreLockedError, match=f'pid {holder.pid}'):
      with store_lock.hold(store):
        pass
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
  with store_lock.hold(store):
    pass
