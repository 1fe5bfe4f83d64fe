"""Per-node fingerprints of the code that executions run, for TFX's cache key.

TFX's cache key holds the pipeline and node names, the executor class path,
the input artifacts and the execution parameters (tfx/orchestration/portable/
cache_utils.py), but no code: a Trainer with `run_fn=<import path>` or a
custom component whose executor changed would be served from the cache.
Every execution therefore gets a fingerprint as a parameter (custom
components: exec property `code_fingerprint`; the stock Trainer: key
`code_fingerprint` in `custom_config`), so a change to the code it runs
reruns the step (see docs/lineage.md, "How caching decides").

Per node, not per project: a node's fingerprint covers the project modules
its executor (or the Trainer's `run_fn`) can reach, i.e. the import closure
of that module inside the packages below, found by reading `import`
statements (function-level imports included) with `ast`. Editing the
evaluator's rules then reruns the evaluators and what follows them, not
ingestion or the trainers. What is hashed (sha256, files in sorted path
order, each as path + content):
  - the closure's `*.py` files, with the `__init__.py` of every package on
    their paths, and the `*.json`/`*.yaml` files beside them (data a module
    may read);
  - never the app package `ssd` (CLI, lineage inspection, validation, bench,
    scheduling): nothing that runs inside an execution imports it (tested in
    tests/test_layering.py), so editing the CLI or a benchmark does not
    retrain models;
  - plus the installed versions of the libraries whose code computes results
    (LIBRARIES), because TFX's cache key does not see a library upgrade either.
The configuration a node reads is its execution parameters, which TFX's key
already holds.
"""

import ast
import functools
import hashlib
import importlib
import os
from importlib import metadata
from typing import List, Optional, Set, Tuple

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


def module_file(root: str, module: str) -> Optional[str]:
  """The source of a first-party module relative to `root` (None: not ours, or no such file)."""
  if module.split('.')[0] not in PACKAGES:
    return None
  base = module.replace('.', '/')
  for rel in (base + '.py', base + '/__init__.py'):
    if os.path.isfile(os.path.join(root, rel)):
      return rel
  return None


def _imported_modules(root: str, rel: str) -> Set[str]:
  """Modules a source file imports (anywhere in it), as absolute dotted names."""
  with open(os.path.join(root, rel), 'rb') as f:
    tree = ast.parse(f.read(), rel)
  package = os.path.dirname(rel).replace('/', '.')
  if rel.endswith('/__init__.py'):
    package = rel[:-len('/__init__.py')].replace('/', '.')
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:
        parts = package.split('.')[:len(package.split('.')) - node.level + 1]
        base = '.'.join(parts + ([node.module] if node.module else []))
      # `from a.b import c`: c may be a module or a name in a.b; both resolve.
      out.add(base)
      out.update(f'{base}.{alias.name}' for alias in node.names)
  return out


def closure(root: str, modules: List[str]) -> List[str]:
  """Relative paths of the first-party files `modules` can reach, with their packages' __init__."""
  seen: Set[str] = set()
  todo = [m for m in modules]
  while todo:
    module = todo.pop()
    parts = module.split('.')
    for i in range(1, len(parts) + 1):
      rel = module_file(root, '.'.join(parts[:i]))
      if rel and rel not in seen:
        seen.add(rel)
        todo.extend(_imported_modules(root, rel))
  data = {os.path.join(os.path.dirname(rel), name).replace(os.sep, '/')
          for rel in seen for name in os.listdir(os.path.join(root, os.path.dirname(rel)))
          if name.endswith(SUFFIXES) and not name.endswith('.py')}
  return sorted(seen | data)


def compute(root: Optional[str] = None, modules: Optional[List[str]] = None) -> str:
  """The fingerprint of the sources under `root` (default: the imported ones).

  With `modules`, of their import closure only (a node's fingerprint);
  without, of every source file of the packages.
  """
  root = root or source_root()
  files = closure(root, modules) if modules is not None else source_files(root)
  h = hashlib.sha256()
  for rel in files:
    h.update(rel.encode() + b'\0')
    with open(os.path.join(root, rel), 'rb') as f:
      h.update(f.read())
    h.update(b'\0')
  for name, version in library_versions():
    h.update(f'{name}=={version}\n'.encode())
  return h.hexdigest()[:LENGTH]


class NodeFingerprints:
  """The fingerprint each node gets, by the module it runs; memoised per module.

  `fixed` gives every node that one value (tests that pin it); `root` hashes
  another copy of the sources (tests that fake a code change).
  """

  def __init__(self, fixed: Optional[str] = None, root: Optional[str] = None):
    self._fixed = fixed
    self._root = root or source_root()

  def of_module(self, module: str) -> str:
    return self.of_modules((module,))

  @functools.lru_cache(maxsize=None)
  def of_modules(self, modules: Tuple[str, ...]) -> str:
    """Of the code the modules reach together (a node running several)."""
    if self._fixed:
      return self._fixed
    for module in modules:
      if module_file(self._root, module) is None:
        raise ValueError(f'{module}: not a module of {PACKAGES} under {self._root}')
    return compute(self._root, list(modules))

  def of_component(self, component_class) -> str:
    """Of the module that holds the component's executor class."""
    return self.of_module(component_class.EXECUTOR_SPEC.executor_class.__module__)
