"""Can a path hold a pipeline root, or an ML Metadata store? (no TFX import)

Used by pipelines/validation.py before a run starts; kept apart so each file does
one job.
"""

import os
import sqlite3
import tempfile
from typing import Optional

SQLITE_HEADER = b'SQLite format 3\x00'
# A table every ML Metadata SQLite store has (it holds the schema version).
MLMD_MARKER_TABLE = 'MLMDEnv'


def _local(path: str) -> str:
  return os.path.abspath(os.path.expanduser(path))


def writable_dir_problem(path: str) -> Optional[str]:
  """Why a directory cannot be created/written at `path`, or None.

  Probes the nearest existing ancestor by creating (and removing) a file,
  which also catches read-only mounts and root-owned folders that
  os.access alone would not.
  """
  local = _local(path)
  probe = local
  while not os.path.exists(probe):
    parent = os.path.dirname(probe)
    if parent == probe:
      break
    probe = parent
  if not os.path.isdir(probe):
    return f'{local}: cannot be used as a directory, {probe} is a file'
  try:
    fd, name = tempfile.mkstemp(prefix='.ssd-validate-', dir=probe)
    os.close(fd)
    os.remove(name)
  except OSError as e:
    return f'{local}: not writable ({probe}: {e.strerror or e}); choose another path'
  return None


def mlmd_store_problem(path: str) -> Optional[str]:
  """Why `path` cannot be an SQLite ML Metadata store, or None (absent is fine)."""
  local = _local(path)
  if not os.path.exists(local):
    return None
  if os.path.isdir(local):
    return f'{local} is a directory, not an SQLite file'
  with open(local, 'rb') as f:
    header = f.read(len(SQLITE_HEADER))
  if not header:
    return None   # an empty file: MLMD initialises it
  if header != SQLITE_HEADER:
    return (f'{local} is not an SQLite database (so not an ML Metadata store); '
            'point metadata_path elsewhere or move the file away')
  try:
    with sqlite3.connect(f'file:{local}?mode=ro', uri=True, timeout=5) as db:
      tables = {row[0] for row in db.execute(
          "SELECT name FROM sqlite_master WHERE type='table'")}
      check = db.execute('PRAGMA quick_check').fetchone()[0]
  except sqlite3.DatabaseError as e:
    return f'{local}: unreadable SQLite database ({e}); point metadata_path elsewhere'
  if check != 'ok':
    return f'{local}: SQLite integrity check failed ({check}); restore or remove it'
  if tables and MLMD_MARKER_TABLE not in tables:
    return (f'{local} is an SQLite database but not an ML Metadata store (tables: '
            f'{", ".join(sorted(tables)[:8])}); point metadata_path elsewhere')
  return None
