"""BM25 first stage on top of the maintained `bm25s` library.

Why a wrapper: the project needs (1) deterministic top-K lists whose order
matches evaluation's (`metrics.rank_order`: score desc, doc id desc), (2) the
score and true rank of any document, e.g. a judged document outside the top-K,
and (3) empty documents and queries handled instead of crashing. Scoring itself
is bm25s's (`BM25.get_scores_from_ids`); tokenisation is bm25s's
(lower-case, regex ``\\b\\w\\w+\\b``, its stop-word list) with PyStemmer's
Snowball stemmer.

Notes on bm25s (0.3): `BM25.retrieve` raises ValueError when k exceeds the
corpus size and breaks ties at the cut arbitrarily, and `get_scores([])`
fails on an empty token list. This module selects the top K itself from the
full score vector (k is clamped to the corpus size) and treats a query without
any indexed token as empty: no candidates, all scores 0.

Only documents sharing at least one token with the query are returned as
candidates (as Lucene does), so a list may be shorter than K. `counters`
counts documents without any indexable token ('empty_documents', kept, they
score 0) and searched queries without any token of the index
('empty_queries': empty, only stop words, or only unknown words).
"""

import dataclasses
import logging as std_logging
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from absl import logging
import bm25s
import numpy as np
import Stemmer

from rankdata import types

Ranking = List[Tuple[str, float]]

# bm25s sets its own logger to DEBUG on import, which floods any configured
# handler with per-call messages; its warnings still come through.
std_logging.getLogger('bm25s').setLevel(std_logging.WARNING)


@dataclasses.dataclass(frozen=True)
class BM25Params:
  """Everything that determines BM25 scores; `asdict()` gets recorded."""
  k1: float = 0.9
  b: float = 0.4
  method: str = 'lucene'  # bm25s: robertson, atire, bm25l, bm25+, lucene
  stemmer: Optional[str] = 'english'  # PyStemmer algorithm name, None = off
  stopwords: Optional[str] = 'en'     # bm25s stop-word list name, None = off

  def asdict(self) -> Dict[str, object]:
    return dataclasses.asdict(self)


class BM25Index:
  """A bm25s index over documents' full text (title + body)."""

  def __init__(self, documents: Sequence[types.Document],
               params: BM25Params = BM25Params()):
    self.params = params
    self.doc_ids: List[str] = [d.id for d in documents]
    if not self.doc_ids:
      raise ValueError('BM25Index: no documents to index')
    if len(set(self.doc_ids)) != len(self.doc_ids):
      raise ValueError('BM25Index: duplicate document ids')
    self._stemmer = Stemmer.Stemmer(params.stemmer) if params.stemmer else None
    tokens = self._tokenize([d.full_text for d in documents])
    self.counters: Dict[str, int] = {
        'documents': len(tokens),
        'empty_documents': sum(1 for t in tokens if not t),
        'empty_queries': 0,
    }
    if self.counters['empty_documents'] == len(tokens):
      raise ValueError('BM25Index: no document has any indexable token')
    if self.counters['empty_documents']:
      logging.warning('BM25Index: %d documents have no indexable token '
                      '(kept, they score 0)', self.counters['empty_documents'])
    self._bm25 = bm25s.BM25(k1=params.k1, b=params.b, method=params.method)
    self._bm25.index(tokens, show_progress=False)
    # Position of each document in doc-id-descending order: the tie-breaker.
    order = sorted(range(len(self.doc_ids)), key=lambda i: self.doc_ids[i],
                   reverse=True)
    self._tie_position = np.empty(len(order), dtype=np.int64)
    self._tie_position[order] = np.arange(len(order))
    self._row = {d: i for i, d in enumerate(self.doc_ids)}

  def __len__(self) -> int:
    return len(self.doc_ids)

  def _tokenize(self, texts: List[str]) -> List[List[str]]:
    return bm25s.tokenize(texts, stopwords=self.params.stopwords or None,
                          stemmer=self._stemmer, return_ids=False,
                          show_progress=False)

  def _token_ids(self, query_text: str) -> List[int]:
    return self._bm25.get_tokens_ids(self._tokenize([query_text])[0])

  def _scores(self, token_ids: List[int]) -> np.ndarray:
    if not token_ids:
      return np.zeros(len(self.doc_ids), dtype=np.float32)
    return self._bm25.get_scores_from_ids(token_ids)

  def _matching(self, token_ids: List[int]) -> np.ndarray:
    """Boolean mask of documents that contain at least one query token."""
    indptr, indices = self._bm25.scores['indptr'], self._bm25.scores['indices']
    mask = np.zeros(len(self.doc_ids), dtype=bool)
    for t in token_ids:
      mask[indices[indptr[t]:indptr[t + 1]]] = True
    return mask

  def _order(self, rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Sorts document rows best first (score desc, doc id desc)."""
    return rows[np.lexsort((self._tie_position[rows], -scores[rows]))]

  def score_all(self, query_text: str) -> np.ndarray:
    """BM25 score of every document, aligned with `doc_ids` (float32)."""
    return self._scores(self._token_ids(query_text))

  def score_docs(self, query_text: str, doc_ids: Sequence[str]
                 ) -> Dict[str, float]:
    scores = self.score_all(query_text)
    return {d: float(scores[self._row[d]]) for d in doc_ids}

  def ranks_of(self, query_text: str, doc_ids: Sequence[str]
               ) -> Dict[str, Tuple[int, float]]:
    """doc id -> (1-based rank among ALL documents, score), as `search`."""
    scores = self.score_all(query_text)
    out = {}
    for d in doc_ids:
      row = self._row[d]
      s = scores[row]
      better = np.count_nonzero(scores > s) + np.count_nonzero(
          (scores == s) & (self._tie_position < self._tie_position[row]))
      out[d] = (int(better) + 1, float(s))
    return out

  def search_one(self, query_text: str, k: int) -> Ranking:
    """Top-k matching documents, best first; [] for a query without tokens."""
    token_ids = self._token_ids(query_text)
    if not token_ids:
      self.counters['empty_queries'] += 1
      return []
    scores = self._scores(token_ids)
    rows = np.flatnonzero(self._matching(token_ids))
    k = min(k, len(rows))
    if k <= 0:
      return []
    if k < len(rows):
      # Keep every document tied with the k-th score, then order and cut.
      kth = np.partition(scores[rows], len(rows) - k)[len(rows) - k]
      rows = rows[scores[rows] >= kth]
    rows = self._order(rows, scores)[:k]
    return [(self.doc_ids[r], float(scores[r])) for r in rows]

  def search(self, query_texts: Sequence[str], k: int) -> List[Ranking]:
    """`search_one` for each query text."""
    return [self.search_one(t, k) for t in query_texts]


def bm25_run(index: BM25Index, queries: Mapping[str, types.Query], k: int
             ) -> types.Run:
  """Top-k BM25 candidates for each query, as a `types.Run`."""
  ids = list(queries)
  results = index.search([queries[q].text for q in ids], k)
  return dict(zip(ids, results))
