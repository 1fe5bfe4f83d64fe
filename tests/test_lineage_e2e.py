"""End-to-end: lineage CLI, code-aware caching and resume after SIGKILL, on real stores.

One module fixture makes two real MLMD stores with tiny full-loop runs
(LocalDagRunner, Beam DirectRunner, SQLite):

  store L  #1 teacher stage only (its store file is copied to start store K,
              so both share that stage instead of training it twice)
           #2 the full loop, uninterrupted (the reference)
           #3 the same config again (the README's "second run")
  store K  #2 `ssd run` in a child process (forked from conftest's zygote),
              SIGKILLed while pseudo_labeler_r1 runs
           #3 again, SIGKILLed while teacher_prime_trainer_r1 runs
           #4 started again: resumes and completes
           #5 a bad value read only at run time (student soft_loss): FAILED
           #6 the teacher stage with one ranker source file changed: retrains
"""

import importlib
import json
import os
import shutil

from absl import flags
import pytest

from pipelines import code_fingerprint
from pipelines import local_runner
from pipelines import validation
from pipelines import pipeline as P
from ssd import cli
from runconfig import config as C
from pipelines import mlmd_store as S
from tests import crash_util
from tests import e2e_util

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]  # six pipeline runs in one module fixture

_STATE = S._STATE  # pylint: disable=protected-access
TEACHER_STAGE = (P.EXAMPLE_GEN, P.TEACHER_TRAINER, P.TEACHER_PRETRAINED, P.TEACHER_EVALUATOR)
CHANGED_FILE = 'rankers/losses.py'
RULES_FILE = 'components/ranking_evaluator/rules.py'


def _raw(tmp, root_name):
  raw = e2e_util.tiny_pipeline_config(tmp)
  train = dict(raw['teacher']['train'], epochs=1)
  raw['teacher']['train'] = train
  raw.update(
      pipeline_name='ssd-lineage', data_validation=False,
      pipeline_root=os.path.join(str(tmp), root_name),
      teacher_prime={'mode': 'ssd', 'rounds': 1, 'train': train, 'objective': {'max_soft_lists': 10}},
      # No S_sup: nothing here reads it, and it would train in every full run.
      student={'model': raw['teacher']['model'], 'train': train, 'supervised_baseline': False},
      blessing={'min_improvement': -1.0, 'retention': 0.0, 'must_beat_first_stage': False})
  return raw


def _cfg(raw, **overrides):
  raw = json.loads(json.dumps(raw))
  C.apply_overrides(raw, [f'{k}={json.dumps(v)}' for k, v in overrides.items()])
  return C.from_dict(C.PipelineConfig, raw)


def _run_states(store, run_index):
  """{node: state} of the n-th pipeline run (1 = oldest)."""
  from ssd.lineage import resolve  # pylint: disable=g-import-not-at-top
  run = resolve.resolve_run(store, f'run:{run_index}')
  return {S.execution_node(store, e.id): S.state_name(e) for e in store.get_executions_by_context(run.id)}


