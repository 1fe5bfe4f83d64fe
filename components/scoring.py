"""Batch scoring of (query, document) pairs with an exported ranker.

Bi-encoders are scored from embeddings: each unique query and document is
encoded once and pairs are scored from the cached vectors (on CPU this is
several times cheaper than encoding every pair). Cross-encoders score pairs
in batches. Both report progress (pairs or texts per second).
"""

import time
from typing import Dict, List, Sequence

from absl import logging
import numpy as np


def _unique(texts: Sequence[str]):
  index: Dict[str, int] = {}
  order: List[str] = []
  ids = np.empty(len(texts), dtype=np.int64)
  for i, t in enumerate(texts):
    j = index.get(t)
    if j is None:
      j = index[t] = len(order)
      order.append(t)
    ids[i] = j
  return order, ids


def _batched(fn, items: Sequence, batch_size: int, what: str, log_every_s: float = 15.0):
  out = []
  t0 = last = time.time()
  for start in range(0, len(items), batch_size):
    out.append(np.asarray(fn(list(items[start:start + batch_size]))))
    now = time.time()
    done = min(start + batch_size, len(items))
    if now - last >= log_every_s or done == len(items):
      logging.info('scored %d/%d %s (%.1f/s)', done, len(items), what, done / max(now - t0, 1e-9))
      last = now
  return np.concatenate(out) if out else np.zeros((0,), np.float32)


def is_bi_encoder(scorer) -> bool:
  return all(hasattr(scorer, a) and getattr(scorer, a) is not None
             for a in ('embed_queries', 'embed_documents')) and \
      'score_embeddings' in scorer.signatures


def score_pairs(scorer, queries: Sequence[str], docs: Sequence[str],
                batch_size: int = 64) -> np.ndarray:
  """Scores pairs with a `rankers.export.load_scorer` object."""
  if len(queries) != len(docs):
    raise ValueError(f'{len(queries)} queries vs {len(docs)} documents')
  if not len(queries):
    return np.zeros((0,), np.float32)
  if not is_bi_encoder(scorer):
    return _batched(lambda b: scorer.score([q for q, _ in b], [d for _, d in b]),
                    list(zip(queries, docs)), batch_size, 'pairs').astype(np.float32)
  uq, qid = _unique(queries)
  ud, did = _unique(docs)
  q_emb = _batched(scorer.embed_queries, uq, batch_size, 'unique queries')
  d_emb = _batched(scorer.embed_documents, ud, batch_size, 'unique documents')
  fn = scorer.signatures['score_embeddings']
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  scores = []
  step = 4096
  for start in range(0, len(queries), step):
    sl = slice(start, start + step)
    out = fn(query_embedding=tf.constant(q_emb[qid[sl]]),
             document_embedding=tf.constant(d_emb[did[sl]]))
    scores.append(out['score'].numpy())
  return np.concatenate(scores).astype(np.float32)
