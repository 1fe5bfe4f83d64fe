"""Hybrid scoring: model score + w * first-stage score, w fitted on calibration.

One implementation serves the trainer (which exports w with a hybrid model)
and the evaluator (which reports every model's hybrid score beside its plain
one). Both fit on the calibration split only: labelled queries held out of
training and of every decision, so the dev split that decides blessing judges
a weight that was not fitted on it.

Like evaluation, the fit reranks the first stage's top-K only, while the
ideal DCG counts every judgement of the query.
"""

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from rankdata import features as F
from rankdata import metrics as M

# Grid for the fusion weight: 0 (model only) and 31 log-spaced values.
WEIGHTS = tuple(np.round(np.concatenate([[0.0], np.geomspace(0.01, 10.0, 31)]), 4))
FIT_METRIC = 'ndcg@10'


def calibration_rows(rows: List[Dict[str, Any]], candidates_k: Optional[int]):
  """(rows to score, qrels) of labelled rows: top-K rows, all judgements."""
  labelled = [r for r in rows if r.get(F.LABEL) is not None]
  qrels: Dict[str, Dict[str, int]] = {}
  for r in labelled:
    qrels.setdefault(r[F.QUERY_ID], {})[r[F.DOC_ID]] = int(round(r[F.LABEL]))
  scored = [r for r in labelled if r.get(F.FIRST_STAGE_SCORE) is not None
            and (candidates_k is None or 1 <= (r.get(F.FIRST_STAGE_RANK) or 0) <= candidates_k)]
  return scored, qrels


def fit_weight(rows: Sequence[Dict[str, Any]], scores: Sequence[float],
               qrels: Dict[str, Dict[str, int]]) -> Dict[str, Any]:
  """Grid-searches w by nDCG@10 of score + w * first_stage (ties: smaller w)."""
  if not len(rows):
    raise ValueError('hybrid fit: no labelled rows with first-stage scores in the '
                     'calibration split (set splits.calibration_queries > 0)')
  fs = np.array([r[F.FIRST_STAGE_SCORE] for r in rows], np.float64)
  scores = np.asarray(scores, np.float64)
  results = {}
  for w in WEIGHTS:
    run: Dict[str, Dict[str, float]] = {}
    for r, s in zip(rows, scores + w * fs):
      run.setdefault(r[F.QUERY_ID], {})[r[F.DOC_ID]] = float(s)
    results[float(w)] = M.evaluate_run(run, qrels, complete=True)[FIT_METRIC]
  best = max(results, key=lambda w: (results[w], -w))
  return {'weight': best, f'calibration_{FIT_METRIC}': results[best],
          f'calibration_{FIT_METRIC}_model_only': results[0.0],
          'calibration_queries': len(qrels), 'grid': results}