@pytest.fixture(scope='module')
def stores(tmp_path_factory, zygote):
  tmp = tmp_path_factory.mktemp('lineage')
  out = {'tmp': tmp}
  raw_l = _raw(tmp, 'L')
  cfg_l = _cfg(raw_l)
  local_runner.run(_cfg(raw_l, semi_supervised=False))
  raw_k = _raw(tmp, 'K')
  cfg_k = _cfg(raw_k)
  os.makedirs(cfg_k.pipeline_root)
  shutil.copy(cfg_l.metadata_sqlite, cfg_k.metadata_sqlite)
  out['L'] = cfg_l
  out['K'] = cfg_k
  out['reference'] = local_runner.run(cfg_l)
  out['second'] = local_runner.run(cfg_l)

  config_path = crash_util.write_config(raw_k, str(tmp / 'k.yaml'))
  out['killed'] = {}
  for node in (P.pseudo_labeler_id(1), P.teacher_prime_trainer_id(1)):
    out['killed'][node] = crash_util.run_and_kill(
        zygote, config_path, cfg_k.metadata_sqlite, cfg_k.pipeline_name, node,
        str(tmp / f'{node}.log'))
  out['resumed'] = local_runner.run(cfg_k)
  # A config the one validation function refuses never starts a run (no run context).
  runs_before = len(S.open_store(cfg_k.metadata_sqlite).get_contexts_by_type(
      S.PIPELINE_RUN_CONTEXT_TYPE))
  with pytest.raises(validation.ValidationError, match='student.objective.soft_loss'):
    local_runner.run(_cfg(raw_k, **{'student.objective.soft_loss': 'no_such_loss'}))
  out['runs_after_refusal'] = (runs_before, len(S.open_store(cfg_k.metadata_sqlite)
                                                .get_contexts_by_type(S.PIPELINE_RUN_CONTEXT_TYPE)))
  # What only the run can find (data on the machine that runs it) fails in the run.
  with pytest.raises(Exception):
    local_runner.run(_cfg(raw_k, **{'data.path': str(tmp / 'no_such_dataset')}))

  sources = tmp / 'sources'
  root = code_fingerprint.source_root()
  for package in code_fingerprint.PACKAGES:
    shutil.copytree(os.path.join(root, package), sources / package,
                    ignore=shutil.ignore_patterns('__pycache__'))
  out['fp_copy'] = code_fingerprint.compute(str(sources))
  with open(sources / CHANGED_FILE, 'a') as f:
    f.write('\n# a change to the ranker code\n')
  out['fp_changed'] = code_fingerprint.compute(str(sources))
  out['sources'] = str(sources)
  local_runner.run(_cfg(raw_k, semi_supervised=False), code_root=str(sources))
  # Then a change to the blessing rules only (on top of the first change).
  with open(sources / RULES_FILE, 'a') as f:
    f.write('\n# a comment in the blessing rules\n')
  local_runner.run(_cfg(raw_k, semi_supervised=False), code_root=str(sources))
  return out


def _cli(argv, flag_args, capsys):
  flags.FLAGS.unparse_flags()
  flags.FLAGS(['ssd', *flag_args])
  capsys.readouterr()
  rc = cli.main(['ssd'] + argv)
  return rc, capsys.readouterr()


def _json(argv, cfg, capsys, *extra):
  rc, captured = _cli(argv, [f'--metadata={cfg.metadata_sqlite}', '--format=json', *extra], capsys)
  assert rc == 0, captured.err
  doc = json.loads(captured.out)
  assert doc['schema_version'] == S.SCHEMA_VERSION
  return doc


# --- 2. caching ---------------------------------------------------------------

def test_second_identical_run_reuses_everything_but_the_last_blessed_comparison(stores):
  """The README's claim, exactly: see docs/lineage.md for the steps that rerun.

  The student evaluator is never cached (it reads the model in production
  from the push destination); when run #2 pushed its student, run #3's
  evaluator writes a new blessing, so the Pusher has a new input and reruns.
  """
  store = S.open_store(stores['L'].metadata_sqlite)
  first, second = _run_states(store, 2), _run_states(store, 3)
  assert {first[n] for n in TEACHER_STAGE} == {'CACHED'}  # run #1 trained the teacher stage
  assert set(first.values()) == {'CACHED', 'COMPLETE'}
  rerun = {n for n, s in second.items() if s != 'CACHED'}
  if stores['reference']['pushed']['pushed']:
    assert rerun == {P.STUDENT_EVALUATOR, P.STUDENT_PUSHER}, second
  else:
    assert rerun == {P.STUDENT_EVALUATOR}, second
  assert stores['second']['metrics'] == stores['reference']['metrics']


def _node_fingerprint(execution_type: str, fps) -> str:
  """The fingerprint a node's execution should carry (pipelines/code_fingerprint.py: per node)."""
  if execution_type.endswith('Trainer'):
    return P.trainer_fingerprint(fps)
  module, name = execution_type.rsplit('.', 1)
  return fps.of_component(getattr(importlib.import_module(module), name))


def test_every_execution_carries_the_code_fingerprint(stores):
  store = S.open_store(stores['L'].metadata_sqlite)
  # A faithful copy hashes the same: the change below is the edit.
  assert stores['fp_copy'] == code_fingerprint.compute()
  fps = code_fingerprint.NodeFingerprints()
  checked = set()
  for row in S.execution_table(store, stores['L'].pipeline_name):
    execution = store.get_executions_by_id([row['execution_id']])[0]
    props = S.exec_props(execution)
    if row['type'].endswith('Trainer'):
      recorded = json.loads(props['custom_config'])['code_fingerprint']
    elif row['type'].startswith('components.'):
      recorded = props['code_fingerprint']
    else:
      continue   # TFX's own components (Pusher) run no project code
    assert recorded == _node_fingerprint(row['type'], fps), row['node']
    checked.add(row['node'])
  assert {P.EXAMPLE_GEN, P.TEACHER_TRAINER, P.STUDENT_EVALUATOR, P.TRANSFER_LABELER} <= checked


