"""Local runner: LocalDagRunner + Beam DirectRunner + SQLite ML Metadata.

The embedded default: no server anywhere. The metadata store is a SQLite file
under the pipeline root, so a second identical run finds the first one's
executions and reuses their outputs (TFX caching).
"""

import json
import os
import time
from typing import Any, Dict, List

from absl import logging
from tfx import v1 as tfx

from components.anomalies_gate import anomalies as anomalies_lib
from components.ranking_evaluator import spec as eval_spec
from pipelines import pipeline as P
from pipelines import store_lock
from ssd import config as C
from ssd import lineage

METRICS_FILE = 'metrics.json'


def run(cfg: C.PipelineConfig) -> Dict[str, Any]:
  """Runs the pipeline locally and returns the summary (also written to disk).

  Holds the store's lock (pipelines/store_lock.py) for the whole run: a
  second run on the same ML Metadata store fails at once with
  StoreLockedError instead of interleaving with this one.
  """
  os.makedirs(cfg.pipeline_root, exist_ok=True)
  with store_lock.hold(cfg.metadata_sqlite):
    return _run_locked(cfg)


def _run_locked(cfg: C.PipelineConfig) -> Dict[str, Any]:
  metadata_path = os.path.abspath(cfg.metadata_sqlite)
  pipeline = P.create_pipeline(
      cfg,
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
          metadata_path),
      beam_pipeline_args=cfg.beam.pipeline_args())
  t0 = time.time()
  tfx.orchestration.LocalDagRunner().run(pipeline)
  wall = time.time() - t0
  summary = summarize(cfg)
  summary['wall_seconds'] = round(wall, 1)
  with open(summary['metrics_path'], 'w') as f:
    json.dump(summary['metrics'], f, indent=1, sort_keys=True)
  logging.info('pipeline finished in %.1fs', wall)
  return summary


def evaluator_nodes(cfg: C.PipelineConfig) -> List[str]:
  """Evaluator node ids in pipeline order (what the report reads)."""
  nodes = [P.TEACHER_EVALUATOR]
  if cfg.semi_supervised:
    nodes += [P.teacher_prime_evaluator_id(r) for r in range(1, cfg.teacher_prime.rounds + 1)]
    nodes.append(P.STUDENT_EVALUATOR)
  return nodes


def summarize(cfg: C.PipelineConfig) -> Dict[str, Any]:
  """Reads the latest evaluations from MLMD and builds the metrics by role."""
  store = lineage.open_store(os.path.abspath(cfg.metadata_sqlite))
  metrics: Dict[str, Dict[str, float]] = {}
  dev: Dict[str, Dict[str, float]] = {}
  decisions: List[Dict[str, Any]] = []
  for node in evaluator_nodes(cfg):
    evaluation = lineage.latest_output(store, cfg.pipeline_name, node, eval_spec.EVALUATION_KEY)
    if evaluation is None:
      raise RuntimeError(f'no completed {node} execution in {cfg.metadata_sqlite}')
    with open(os.path.join(evaluation.uri, eval_spec.METRICS_FILE)) as f:
      payload = json.load(f)
    for role, values in payload['metrics'].get('test', {}).items():
      metrics.setdefault(role, values)
    for role, values in payload['metrics'].get('dev', {}).items():
      dev.setdefault(role, values)
    decisions.append(dict(payload['decision'], node=node))
  pushed = None
  if cfg.semi_supervised and cfg.push.enabled:
    artifact = lineage.latest_output(store, cfg.pipeline_name, P.STUDENT_PUSHER, 'pushed_model')
    if artifact is not None:
      props = lineage.custom_props(artifact)
      pushed = {'pushed': bool(props.get('pushed', 0)),
                'destination': props.get('pushed_destination'), 'artifact_id': artifact.id}
  anomalies = None
  if cfg.data_validation:
    artifact = lineage.latest_output(store, cfg.pipeline_name, P.EXAMPLE_VALIDATOR, 'anomalies')
    if artifact is not None:
      anomalies = {split: lines for split, lines in
                   anomalies_lib.read_anomalies(artifact.uri).items() if lines}
  return {
      'anomalies': anomalies,
      'metrics': metrics,
      'dev_metrics': dev,
      'decisions': decisions,
      'pushed': pushed,
      'metrics_path': os.path.abspath(os.path.join(cfg.pipeline_root, METRICS_FILE)),
      'metadata_path': os.path.abspath(cfg.metadata_sqlite),
      'executions': lineage.execution_table(store, cfg.pipeline_name),
  }


METRIC_COLUMNS = ('ndcg@5', 'ndcg@10', 'mrr@10', 'map')


def format_table(by_role: Dict[str, Dict[str, float]], title: str) -> str:
  width = max([len('role')] + [len(r) for r in by_role]) + 2
  lines = [title, f'{"role":<{width}}' + ''.join(f'{m:>10}' for m in METRIC_COLUMNS) + f'{"queries":>9}']
  for role, values in by_role.items():
    lines.append(f'{role:<{width}}' + ''.join(f'{values.get(m, float("nan")):>10.4f}' for m in METRIC_COLUMNS)
                 + f'{int(values.get("num_queries", 0)):>9}')
  return '\n'.join(lines)
