"""BUILD must have one target per module and per test file, and no stale ones."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ('ssd', 'rankdata', 'rankers', 'components', 'pipelines')


def _build_targets():
  with open(os.path.join(ROOT, 'BUILD')) as f:
    text = f.read()
  rules = re.findall(r'(py_library|py_test)\(\s*name = "([^"]+)",(?:\s*testonly = True,)?\s*srcs = \[([^\]]*)\]', text)
  out = {}
  for kind, name, srcs in rules:
    for src in re.findall(r'"([^"]+)"', srcs):
      out[src] = (kind, name)
  return out


def _tree_modules():
  found = []
  for pkg in PACKAGES:
    for root, dirs, files in os.walk(os.path.join(ROOT, pkg)):
      dirs[:] = [d for d in dirs if d != '__pycache__']
      found += [os.path.relpath(os.path.join(root, f), ROOT) for f in files if f.endswith('.py')]
  return sorted(found)


def test_every_module_has_a_library_target():
  targets = _build_targets()
  missing = [m for m in _tree_modules() if targets.get(m, (None,))[0] != 'py_library']
  assert not missing, f'modules without py_library in BUILD (run tools/gen_build.py): {missing}'


def test_every_test_file_has_a_test_target():
  targets = _build_targets()
  tests = sorted(os.path.join('tests', f) for f in os.listdir(os.path.join(ROOT, 'tests'))
                 if f.startswith('test_') and f.endswith('.py'))
  assert tests, 'no test files found'
  missing = [t for t in tests if targets.get(t, (None,))[0] != 'py_test']
  assert not missing, f'test files without py_test in BUILD (run tools/gen_build.py): {missing}'


def test_no_target_points_at_a_missing_file():
  stale = [src for src in _build_targets() if not os.path.exists(os.path.join(ROOT, src))]
  assert not stale, f'BUILD names files that do not exist (run tools/gen_build.py): {stale}'