def test_changed_ranker_code_retrains(stores):
  """A change to rankers/losses.py reruns the nodes whose code reaches it, and what follows."""
  assert stores['fp_changed'] != stores['fp_copy']
  store = S.open_store(stores['K'].metadata_sqlite)
  changed = _run_states(store, -2)
  assert sorted(changed) == sorted(TEACHER_STAGE)
  # Ingestion's code does not reach the ranker code: it comes from the cache.
  ingest_module = importlib.import_module('components.ranking_example_gen.component')
  assert CHANGED_FILE not in code_fingerprint.closure(
      stores['sources'], [ingest_module.RankingExampleGen.EXECUTOR_SPEC.executor_class.__module__])
  assert changed[P.EXAMPLE_GEN] == 'CACHED', changed
  for node in (P.TEACHER_TRAINER, P.TEACHER_PRETRAINED, P.TEACHER_EVALUATOR):
    assert changed[node] == 'COMPLETE', changed


def test_a_rules_only_edit_reruns_only_the_evaluator(stores):
  """Issue 22's case: ingestion and every trainer come from the cache; the evaluator
  (and, in an SSD run, what follows it) reruns."""
  store = S.open_store(stores['K'].metadata_sqlite)
  last = _run_states(store, -1)
  assert last == {P.EXAMPLE_GEN: 'CACHED', P.TEACHER_TRAINER: 'CACHED',
                  P.TEACHER_PRETRAINED: 'CACHED', P.TEACHER_EVALUATOR: 'COMPLETE'}, last


# --- 3. resume after SIGKILL ----------------------------------------------------

def test_killed_executions_stay_unfinished_and_publish_nothing(stores):
  store = S.open_store(stores['K'].metadata_sqlite)
  for node, execution_id in stores['killed'].items():
    execution = store.get_executions_by_id([execution_id])[0]
    assert execution.last_known_state == _STATE.RUNNING, node
    outputs = S.execution_io(store, execution_id, 'output')
    assert not [a for arts in outputs.values() for a in arts], (node, outputs)
    # Whatever the killed executor wrote stays on disk, unreferenced.
    node_dir = os.path.join(stores['K'].pipeline_root, node)
    for key in (os.listdir(node_dir) if os.path.isdir(node_dir) else []):
      folder = os.path.join(node_dir, key, str(execution_id))
      assert not store.get_artifacts_by_uri(folder), folder


def test_resumed_run_reuses_completed_steps_and_matches_the_uninterrupted_run(stores):
  store = S.open_store(stores['K'].metadata_sqlite)
  first_kill, second_kill, resumed = (_run_states(store, i) for i in (2, 3, 4))
  assert {first_kill[n] for n in TEACHER_STAGE} == {'CACHED'}
  assert first_kill[P.pseudo_labeler_id(1)] == 'RUNNING'
  assert second_kill[P.pseudo_labeler_id(1)] == 'COMPLETE'
  assert second_kill[P.teacher_prime_trainer_id(1)] == 'RUNNING'
  for node in TEACHER_STAGE + (P.pseudo_labeler_id(1),):
    assert resumed[node] == 'CACHED', (node, resumed)
  assert resumed[P.teacher_prime_trainer_id(1)] == 'COMPLETE'
  assert set(resumed.values()) <= {'CACHED', 'COMPLETE'}
  assert stores['resumed']['metrics'] == stores['reference']['metrics']


# --- 1. the lineage CLI ---------------------------------------------------------

