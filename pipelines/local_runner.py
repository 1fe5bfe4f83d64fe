"""Local runner: LocalDagRunner + Beam DirectRunner + SQLite ML Metadata.

The embedded default: no server anywhere. The metadata store is a SQLite file
under the pipeline root, so a second identical run finds the first one's
executions and reuses their outputs (TFX caching).
"""

import dataclasses
import json
import os
import time
from typing import Any, Dict, List, Optional

from absl import logging
# Not `from tfx import v1`: that imports tfx.v1.extensions and with them
# google-cloud-aiplatform, ~2 s of every `ssd run` start for nothing used here.
from tfx.orchestration import metadata as tfx_metadata
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.orchestration.local import local_dag_runner
from tfx.dsl.compiler import compiler
from tfx.proto.orchestration import pipeline_pb2

from components.anomalies_gate import anomalies as anomalies_lib
from components.ranking_evaluator import spec as eval_spec
from pipelines import pipeline as P
from pipelines import store_lock
from runconfig import checkpoints
from runconfig import config as C
from pipelines import mlmd_store as lineage

METRICS_FILE = 'metrics.json'


def _local_abspath(path: Optional[str]) -> Optional[str]:
  """A local relative path -> absolute (against the cwd of this run); URIs unchanged."""
  if not path or '://' in path:
    return path
  return os.path.abspath(os.path.expanduser(path))


def _localize_model(model: Optional[C.ModelConfig]) -> Optional[C.ModelConfig]:
  if model is None:
    return None
  checkpoint = model.checkpoint
  if checkpoint and not checkpoints.is_named(checkpoint):
    checkpoint = _local_abspath(checkpoint)
  return dataclasses.replace(model, checkpoint=checkpoint,
                             vocab_file=_local_abspath(model.vocab_file))


def localize(cfg: C.PipelineConfig) -> C.PipelineConfig:
  """Binds the config to this machine: local relative paths become absolute.

  Config paths are relative to where `ssd run` is started; the pipeline
  factory passes paths as given (they may be URIs for a cluster), so this
  runner, which knows the pipeline runs here, resolves them once before
  building. URIs are left alone.
  """
  return dataclasses.replace(
      cfg,
      pipeline_root=_local_abspath(cfg.pipeline_root),
      metadata_path=_local_abspath(cfg.metadata_path),
      data_validation_schema=_local_abspath(cfg.data_validation_schema),
      cache_dir=_local_abspath(cfg.cache_dir),
      data=dataclasses.replace(cfg.data, path=_local_abspath(cfg.data.path),
                               unlabelled_pairs=_local_abspath(cfg.data.unlabelled_pairs)),
      push=dataclasses.replace(cfg.push, serving_dir=_local_abspath(cfg.push.serving_dir)),
      teacher=dataclasses.replace(cfg.teacher, model=_localize_model(cfg.teacher.model)),
      teacher_prime=dataclasses.replace(cfg.teacher_prime,
                                        model=_localize_model(cfg.teacher_prime.model)),
      student=dataclasses.replace(cfg.student, model=_localize_model(cfg.student.model)))


def run(cfg: C.PipelineConfig, code_root: Optional[str] = None) -> Dict[str, Any]:
  """Runs the pipeline locally and returns the summary (also written to disk).

  `code_root`: hash the code fingerprints from this copy of the sources
  instead of the imported ones (tests fake a code change with it); see
  pipelines/code_fingerprint.py.

  Holds the store's lock (pipelines/store_lock.py) for the whole run: a
  second run on the same ML Metadata store fails at once with
  StoreLockedError instead of interleaving with this one.
  """
  cfg = localize(cfg)
  os.makedirs(cfg.pipeline_root, exist_ok=True)
  with store_lock.hold(cfg.metadata_sqlite):
    return _run_locked(cfg, code_root)


def compile_ir(pipeline: tfx_pipeline.Pipeline, uncached: List[str]) -> pipeline_pb2.Pipeline:
  """The pipeline's IR, with caching off for the `uncached` nodes.

  TFX's DSL has only a pipeline-wide cache switch; its IR has one per node
  (NodeExecutionOptions.caching_options), which the launcher honours.
  """
  ir = compiler.Compiler().compile(pipeline)
  found = set()
  for node in ir.nodes:
    if node.pipeline_node.node_info.id in uncached:
      node.pipeline_node.execution_options.caching_options.enable_cache = False
      found.add(node.pipeline_node.node_info.id)
  missing = sorted(set(uncached) - found)
  if missing:
    raise ValueError(f'uncached nodes not in the pipeline: {missing}')
  return ir


def _run_locked(cfg: C.PipelineConfig, code_root: Optional[str]) -> Dict[str, Any]:
  metadata_path = os.path.abspath(cfg.metadata_sqlite)
  pipeline = P.create_pipeline(
      cfg,
      metadata_connection_config=tfx_metadata.sqlite_metadata_connection_config(
          metadata_path),
      beam_pipeline_args=cfg.beam.pipeline_args(),
      code_root=code_root)
  t0 = time.time()
  local_dag_runner.LocalDagRunner().run_with_ir(compile_ir(pipeline, P.uncached_nodes(cfg)))
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
    if cfg.student.enabled:
      nodes.append(P.STUDENT_EVALUATOR)
  return nodes


def summarize(cfg: C.PipelineConfig) -> Dict[str, Any]:
  """Reads the latest evaluations from MLMD and builds the metrics by role."""
  store = lineage.open_store(os.path.abspath(cfg.metadata_sqlite))
  metrics: Dict[str, Dict[str, float]] = {}
  dev: Dict[str, Dict[str, float]] = {}
  decisions: List[Dict[str, Any]] = []
  per_query: Dict[str, Dict[str, Dict[str, float]]] = {}
  for node in evaluator_nodes(cfg):
    evaluation = lineage.latest_output(store, cfg.pipeline_name, node, eval_spec.EVALUATION_KEY)
    if evaluation is None:
      raise RuntimeError(f'no completed {node} execution in {cfg.metadata_sqlite}')
    with open(os.path.join(evaluation.uri, eval_spec.METRICS_FILE)) as f:
      payload = json.load(f)
    for role, values in payload['metrics'].get('test', {}).items():
      metrics.setdefault(role, values)
    for role, values in payload.get('per_query', {}).get('test', {}).items():
      per_query.setdefault(role, values)
    for role, values in payload['metrics'].get('dev', {}).items():
      dev.setdefault(role, values)
    decisions.append(dict(payload['decision'], node=node))
  pushed = None
  if cfg.semi_supervised and cfg.student.enabled and cfg.push.enabled:
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
      'test_per_query': per_query,
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
