"""RankingEvaluator executor: score, measure, decide, record."""

import json
import os
from typing import Any, Dict, List, Optional, Tuple

from absl import logging
import numpy as np
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils
from tfx.utils import path_utils

from components.common import example_io
from components.common import embeddings
from components.common import hybrid
from components.common import fileio
from components.common import scoring
from components.ranking_evaluator import production
from components.ranking_evaluator import rules
from components.ranking_evaluator import score_store
from components.ranking_evaluator import spec as S
from components.ranking_example_gen import spec as ingest_spec
from rankdata import features as F
from rankdata import metrics as M
from runconfig import config as C

# Suffix of the report rows of a model's hybrid score (model + w * first stage).
HYBRID_SUFFIX = rules.HYBRID_SUFFIX
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

  Sorted by (query id, rank, doc id), not in the order Beam wrote them: the
  batches the model scores in, and so its scores' last bits, are then the
  same in every run (see pseudo_labeler/canonical.py).
  """
  rows = example_io.read_split(examples_uri, split)
  rows = [r for r in rows if r[F.FIRST_STAGE_RANK] is not None and 1 <= r[F.FIRST_STAGE_RANK] <= k]
  return sorted(rows, key=lambda r: (str(r[F.QUERY_ID]), r[F.FIRST_STAGE_RANK], str(r[F.DOC_ID])))


def run_of(examples: List[Dict[str, Any]], scores) -> Run:
  run: Run = {}
  for ex, s in zip(examples, scores):
    run.setdefault(ex[F.QUERY_ID], {})[ex[F.DOC_ID]] = float(s)
  return run


def first_stage_run(examples: List[Dict[str, Any]]) -> Run:
  return run_of(examples, [ex[F.FIRST_STAGE_SCORE] for ex in examples])


def hybrid_run(examples: List[Dict[str, Any]], scores, weight: float) -> Run:
  return run_of(examples, [s + weight * ex[F.FIRST_STAGE_SCORE] for s, ex in zip(scores, examples)])


class _Scorers:
  """Loads each model once, and only to score rows no prior evaluation scored;
  knows each model's hybrid weight (from its metadata.json).

  A model exported with a hybrid weight keeps it (that is what serves);
  other models get one fitted on the calibration split (components/common/hybrid.py)
  when there is one, so every report row has a plain and a hybrid score.
  Scores a prior evaluation computed for the same model content and rows
  are reused, not recomputed (score_store.py).
  """

  def __init__(self, batch_size: int, calibration_rows: Optional[List[Dict[str, Any]]],
               candidates_k: int, fit_missing: bool, store: score_store.ScoreStore):
    self._scorers: Dict[str, Any] = {}
    # Bi-encoder embeddings per model, shared by the splits it is scored on.
    self._embeddings: Dict[str, embeddings.Cache] = {}
    self._weights: Dict[str, Optional[Dict[str, Any]]] = {}
    self._model_keys: Dict[str, Optional[str]] = {}
    self.store = store
    self.batch_size = batch_size
    self.calibration = calibration_rows
    self.candidates_k = candidates_k
    self.fit_missing = fit_missing

  def scorer(self, model_dir: str):
    if model_dir not in self._scorers:
      from rankers import export as rexport  # pylint: disable=g-import-not-at-top
      self._scorers[model_dir] = rexport.load_scorer(model_dir)
    return self._scorers[model_dir]

  def scores(self, model_dir: str, rows: List[Dict[str, Any]], what: str) -> np.ndarray:
    """The model's scores of `rows`; `what` ('role/split') names a reuse in the record."""
    if model_dir not in self._model_keys:
      self._model_keys[model_dir] = score_store.model_key(model_dir)
    model, rows_key = self._model_keys[model_dir], score_store.rows_key(rows)
    known = self.store.get(model, rows_key)
    if known is not None and len(known) == len(rows):
      if self.store.from_prior(model, rows_key):
        logging.info('%s: %d scores reused from a prior evaluation (same model content, '
                     'same rows)', what, len(rows))
        self.store.reused.append(what)
      return known
    scores = scoring.score_pairs(self.scorer(model_dir), [ex[F.QUERY] for ex in rows],
                                 [ex[F.DOC] for ex in rows], batch_size=self.batch_size,
                                 cache=self._embeddings.setdefault(model_dir, embeddings.Cache()))
    self.store.put(model, rows_key, scores)
    return scores

  def hybrid(self, model_dir: str, role: str) -> Optional[Dict[str, Any]]:
    """{'weight', 'source', ...} or None when the model has no hybrid score."""
    if model_dir not in self._weights:
      # From metadata.json: a model whose scores all come from a prior
      # evaluation is never loaded (a SavedModel load costs ~1-3 s).
      from rankers import export as rexport  # pylint: disable=g-import-not-at-top
      exported = rexport.read_hybrid_weight(model_dir)
      if exported is not None:
        self._weights[model_dir] = {'weight': float(exported), 'source': 'exported'}
      elif self.fit_missing and self.calibration:
        rows, qrels = hybrid.calibration_rows(self.calibration, self.candidates_k)
        fit = hybrid.fit_weight(rows, self.scores(model_dir, rows, f'{role}/{F.SPLIT_CALIBRATION}'),
                                qrels)
        fit.pop('grid')
        self._weights[model_dir] = dict(fit, source='fitted_on_calibration')
      else:
        self._weights[model_dir] = None
    return self._weights[model_dir]


