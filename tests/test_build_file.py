"""BUILD must have one target per module and per test, no stale ones, and deps that match imports.

The deps check is independent of the generator's import table: which
distribution provides an import is asked of the installed packages
(`importlib.metadata`), and every distribution named must be in the lock.
"""

import ast
import importlib.metadata
import os
import re
import sys

import pytest

from tools import gen_build

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ('ssd', 'rankdata', 'rankers', 'runconfig', 'components', 'pipelines')
FIRST_PARTY = PACKAGES + ('tests', 'tools')


def _rules():
  """kind, name, srcs, deps of every py_library / py_test in BUILD."""
  with open(os.path.join(ROOT, 'BUILD')) as f:
    text = f.read()
  out = []
  for kind, body in re.findall(r'^(py_library|py_test)\((.*?)^\)', text, re.S | re.M):
    name = re.search(r'name = "([^"]+)"', body).group(1)
    srcs = re.findall(r'"([^"]+)"', re.search(r'srcs = \[([^\]]*)\]', body).group(1))
    deps_match = re.search(r'deps = \[([^\]]*)\]', body)
    deps = re.findall(r'"([^"]+)"', deps_match.group(1)) if deps_match else []
    out.append((kind, name, srcs, deps))
  return out


def _build_targets():
  return {src: (kind, name) for kind, name, srcs, _ in _rules() for src in srcs
          if src != gen_build.PYTEST_MAIN or kind == 'py_library'}


def _tree_modules():
  found = []
  for pkg in PACKAGES:
    for root, dirs, files in os.walk(os.path.join(ROOT, pkg)):
      dirs[:] = [d for d in dirs if d != '__pycache__']
      found += [os.path.relpath(os.path.join(root, f), ROOT) for f in files if f.endswith('.py')]
  return sorted(found)


def _lock():
  """Normalised distribution names in requirements.txt."""
  with open(os.path.join(ROOT, 'requirements.txt')) as f:
    names = [l.split('==')[0].split('[')[0].strip() for l in f if '==' in l and not l.startswith('#')]
  return {re.sub(r'[-_.]+', '_', n).lower() for n in names}


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


def test_build_is_what_the_generator_renders():
  with open(os.path.join(ROOT, 'BUILD')) as f:
    assert f.read() == gen_build.render(), 'BUILD is stale: run `python tools/gen_build.py`'


def _imports(path):
  with open(os.path.join(ROOT, path), encoding='utf-8') as f:
    tree = ast.parse(f.read())
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield alias.name, None
    elif isinstance(node, ast.ImportFrom) and node.level == 0:
      for alias in node.names:
        yield node.module, alias.name


def _first_party_file(module, name):
  base = module.replace('.', '/')
  candidates = ([f'{base}/{name}.py', f'{base}/{name}/__init__.py'] if name else []) + \
      [f'{base}.py', f'{base}/__init__.py']
  return next(c for c in candidates if os.path.exists(os.path.join(ROOT, c)))


def _providers():
  """Top-level import name -> installed distributions shipping it (from their RECORD files).

  Python 3.10's packages_distributions() reads only top_level.txt, which
  wheels built without setuptools (matplotlib, ...) do not have.
  """
  out = {}
  for dist in importlib.metadata.distributions():
    tops = set()
    for f in dist.files or []:
      first = f.parts[0]
      if first.startswith('..') or first.endswith(('.dist-info', '.data')) or first == '__pycache__':
        continue
      if len(f.parts) > 1 or first.endswith(('.py', '.so', '.pyd')):
        tops.add(first.split('.')[0])
    for top in tops:
      out.setdefault(top, set()).add(dist.metadata['Name'])
  return out


