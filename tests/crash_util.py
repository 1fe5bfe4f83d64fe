"""Running the pipeline in a real child process and killing it mid-step.

`ssd run` is started as a subprocess (the worktree's code first on
PYTHONPATH); the parent polls the MLMD store, read-only, until the wanted
node's execution is RUNNING, then sends SIGKILL: no handler runs, exactly
like an OOM kill or a lost machine.
"""

import os
import signal
import subprocess
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


def run_and_kill(config_path: str, metadata_path: str, pipeline: str, node: str, log_path: str,
                 timeout_s: float = 900) -> int:
  """Runs `ssd run --config=...` and SIGKILLs it once `node` is RUNNING; returns that execution id."""
  known = set()
  if os.path.exists(metadata_path):
    known = {e.id for e in S.node_executions(S.open_store(metadata_path), pipeline, node)}
  env = dict(os.environ, PYTHONPATH=e2e_util.ROOT, TF_CPP_MIN_LOG_LEVEL='2')
  with open(log_path, 'w') as log:
    proc = subprocess.Popen([sys.executable, '-m', 'ssd.cli', 'run', f'--config={config_path}'],
                            cwd=e2e_util.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + timeout_s
    try:
      while time.time() < deadline:
        if proc.poll() is not None:
          break
        execution_id = _running_execution(metadata_path, pipeline, node, known)
        if execution_id is not None:
          os.kill(proc.pid, signal.SIGKILL)
          proc.wait()
          return execution_id
        time.sleep(0.3)
    finally:
      if proc.poll() is None:
        proc.kill()
        proc.wait()
  with open(log_path) as f:
    tail = f.read()[-3000:]
  raise AssertionError(f'{node} never ran before the process ended (rc={proc.returncode}):\n{tail}')
