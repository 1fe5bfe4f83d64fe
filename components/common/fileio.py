"""File helpers over `tf.io.gfile`, so the same code reads local disks and object stores.

Artifacts and data may live on a local path or under `gs://` (the filesystems
TensorFlow and Beam have with the lock; see docs/design.md); `os`, `shutil`
and `glob` only know local paths. Fingerprints here hash file contents (not
mtimes, which object stores do not keep stable across copies).
"""

import hashlib
import os
from typing import Iterable, List, Optional

import tensorflow as tf

_BLOCK = 1 << 20


def is_uri(path: str) -> bool:
  """True for `scheme://...` paths (gs://, ram://); False for local paths."""
  return '://' in path


def list_files(path: str) -> List[str]:
  """Every file under `path` (recursively), as paths relative to it, sorted.

  A file `path` gives [''] (the file itself).
  """
  if not tf.io.gfile.isdir(path):
    if not tf.io.gfile.exists(path):
      raise FileNotFoundError(f'{path}: not found')
    return ['']
  out = []
  for root, _, files in tf.io.gfile.walk(path):
    rel = os.path.relpath(root, path) if root.rstrip('/') != path.rstrip('/') else ''
    out.extend(os.path.join(rel, f) if rel else f for f in files)
  return sorted(out)


def sha256_files(base: str, names: Optional[Iterable[str]] = None) -> str:
  """sha256 (hex) over files under `base`, in sorted name order.

  Per file: its relative name (UTF-8), a NUL byte, its size in decimal, a NUL
  byte, then its bytes. Names and sizes make the digest unambiguous (moving a
  byte between two files changes it). `names=None` means every file under
  `base` (list_files); a file `base` hashes as the name ''.
  """
  h = hashlib.sha256()
  for name in sorted(list_files(base) if names is None else names):
    path = os.path.join(base, name) if name else base
    h.update(name.encode('utf-8') + b'\0' + str(tf.io.gfile.stat(path).length).encode() + b'\0')
    with tf.io.gfile.GFile(path, 'rb') as f:
      for block in iter(lambda: f.read(_BLOCK), b''):
        h.update(block)
  return h.hexdigest()


def copy_tree(src: str, dst: str) -> None:
  """Copies every file under `src` to `dst` (created; files overwritten)."""
  for name in list_files(src):
    target = os.path.join(dst, name)
    tf.io.gfile.makedirs(os.path.dirname(target))
    tf.io.gfile.copy(os.path.join(src, name), target, overwrite=True)


def replace_tree(src: str, dst: str) -> None:
  """`dst` becomes a copy of `src` (an existing `dst` is removed first)."""
  if tf.io.gfile.exists(dst):
    tf.io.gfile.rmtree(dst)
  copy_tree(src, dst)
