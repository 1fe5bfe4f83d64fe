"""Bi-encoder scoring from embeddings: the one implementation.

Each unique query text and each unique document text is embedded once, and
pairs are scored from the cached vectors with the model's own similarity
(the `score_embeddings` signature: cosine x scale, or dot). On CPU this is
several times cheaper than encoding every pair.

Two callers share these functions:
- components/common/scoring.py (evaluator, trainer, benchmarks) holds all texts of
  a call in memory and uses `score_pairs`;
- the PseudoLabeler's Beam DoFns (pseudo_labeler/teacher.py) see one batch
  at a time: `embed` for a batch of unique texts, `to_bytes` to ship a
  vector through a shuffle, `score_rows` for a batch of joined pairs.

`scorer` is a `rankers.export.Scorer` (or anything with its methods:
embed_queries, embed_documents, score_embeddings). Pure numpy here; no
TensorFlow import.
"""

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

QUERY = 'query'
DOCUMENT = 'document'
SIDES = (QUERY, DOCUMENT)


def unique(texts: Sequence[str]) -> Tuple[List[str], np.ndarray]:
  """(unique texts in first-seen order, index of each input in that list)."""
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


def embed(scorer, side: str, texts: Sequence[str], batch_size: int) -> np.ndarray:
  """Embeddings float32 [N, H] of `texts` as queries or as documents."""
  if side not in SIDES:
    raise ValueError(f'side must be query or document, got {side!r}')
  fn = scorer.embed_queries if side == QUERY else scorer.embed_documents
  return np.asarray(fn(list(texts), batch_size=batch_size), np.float32)


def score(scorer, query_embeddings: np.ndarray, doc_embeddings: np.ndarray) -> np.ndarray:
  """Row-wise scores float32 [N] of aligned query and document embeddings."""
  return np.asarray(scorer.score_embeddings(np.asarray(query_embeddings, np.float32),
                                            np.asarray(doc_embeddings, np.float32)),
                    np.float32)


def to_bytes(vector: np.ndarray) -> bytes:
  """One embedding as bytes (what a Beam shuffle carries)."""
  return np.asarray(vector, np.float32).tobytes()


def from_bytes(rows: Sequence[bytes]) -> np.ndarray:
  """Embeddings written by `to_bytes` -> float32 [N, H]."""
  return np.stack([np.frombuffer(b, np.float32) for b in rows])


def score_rows(scorer, rows: Sequence[Tuple[object, bytes, bytes]]) -> np.ndarray:
  """[(anything, query embedding bytes, doc embedding bytes)] -> scores [N]."""
  return score(scorer, from_bytes([q for _, q, _ in rows]), from_bytes([d for _, _, d in rows]))


class Cache:
  """Embeddings of one model by side and text, kept across calls.

  An evaluator scores the same model on dev, test and calibration, whose
  candidate lists share most documents (NFCorpus: one 3.6k-document corpus
  under every split's BM25 top-100); with a cache each text is embedded once
  per model and evaluation, not once per split.
  """

  def __init__(self):
    self.vectors: Dict[str, Dict[str, np.ndarray]] = {side: {} for side in SIDES}

  def missing(self, side: str, texts: Sequence[str]) -> List[str]:
    have = self.vectors[side]
    return [t for t in texts if t not in have]

  def add(self, side: str, texts: Sequence[str], vectors: np.ndarray) -> None:
    self.vectors[side].update(zip(texts, np.asarray(vectors, np.float32)))

  def lookup(self, side: str, texts: Sequence[str]) -> np.ndarray:
    return np.stack([self.vectors[side][t] for t in texts])


def score_pairs(scorer, queries: Sequence[str], docs: Sequence[str], batch_size: int,
                map_chunks: Optional[Callable[..., np.ndarray]] = None,
                cache: Optional[Cache] = None) -> np.ndarray:
  """Scores (query, doc) pairs from embeddings of the unique texts -> float32 [N].

  map_chunks(fn, items, what) applies fn to `items` (all at once by default;
  scoring.py passes one that works in chunks and logs progress). With a
  `cache` (of this scorer's model), texts it holds are not embedded again.
  """
  if map_chunks is None:
    map_chunks = lambda fn, items, what: fn(items)
  uq, qid = unique(queries)
  ud, did = unique(docs)

  def vectors(side: str, texts: List[str], what: str) -> np.ndarray:
    todo = texts if cache is None else cache.missing(side, texts)
    new = (map_chunks(lambda b: embed(scorer, side, b, batch_size), todo, what) if todo
           else np.zeros((0, 0), np.float32))
    if cache is None:
      return new
    cache.add(side, todo, new)
    return cache.lookup(side, texts)

  q_emb = vectors(QUERY, uq, 'unique queries')
  d_emb = vectors(DOCUMENT, ud, 'unique documents')
  return score(scorer, q_emb[qid], d_emb[did])
