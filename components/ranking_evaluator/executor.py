"""RankingEvaluator executor: score, measure, decide, record."""

import json
import os
import shutil
from typing import Any, Dict, List, Optional

from absl import logging
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils
from tfx.utils import path_utils

from components import example_io
from components import scoring
from components.ranking_evaluator import spec as S
from components.ranking_example_gen import spec as ingest_spec
from rankdata import features as F
from rankdata import metrics as M
from ssd import config as C


def load_qrels(examples_uri: str) -> Dict[str, Dict[str, Dict[str, int]]]:
  path = os.path.join(examples_uri, ingest_spec.QRELS_FILE)
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def load_candidates_k(examples_uri: str) -> int:
  path = os.path.join(examples_uri, ingest_spec.REPORT_FILE)
  with tf.io.gfile.GFile(path) as f:
    return int(json.load(f)['params']['split_config']['candidates_k'])


def read_candidates(examples_uri: str, split: str, k: int) -> List[Dict[str, Any]]:
  """The first stage's top-k of each query: what a reranker sees in production.

  Train/dev lists also hold judged documents from outside the top-k (useful
  for training); scoring them here would make dev metrics optimistic and
  incomparable with test, so evaluation reranks the top-k only.
  """
  rows = example_io.read_split(examples_uri, split)
  return [r for r in rows if r[F.FIRST_STAGE_RANK] is not None and 1 <= r[F.FIRST_STAGE_RANK] <= k]


def run_of(examples: List[Dict[str, Any]], scores) -> Dict[str, Dict[str, float]]:
  run: Dict[str, Dict[str, float]] = {}
  for ex, s in zip(examples, scores):
    run.setdefault(ex[F.QUERY_ID], {})[ex[F.DOC_ID]] = float(s)
  return run


def first_stage_run(examples: List[Dict[str, Any]]) -> Dict[str, Dict[str, float]]:
  return run_of(examples, [ex[F.FIRST_STAGE_SCORE] for ex in examples])


def model_run(model_dir: str, examples: List[Dict[str, Any]], batch_size: int):
  from rankers import export as rexport  # pylint: disable=g-import-not-at-top
  scorer = rexport.load_scorer(model_dir)
  scores = scoring.score_pairs(scorer, [ex[F.QUERY] for ex in examples],
                               [ex[F.DOC] for ex in examples], batch_size=batch_size)
  return run_of(examples, scores)


def _metrics(run, qrels) -> Dict[str, float]:
  return M.evaluate_run(run, qrels)


