"""End-to-end: the full SSD loop on a Cranfield subset with tiny models.

Two real TFX runs (LocalDagRunner, Beam DirectRunner, SQLite MLMD):
  A. mode ssd, 2 rounds, cross-encoder teacher -> bi-encoder student, loose
     blessing rules (so the student is blessed and pushed);
  B. mode noisy_student, 1 round, T' warm-started from T and kept as the
     student's teacher whatever dev says (selection: always), bi-encoder
     teacher -> cross-encoder student with hybrid scoring and MarginMSE
     on the teacher fused with BM25, default (strict) blessing rules.
"""

import json
import os

import pytest
from tfx.utils import path_utils

from components.common import example_io
from components.common import hybrid
from components.pseudo_labeler import spec as pl_spec
from components.ranking_evaluator import spec as eval_spec
from pipelines import local_runner
from pipelines import pipeline as P
from rankdata import features as F
from rankers import export as rexport
from runconfig import config as C
from ssd import lineage
from ssd.lineage import explain as lineage_explain
from ssd.lineage import text as lineage_text
from tests import e2e_util
from tools import teacher_ensemble_probe

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]  # whole pipeline runs in fixtures


def _run(tmp, name, **overrides):
  raw = e2e_util.tiny_pipeline_config(tmp / name, **overrides)
  raw['pipeline_name'] = f'ssd-{name}'
  raw['data_validation'] = False
  cfg = C.from_dict(C.PipelineConfig, raw)
  return cfg, local_runner.run(cfg)


def _tiny_model(raw, architecture):
  return dict(raw['teacher']['model'], architecture=architecture)


@pytest.fixture(scope='module')
def run_a(ssd_loop_run):
  # e2e_util.ssd_loop_config, run once for this file and the KFP harness's (tests/conftest.py).
  return ssd_loop_run


