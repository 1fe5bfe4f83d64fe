"""Batch scoring of (query, document) pairs with an exported ranker.

Bi-encoders are scored from embeddings (components/common/embeddings.py, shared
with the PseudoLabeler's Beam DoFns): each unique query and document is
encoded once and pairs are scored from the cached vectors. Cross-encoders
score pairs in batches. Both report progress (pairs or texts per second).
"""

import time
from typing import Optional, Sequence

from absl import logging
import numpy as np

from components.common import embeddings

# Items handed to the Scorer per call: it sorts each call's inputs by length
# before batching (less padding), so chunks much larger than a batch pad
# less; chunks also set how often progress is logged.
CHUNK_BATCHES = 16


def _chunked(fn, items: Sequence, chunk: int, what: str, log_every_s: float = 15.0):
  """Applies fn to chunks of items, logging progress (items/s)."""
  out = []
  t0 = last = time.time()
  for start in range(0, len(items), chunk):
    out.append(np.asarray(fn(items[start:start + chunk])))
    now = time.time()
    done = min(start + chunk, len(items))
    if now - last >= log_every_s or done == len(items):
      logging.info('scored %d/%d %s (%.1f/s)', done, len(items), what, done / max(now - t0, 1e-9))
      last = now
  return np.concatenate(out)


def score_pairs(scorer, queries: Sequence[str], docs: Sequence[str],
                batch_size: int = 64, cache: Optional[embeddings.Cache] = None) -> np.ndarray:
  """Scores pairs with a `rankers.export.Scorer` (the model's own score).

  `cache` (bi-encoders): embeddings of this scorer's model kept across calls.
  """
  if len(queries) != len(docs):
    raise ValueError(f'{len(queries)} queries vs {len(docs)} documents')
  if not len(queries):
    return np.zeros((0,), np.float32)
  chunk = batch_size * CHUNK_BATCHES
  if not scorer.is_bi_encoder:
    pairs = list(zip(queries, docs))
    return _chunked(lambda b: scorer.score([q for q, _ in b], [d for _, d in b], batch_size),
                    pairs, chunk, 'pairs').astype(np.float32)
  return embeddings.score_pairs(
      scorer, queries, docs, batch_size,
      map_chunks=lambda fn, items, what: _chunked(fn, items, chunk, what), cache=cache)