def test_runs_shows_status_cached_steps_and_decision(stores, capsys):
  doc = _json(['lineage', 'runs'], stores['K'], capsys)
  statuses = [r['status'] for r in doc['runs']]
  assert statuses == ['complete', 'interrupted', 'interrupted', 'complete', 'failed', 'complete',
                      'complete']
  killed, failed = doc['runs'][1], doc['runs'][4]
  assert killed['unfinished'] == [P.pseudo_labeler_id(1)]
  assert failed['unfinished'] == [P.EXAMPLE_GEN] and failed['steps']['FAILED'] == 1
  resumed = doc['runs'][3]
  assert set(TEACHER_STAGE) <= set(resumed['cached'])
  assert resumed['final_decision']['node'] == P.STUDENT_EVALUATOR
  assert resumed['final_decision']['pushed'] == resumed['final_decision']['blessed']
  assert resumed['config']['mode'] == 'ssd' and resumed['config']['rounds'] == 1
  # The summary's fingerprint is the teacher trainer's (run_fn's and its executor's code).
  assert resumed['config']['code_fingerprint'] == P.trainer_fingerprint(
      code_fingerprint.NodeFingerprints())
  rc, text = _cli(['lineage', 'runs'], [f'--metadata={stores["K"].metadata_sqlite}'], capsys)
  assert rc == 0 and 'INTERRUPTED' in text.out and 'FAILED' in text.out


def test_explain_names_teacher_chain_checkpoint_data_settings_and_decision(stores, capsys):
  from ssd.lineage import resolve  # pylint: disable=g-import-not-at-top
  cfg = stores['L']
  doc = _json(['lineage', 'explain', 'latest-blessed'], cfg, capsys)
  store = S.open_store(cfg.metadata_sqlite)
  student = S.latest_output(store, cfg.pipeline_name, P.STUDENT_TRAINER, 'model')
  assert doc['model']['id'] == student.id and doc['model']['node'] == P.STUDENT_TRAINER
  chain = doc['teacher_chain']
  assert chain[0]['kind'] == 'trained' and chain[0]['role'] == P.ROLE_STUDENT
  assert chain[0]['labels']['node'] == P.TRANSFER_LABELER
  trained = [s for s in chain if s['kind'] == 'trained']
  # The chain ends at a model trained on true labels, from the checkpoint.
  assert trained[-1]['labels']['source'] == 'true labels'
  assert trained[-1]['role'] in (P.ROLE_TEACHER_FINETUNED, P.ROLE_TEACHER_PRETRAINED)
  teacher = S.latest_output(store, cfg.pipeline_name, P.TEACHER_EVALUATOR, 'selected_model')
  assert any(s['kind'] == 'selected' and s['model']['id'] == teacher.id for s in chain)
  # No PretrainedCheckpoint artifact on this store: the trainer's record, no sha256 invented.
  assert doc['checkpoint']['sha256'] is None and doc['checkpoint']['source'] is None
  (data,) = doc['data']
  assert data['examples']['properties']['train_queries'] == cfg.splits.train_queries
  assert data['unlabelled']['counts']['unlabelled_title_queries'] == cfg.splits.max_title_queries
  assert doc['settings']['mode'] == 'ssd' and list(doc['settings']['rounds']) == ['round 1']
  assert set(doc['settings']['pseudo_label_selection']) == {P.pseudo_labeler_id(1), P.TRANSFER_LABELER}
  ev = doc['evaluations'][0]
  assert ev['node'] == P.STUDENT_EVALUATOR and ev['blessed'] and 'blessed' in ev['reason']
  reference = stores['reference']['metrics'][P.ROLE_STUDENT]
  # explain shows metrics to 6 decimals.
  assert ev['metrics']['test'][P.ROLE_STUDENT] == pytest.approx(
      {k: v for k, v in reference.items() if isinstance(v, float)}, abs=1e-6)
  assert doc['pushes'][-1]['pushed'] and os.path.isdir(doc['pushes'][-1]['destination'])
  # Run #2 pushed its student; run #3's evaluator compared the same student
  # with that model in production: lineage names it and the push behind it.
  run2, run3 = (resolve.resolve_run(store, f'run:{i}').name for i in (2, 3))
  by_run = {ev['run']: ev for ev in doc['evaluations']}
  assert by_run[run2]['production']['directory'] is None
  production = by_run[run3]['production']
  assert production['directory'] == doc['pushes'][0]['destination']
  assert production['model']['id'] == student.id and production['model']['run'] == run2
  assert production['pusher']['node'] == P.STUDENT_PUSHER and production['pusher']['run'] == run2
  assert by_run[run3]['compared_with']['last_blessed_model'] == [student.id]
  assert P.ROLE_LAST_BLESSED_STUDENT in by_run[run3]['metrics']['dev']
  # latest-pushed, the artifact id and the URI all name the same model.
  for ref in ('latest-pushed', str(student.id), student.uri):
    assert _json(['lineage', 'explain', ref], cfg, capsys)['model']['id'] == student.id
  rc, text = _cli(['lineage', 'explain', 'latest-blessed'], [f'--metadata={cfg.metadata_sqlite}'], capsys)
  assert rc == 0 and 'teacher chain' in text.out and P.TRANSFER_LABELER in text.out
  assert (f'compared with the model in production: Model#{student.id} ({P.STUDENT_TRAINER}, '
          f'run {run2}), pushed by {P.STUDENT_PUSHER}') in text.out