@pytest.fixture(scope='module')
def run_b(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('loop')
  base = e2e_util.tiny_pipeline_config(tmp / 'b', architecture='bi_encoder')
  # Hybrid scoring fits its weight on a calibration split (3 of the train queries).
  return _run(tmp, 'b', splits=dict(base['splits'], calibration_queries=3), teacher_prime={
      'mode': 'noisy_student', 'rounds': 1, 'train': base['teacher']['train'], 'warm_start': True,
      'selection': 'always',
      'objective': {'pseudo_targets': 'hard', 'confidence_weighting': True},
      'pseudo_label': {'max_pairs_per_query': 4, 'hard_top_k': 2}},
      student={'model': _tiny_model(base, 'cross_encoder'), 'train': base['teacher']['train'],
               'hybrid': True, 'objective': {'soft_loss': 'margin_mse', 'hard_weight': 0.5,
                                             'soft_on_labelled': True},
               # The distillation target: T' + w x BM25, w fitted on calibration.
               'transfer': {'fuse_first_stage': True}})


def _store(cfg):
  return lineage.open_store(cfg.metadata_sqlite)


def _nodes(cfg):
  nodes = [P.EXAMPLE_GEN, P.TEACHER_TRAINER, P.TEACHER_PRETRAINED, P.TEACHER_EVALUATOR,
           P.TRANSFER_LABELER, P.STUDENT_TRAINER, P.STUDENT_SUPERVISED, P.STUDENT_EVALUATOR,
           P.STUDENT_PUSHER]
  for r in range(1, cfg.teacher_prime.rounds + 1):
    nodes += [P.pseudo_labeler_id(r), P.teacher_prime_trainer_id(r), P.teacher_prime_evaluator_id(r)]
  return nodes


@pytest.mark.parametrize('which', ['run_a', 'run_b'])
def test_every_node_completed_and_every_model_loads(which, request):
  cfg, summary = request.getfixturevalue(which)
  store = _store(cfg)
  for node in _nodes(cfg):
    execution = lineage.latest_execution(store, cfg.pipeline_name, node)
    assert execution is not None and execution.last_known_state == lineage._STATE.COMPLETE, node
    for key, artifacts in lineage.execution_io(store, execution.id).items():
      for artifact in artifacts:
        assert os.path.exists(artifact.uri), (node, key, artifact.uri)
        if artifact.type_id == store.get_artifact_type('Model').id:
          scorer = rexport.load_scorer(path_utils.serving_model_path(artifact.uri))
          assert scorer.score(['supersonic flow'], ['flow at supersonic speed']).shape == (1,)
  roles = set(summary['metrics'])
  expected = {P.ROLE_BM25, P.ROLE_TEACHER, P.ROLE_STUDENT, P.ROLE_STUDENT_SUPERVISED}
  rounds = summary['decisions'][1:1 + cfg.teacher_prime.rounds]
  expected |= {P.teacher_prime_role(r) for r, d in enumerate(rounds, 1) if not d['skipped']}
  assert expected <= roles, roles
  with open(summary['metrics_path']) as f:
    assert set(json.load(f)) == roles


@pytest.mark.parametrize('which', ['run_a', 'run_b'])
def test_pseudo_label_counts_add_up_and_name_the_teacher(which, request):
  cfg, _ = request.getfixturevalue(which)
  store = _store(cfg)
  for node in [P.pseudo_labeler_id(1), P.TRANSFER_LABELER]:
    out = lineage.latest_output(store, cfg.pipeline_name, node, pl_spec.PSEUDO_LABELLED_KEY)
    props = lineage.custom_props(out)
    with open(os.path.join(lineage.latest_output(
        store, cfg.pipeline_name, node, pl_spec.REPORT_KEY).uri, pl_spec.COUNTS_FILE)) as f:
      counts = json.load(f)
    teacher = lineage.execution_io(store, lineage.latest_execution(
        store, cfg.pipeline_name, node).id, 'input')['model'][0]
    # The teacher is named by URI and content fingerprint, never by MLMD id
    # (ids are hashes no store holds inside a Kubeflow container).
    assert props['teacher_uri'] == teacher.uri and 'teacher_model_id' not in props
    assert len(props['teacher_fingerprint']) == 16
    assert counts['counts']['total']['pairs_in'] == props['total_pairs_in']
    for split in json.loads(out.properties['split_names'].string_value):
      rows = example_io.read_split(out.uri, split)
      kept = props[f'{split}_kept']
      filtered = sum(v for k, v in props.items() if k.startswith(f'{split}_filtered_'))
      dead = sum(v for k, v in props.items() if k.startswith(f'{split}_dead_letter_'))
      assert props[f'{split}_pairs_in'] == kept + filtered + dead, (node, split, props)
      assert len(rows) == kept
      assert all(r[F.TEACHER_ID] == props['teacher_fingerprint'] for r in rows)


def test_round_two_ran_or_was_skipped_with_reason(run_a):
  cfg, summary = run_a
  round1, round2 = summary['decisions'][1], summary['decisions'][2]
  if round1['blessed']:
    assert not round2['skipped']
  else:
    assert round2['skipped'] and 'skipped' in round2['reason']
    out = lineage.latest_output(_store(cfg), cfg.pipeline_name, P.pseudo_labeler_id(2),
                                pl_spec.PSEUDO_LABELLED_KEY)
    assert lineage.custom_props(out)['skipped'] == 1


def test_blessed_student_is_pushed_and_scores_raw_strings(run_a):
  cfg, summary = run_a
  student = summary['decisions'][-1]
  assert student['node'] == P.STUDENT_EVALUATOR and student['blessed'], student
  assert 'student_supervised' in student['reason']
  assert summary['pushed']['pushed']
  dest = summary['pushed']['destination']
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_text  # noqa: F401  pylint: disable=unused-import
  loaded = tf.saved_model.load(dest)
  out = loaded.signatures['serving_default'](
      query=tf.constant(['shock waves']), document=tf.constant(['shock wave interaction']))
  assert out['score'].shape == (1,)


def test_strict_blessing_recorded_and_push_follows_it(run_b):
  cfg, summary = run_b
  student = summary['decisions'][-1]
  assert [c['rule'] for c in student['checks']][:2] == [
      f'beats {P.ROLE_STUDENT_SUPERVISED} by > 0.0', f'beats {P.ROLE_BM25}']
  assert summary['pushed']['pushed'] == student['blessed']
  assert 'student_hybrid' in summary['metrics'] and 'student_supervised_hybrid' in summary['metrics']
  # Every model's report has a hybrid row; the student's weight is the one it
  # was exported with, the teacher's is fitted on calibration; never on dev.
  assert 'teacher_hybrid' in summary['metrics']
  weights = student['hybrid_weights']
  assert weights['student']['source'] == 'exported'
  assert all(w['source'] in ('exported', 'fitted_on_calibration') for w in weights.values())
  blessing = lineage.latest_output(_store(cfg), cfg.pipeline_name, P.STUDENT_EVALUATOR,
                                   eval_spec.BLESSING_KEY)
  assert lineage.custom_props(blessing)['reason'] == student['reason']


def test_the_student_learnt_the_teacher_fused_with_bm25(run_b):
  """student.transfer.fuse_first_stage: the transfer labeller fitted w on the
  3 calibration queries; each target is T' + w x BM25; lineage says so."""
  cfg, _ = run_b
  store = _store(cfg)
  labelled = lineage.latest_output(store, cfg.pipeline_name, P.TRANSFER_LABELER,
                                   pl_spec.PSEUDO_LABELLED_KEY)
  report = lineage.latest_output(store, cfg.pipeline_name, P.TRANSFER_LABELER,
                                 pl_spec.REPORT_KEY)
  weight = lineage.custom_props(labelled)[pl_spec.FIRST_STAGE_WEIGHT_PROPERTY]
  with open(os.path.join(report.uri, pl_spec.COUNTS_FILE)) as f:
    fusion = json.load(f)['fusion']
  assert fusion['source'] == 'calibration' and fusion['calibration_queries'] == 3
  assert fusion['weight'] == pytest.approx(weight) and fusion['candidates_k'] == 8
  assert fusion['calibration_ndcg@10'] >= fusion['calibration_ndcg@10_model_only']
  teacher = lineage.latest_output(store, cfg.pipeline_name, P.teacher_prime_evaluator_id(1),
                                  eval_spec.SELECTED_MODEL_KEY)
  scorer = rexport.load_scorer(path_utils.serving_model_path(teacher.uri))
  rows = example_io.read_split(labelled.uri, F.SPLIT_TRAIN)[:20]
  direct = scorer.score([r[F.QUERY] for r in rows], [r[F.DOC] for r in rows])
  for row, score in zip(rows, direct):
    assert row[F.TEACHER_SCORE] == pytest.approx(score + weight * row[F.FIRST_STAGE_SCORE],
                                                 abs=1e-3)
  student = lineage.latest_output(store, cfg.pipeline_name, P.STUDENT_TRAINER, 'model')
  text = lineage_text.explain(lineage_explain.explain(store, student))
  assert f'labels: pseudo-labels by {P.TRANSFER_LABELER} from teacher Model#' in text
  assert f' + {weight:g} x first stage' in text


def test_teacher_ensemble_probe_reads_the_scores_the_evaluators_saved(run_b):
  """tools/teacher_ensemble_probe.py on run B: its T and T' numbers are the
  evaluators' own (the same saved scores, the same metric), and each
  ensemble is scored on dev and test."""
  cfg, summary = run_b
  [result] = teacher_ensemble_probe.probe_store(cfg.metadata_sqlite, cfg.pipeline_name,
                                                log=lambda *_: None)
  tp = P.teacher_prime_role(1)
  assert result['dev']["T'"] == pytest.approx(summary['dev_metrics'][tp]['ndcg@10'], abs=1e-9)
  assert result['test']["T'"] == pytest.approx(summary['metrics'][tp]['ndcg@10'], abs=1e-9)
  assert result['test']['T'] == pytest.approx(summary['metrics'][P.ROLE_TEACHER]['ndcg@10'],
                                              abs=1e-9)
  assert result['test']['BM25'] == pytest.approx(summary['metrics'][P.ROLE_BM25]['ndcg@10'],
                                                 abs=1e-9)
  a, w = result['fitted']['a'], result['fitted']['w']
  assert a in teacher_ensemble_probe.A_GRID and w in hybrid.WEIGHTS
  for split in ('dev', 'test'):
    assert len(result[split]) == 6 and all(0 <= v <= 1 for v in result[split].values())


def test_lineage_names_teacher_corpus_and_round(run_a, tmp_path):
  cfg, summary = run_a
  store = _store(cfg)
  student = lineage.latest_output(store, cfg.pipeline_name, P.STUDENT_TRAINER, 'model')
  lines = lineage.describe(store, student.id)
  text = '\n'.join(lines)
  assert f'Model#{student.id} ({P.STUDENT_TRAINER})' in lines[0]
  assert P.TRANSFER_LABELER in text and P.pseudo_labeler_id(1) in text
  assert P.teacher_prime_trainer_id(1) in text and P.TEACHER_TRAINER in text
  assert any(line.strip().startswith('teacher: Model#') for line in lines)
  assert any('corpus: Examples#' in line and os.path.abspath(cfg.data.path) in line for line in lines)
  png = lineage.draw(store, student.id, str(tmp_path / 'lineage.png'))
  with open(png, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_warm_started_teacher_prime_records_its_start(run_b):
  cfg, _ = run_b
  store = _store(cfg)
  model = lineage.latest_output(store, cfg.pipeline_name, P.teacher_prime_trainer_id(1), 'model')
  scorer = rexport.load_scorer(path_utils.serving_model_path(model.uri))
  teacher = lineage.latest_output(store, cfg.pipeline_name, P.TEACHER_EVALUATOR,
                                  eval_spec.SELECTED_MODEL_KEY)
  assert scorer.metadata['warm_start_from'].startswith(teacher.uri)
  assert scorer.metadata['noise']['stochastic_depth'] > 0  # noisy_student defaults


def test_selection_always_passes_teacher_prime_on_whatever_dev_says(run_b):
  cfg, summary = run_b
  store = _store(cfg)
  decision = summary['decisions'][1]
  assert decision['node'] == P.teacher_prime_evaluator_id(1)
  assert decision['selected_role'] == P.teacher_prime_role(1), decision
  assert 'always_select_candidate' in decision['reason']
  trained = lineage.latest_output(store, cfg.pipeline_name, P.teacher_prime_trainer_id(1), 'model')
  selected = lineage.latest_output(store, cfg.pipeline_name, P.teacher_prime_evaluator_id(1),
                                   eval_spec.SELECTED_MODEL_KEY)
  assert lineage.custom_props(selected)[eval_spec.SOURCE_MODEL_PROPERTY] == trained.uri
  # The blessing still records what dev said.
  blessing = lineage.latest_output(store, cfg.pipeline_name, P.teacher_prime_evaluator_id(1),
                                   eval_spec.BLESSING_KEY)
  assert lineage.custom_props(blessing)['blessed'] == int(decision['blessed'])
  # The transfer set is labelled by that selected model: the student learns from T'.
  teacher = lineage.execution_io(store, lineage.latest_execution(
      store, cfg.pipeline_name, P.TRANSFER_LABELER).id, 'input')['model'][0]
  assert teacher.id == selected.id


@pytest.mark.parametrize('which', ['run_a', 'run_b'])
def test_evaluators_reuse_the_scores_of_the_evaluation_before(which, request):
  cfg, _ = request.getfixturevalue(which)
  store = _store(cfg)

  def payload(node):
    evaluation = lineage.latest_output(store, cfg.pipeline_name, node, eval_spec.EVALUATION_KEY)
    with open(os.path.join(evaluation.uri, eval_spec.METRICS_FILE)) as f:
      return evaluation, json.load(f)

  first, teacher = payload(P.TEACHER_EVALUATOR)
  _, round1 = payload(P.teacher_prime_evaluator_id(1))
  assert teacher['decision']['reused_scores'] == []     # nothing was scored before it
  assert round1['decision']['prior_evaluation_uris'] == [first.uri]
  # T' is compared with the teacher the teacher evaluator selected, which it
  # scored on dev: those scores are reused, and give the metrics it measured.
  reused = round1['decision']['reused_scores']
  assert f'{P.ROLE_TEACHER}/dev' in reused
  chosen = teacher['decision']['selected_role']
  assert round1['metrics']['dev'][P.ROLE_TEACHER] == teacher['metrics']['dev'][chosen]
  if cfg.splits.calibration_queries:   # its hybrid weight's calibration scores too
    assert f'{P.ROLE_TEACHER}/calibration' in reused
  # A newly trained model is always scored.
  assert not any(r.startswith(P.teacher_prime_role(1)) for r in reused)
  _, student = payload(P.STUDENT_EVALUATOR)
  reused = student['decision']['reused_scores']
  assert P.ROLE_BEST_TEACHER in student['metrics']['dev']    # the retention rule's teacher
  assert f'{P.ROLE_BEST_TEACHER}/dev' in reused
  assert not any(r.startswith(P.ROLE_STUDENT) for r in reused)
