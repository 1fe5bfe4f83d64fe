"""Would a teacher ensemble make a better distillation target? Measured from scores a run saved.

  PYTHONPATH=. python tools/teacher_ensemble_probe.py \
      --metadata=/tmp/benchnf300/nfcorpus/metadata.sqlite --pipeline=bench-nfcorpus

Issue 21 names two ensembles as the student's target: T' with T, or a model
fused with BM25 at the fitted weight. A target can only teach what it ranks
well, so this compares the candidates' own nDCG@10 before any student is
trained. For every completed T' evaluation of round 1 in the store (each
seed and lever of a bench run) it reads the scores the evaluators saved
(`model_scores/`, content-keyed: components/ranking_evaluator/score_store.py)
for T (the round's teacher) and T', on the calibration, dev and test
candidates, and reports nDCG@10 (trec_eval -c, top-K reranked, as the
evaluator) of:
  T, T';
  T' + T: the per-query z-scores of both, T's weighted by a, a fitted on
    calibration over A_GRID (a = 1 is the plain average);
  T' + w x BM25: w fitted on calibration (components/common/hybrid.py), the
    target `fuse_first_stage` distils.
Nothing is retrained or rescored: a pair of models whose scores were not
saved is skipped with a message.
"""

import argparse
import json
import os
import sys
from typing import Dict, List

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# pylint: disable=g-import-not-at-top,wrong-import-position
from tfx.utils import path_utils

from components.common import hybrid
from components.ranking_evaluator import executor as E
from components.ranking_evaluator import score_store
from components.ranking_evaluator import spec as eval_spec
from pipelines import mlmd_store
from pipelines import pipeline as P
from rankdata import features as F
from rankdata import metrics as M

A_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
SPLITS = (F.SPLIT_CALIBRATION, F.SPLIT_DEV, F.SPLIT_TEST)


def zscores(rows: List[dict], scores: np.ndarray) -> np.ndarray:
  """Scores standardised per query (mean 0, std 1), so two models' scales match."""
  out = np.zeros(len(rows))
  by_query: Dict[str, List[int]] = {}
  for i, r in enumerate(rows):
    by_query.setdefault(r[F.QUERY_ID], []).append(i)
  for idx in by_query.values():
    s = scores[idx].astype(np.float64)
    out[idx] = (s - s.mean()) / (s.std() + 1e-9)
  return out


def ndcg(rows: List[dict], scores, qrels) -> float:
  return M.evaluate_run(E.run_of(rows, scores), qrels, complete=True)['ndcg@10']


def probe(evaluation_uri: str, examples_uri: str, teacher_dir: str, tp_dir: str,
          store: score_store.ScoreStore) -> Dict[str, Dict[str, float]]:
  k = E.load_candidates_k(examples_uri)
  qrels = E.load_qrels(examples_uri)
  data = {}
  for split in SPLITS:
    rows = E.read_candidates(examples_uri, split, k)
    key = score_store.rows_key(rows)
    t = store.get(score_store.model_key(teacher_dir), key)
    tp = store.get(score_store.model_key(tp_dir), key)
    if t is None or tp is None:
      raise LookupError(f'{split}: scores of T or T\' not saved in {evaluation_uri}')
    data[split] = (rows, t, tp, qrels[split])
  rows, t, tp, q = data[F.SPLIT_CALIBRATION]
  a = max(A_GRID, key=lambda a: (ndcg(rows, zscores(rows, tp) + a * zscores(rows, t), q), -a))
  scored, cal_qrels = hybrid.calibration_rows([dict(r, s=s) for r, s in zip(rows, tp)], k)
  w = hybrid.fit_weight(scored, [r['s'] for r in scored], cal_qrels)['weight']
  out = {'fitted': {'a': a, 'w': w}}
  for split in (F.SPLIT_DEV, F.SPLIT_TEST):
    rows, t, tp, q = data[split]
    fs = np.array([r[F.FIRST_STAGE_SCORE] for r in rows])
    out[split] = {
        'BM25': ndcg(rows, fs, q), 'T': ndcg(rows, t, q), "T'": ndcg(rows, tp, q),
        "T' + T (a = 1)": ndcg(rows, zscores(rows, tp) + zscores(rows, t), q),
        f"T' + {a:g} x T (fitted)": ndcg(rows, zscores(rows, tp) + a * zscores(rows, t), q),
        f"T' + {w:g} x BM25 (fitted)": ndcg(rows, tp + w * fs, q)}
  return out


def probe_store(metadata: str, pipeline: str, log=print) -> List[Dict[str, object]]:
  """`probe` of every completed round-1 T' evaluation of `pipeline` in the store."""
  store = mlmd_store.open_store(metadata)
  node = P.teacher_prime_evaluator_id(1)
  results = []
  for execution in mlmd_store.node_executions(store, pipeline, node):
    if execution.last_known_state != mlmd_store._STATE.COMPLETE:  # pylint: disable=protected-access
      continue
    ins = mlmd_store.execution_io(store, execution.id, 'input')
    outs = mlmd_store.execution_io(store, execution.id)
    evaluation = outs[eval_spec.EVALUATION_KEY][0].uri
    scores = score_store.ScoreStore()
    scores.load(evaluation)
    for prior in ins.get(eval_spec.PRIOR_EVALUATION_KEY, []):
      scores.load(prior.uri)
    teacher_dir = path_utils.serving_model_path(ins[eval_spec.BASELINE_MODEL_KEY][0].uri)
    tp_dir = path_utils.serving_model_path(ins[eval_spec.MODEL_KEY][0].uri)
    try:
      result = probe(evaluation, ins[eval_spec.EXAMPLES_KEY][0].uri, teacher_dir, tp_dir, scores)
    except LookupError as e:
      log(f'execution {execution.id}: skipped ({e})')
      continue
    result['execution'] = execution.id
    results.append(result)
    log(f'\nexecution {execution.id} (a = {result["fitted"]["a"]:g}, '
        f'w = {result["fitted"]["w"]:g}, fitted on calibration)')
    log('| target | dev | test |\n|---|---|---|')
    for name in result[F.SPLIT_DEV]:
      log(f'| {name} | {result[F.SPLIT_DEV][name]:.4f} | {result[F.SPLIT_TEST][name]:.4f} |')
  return results


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--metadata', required=True, help='the run\'s MLMD SQLite file')
  parser.add_argument('--pipeline', required=True, help='pipeline_name of the runs')
  args = parser.parse_args()
  print(json.dumps(probe_store(args.metadata, args.pipeline)))
  return 0


if __name__ == '__main__':
  sys.exit(main())
