"""Ranking metrics with trec_eval's semantics, in plain Python.

The numbers must be comparable with published ones, so the conventions are
trec_eval's (checked against pytrec_eval in tests/test_rankdata_metrics.py):

* Queries evaluated: those in the run that also appear in the qrels (a query
  whose judgements are all 0 counts, scoring 0).
* Ranking: score descending, ties broken by doc id descending (string order,
  as trec_eval's strcmp); the rank a run file states is ignored.
* nDCG@k: linear gains, discount log2(rank + 1); the ideal DCG sorts ALL the
  query's judged gains, retrieved or not.
* MAP and MRR: relevant = gain >= 1. MAP's denominator is the number of
  relevant documents in the qrels; MRR@k is 0 when no relevant doc is in the
  top k. `mrr` without a cutoff is trec_eval's recip_rank.

`rank_order` is the one place the tie-breaking rule lives; BM25 and the example
builder use it so that first-stage ranks agree with what evaluation sees.
"""

import math
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple

from absl import logging

RELEVANCE_THRESHOLD = 1   # gain >= this counts as relevant for MAP and MRR
DEFAULT_K_VALUES = (5, 10)
DEFAULT_MRR_K = 10


def metric_names(k_values: Sequence[int] = DEFAULT_K_VALUES,
                 mrr_k: int = DEFAULT_MRR_K) -> List[str]:
  """The metrics `evaluate_run` returns (besides num_queries), in order."""
  return [f'ndcg@{k}' for k in k_values] + [f'mrr@{mrr_k}', 'mrr', 'map']


def rank_order(doc_scores: Iterable[Tuple[str, float]]
               ) -> List[Tuple[str, float]]:
  """Sorts (doc id, score) best first: score desc, then doc id desc."""
  return sorted(doc_scores, key=lambda d: (d[1], d[0]), reverse=True)


def _dcg(gains: Sequence[float], k: int) -> float:
  return sum(g / math.log2(i + 2) for i, g in enumerate(gains[:k]) if g)


def query_metrics(ranking: Mapping[str, float], judgements: Mapping[str, int],
                  k_values: Sequence[int] = DEFAULT_K_VALUES,
                  mrr_k: int = DEFAULT_MRR_K) -> Dict[str, float]:
  """Metrics of one query: ranking = doc -> score, judgements = doc -> gain."""
  ranked = [d for d, _ in rank_order(ranking.items())]
  gains = [max(judgements.get(d, 0), 0) for d in ranked]
  ideal = sorted((max(g, 0) for g in judgements.values()), reverse=True)
  out = {}
  for k in k_values:
    ideal_dcg = _dcg(ideal, k)
    out[f'ndcg@{k}'] = _dcg(gains, k) / ideal_dcg if ideal_dcg > 0 else 0.0
  relevant = [g >= RELEVANCE_THRESHOLD for g in gains]
  first = next((i + 1 for i, r in enumerate(relevant) if r), None)
  out[f'mrr@{mrr_k}'] = 1.0 / first if first and first <= mrr_k else 0.0
  out['mrr'] = 1.0 / first if first else 0.0
  num_relevant = sum(g >= RELEVANCE_THRESHOLD for g in judgements.values())
  hits, precision_sum = 0, 0.0
  for i, r in enumerate(relevant):
    if r:
      hits += 1
      precision_sum += hits / (i + 1)
  out['map'] = precision_sum / num_relevant if num_relevant else 0.0
  return out


def per_query_metrics(run: Mapping[str, Mapping[str, float]],
                      qrels: Mapping[str, Mapping[str, int]],
                      k_values: Sequence[int] = DEFAULT_K_VALUES,
                      mrr_k: int = DEFAULT_MRR_K
                      ) -> Dict[str, Dict[str, float]]:
  """query id -> metric -> value, for queries in both the run and the qrels."""
  return {q: query_metrics(run[q], qrels[q], k_values, mrr_k)
          for q in run if q in qrels}


def evaluate_run(run: Mapping[str, Mapping[str, float]],
                 qrels: Mapping[str, Mapping[str, int]],
                 k_values: Sequence[int] = DEFAULT_K_VALUES,
                 mrr_k: int = DEFAULT_MRR_K,
                 complete: bool = False) -> Dict[str, float]:
  """Mean of `per_query_metrics` plus 'num_queries'.

  With `complete` (trec_eval -c), every query of the qrels counts, and one
  the run has no candidates for scores 0: a first stage that retrieves
  nothing for a query must not raise the average by dropping it. The
  evaluator uses it; published BEIR numbers are computed that way.

  Returns keys ndcg@k for each k, mrr@<mrr_k>, mrr, map and num_queries.
  """
  if complete:
    run = dict(run)
    for q in qrels:
      run.setdefault(q, {})
  per_query = per_query_metrics(run, qrels, k_values, mrr_k)
  names = metric_names(k_values, mrr_k)
  if not per_query:
    logging.warning('evaluate_run: no query of the run (%d) is in the qrels '
                    '(%d); all metrics are 0', len(run), len(qrels))
  n = len(per_query)
  out = {name: (sum(m[name] for m in per_query.values()) / n if n else 0.0)
         for name in names}
  out['num_queries'] = n
  return out


def run_as_dict(run: Mapping[str, Sequence[Tuple[str, float]]]
                ) -> Dict[str, Dict[str, float]]:
  """Converts a best-first list run to the {qid: {doc: score}} form."""
  return {q: {d: float(s) for d, s in docs} for q, docs in run.items()}
