"""The in-memory form every reader produces and every later step consumes.

Readers differ (Cranfield, BEIR, TREC, unlabelled pairs); `RankingDataset` is
the one shape behind them, so that splitting, BM25 and evaluation are written
once. Ids are always strings, gains are non-negative integers (0 = judged
non-relevant) and anything a reader skipped or repaired is counted in `report`.
"""

import dataclasses
from typing import Dict, List, Optional, Set, Tuple

Qrels = Dict[str, Dict[str, int]]          # query id -> doc id -> gain
# query id -> [(doc id, score)], best first
Run = Dict[str, List[Tuple[str, float]]]


def join_text(*parts: str) -> str:
  """Joins non-empty stripped parts with one space ('' if all are empty)."""
  return ' '.join(p.strip() for p in parts if p and p.strip())


@dataclasses.dataclass(frozen=True)
class Query:
  id: str
  text: str

  @property
  def is_empty(self) -> bool:
    return not self.text.strip()


@dataclasses.dataclass(frozen=True)
class Document:
  """A document; `text` is the body (abstract), `title` may be empty."""
  id: str
  title: str
  text: str

  @property
  def full_text(self) -> str:
    """The text that BM25 indexes and models read: title + ' ' + body."""
    return join_text(self.title, self.text)

  @property
  def is_empty(self) -> bool:
    return not self.full_text


@dataclasses.dataclass
class RankingDataset:
  """Queries, documents, graded judgements and optional first-stage run.

  Attributes:
    name: short name, e.g. 'cranfield'.
    queries: query id -> Query (all queries, judged or not).
    documents: doc id -> Document.
    qrels: query id -> doc id -> graded gain (0 allowed = judged non-relevant).
      Every query and doc id in it exists in `queries` / `documents`.
    run: optional first-stage candidates per query, best first.
    excluded_judgements: (query id, doc id) pairs present in `qrels` (with gain
      0) that must not be used as training labels, e.g. Cranfield's code -1.
    report: counters of what the reader skipped, repaired or noticed.
    max_gain: the largest gain the collection's scale allows.
    query_splits: the dataset's own split of each judged query (query id ->
      'train' | 'dev' | 'test'), for datasets that ship official splits (BEIR
      qrels/{train,dev,test}.tsv); None when the dataset has none.
  """
  name: str
  queries: Dict[str, Query]
  documents: Dict[str, Document]
  qrels: Qrels
  run: Optional[Run] = None
  excluded_judgements: Set[Tuple[str, str]] = dataclasses.field(
      default_factory=set)
  report: Dict[str, int] = dataclasses.field(default_factory=dict)
  max_gain: int = 1
  query_splits: Optional[Dict[str, str]] = None

  def relevant_query_ids(self) -> List[str]:
    """Ids of queries with at least one judgement of gain >= 1."""
    return [q for q, docs in self.qrels.items()
            if any(g >= 1 for g in docs.values())]
