"""Package layering: lower layers never import higher ones.

rankdata, rankers  <  runconfig  <  components  <  pipelines  <  ssd (the app)

Executors run on workers (Kubeflow pods, Beam workers); they must not pull in
the app (CLI, lineage, weights download, benchmarks), and the code
fingerprint leaves `ssd` out on that promise (pipelines/code_fingerprint.py).
"""

import ast
import os

from tests import e2e_util

LAYERS = ('rankdata', 'rankers', 'runconfig', 'components', 'pipelines', 'ssd')
# rankdata and rankers are one layer: rankers reads rankdata's feature
# names (rankers/export.py, rankers/training.py: `rankdata.features`);
# rankdata imports nothing of rankers.
RANK = {'rankdata': 0, 'rankers': 0, 'runconfig': 1, 'components': 2, 'pipelines': 3, 'ssd': 4}


def _imports(path):
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield node.lineno, alias.name.split('.')[0]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      yield node.lineno, node.module.split('.')[0]


def test_no_package_imports_a_higher_layer():
  violations = []
  for package in LAYERS:
    for folder, _, files in os.walk(os.path.join(e2e_util.ROOT, package)):
      for name in files:
        if not name.endswith('.py'):
          continue
        path = os.path.join(folder, name)
        for line, top in _imports(path):
          if top in RANK and RANK[top] > RANK[package]:
            violations.append(f'{os.path.relpath(path, e2e_util.ROOT)}:{line} imports {top}')
  assert not violations, '\n'.join(violations)


def test_the_check_sees_a_violation(tmp_path):
  bad = tmp_path / 'bad.py'
  bad.write_text('import os\nfrom ssd import weights\n')
  assert list(_imports(str(bad))) == [(1, 'os'), (2, 'ssd')]


def test_rankdata_imports_nothing_of_rankers():
  """The one direction inside the lowest layer (see RANK's comment)."""
  found = []
  for folder, _, files in os.walk(os.path.join(e2e_util.ROOT, 'rankdata')):
    for name in (n for n in files if n.endswith('.py')):
      path = os.path.join(folder, name)
      found += [f'{name}:{line}' for line, top in _imports(path) if top == 'rankers']
  assert found == []
