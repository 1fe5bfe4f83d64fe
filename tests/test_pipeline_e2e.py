"""End-to-end: the teacher stage of the real TFX pipeline, run twice (cache).

Real parts only: LocalDagRunner, Beam DirectRunner, a SQLite MLMD store,
StatisticsGen/SchemaGen/ExampleValidator, the stock Trainer, SavedModels.
"""

import json
import os

import pytest
from tfx.utils import path_utils

from components.common import example_io
from components.ranking_evaluator import spec as eval_spec
from components.ranking_example_gen import spec as ingest_spec
from pipelines import local_runner
from pipelines import pipeline as P
from rankdata import features as F
from rankers import export as rexport
from runconfig import config as C
from ssd import lineage
from tests import e2e_util

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]  # whole pipeline runs in fixtures

NODES = (P.EXAMPLE_GEN, P.STATISTICS_GEN, P.SCHEMA_GEN, P.EXAMPLE_VALIDATOR,
         P.TEACHER_TRAINER, P.TEACHER_PRETRAINED, P.TEACHER_EVALUATOR)


@pytest.fixture(scope='module')
def run_twice(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('e2e')
  cfg = C.from_dict(C.PipelineConfig, e2e_util.tiny_pipeline_config(tmp, semi_supervised=False))
  first = local_runner.run(cfg)
  second = local_runner.run(cfg)
  return cfg, first, second


def test_metrics_json_has_bm25_and_teacher(run_twice):
  cfg, first, _ = run_twice
  with open(first['metrics_path']) as f:
    metrics = json.load(f)
  assert set(metrics) == {P.ROLE_BM25, P.ROLE_TEACHER}
  for role in metrics:
    assert metrics[role]['num_queries'] == cfg.splits.test_queries
    for name in ('ndcg@5', 'ndcg@10', 'mrr@10', 'map'):
      assert 0.0 <= metrics[role][name] <= 1.0


def test_every_node_ran_and_second_run_hit_the_cache(run_twice):
  cfg, _, _ = run_twice
  store = lineage.open_store(cfg.metadata_sqlite)
  for node in NODES:
    states = [e.last_known_state for e in lineage.node_executions(store, cfg.pipeline_name, node)]
    assert len(states) == 2, (node, states)
    assert states[0] == lineage._STATE.COMPLETE, node
    assert states[1] == lineage._STATE.CACHED, node


def test_ingested_splits_add_up(run_twice):
  cfg, _, _ = run_twice
  store = lineage.open_store(cfg.metadata_sqlite)
  examples = lineage.latest_output(store, cfg.pipeline_name, P.EXAMPLE_GEN, ingest_spec.EXAMPLES_KEY)
  props = lineage.custom_props(examples)
  assert props['train_queries'] == cfg.splits.train_queries
  assert props['dev_queries'] == cfg.splits.dev_queries
  assert props['test_queries'] == cfg.splits.test_queries
  written = json.loads(examples.properties['split_names'].string_value)
  # An empty split is not written: this config has no calibration queries.
  assert written == [s for s in F.ALL_SPLITS if s != F.SPLIT_CALIBRATION]
  assert not cfg.splits.calibration_queries
  for split in written:
    rows = example_io.read_split(examples.uri, split)
    assert len(rows) == props[f'{split}_examples_written'] == props[f'{split}_pairs']
  test_rows = example_io.read_split(examples.uri, F.SPLIT_TEST)
  assert len(test_rows) == cfg.splits.test_queries * cfg.splits.candidates_k
  assert all(r[F.LABEL] is not None for r in test_rows)
  assert all(r[F.LABEL] is None for r in example_io.read_split(examples.uri, F.SPLIT_UNLABELLED))
  with open(os.path.join(examples.uri, ingest_spec.QRELS_FILE)) as f:
    qrels = json.load(f)
  assert len(qrels[F.SPLIT_TEST]) == cfg.splits.test_queries


def test_decision_recorded_and_selected_teacher_scores_raw_strings(run_twice):
  cfg, first, _ = run_twice
  store = lineage.open_store(cfg.metadata_sqlite)
  blessing = lineage.latest_output(store, cfg.pipeline_name, P.TEACHER_EVALUATOR, eval_spec.BLESSING_KEY)
  props = lineage.custom_props(blessing)
  assert props[eval_spec.BLESSED_PROPERTY] in (0, 1)
  assert 'ndcg@10' in props['reason']
  selected = lineage.latest_output(store, cfg.pipeline_name, P.TEACHER_EVALUATOR,
                                   eval_spec.SELECTED_MODEL_KEY)
  sel = lineage.custom_props(selected)
  expected_role = P.ROLE_TEACHER_FINETUNED if props[eval_spec.BLESSED_PROPERTY] else P.ROLE_TEACHER_PRETRAINED
  assert sel['selected_role'] == expected_role == first['decisions'][0]['selected_role']
  scorer = rexport.load_scorer(path_utils.serving_model_path(selected.uri))
  scores = scorer.score(['shock wave boundary layer', 'shock wave boundary layer'],
                        ['boundary layer shock interaction', 'heat transfer in slabs'])
  assert scores.shape == (2,)
  assert all(abs(float(s)) < 1e6 for s in scores)