def test_deps_match_imports():
  """Each target's imports map to its deps, and each dep to an import (or a package/test rule)."""
  providers = _providers()
  lock = _lock()
  problems = []
  for kind, name, srcs, deps in _rules():
    src = srcs[0]
    first = {d[len('//:'):] for d in deps if d.startswith('//:')}
    third = {d[len('@pypi//'):] for d in deps if d.startswith('@pypi//')}
    if set(deps) - {f'//:{x}' for x in first} - {f'@pypi//{x}' for x in third}:
      problems.append(f'{name}: deps neither //: nor @pypi//: {deps}')
    used_third, used_first = set(), set()
    for module, imported in _imports(src):
      top = module.split('.')[0]
      if top in FIRST_PARTY:
        imported_file = _first_party_file(module, imported)
        target = gen_build.target_name(imported_file)
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py too.
        used_first.update(gen_build.target_name(p) for p in gen_build.package_inits(imported_file))
        if target != name:
          used_first.add(target)
          if target not in first:
            problems.append(f'{name}: imports {module}{"." + imported if imported else ""} '
                            f'but does not depend on //:{target}')
      elif top not in sys.stdlib_module_names:
        dists = {re.sub(r'[-_.]+', '_', d).lower() for d in providers.get(top, [])}
        assert dists, f'{src}: {top} is not installed'
        if not dists & third:
          problems.append(f'{name}: imports {module} (from {sorted(dists)}) but has none in deps')
        used_third |= dists & third
    inits = {gen_build.target_name(p) for p in gen_build.package_inits(src)}
    allowed_first = used_first | inits | ({'tests___init__', 'tests_conftest'} if kind == 'py_test' else set())
    if first - allowed_first:
      problems.append(f'{name}: depends on {sorted(first - allowed_first)} without importing them')
    allowed_third = used_third | ({'pytest'} if kind == 'py_test' else set())
    if third - allowed_third:
      problems.append(f'{name}: depends on @pypi//{sorted(third - allowed_third)} without importing them')
    if third - lock:
      problems.append(f'{name}: @pypi//{sorted(third - lock)} not in requirements.txt')
  assert not problems, 'BUILD deps do not match imports (run tools/gen_build.py):\n' + '\n'.join(problems)


@pytest.mark.parametrize('module, distribution', sorted(gen_build.IMPORT_TO_PYPI.items()))
def test_import_table_names_the_installed_distribution(module, distribution):
  """Each entry: the distribution is locked and really ships that module."""
  assert gen_build.pypi_label(distribution)[len('@pypi//'):] in _lock()
  files = importlib.metadata.distribution(distribution).files
  path = module.replace('.', '/')
  assert any(str(f) == f'{path}.py' or str(f).startswith((f'{path}/', f'{path}.')) for f in files), \
      f'{distribution} does not ship {module}'


def test_pypi_labels_are_normalised_like_rules_python():
  assert gen_build.pypi_label('PyYAML') == '@pypi//pyyaml'
  assert gen_build.pypi_label('pytrec_eval-terrier') == '@pypi//pytrec_eval_terrier'
  assert gen_build.pypi_label('apache-beam') == '@pypi//apache_beam'
  assert gen_build.pypi_label('zope.interface') == '@pypi//zope_interface'


def test_unknown_third_party_import_is_an_error(tmp_path):
  module = tmp_path / 'mod.py'
  module.write_text('import os\nimport leftpad.core\n')
  with pytest.raises(gen_build.UnknownImport, match=r"imports 'leftpad'.*IMPORT_TO_PYPI"):
    gen_build.deps(str(module))


def test_module_bazel_uses_the_lock_as_hub_pypi():
  with open(os.path.join(ROOT, 'MODULE.bazel')) as f:
    text = f.read()
  assert re.search(r'bazel_dep\(name = "rules_python", version = "[\d.]+"\)', text)
  parse = re.search(r'pip\.parse\((.*?)\)', text, re.S).group(1)
  assert 'hub_name = "pypi"' in parse
  assert 'requirements_lock = "//:requirements.txt"' in parse
  assert 'python_version = "3.10"' in parse
  assert 'use_repo(pip, "pypi")' in text