class _Models:
  """The models by role, with their serving directories.

  Input artifacts for the candidate, baseline and teacher; the last blessed
  model is no artifact of this run but the model now in production, read
  from the push destination (production.py).
  """

  def __init__(self, input_dict: Dict[str, List[types.Artifact]], cfg: S.EvaluatorConfig):
    def one(key):
      arts = input_dict.get(key) or []
      return arts[0] if arts else None
    self.artifacts = {S.CANDIDATE: one(S.MODEL_KEY), S.BASELINE: one(S.BASELINE_MODEL_KEY),
                      S.TEACHER: one(S.TEACHER_MODEL_KEY)}
    self.dirs = {key: path_utils.serving_model_path(a.uri)
                 for key, a in self.artifacts.items() if a is not None}
    self.uris = {key: a.uri for key, a in self.artifacts.items() if a is not None}
    in_production = production.latest_push(cfg.production_dir)
    if cfg.production_dir:
      logging.info('model in production under %s: %s', cfg.production_dir,
                   in_production or 'none yet')
    if in_production:
      self.dirs[S.LAST_BLESSED] = self.uris[S.LAST_BLESSED] = in_production
    self.names = {S.CANDIDATE: cfg.candidate_role, S.BASELINE: cfg.baseline_role,
                  S.TEACHER: cfg.teacher_role, S.LAST_BLESSED: cfg.last_blessed_role}

  def present(self, key: str) -> bool:
    return key in self.dirs

  def dir(self, key: str) -> str:
    return self.dirs[key]


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

    store = score_store.ScoreStore()
    priors = input_dict.get(S.PRIOR_EVALUATION_KEY) or []
    for prior in priors:
      logging.info('prior evaluation %s: %d scores', prior.uri, store.load(prior.uri))

    gates = input_dict.get(S.GATE_BLESSING_KEY) or []
    gate_closed = bool(gates) and gates[0].get_int_custom_property(S.BLESSED_PROPERTY) != 1
    if gate_closed:
      # An earlier stage (e.g. the previous round) was not blessed: this one
      # is skipped, and the baseline passes through unchanged.
      reason = (f'skipped: gate blessing {gates[0].uri} is not blessed '
                f'({gates[0].get_string_custom_property("reason")}); selected {cfg.baseline_role}')
      decision = {'blessed': False, 'skipped': True, 'reason': reason, 'checks': [],
                  'selected_role': cfg.baseline_role}
      report: Dict[str, Dict[str, Dict[str, float]]] = {}
      per_query = {}
      chosen = S.BASELINE
    else:
      report, decision, chosen, per_query = self._evaluate(cfg, examples, models, store)
    decision['reused_scores'] = list(store.reused)
    decision['prior_evaluation_uris'] = [prior.uri for prior in priors]
    store.save(evaluation.uri)

    blessed = bool(decision['blessed'])
    reason = decision['reason']
    logging.info('decision: %s', reason)
    decision.update({
        'decision_split': cfg.decision_split, 'decision_metric': cfg.decision_metric,
        'selected_uri': models.uris[chosen],
        'model_uris': {models.names[k]: uri for k, uri in models.uris.items()},
    })
    payload = {'decision': decision, 'metrics': report, 'config': C.to_dict(cfg),
               'per_query': per_query}
    io_utils.write_string_file(os.path.join(evaluation.uri, S.METRICS_FILE),
                               json.dumps(payload, indent=1, sort_keys=True))
    for split, by_role in report.items():
      for role, values in by_role.items():
        for name, value in values.items():
          if isinstance(value, float):
            evaluation.set_float_custom_property(f'{split}/{role}/{name}', value)
    evaluation.set_string_custom_property('decision', reason)

    # Same layout and properties as TFX's Evaluator, so the stock Pusher
    # reads it; models are named by URI (spec.py).
    blessing.set_int_custom_property(S.BLESSED_PROPERTY, int(blessed))
    blessing.set_string_custom_property(S.CURRENT_MODEL_PROPERTY, candidate.uri)
    for key, prop in ((S.BASELINE, S.BASELINE_MODEL_PROPERTY),
                      (S.LAST_BLESSED, S.LAST_BLESSED_PROPERTY)):
      if models.present(key):
        blessing.set_string_custom_property(prop, models.uris[key])
    blessing.set_string_custom_property('reason', reason)
    io_utils.write_string_file(os.path.join(blessing.uri, 'BLESSED' if blessed else 'NOT_BLESSED'), '')

    # The selected model, copied so downstream stages take a plain Model.
    fileio.replace_tree(models.dir(chosen), path_utils.serving_model_path(selected.uri))
    selected.set_string_custom_property('selected_role', models.names[chosen])
    selected.set_string_custom_property(S.SOURCE_MODEL_PROPERTY, models.uris[chosen])
    selected.set_string_custom_property('selection_reason', reason)

  def _evaluate(self, cfg: S.EvaluatorConfig, examples: types.Artifact, models: _Models,
                store: score_store.ScoreStore):
    qrels = load_qrels(examples.uri)
    k = load_candidates_k(examples.uri)
    split_names = artifact_utils.decode_split_names(examples.split_names)
    calibration = (read_candidates(examples.uri, F.SPLIT_CALIBRATION, 10 ** 9)
                   if F.SPLIT_CALIBRATION in split_names else None)
    scorers = _Scorers(cfg.batch_size, calibration, k, cfg.hybrid_report, store)
    hybrid_weights: Dict[str, Any] = {}
    # Per-query values of the report splits, for paired significance tests.
    per_query: Dict[str, Dict[str, Dict[str, Dict[str, float]]]] = {}

    def measure(split: str, models_to_score: List[Tuple[str, str]]) -> Dict[str, Dict[str, float]]:
      """Metrics of the first stage and of each (model key, report role), plain and hybrid."""
      rows = read_candidates(examples.uri, split, k)
      split_qrels = qrels[split]
      out = {}

      def add(role: str, run: Run) -> None:
        out[role] = M.evaluate_run(run, split_qrels, complete=True)
        if split != cfg.decision_split:
          per_query.setdefault(split, {})[role] = M.per_query_metrics(
              {q: run.get(q, {}) for q in split_qrels}, split_qrels)

      add(cfg.first_stage_role, first_stage_run(rows))
      for key, role in models_to_score:
        logging.info('evaluating %s on %s (%d pairs)', role, split, len(rows))
        scores = scorers.scores(models.dir(key), rows, f'{role}/{split}')
        add(role, run_of(rows, scores))
        fit = scorers.hybrid(models.dir(key), role)
        if fit is not None:
          hybrid_weights[role] = fit
          add(role + HYBRID_SUFFIX, hybrid_run(rows, scores, fit['weight']))
      return out

    # 1. Decision on the decision split only.
    dev_keys = [key for key in (S.CANDIDATE, S.BASELINE, S.TEACHER, S.LAST_BLESSED)
                if models.present(key) and (key != S.TEACHER or cfg.retention is not None)]
    dev = measure(cfg.decision_split, [(key, models.names[key]) for key in dev_keys])
    names = {key: models.names[key] for key in dev_keys}
    rule_cfg = rules.RuleConfig(
        decision_metric=cfg.decision_metric, decision_score=cfg.decision_score,
        min_improvement=cfg.min_improvement, must_beat_first_stage=cfg.must_beat_first_stage,
        retention=cfg.retention, first_stage_role=cfg.first_stage_role,
        always_select_candidate=cfg.always_select_candidate)
    checks, blessed, chosen = rules.decide(rule_cfg, dev, names)
    reason = rules.reason_of(rule_cfg, names, checks, blessed, chosen, cfg.decision_split)

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
                'selected_role': models.names[chosen], 'decision_score': cfg.decision_score,
                'hybrid_weights': hybrid_weights}
    return report, decision, chosen, per_query