class Executor(base_executor.BaseExecutor):
  """Scores splits with the candidate (and baseline), decides, records."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    cfg = C.from_json(S.EvaluatorConfig, exec_properties[S.CONFIG_KEY])
    examples = artifact_utils.get_single_instance(input_dict[S.EXAMPLES_KEY])
    model = artifact_utils.get_single_instance(input_dict[S.MODEL_KEY])
    baselines = input_dict.get(S.BASELINE_MODEL_KEY) or []
    baseline: Optional[types.Artifact] = baselines[0] if baselines else None
    evaluation = artifact_utils.get_single_instance(output_dict[S.EVALUATION_KEY])
    blessing = artifact_utils.get_single_instance(output_dict[S.BLESSING_KEY])
    selected = artifact_utils.get_single_instance(output_dict[S.SELECTED_MODEL_KEY])

    qrels = load_qrels(examples.uri)
    k = load_candidates_k(examples.uri)
    model_dir = path_utils.serving_model_path(model.uri)
    baseline_dir = path_utils.serving_model_path(baseline.uri) if baseline else None

    # 1. Decision on the dev split only.
    dev = read_candidates(examples.uri, cfg.decision_split, k)
    dev_qrels = qrels[cfg.decision_split]
    dev_metrics = {cfg.first_stage_role: _metrics(first_stage_run(dev), dev_qrels)}
    logging.info('evaluating %s on %s (%d pairs)', cfg.candidate_role, cfg.decision_split, len(dev))
    dev_metrics[cfg.candidate_role] = _metrics(model_run(model_dir, dev, cfg.batch_size), dev_qrels)
    ref_role = cfg.first_stage_role
    if baseline_dir:
      logging.info('evaluating %s on %s', cfg.baseline_role, cfg.decision_split)
      dev_metrics[cfg.baseline_role] = _metrics(model_run(baseline_dir, dev, cfg.batch_size), dev_qrels)
      ref_role = cfg.baseline_role
    cand_value = dev_metrics[cfg.candidate_role][cfg.decision_metric]
    ref_value = dev_metrics[ref_role][cfg.decision_metric]
    blessed = cand_value > ref_value + cfg.min_improvement
    use_candidate = blessed or not baseline_dir
    reason = (f'{cfg.candidate_role} {cfg.decision_metric}={cand_value:.4f} on {cfg.decision_split} '
              f'{"beats" if blessed else "does not beat"} {ref_role} {ref_value:.4f} '
              f'(+{cfg.min_improvement} required); selected '
              f'{cfg.candidate_role if use_candidate else cfg.baseline_role}')
    logging.info('decision: %s', reason)
    chosen_dir = model_dir if use_candidate else baseline_dir
    chosen_artifact = model if use_candidate else baseline
    chosen_role = cfg.candidate_role if use_candidate else cfg.baseline_role

    # 2. Report splits: the selected model and the first stage.
    report: Dict[str, Dict[str, Dict[str, float]]] = {cfg.decision_split: dev_metrics}
    for split in cfg.report_splits:
      rows = read_candidates(examples.uri, split, k)
      split_qrels = qrels[split]
      report[split] = {cfg.first_stage_role: _metrics(first_stage_run(rows), split_qrels)}
      logging.info('evaluating %s (%s) on %s (%d pairs)', cfg.selected_role, chosen_role, split, len(rows))
      report[split][cfg.selected_role] = _metrics(model_run(chosen_dir, rows, cfg.batch_size), split_qrels)

    decision = {
        'blessed': bool(blessed), 'reason': reason, 'decision_split': cfg.decision_split,
        'decision_metric': cfg.decision_metric, 'candidate_value': cand_value,
        'reference_role': ref_role, 'reference_value': ref_value,
        'min_improvement': cfg.min_improvement, 'selected_role': chosen_role,
        'selected_artifact_id': chosen_artifact.id, 'candidate_artifact_id': model.id,
        'baseline_artifact_id': baseline.id if baseline else None,
    }
    payload = {'decision': decision, 'metrics': report, 'config': C.to_dict(cfg)}
    io_utils.write_string_file(os.path.join(evaluation.uri, S.METRICS_FILE),
                               json.dumps(payload, indent=1, sort_keys=True))
    for split, by_role in report.items():
      for role, values in by_role.items():
        for name, value in values.items():
          if isinstance(value, float):
            evaluation.set_float_custom_property(f'{split}/{role}/{name}', value)
    evaluation.set_string_custom_property('decision', reason)

    # Same layout and properties as TFX's Evaluator, so Pusher can read it.
    blessing.set_int_custom_property(S.BLESSED_PROPERTY, int(blessed))
    blessing.set_string_custom_property('current_model', model.uri)
    blessing.set_int_custom_property('current_model_id', model.id)
    if baseline:
      blessing.set_string_custom_property('baseline_model', baseline.uri)
      blessing.set_int_custom_property('baseline_model_id', baseline.id)
    blessing.set_string_custom_property('reason', reason)
    io_utils.write_string_file(os.path.join(blessing.uri, 'BLESSED' if blessed else 'NOT_BLESSED'), '')

    # The selected model, copied so downstream stages take a plain Model.
    target = path_utils.serving_model_path(selected.uri)
    if os.path.exists(target):
      shutil.rmtree(target)
    shutil.copytree(chosen_dir, target)
    selected.set_string_custom_property('selected_role', chosen_role)
    selected.set_int_custom_property('source_model_id', chosen_artifact.id)
    selected.set_string_custom_property('selection_reason', reason)
