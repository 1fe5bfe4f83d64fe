"""Arithmetic of `ssd bench speed`: FLOPs of a BERT encoder from the tokens it
processed, padding of length-sorted batches, medians, worker crossover.

Pure Python / numpy, so it is unit-tested on known shapes.

FLOPs count multiply-adds as 2 and only the matmuls (the rest is < 2 % of
a BERT layer): per layer and sequence of n tokens, hidden H, feed-forward I,
  Q, K, V, output projections  4 * 2nH^2
  attention scores and mixing  2 * 2n^2H
  feed-forward                 2 * 2nHI
"""

import statistics
from typing import Dict, Optional, Sequence

import numpy as np


def encoder_flops(n: int, hidden: int, layers: int, intermediate: int) -> float:
  """Matmul FLOPs of one sequence of `n` tokens through the encoder."""
  n = float(n)
  per_layer = 8 * n * hidden * hidden + 4 * n * n * hidden + 4 * n * hidden * intermediate
  return layers * per_layer


def pair_tokens(query_pieces: Sequence[int], doc_pieces: Sequence[int],
                max_length: int) -> np.ndarray:
  """Tokens of `[CLS] q [SEP] d [SEP]`, the query kept first (as
  rankers.tokenization.pack truncates): int64 [N]."""
  q = np.asarray(query_pieces, np.int64)
  d = np.asarray(doc_pieces, np.int64)
  budget = max_length - 3
  q_kept = np.minimum(q, budget)
  return 3 + q_kept + np.minimum(d, budget - q_kept)


def single_tokens(pieces: Sequence[int], max_length: int) -> np.ndarray:
  """Tokens of `[CLS] text [SEP]` truncated to max_length: int64 [N]."""
  return 2 + np.minimum(np.asarray(pieces, np.int64), max_length - 2)


def padded_lengths(tokens: Sequence[int], sort_keys: Optional[Sequence[int]],
                   batch_size: int, chunk: int) -> np.ndarray:
  """The length each item is padded to when items are scored in calls of
  `chunk` items, each call sorted by `sort_keys` (None: input order) and cut
  into batches of `batch_size` padded to their longest item (as
  rankers.export.Scorer does, called by components/common/scoring.py)."""
  tokens = np.asarray(tokens, np.int64)
  out = np.zeros_like(tokens)
  for start in range(0, len(tokens), chunk):
    idx = np.arange(start, min(start + chunk, len(tokens)))
    if sort_keys is not None:
      keys = np.asarray(sort_keys, np.int64)[idx]
      idx = idx[np.argsort(keys, kind='stable')]
    for b in range(0, len(idx), batch_size):
      part = idx[b:b + batch_size]
      out[part] = tokens[part].max()
  return out


def total_flops(lengths: Sequence[int], hidden: int, layers: int, intermediate: int) -> float:
  return float(sum(encoder_flops(int(n), hidden, layers, intermediate) for n in lengths))


def median(values: Sequence[float]) -> float:
  if not values:
    raise ValueError('median of no values')
  return float(statistics.median(values))


def crossover(points_1: Dict[int, float], points_2: Dict[int, float]) -> Optional[float]:
  """Corpus size (pairs) above which 2 workers beat 1.

  Each worker count is fitted as seconds = start-up + pairs / rate from its
  {pairs: seconds} points (least squares, >= 2 sizes). None when 2 workers
  never win (their rate is not higher) or there are too few points.
  """
  fits = []
  for points in (points_1, points_2):
    if len(points) < 2:
      return None
    n = np.array(sorted(points), np.float64)
    t = np.array([points[k] for k in sorted(points)], np.float64)
    slope, intercept = np.polyfit(n, t, 1)
    fits.append((float(intercept), float(slope)))
  (a1, s1), (a2, s2) = fits
  if s2 >= s1:
    return None   # 2 workers are no faster per pair: they never catch up
  return max(0.0, (a2 - a1) / (s1 - s2))
