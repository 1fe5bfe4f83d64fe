"""RankingEvaluator executor: score, measure, decide, record."""

import json
import os
from typing import Any, Dict, List, Optional, Tuple

from absl import logging
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils
from tfx.utils import path_utils

from components import example_io
from components import fileio
from components import scoring
from components.ranking_evaluator import spec as S
from components.ranking_example_gen import spec as ingest_spec
from rankdata import features as F
from rankdata import metrics as M
from ssd import config as C

# Suffix of the report rows of a model's hybrid score (model + w * first stage).
HYBRID_SUFFIX = '_hybrid'
Run = Dict[str, Dict[str, float]]


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


def run_of(examples: List[Dict[str, Any]], scores) -> Run:
  run: Run = {}
  for ex, s in zip(examples, scores):
    run.setdefault(ex[F.QUERY_ID], {})[ex[F.DOC_ID]] = float(s)
  return run


def first_stage_run(examples: List[Dict[str, Any]]) -> Run:
  return run_of(examples, [ex[F.FIRST_STAGE_SCORE] for ex in examples])


def model_runs(model_dir: str, examples: List[Dict[str, Any]], batch_size: int) -> Tuple[Run, Optional[Run]]:
  """Plain run and, for hybrid models, the fused run (same scores, no rescoring)."""
  from rankers import export as rexport  # pylint: disable=g-import-not-at-top
  scorer = rexport.load_scorer(model_dir)
  scores = scoring.score_pairs(scorer, [ex[F.QUERY] for ex in examples],
                               [ex[F.DOC] for ex in examples], batch_size=batch_size)
  weight = scorer.hybrid_weight   # set by the trainer when hybrid scoring is on
  hybrid = None
  if weight is not None:
    hybrid = run_of(examples, [s + weight * ex[F.FIRST_STAGE_SCORE] for s, ex in zip(scores, examples)])
  return run_of(examples, scores), hybrid


class _Models:
  """The input models by role, with their serving directories."""

  def __init__(self, input_dict: Dict[str, List[types.Artifact]], cfg: S.EvaluatorConfig):
    def one(key):
      arts = input_dict.get(key) or []
      return arts[0] if arts else None
    self.artifacts = {S.CANDIDATE: one(S.MODEL_KEY), S.BASELINE: one(S.BASELINE_MODEL_KEY),
                      S.TEACHER: one(S.TEACHER_MODEL_KEY),
                      S.LAST_BLESSED: one(S.LAST_BLESSED_MODEL_KEY)}
    self.names = {S.CANDIDATE: cfg.candidate_role, S.BASELINE: cfg.baseline_role,
                  S.TEACHER: cfg.teacher_role, S.LAST_BLESSED: cfg.last_blessed_role}

  def present(self, key: str) -> bool:
    return self.artifacts.get(key) is not None

  def dir(self, key: str) -> str:
    return path_utils.serving_model_path(self.artifacts[key].uri)


