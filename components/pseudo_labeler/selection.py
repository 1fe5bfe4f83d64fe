"""Per-query pseudo-labels and selection, as plain functions of one list.

Kept free of Beam and TensorFlow so the arithmetic (softmax with a
temperature, margin / entropy confidence, top/bottom-k, the per-query cap)
can be tested on hand-made lists; labelling.py applies `label_list` to each
query's group.

Ranks are by descending teacher score, ties broken by doc_id, so a list
always gets the same labels whatever order the runner delivers it in.
"""

import dataclasses
import math
from typing import List, Optional, Sequence

import numpy as np

from components.pseudo_labeler import spec as S

# Lists whose scores vary less than this carry no ranking signal.
MIN_SCORE_STD = 1e-6


@dataclasses.dataclass
class ListLabels:
  """Labels of one query's list, aligned with the input order.

  Attributes:
    soft: softmax(score / T) of each pair over the whole list.
    hard: 1.0 for the teacher's top-k, else 0.0.
    rank: 0-based rank of each pair in the teacher's ordering.
    confidence: the list's confidence (one value for all its pairs).
    reasons: None for a kept pair, else the filter reason (labelled pairs
      are always None).
  """
  soft: List[float]
  hard: List[float]
  rank: List[int]
  confidence: float
  reasons: List[Optional[str]]


def softmax(scores: Sequence[float], temperature: float) -> np.ndarray:
  """Numerically stable softmax(scores / temperature), float64."""
  z = np.asarray(scores, np.float64) / temperature
  if z.size == 0:
    return z
  e = np.exp(z - z.max())
  return e / e.sum()


def confidence_of(probs: np.ndarray, measure: str) -> float:
  """Confidence of a list's soft labels in [0, 1].

  margin: p(top1) - p(top2); entropy: 1 - H(p) / log(n). A one-pair list is
  trivially certain (1.0); it is filtered as `no_signal` anyway.
  """
  n = int(probs.size)
  if measure == S.CONFIDENCE_NONE or n <= 1:
    return 1.0
  if measure == S.CONFIDENCE_MARGIN:
    top = np.sort(probs)[::-1]
    return float(top[0] - top[1])
  if measure == S.CONFIDENCE_ENTROPY:
    p = probs[probs > 0]
    entropy = float(-(p * np.log(p)).sum())
    return float(min(1.0, max(0.0, 1.0 - entropy / math.log(n))))
  raise ValueError(f'unknown confidence measure {measure!r}')


def teacher_order(scores: Sequence[float], doc_ids: Sequence[str]) -> List[int]:
  """Indices from the best to the worst score (ties: by doc_id)."""
  return sorted(range(len(scores)), key=lambda i: (-float(scores[i]), doc_ids[i]))


def spread_cap(ranked: Sequence[int], cap: int) -> List[int]:
  """The first `cap` of best, worst, 2nd best, 2nd worst, ... of `ranked`."""
  out: List[int] = []
  lo, hi = 0, len(ranked) - 1
  while lo <= hi and len(out) < cap:
    out.append(ranked[lo])
    lo += 1
    if lo <= hi and len(out) < cap:
      out.append(ranked[hi])
      hi -= 1
  return out


def label_list(scores: Sequence[float], doc_ids: Sequence[str], labelled: Sequence[bool],
               cfg: S.PseudoLabelConfig) -> ListLabels:
  """Soft/hard labels, confidence and the kept/filtered decision of one list.

  Args:
    scores: the teacher's score of each unique pair of the query.
    doc_ids: their doc ids (tie-break of the ranking).
    labelled: whether each pair carries a true label; labelled pairs are
      never filtered.
    cfg: the component's config.
  """
  n = len(scores)
  if not n == len(doc_ids) == len(labelled):
    raise ValueError(f'lengths differ: {n} scores, {len(doc_ids)} doc ids, '
                     f'{len(labelled)} labelled flags')
  probs = softmax(scores, cfg.temperature)
  order = teacher_order(scores, doc_ids)
  rank = [0] * n
  for r, i in enumerate(order):
    rank[i] = r
  hard = [1.0 if rank[i] < cfg.hard_top_k else 0.0 for i in range(n)]
  confidence = confidence_of(probs, cfg.confidence)
  reasons: List[Optional[str]] = [None] * n

  candidates = [i for i in order if not labelled[i]]   # unlabelled, best first

  def drop(indices, reason):
    for i in indices:
      reasons[i] = reason

  if n < cfg.min_list_size or float(np.std(np.asarray(scores, np.float64))) < MIN_SCORE_STD:
    drop(candidates, S.FILTER_NO_SIGNAL)
    candidates = []
  if candidates and cfg.confidence != S.CONFIDENCE_NONE and confidence < cfg.min_confidence:
    drop(candidates, S.FILTER_LOW_CONFIDENCE)
    candidates = []
  if candidates and (cfg.keep_top_k is not None or cfg.keep_bottom_k is not None):
    top, bottom = cfg.keep_top_k or 0, cfg.keep_bottom_k or 0
    inside = [i for i in candidates if rank[i] < top or rank[i] >= n - bottom]
    kept_set = set(inside)
    drop([i for i in candidates if i not in kept_set], S.FILTER_NOT_TOP_OR_BOTTOM)
    candidates = inside
  if candidates and cfg.max_pairs_per_query is not None:
    chosen = set(spread_cap(candidates, cfg.max_pairs_per_query))
    drop([i for i in candidates if i not in chosen], S.FILTER_OVER_QUERY_CAP)

  return ListLabels(soft=[float(p) for p in probs], hard=hard, rank=rank,
                    confidence=confidence, reasons=reasons)
