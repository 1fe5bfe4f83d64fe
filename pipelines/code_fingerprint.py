"""A fingerprint of the code that executions run, for TFX's cache key.

TFX's cache key holds the pipeline and node names, the executor class path,
the input artifacts and the execution parameters (tfx/orchestration/portable/
cache_utils.py), but no code: a Trainer with `run_fn=<import path>` or a
custom component whose executor changed would be served from the cache.
Every execution therefore gets this fingerprint as a parameter (custom
components: exec property `code_fingerprint`; the stock Trainer: key
`code_fingerprint` in `custom_config`), so any change to the code below
reruns the steps (see docs/lineage.md, "How caching decides").

What is hashed (sha256, files in sorted path order, each as path + content):
  - every `*.py`, `*.json`, `*.yaml` file of the packages `rankdata`,
    `rankers`, `runconfig`, `components` and `pipelines`, as imported (the
    installed or checked-out copy that runs);
  - not the app package `ssd` (CLI, lineage inspection, validation, bench,
    scheduling): nothing that runs inside an execution imports it (tested in
    tests/test_layering.py), so editing the CLI or a benchmark does not
    retrain models;
  - plus the installed versions of the libraries whose code computes results
    (LIBRARIES), because TFX's cache key does not see a library upgrade either.
"""

import hashlib
import importlib
import os
from importlib import metadata
from typing import List, Optional, Tuple

PACKAGES = ('rankdata', 'rankers', 'runconfig', 'components', 'pipelines')
SUFFIXES = ('.py', '.json', '.yaml')
# Paths relative to the source root; a folder excludes everything below it.
EXCLUDED: Tuple[str, ...] = ()
LIBRARIES = ('tensorflow', 'tensorflow-text', 'tf-keras', 'tfx', 'apache-beam', 'numpy',
             'bm25s', 'PyStemmer', 'safetensors')
# Hex digits kept: 64 bits, readable in `ssd lineage` output.
LENGTH = 16


def source_root() -> str:
  """The folder holding the packages that are imported (checkout or site-packages)."""
  module = importlib.import_module(PACKAGES[0])
  return os.path.dirname(os.path.dirname(os.path.abspath(module.__file__)))


def source_files(root: str) -> List[str]:
  """Relative paths of the hashed files under `root`, sorted."""
  out = []
  for package in PACKAGES:
    for folder, dirs, files in os.walk(os.path.join(root, package)):
      dirs[:] = sorted(d for d in dirs if d != '__pycache__')
      for name in files:
        rel = os.path.relpath(os.path.join(folder, name), root).replace(os.sep, '/')
        if name.endswith(SUFFIXES) and not any(
            rel == e or (e.endswith('/') and rel.startswith(e)) for e in EXCLUDED):
          out.append(rel)
  return sorted(out)


def library_versions() -> List[Tuple[str, str]]:
  out = []
  for name in LIBRARIES:
    try:
      out.append((name, metadata.version(name)))
    except metadata.PackageNotFoundError:
      out.append((name, 'absent'))
  return out


def compute(root: Optional[str] = None) -> str:
  """The fingerprint of the sources under `root` (default: the imported ones)."""
  root = root or source_root()
  h = hashlib.sha256()
  for rel in source_files(root):
    h.update(rel.encode() + b'\0')
    with open(os.path.join(root, rel), 'rb') as f:
      h.update(f.read())
    h.update(b'\0')
  for name, version in library_versions():
    h.update(f'{name}=={version}\n'.encode())
  return h.hexdigest()[:LENGTH]
