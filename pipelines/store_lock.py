"""One local run per ML Metadata store: a lock file next to the SQLite store.

Two LocalDagRunner processes on one SQLite store race: SQLite serialises
single writes, but TFX's orchestration (register the run context, resolve
inputs, publish an execution and its outputs) spans several transactions,
and a second process sees the first one's half-published state, or gets
"database is locked" in the middle of publishing. Rather than hope, the local
runner holds an exclusive `flock` on `<store>.lock` for the whole run and a
second run fails at once with a message naming the holder.

flock is released by the kernel when the holding process exits, however it
exits, so a crashed run never leaves a stale lock. The lock is re-entrant
within a process (the CLI takes it before the slow TFX import; the runner
takes it again). It protects runs on one machine, which is all a local
SQLite store can serve; a shared store (MySQL, Kubeflow) needs none of this.

No TFX import here: `ssd run` checks the lock before loading TFX.
"""

import contextlib
import fcntl
import json
import os
import sys
import time
from typing import Dict, Iterator, Tuple

LOCK_SUFFIX = '.lock'

# path -> (open file, depth) for locks this process holds.
_HELD: Dict[str, Tuple[object, int]] = {}


class StoreLockedError(RuntimeError):
  """Another process is running a pipeline on the same ML Metadata store."""


def lock_path(metadata_path: str) -> str:
  return os.path.abspath(metadata_path) + LOCK_SUFFIX


def _holder(f) -> str:
  """Who holds the lock, from the file's JSON (the holder writes it right
  after taking the lock, so an empty read is retried for a moment)."""
  info = {}
  for _ in range(20):
    f.seek(0)
    text = f.read()
    try:
      info = json.loads(text) if text else {}
    except ValueError:
      info = {}
    if info:
      break
    time.sleep(0.05)
  if not info:
    return 'unknown process'
  return (f'pid {info.get("pid", "?")} since {info.get("started", "?")}'
          f' ({info.get("command", "?")})')


@contextlib.contextmanager
def hold(metadata_path: str) -> Iterator[str]:
  """Holds the store's lock for the duration of the block; yields its path.

  Raises:
    StoreLockedError: another process holds it (raised at once, no waiting).
  """
  path = lock_path(metadata_path)
  if path in _HELD:
    f, depth = _HELD[path]
    _HELD[path] = (f, depth + 1)
    try:
      yield path
    finally:
      f, depth = _HELD[path]
      _HELD[path] = (f, depth - 1)
    return
  os.makedirs(os.path.dirname(path), exist_ok=True)
  # 'a+' does not truncate, so a waiting process can still read the holder.
  f = open(path, 'a+', encoding='utf-8')  # pylint: disable=consider-using-with
  try:
    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    holder = _holder(f)
    f.close()
    raise StoreLockedError(
        f'another run is using the ML Metadata store {os.path.abspath(metadata_path)} '
        f'(lock {path} held by {holder}). Two runs on one SQLite store would interleave '
        'their executions; wait for that run to finish, or give this one another '
        'pipeline_root / metadata_path.') from None
  f.seek(0)
  f.truncate()
  f.write(json.dumps({'pid': os.getpid(), 'started': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
                      'command': ' '.join(sys.argv)[:200]}))
  f.flush()
  _HELD[path] = (f, 1)
  try:
    yield path
  finally:
    f, depth = _HELD[path]
    if depth <= 1:
      del _HELD[path]
      fcntl.flock(f.fileno(), fcntl.LOCK_UN)
      f.close()
    else:
      _HELD[path] = (f, depth - 1)
