"""The code fingerprint: which files it covers, and that every node gets it."""

import json
import os
import shutil
import subprocess
import sys

from pipelines import code_fingerprint as CF
from pipelines import pipeline as P
from runconfig import config as C
from tests import e2e_util


def _copy_sources(tmp_path):
  root = CF.source_root()
  for package in CF.PACKAGES:
    shutil.copytree(os.path.join(root, package), tmp_path / package,
                    ignore=shutil.ignore_patterns('__pycache__'))
  return str(tmp_path)


def test_covers_the_code_executions_run_and_not_the_app():
  files = CF.source_files(CF.source_root())
  for path in ('rankers/losses.py', 'rankdata/bm25.py', 'components/ranker_trainer/module.py',
               'components/pseudo_labeler/executor.py', 'pipelines/pipeline.py',
               'runconfig/config.py', 'runconfig/checkpoints.py'):
    assert path in files
  assert not [f for f in files if f.startswith('ssd/') or '__pycache__' in f]


def test_changes_with_ranker_code_and_not_with_the_app(tmp_path):
  root = _copy_sources(tmp_path)
  base = CF.compute(root)
  assert base == CF.compute() and len(base) == CF.LENGTH
  os.makedirs(os.path.join(root, 'ssd'))
  with open(os.path.join(root, 'ssd', 'cli.py'), 'w') as f:
    f.write('# the app: inspection, validation, benchmarks\n')
  assert CF.compute(root) == base
  with open(os.path.join(root, 'rankers', 'losses.py'), 'a') as f:
    f.write('\n# a one-line change\n')
  changed = CF.compute(root)
  assert changed != base
  os.remove(os.path.join(root, 'rankers', 'noise.py'))
  assert CF.compute(root) not in (base, changed)


def test_no_executor_imports_the_app():
  """Leaving `ssd` out is safe only if no execution can run its code."""
  code = ('import sys; import components.ranker_trainer.module, components.pseudo_labeler.executor, '
          'components.ranking_evaluator.executor, components.ranking_example_gen.executor, '
          'components.pretrained_checkpoint.executor; '
          'print([m for m in sys.modules if m == "ssd" or m.startswith("ssd.")])')
  env = dict(os.environ, PYTHONPATH=e2e_util.ROOT, TF_CPP_MIN_LOG_LEVEL='3')
  out = subprocess.run([sys.executable, '-c', code], cwd=e2e_util.ROOT, env=env, check=True,
                       capture_output=True, text=True).stdout
  assert out.strip().splitlines()[-1] == '[]'


def test_every_node_running_project_code_gets_the_fingerprint(tmp_path):
  cfg = C.from_dict(C.PipelineConfig, e2e_util.tiny_pipeline_config(tmp_path))
  pipeline = P.create_pipeline(cfg, code_fingerprint='f' * CF.LENGTH)
  # Stock components run only TFX code (pinned in requirements.txt, and
  # in LIBRARIES); they rerun anyway when their inputs change.
  stock = {P.STATISTICS_GEN, P.SCHEMA_GEN, P.EXAMPLE_VALIDATOR, P.STUDENT_PUSHER}
  seen = set()
  for node in pipeline.components:
    props = node.exec_properties
    if 'custom_config' in props and 'run_fn' in props:
      assert json.loads(props['custom_config'])['code_fingerprint'] == 'f' * CF.LENGTH, node.id
    elif node.id not in stock:
      assert props.get('code_fingerprint') == 'f' * CF.LENGTH, node.id
    seen.add(node.id)
  assert stock <= seen
  tp = next(n for n in pipeline.components if n.id == P.teacher_prime_trainer_id(1))
  assert json.loads(tp.exec_properties['custom_config'])['mode'] == cfg.teacher_prime.mode


def _node_fingerprints(cfg, root=None):
  pipeline = P.create_pipeline(cfg, code_root=root)
  out = {}
  for node in pipeline.components:
    props = node.exec_properties
    if 'custom_config' in props and 'run_fn' in props:
      out[node.id] = json.loads(props['custom_config'])['code_fingerprint']
    elif 'code_fingerprint' in props:
      out[node.id] = props['code_fingerprint']
  return out


def test_each_node_fingerprints_the_code_it_reaches(tmp_path):
  """A rules-only edit changes the evaluators' fingerprints and nothing else's."""
  cfg = C.from_dict(C.PipelineConfig, e2e_util.tiny_pipeline_config(tmp_path / 'cfg'))
  root = _copy_sources(tmp_path / 'src')
  before = _node_fingerprints(cfg, root)
  assert before == _node_fingerprints(cfg)   # a faithful copy hashes as the imported code
  evaluators = {P.TEACHER_EVALUATOR, P.teacher_prime_evaluator_id(1), P.STUDENT_EVALUATOR}
  assert evaluators <= set(before)
  with open(os.path.join(root, 'components', 'ranking_evaluator', 'rules.py'), 'a') as f:
    f.write('\n# a comment in the blessing rules\n')
  after = _node_fingerprints(cfg, root)
  assert {n for n in before if before[n] != after[n]} == evaluators
  # A change to the ranker code reaches every node that trains or scores, not ingestion.
  with open(os.path.join(root, 'rankers', 'losses.py'), 'a') as f:
    f.write('\n# a change to a loss\n')
  changed = {n for n, v in _node_fingerprints(cfg, root).items() if v != after[n]}
  assert P.EXAMPLE_GEN not in changed
  assert {P.TEACHER_TRAINER, P.STUDENT_TRAINER} <= changed


def test_the_trainer_executor_is_part_of_every_trainers_fingerprint(tmp_path):
  """The RankerTrainer executor hands run_fn the checkpoint and the teacher's
  embeddings: an edit there reruns every trainer, and nothing else."""
  cfg = C.from_dict(C.PipelineConfig, e2e_util.tiny_pipeline_config(tmp_path / 'cfg'))
  root = _copy_sources(tmp_path / 'src')
  before = _node_fingerprints(cfg, root)
  with open(os.path.join(root, 'components', 'ranker_trainer', 'component.py'), 'a') as f:
    f.write('\n# a change to the trainer executor\n')
  after = _node_fingerprints(cfg, root)
  trainers = {P.TEACHER_TRAINER, P.TEACHER_PRETRAINED, P.teacher_prime_trainer_id(1),
              P.STUDENT_TRAINER, P.STUDENT_SUPERVISED}
  assert {n for n in before if before[n] != after[n]} == trainers
