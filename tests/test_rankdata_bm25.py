"""BM25Index: bm25s scoring, deterministic order, empty texts, k > corpus."""

import numpy as np
import pytest

from rankdata import bm25
from rankdata import metrics
from rankdata.types import Document

DOCS = [
    Document('1', 'Wing flutter', 'flutter of a wing in supersonic flow'),
    Document('2', '', 'boundary layer flow over a flat plate'),
    Document('3', 'Empty body', ''),
    Document('4', '', ''),                       # empty document
    Document('5', 'Flow', 'flow flow'),
    Document('6', 'Flow', 'flow flow'),          # ties with 5
]


@pytest.fixture(scope='module')
def index():
  return bm25.BM25Index(DOCS)


def test_params_record():
  assert bm25.BM25Params().asdict() == {
      'k1': 0.9, 'b': 0.4, 'method': 'lucene', 'stemmer': 'english',
      'stopwords': 'en'}


def test_counts_empty_documents(index):
  assert index.counters['empty_documents'] == 1
  assert len(index) == 6


def test_search_order_ties_and_short_lists(index):
  (ranking,) = index.search(['flows'], k=100)     # k > corpus: clamped
  ids = [d for d, _ in ranking]
  # Stemming matches 'flows' to 'flow'; only documents with the token return.
  assert set(ids) == {'1', '2', '5', '6'}
  assert ranking == metrics.rank_order(ranking)
  assert ids.index('6') < ids.index('5')         # tie: doc id descending
  assert ranking[0][1] > 0


def test_top_k_cut_respects_ties(index):
  assert index.search_one('flow', 1)[0][0] == '6'


def test_scores_are_bm25s_scores(index):
  scores = index.score_all('wing flutter')
  assert scores.shape == (6,)
  assert scores[0] > 0 and np.all(scores[1:] == 0)
  assert index.score_docs('wing flutter', ['1', '4'])['4'] == 0.0


def test_empty_and_unknown_queries(index):
  before = index.counters['empty_queries']
  assert index.search(['', 'the of and', 'zeppelin'], k=3) == [[], [], []]
  assert index.counters['empty_queries'] == before + 3
  assert not index.score_all('').any()


def test_ranks_of_agree_with_search(index):
  ranking = index.search_one('flow', 6)
  ranks = index.ranks_of('flow', [d for d, _ in ranking] + ['4'])
  for position, (doc_id, score) in enumerate(ranking, start=1):
    assert ranks[doc_id] == (position, pytest.approx(score))
  assert ranks['4'][0] > len(ranking)


def test_stemmer_and_stopwords_can_be_off():
  index = bm25.BM25Index(DOCS, bm25.BM25Params(stemmer=None, stopwords=None))
  assert index.search_one('flows', 3) == []
  assert index.search_one('of', 3)[0][0] == '1'


def test_no_indexable_document_is_an_error():
  with pytest.raises(ValueError, match='no document has any indexable token'):
    bm25.BM25Index([Document('1', '', '')])
