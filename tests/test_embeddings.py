"""components/common/embeddings.py: the one bi-encoder path (batch scoring and Beam)."""

import numpy as np
import pytest

from components.common import embeddings
from components.common import scoring


class CountingBiEncoder:
  """embedding(t) = a fixed vector per text; records every text it embeds."""
  is_bi_encoder = True

  def __init__(self):
    self.embedded = []

  @staticmethod
  def vector(text, side):
    rng = np.random.default_rng(abs(hash((text, side))) % (1 << 32))
    return rng.normal(size=4).astype(np.float32)

  def embed_queries(self, texts, batch_size=64):
    self.embedded += [('q', t) for t in texts]
    return np.stack([self.vector(t, 'q') for t in texts])

  def embed_documents(self, texts, batch_size=64):
    self.embedded += [('d', t) for t in texts]
    return np.stack([self.vector(t, 'd') for t in texts])

  def score_embeddings(self, q, d):
    return (q * d).sum(axis=1).astype(np.float32)


def test_unique_keeps_first_seen_order_and_maps_back():
  order, ids = embeddings.unique(['b', 'a', 'b', 'c', 'a'])
  assert order == ['b', 'a', 'c']
  assert ids.tolist() == [0, 1, 0, 2, 1]


def test_score_pairs_embeds_each_unique_text_once_and_scores_rowwise():
  scorer = CountingBiEncoder()
  queries = ['q1', 'q1', 'q2', 'q1']
  docs = ['d1', 'd2', 'd1', 'd1']
  got = embeddings.score_pairs(scorer, queries, docs, batch_size=2)
  assert sorted(scorer.embedded) == [('d', 'd1'), ('d', 'd2'), ('q', 'q1'), ('q', 'q2')]
  want = [float(scorer.vector(q, 'q') @ scorer.vector(d, 'd')) for q, d in zip(queries, docs)]
  np.testing.assert_allclose(got, want, rtol=1e-6)
  assert got.dtype == np.float32
  # scoring.py (chunked, with progress) gives the same numbers through the same code.
  np.testing.assert_array_equal(scoring.score_pairs(CountingBiEncoder(), queries, docs, 2), got)


def test_cache_embeds_each_text_once_across_calls_with_the_same_scores():
  scorer, cache = CountingBiEncoder(), embeddings.Cache()
  dev = (['q1', 'q2'], ['d1', 'd2'])
  test = (['q3', 'q3', 'q1'], ['d2', 'd3', 'd1'])   # shares d1, d2 and q1 with dev
  got_dev = scoring.score_pairs(scorer, *dev, batch_size=2, cache=cache)
  got_test = scoring.score_pairs(scorer, *test, batch_size=2, cache=cache)
  assert sorted(scorer.embedded) == [('d', 'd1'), ('d', 'd2'), ('d', 'd3'),
                                     ('q', 'q1'), ('q', 'q2'), ('q', 'q3')]
  np.testing.assert_array_equal(got_dev, scoring.score_pairs(CountingBiEncoder(), *dev, 2))
  np.testing.assert_array_equal(got_test, scoring.score_pairs(CountingBiEncoder(), *test, 2))
  # A call whose texts are all cached embeds nothing.
  before = len(scorer.embedded)
  np.testing.assert_array_equal(scoring.score_pairs(scorer, *dev, batch_size=2, cache=cache),
                                got_dev)
  assert len(scorer.embedded) == before


def test_bytes_round_trip_and_score_rows_match_score_pairs():
  scorer = CountingBiEncoder()
  q = embeddings.embed(scorer, embeddings.QUERY, ['q1', 'q2'], 8)
  d = embeddings.embed(scorer, embeddings.DOCUMENT, ['d1', 'd2'], 8)
  rows = [('pair0', embeddings.to_bytes(q[0]), embeddings.to_bytes(d[1])),
          ('pair1', embeddings.to_bytes(q[1]), embeddings.to_bytes(d[0]))]
  np.testing.assert_array_equal(embeddings.from_bytes([r[1] for r in rows]), q)
  np.testing.assert_array_equal(
      embeddings.score_rows(scorer, rows),
      embeddings.score_pairs(scorer, ['q1', 'q2'], ['d2', 'd1'], 8))
  with pytest.raises(ValueError, match='side'):
    embeddings.embed(scorer, 'passage', ['x'], 8)
