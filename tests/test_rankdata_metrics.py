"""rankdata.metrics must agree with pytrec_eval (trec_eval) to 1e-6."""

import pytest
import pytrec_eval

from rankdata import bm25
from rankdata import cranfield
from rankdata import metrics

MEASURES = {'ndcg_cut.5,10', 'map', 'recip_rank'}
OURS_VS_TREC = {'ndcg@5': 'ndcg_cut_5', 'ndcg@10': 'ndcg_cut_10',
                'map': 'map', 'mrr': 'recip_rank'}


def _top(run, k):
  """Each query's top k in trec_eval order (for MRR@k via recip_rank)."""
  return {q: dict(metrics.rank_order(docs.items())[:k])
          for q, docs in run.items()}


def _compare(run, qrels):
  ours = metrics.per_query_metrics(run, qrels)
  theirs = pytrec_eval.RelevanceEvaluator(qrels, MEASURES).evaluate(run)
  assert set(ours) == set(theirs)
  theirs_at_10 = pytrec_eval.RelevanceEvaluator(
      qrels, {'recip_rank'}).evaluate(_top(run, 10))
  for q in ours:
    for name, trec_name in OURS_VS_TREC.items():
      assert ours[q][name] == pytest.approx(theirs[q][trec_name], abs=1e-6), (
          q, name)
    assert ours[q]['mrr@10'] == pytest.approx(
        theirs_at_10[q]['recip_rank'], abs=1e-6), q
  mean = metrics.evaluate_run(run, qrels)
  assert mean['num_queries'] == len(theirs)
  for name, trec_name in OURS_VS_TREC.items():
    expected = sum(v[trec_name] for v in theirs.values()) / len(theirs)
    assert mean[name] == pytest.approx(expected, abs=1e-6), name
  return ours


QRELS = {
    'q1': {'d1': 3, 'd2': 0, 'd3': 1, 'd4': 2, 'd9': 1},   # d9 never retrieved
    'q2': {'d5': 1, 'd6': 1},
    'q3': {'d1': 0, 'd2': 0},                              # judged, none relevant
    'q4': {'d7': 2},                                       # not in the run
}


def test_hand_made_runs_with_ties():
  run = {
      'q1': {'d1': 2.0, 'd2': 2.0, 'd3': 1.5, 'd4': 1.5, 'd8': 1.5, 'd5': 0.1},
      'q2': {'a': 1.0, 'b': 1.0, 'd5': 1.0, 'd6': 1.0, 'z': 1.0},  # all tied
      'q3': {'d1': 3.0, 'd2': 1.0},
      'q5': {'d1': 1.0},                                   # not in the qrels
  }
  ours = _compare(run, QRELS)
  assert set(ours) == {'q1', 'q2', 'q3'}
  # Tie broken by doc id descending: d2 (gain 0) before d1 (gain 3).
  assert ours['q1']['mrr'] == pytest.approx(0.5)
  # q2: all tied -> order z, d6, d5, b, a.
  assert ours['q2']['mrr'] == pytest.approx(0.5)
  assert ours['q3'] == {'ndcg@5': 0.0, 'ndcg@10': 0.0, 'mrr@10': 0.0,
                        'mrr': 0.0, 'map': 0.0}


def test_relevant_beyond_ten_and_empty_ranking():
  run = {'q1': {f'x{i:02d}': 100.0 - i for i in range(12)},
         'q2': {}}
  run['q1']['d1'] = 50.0          # rank 13: counts for MRR, not for MRR@10
  ours = _compare(run, QRELS)
  assert ours['q1']['mrr@10'] == 0.0 and ours['q1']['mrr'] > 0.0
  assert ours['q2']['map'] == 0.0


def test_ideal_dcg_uses_all_judgements():
  # Only d3 (gain 1) retrieved; the ideal ranks 3, 2, 1, 1 first.
  ours = _compare({'q1': {'d3': 1.0}}, QRELS)
  assert 0.0 < ours['q1']['ndcg@10'] < 0.25


def test_no_overlap_gives_zero_queries():
  result = metrics.evaluate_run({'x': {'d': 1.0}}, QRELS)
  assert result['num_queries'] == 0 and result['ndcg@10'] == 0.0


def test_rank_order():
  assert metrics.rank_order([('a', 1.0), ('b', 2.0), ('c', 1.0)]) == [
      ('b', 2.0), ('c', 1.0), ('a', 1.0)]


def test_cranfield_bm25_run_matches_pytrec_eval():
  ds = cranfield.load_cranfield(cranfield.default_cranfield_dir())
  index = bm25.BM25Index(list(ds.documents.values()), bm25.BM25Params())
  run = metrics.run_as_dict(bm25.bm25_run(index, ds.queries, 100))
  ours = _compare(run, ds.qrels)
  assert len(ours) == 225