def test_diff_of_runs_shows_changed_parameter_and_outcome(stores, capsys):
  # The refused config left no run behind.
  before, after = stores['runs_after_refusal']
  assert after == before
  # run:6 changed the ranker code, run:7 the blessing rules only: the one changed
  # parameter is the evaluator's code fingerprint, and the trainers went from the
  # run that retrained them to the cache.
  doc = _json(['lineage', 'diff', 'run:6', 'run:7'], stores['K'], capsys)
  assert {(r['node'], r['key']) for r in doc['parameters']} == {
      (P.TEACHER_EVALUATOR, 'code_fingerprint')}
  assert {'node': P.TEACHER_TRAINER, 'a': 'COMPLETE', 'b': 'CACHED'} in doc['states']
  assert not doc['only_in_a'] and not doc['only_in_b']
  same = _json(['lineage', 'diff', 'run:2', 'run:3'], stores['L'], capsys)
  assert same['parameters'] == []
  # Only the comparison with the model in production differs: run #3's
  # evaluator (never cached) finds run #2's push; its Pusher reads the new blessing.
  assert {r['node'] for r in same['inputs']} <= {P.STUDENT_EVALUATOR, P.STUDENT_PUSHER}
  if stores['reference']['pushed']['pushed']:
    assert same['metrics'], same
    assert all(r['a'] is None and P.ROLE_LAST_BLESSED_STUDENT in r['key'] for r in same['metrics'])
  else:
    assert same['metrics'] == []


def test_diff_of_models_shows_metric_deltas(stores, capsys):
  cfg = stores['L']
  store = S.open_store(cfg.metadata_sqlite)
  tp = S.latest_output(store, cfg.pipeline_name, P.teacher_prime_trainer_id(1), 'model')
  doc = _json(['lineage', 'diff', str(tp.id), 'latest-blessed'], cfg, capsys)
  assert P.STUDENT_TRAINER in doc['only_in_b'] and P.TRANSFER_LABELER in doc['only_in_b']
  assert all('delta' in r for r in doc['metrics'] if r['a'] is not None and r['b'] is not None)


@pytest.mark.parametrize('suffix', ['png', 'svg', 'dot'])
def test_graph_writes_the_picture_or_the_dot(stores, suffix, capsys, tmp_path, monkeypatch):
  monkeypatch.setenv('PATH', '/nonexistent')  # no graphviz: the fallback every fresh machine has
  out = tmp_path / f'lineage.{suffix}'
  doc = _json(['lineage', 'graph', 'latest-blessed'], stores['L'], capsys, f'--output={out}')
  data = out.read_bytes()
  magic = {'png': b'\x89PNG', 'svg': b'<?xml', 'dot': b'digraph'}[suffix]
  assert data.startswith(magic), data[:20]
  dot = (tmp_path / 'lineage.dot').read_text()
  assert 'role: student' in dot and f'{P.pseudo_labeler_id(1)} (round 1)' in dot
  assert 'dev ndcg@10' in dot
  if suffix != 'dot':
    assert doc['renderer'] == 'matplotlib' and 'graphviz' in doc['message']


@pytest.mark.skipif(shutil.which('dot') is None, reason='graphviz is not installed')
def test_graph_uses_graphviz_where_installed(stores, capsys, tmp_path):
  out = tmp_path / 'lineage.svg'
  doc = _json(['lineage', 'graph', 'latest-blessed'], stores['L'], capsys, f'--output={out}')
  assert doc['renderer'] == 'graphviz' and doc['dot'] is None
  svg = out.read_text()
  assert svg.lstrip().startswith('<?xml') and 'role: student' in svg


def test_unknown_model_is_an_error(stores, capsys):
  rc, captured = _cli(['lineage', 'explain', '999999'], [f'--metadata={stores["L"].metadata_sqlite}'], capsys)
  assert rc == 1 and '999999' in captured.err
