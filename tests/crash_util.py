"""Running the pipeline in a real child process and killing it mid-step.

`ssd run` is started as a process of its own (the worktree's code first on
its path), forked from the tests' zygote (tests/zygote.py), which imported
its libraries once. The parent polls the MLMD store, read-only,
until the wanted node's execution is RUNNING, then sends SIGKILL: no
handler runs, exactly like an OOM kill or a lost machine.
"""

import os
import signal
import sys
import time
from typing import Any, Dict, Optional

import yaml

from ml_metadata.proto import metadata_store_pb2

from pipelines import mlmd_store as S
from tests import e2e_util

_RUNNING = metadata_store_pb2.Execution.RUNNING


def write_config(raw: Dict[str, Any], path: str) -> str:
  with open(path, 'w') as f:
    yaml.safe_dump(raw, f)
  return path


def _running_execution(metadata_path: str, pipeline: str, node: str, known: set) -> Optional[int]:
  if not os.path.exists(metadata_path):
    return None
  try:
    store = S.open_store(metadata_path)
    for e in S.node_executions(store, pipeline, node):
      if e.id not in known and e.last_known_state == _RUNNING:
        return e.id
  except Exception:  # pylint: disable=broad-except  (the writer holds a lock; poll again)
    return None
  return None


def start_run(zygote, config_path: str, out_path: str, err_path: Optional[str] = None):
  """Starts `ssd run --config=...` in the project root as a child of `zygote`
  (tests/zygote.py; conftest's `zygote` fixture); stdout to out_path, stderr
  to err_path (default: out_path too). Returns the child (pid, poll, wait)."""
  command = [sys.executable, '-m', 'ssd.cli', 'run', f'--config={config_path}']
  env = dict(os.environ, PYTHONPATH=e2e_util.ROOT, TF_CPP_MIN_LOG_LEVEL='2')
  return zygote.start(command, e2e_util.ROOT, env, out_path, err_path)


def run_and_kill(zygote, config_path: str, metadata_path: str, pipeline: str, node: str,
                 log_path: str, timeout_s: float = 900) -> int:
  """Runs `ssd run --config=...` and SIGKILLs it once `node` is RUNNING; returns that execution id."""
  known = set()
  if os.path.exists(metadata_path):
    known = {e.id for e in S.node_executions(S.open_store(metadata_path), pipeline, node)}
  proc = start_run(zygote, config_path, log_path)
  deadline = time.time() + timeout_s
  try:
    while time.time() < deadline:
      if proc.poll() is not None:
        break
      execution_id = _running_execution(metadata_path, pipeline, node, known)
      if execution_id is not None:
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        return execution_id
      time.sleep(0.3)
  finally:
    if proc.poll() is None:
      os.kill(proc.pid, signal.SIGKILL)
      proc.wait()
  with open(log_path) as f:
    tail = f.read()[-3000:]
  raise AssertionError(f'{node} never ran before the process ended (rc={proc.poll()}):\n{tail}')