class Executor(base_executor.BaseExecutor):
  """Scores splits with the input models, applies the blessing rules, records."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    cfg = C.from_json(S.EvaluatorConfig, exec_properties[S.CONFIG_KEY])
    examples = artifact_utils.get_single_instance(input_dict[S.EXAMPLES_KEY])
    models = _Models(input_dict, cfg)
    evaluation = artifact_utils.get_single_instance(output_dict[S.EVALUATION_KEY])
    blessing = artifact_utils.get_single_instance(output_dict[S.BLESSING_KEY])
    selected = artifact_utils.get_single_instance(output_dict[S.SELECTED_MODEL_KEY])
    candidate = models.artifacts[S.CANDIDATE]

    gates = input_dict.get(S.GATE_BLESSING_KEY) or []
    gate_closed = bool(gates) and gates[0].get_int_custom_property(S.BLESSED_PROPERTY) != 1
    if gate_closed:
      # An earlier stage (e.g. the previous round) was not blessed: this one
      # is skipped, and the baseline passes through unchanged.
      reason = (f'skipped: gate blessing #{gates[0].id} is not blessed '
                f'({gates[0].get_string_custom_property("reason")}); selected {cfg.baseline_role}')
      decision = {'blessed': False, 'skipped': True, 'reason': reason, 'checks': [],
                  'selected_role': cfg.baseline_role}
      report: Dict[str, Dict[str, Dict[str, float]]] = {}
      chosen = S.BASELINE
    else:
      report, decision, chosen = self._evaluate(cfg, examples, models)

    blessed = bool(decision['blessed'])
    reason = decision['reason']
    logging.info('decision: %s', reason)
    chosen_artifact = models.artifacts[chosen]
    decision.update({
        'decision_split': cfg.decision_split, 'decision_metric': cfg.decision_metric,
        'selected_artifact_id': chosen_artifact.id,
        'model_artifact_ids': {models.names[k]: a.id for k, a in models.artifacts.items() if a},
    })
    payload = {'decision': decision, 'metrics': report, 'config': C.to_dict(cfg)}
    io_utils.write_string_file(os.path.join(evaluation.uri, S.METRICS_FILE),
                               json.dumps(payload, indent=1, sort_keys=True))
    for split, by_role in report.items():
      for role, values in by_role.items():
        for name, value in values.items():
          if isinstance(value, float):
            evaluation.set_float_custom_property(f'{split}/{role}/{name}', value)
    evaluation.set_string_custom_property('decision', reason)

    # Same layout and properties as TFX's Evaluator, so Pusher and
    # LatestBlessedModelStrategy read it.
    blessing.set_int_custom_property(S.BLESSED_PROPERTY, int(blessed))
    blessing.set_string_custom_property('current_model', candidate.uri)
    blessing.set_int_custom_property('current_model_id', candidate.id)
    if models.present(S.BASELINE):
      blessing.set_string_custom_property('baseline_model', models.artifacts[S.BASELINE].uri)
      blessing.set_int_custom_property('baseline_model_id', models.artifacts[S.BASELINE].id)
    blessing.set_string_custom_property('reason', reason)
    io_utils.write_string_file(os.path.join(blessing.uri, 'BLESSED' if blessed else 'NOT_BLESSED'), '')

    # The selected model, copied so downstream stages take a plain Model.
    fileio.replace_tree(models.dir(chosen), path_utils.serving_model_path(selected.uri))
    selected.set_string_custom_property('selected_role', models.names[chosen])
    selected.set_int_custom_property('source_model_id', chosen_artifact.id)
    selected.set_string_custom_property('selection_reason', reason)

  def _evaluate(self, cfg: S.EvaluatorConfig, examples: types.Artifact, models: _Models):
    qrels = load_qrels(examples.uri)
    k = load_candidates_k(examples.uri)
    metric = cfg.decision_metric

    def measure(split: str, models_to_score: List[Tuple[str, str]]) -> Dict[str, Dict[str, float]]:
      """Metrics of the first stage and of each (model key, report role)."""
      rows = read_candidates(examples.uri, split, k)
      split_qrels = qrels[split]
      out = {cfg.first_stage_role: M.evaluate_run(first_stage_run(rows), split_qrels)}
      for key, role in models_to_score:
        logging.info('evaluating %s on %s (%d pairs)', role, split, len(rows))
        plain, hybrid = model_runs(models.dir(key), rows, cfg.batch_size)
        out[role] = M.evaluate_run(plain, split_qrels)
        if hybrid is not None:
          out[role + HYBRID_SUFFIX] = M.evaluate_run(hybrid, split_qrels)
      return out

    def value(by_role, key_or_role: str) -> float:
      """A model's decision value: its hybrid score when it has one (that is what serves)."""
      role = models.names.get(key_or_role, key_or_role)
      return by_role.get(role + HYBRID_SUFFIX, by_role[role])[metric]

    # 1. Decision on the decision split only.
    dev_keys = [key for key in (S.CANDIDATE, S.BASELINE, S.TEACHER, S.LAST_BLESSED)
                if models.present(key) and (key != S.TEACHER or cfg.retention is not None)]
    dev = measure(cfg.decision_split, [(key, models.names[key]) for key in dev_keys])
    cand = value(dev, S.CANDIDATE)
    checks = []
    if models.present(S.BASELINE):
      ref = value(dev, S.BASELINE)
      checks.append({'rule': f'beats {cfg.baseline_role} by > {cfg.min_improvement}',
                     'value': cand, 'reference': ref, 'passed': cand > ref + cfg.min_improvement})
    if cfg.must_beat_first_stage or not models.present(S.BASELINE):
      ref = dev[cfg.first_stage_role][metric]
      checks.append({'rule': f'beats {cfg.first_stage_role}', 'value': cand, 'reference': ref,
                     'passed': cand > ref})
    if cfg.retention is not None and models.present(S.TEACHER):
      ref = cfg.retention * value(dev, S.TEACHER)
      checks.append({'rule': f'keeps >= {cfg.retention} x {cfg.teacher_role}', 'value': cand,
                     'reference': ref, 'passed': cand >= ref})
    if models.present(S.LAST_BLESSED):
      ref = value(dev, S.LAST_BLESSED)
      checks.append({'rule': f'no worse than {cfg.last_blessed_role} (#{models.artifacts[S.LAST_BLESSED].id})',
                     'value': cand, 'reference': ref, 'passed': cand >= ref})
    blessed = all(c['passed'] for c in checks)
    chosen = S.CANDIDATE if blessed or not models.present(S.BASELINE) else S.BASELINE
    reason = (f'{cfg.candidate_role} {metric}={cand:.4f} on {cfg.decision_split}: ' +
              '; '.join(f'{c["rule"]} ({c["reference"]:.4f}): {"yes" if c["passed"] else "NO"}'
                        for c in checks) +
              f' -> {"blessed" if blessed else "not blessed"}; selected {models.names[chosen]}')

    # 2. Report splits (never used for decisions).
    report = {cfg.decision_split: dev}
    to_report: List[Tuple[str, str]] = []
    for name in cfg.report_models:
      if name == S.SELECTED:
        to_report.append((chosen, cfg.selected_role))
      elif models.present(name):
        to_report.append((name, models.names[name]))
    for split in cfg.report_splits:
      report[split] = measure(split, to_report)
    decision = {'blessed': blessed, 'skipped': False, 'reason': reason, 'checks': checks,
                'selected_role': models.names[chosen]}
    return report, decision, chosen
