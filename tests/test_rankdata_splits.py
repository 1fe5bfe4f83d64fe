"""Example builder: seeded assignment, disjoint splits, labels, counts."""

import json

import pytest

from rankdata import bm25
from rankdata import cranfield
from rankdata import features
from rankdata import splits
from rankdata import types

TRAIN, DEV, UNL, TEST = (features.SPLIT_TRAIN, features.SPLIT_DEV,
                         features.SPLIT_UNLABELLED, features.SPLIT_TEST)
KEYS = {features.QUERY_ID, features.DOC_ID, features.QUERY, features.DOC,
        features.LABEL, features.FIRST_STAGE_SCORE, features.FIRST_STAGE_RANK}
CFG = splits.SplitConfig(train_queries=50, dev_queries=25, test_queries=100,
                         candidates_k=20, max_title_queries=300)


@pytest.fixture(scope='module')
def ds():
  return cranfield.load_cranfield(cranfield.default_cranfield_dir())


@pytest.fixture(scope='module')
def result(ds):
  return splits.build_examples(ds, CFG)


def _by_query(examples):
  out = {}
  for ex in examples:
    out.setdefault(ex[features.QUERY_ID], []).append(ex)
  return out


def test_assignment_is_seeded_and_documented_order():
  ids = [str(i) for i in range(1, 21)]
  cfg = splits.SplitConfig(train_queries=5, dev_queries=3, test_queries=4)
  a = splits.assign_query_splits(ids, cfg, labelled=ids[:15])
  assert a == splits.assign_query_splits(list(reversed(ids)), cfg,
                                         labelled=ids[:15])
  assert [len(a[s]) for s in (TRAIN, DEV, TEST, UNL)] == [5, 3, 4, 8]
  assert set(ids[15:]) <= set(a[UNL])             # unlabelled-only queries
  other = splits.assign_query_splits(
      ids, splits.SplitConfig(seed=7, train_queries=5, dev_queries=3,
                              test_queries=4), labelled=ids[:15])
  assert other != a
  # Test is cut first: growing train does not move the test queries.
  bigger = splits.assign_query_splits(
      ids, splits.SplitConfig(train_queries=8, dev_queries=3, test_queries=4),
      labelled=ids[:15])
  assert bigger[TEST] == a[TEST] and bigger[DEV] == a[DEV]


def test_assignment_too_many_requested():
  with pytest.raises(ValueError, match='= 12 queries, but only 10 of 20'):
    splits.assign_query_splits(
        [str(i) for i in range(20)],
        splits.SplitConfig(train_queries=5, dev_queries=3, test_queries=4),
        labelled=[str(i) for i in range(10)])


def test_deterministic(ds, result):
  again = splits.build_examples(ds, CFG)
  assert again.queries == result.queries
  assert again.examples == result.examples
  other = splits.build_examples(ds, splits.SplitConfig(
      seed=1, train_queries=50, dev_queries=25, test_queries=100,
      candidates_k=5, title_queries=False))
  assert other.queries[TEST] != result.queries[TEST]


def test_disjoint_and_complete(ds, result):
  assigned = [q for s in features.ALL_SPLITS for q in result.queries[s]]
  assert len(assigned) == len(set(assigned))
  title_ids = {q for q in assigned if q.startswith(splits.TITLE_QUERY_PREFIX)}
  assert len(title_ids) == 300 == result.params['title_queries']
  assert set(assigned) - title_ids == set(ds.queries)
  assert sum(result.stats[s]['queries'] for s in features.ALL_SPLITS) == (
      len(ds.queries) + len(title_ids))
  assert [len(result.queries[s]) for s in (TRAIN, DEV, TEST)] == [50, 25, 100]
  for split in features.ALL_SPLITS:
    assert {e[features.QUERY_ID] for e in result.examples[split]} <= set(
        result.queries[split])


def test_counts_add_up(ds, result):
  for split in features.ALL_SPLITS:
    st, examples = result.stats[split], result.examples[split]
    per_query = _by_query(examples)
    assert st['pairs'] == len(examples) == sum(len(v) for v in
                                               per_query.values())
    assert st['queries'] == len(result.queries[split])
    assert st['queries_without_pairs'] == st['queries'] - len(per_query)
    assert st['labelled_pairs'] == sum(
        e[features.LABEL] is not None for e in examples)
    assert st['positive_pairs'] == sum(
        ds.qrels.get(e[features.QUERY_ID], {}).get(e[features.DOC_ID], 0) >= 1
        for e in examples)
  unl = result.stats[UNL]
  assert unl['queries'] == (unl['title_queries'] + unl['hidden_label_queries']
                            + unl['no_relevant_queries'])
  for split in (TRAIN, DEV):
    st = result.stats[split]
    union = [{d for d, _ in bm25_top(ds, q)} | set(ds.qrels[q])
             for q in result.queries[split]]
    assert st['pairs'] + st['excluded_pairs'] == sum(len(u) for u in union)
    assert st['excluded_pairs'] == len(result.queries[split])  # one -1 each
    assert st['pairs'] == st['queries'] * CFG.candidates_k + st[
        'added_judged_pairs'] - sum(
            (q, d) in ds.excluded_judgements
            for q in result.queries[split] for d, _ in bm25_top(ds, q))


_TOP = {}


def bm25_top(ds, query_id):
  if not _TOP:
    index = bm25.BM25Index(list(ds.documents.values()), CFG.bm25)
    _TOP.update(bm25.bm25_run(index, ds.queries, CFG.candidates_k))
  return _TOP[query_id]


def test_labels_per_split(ds, result):
  for split, examples in result.examples.items():
    for e in examples:
      assert set(e) == KEYS
      gain = ds.qrels.get(e[features.QUERY_ID], {}).get(e[features.DOC_ID], 0)
      if split == UNL:
        assert e[features.LABEL] is None
      else:
        assert e[features.LABEL] == float(gain)
      if split in (TRAIN, DEV):
        assert (e[features.QUERY_ID], e[features.DOC_ID]) not in (
            ds.excluded_judgements)


def test_lists_and_first_stage(ds, result):
  for split in (TRAIN, DEV):
    for query_id, examples in _by_query(result.examples[split]).items():
      docs = {e[features.DOC_ID] for e in examples}
      relevant = {d for d, g in ds.qrels[query_id].items() if g >= 1}
      assert relevant <= docs                      # judged docs added
      top = bm25_top(ds, query_id)
      for rank, (doc_id, score) in enumerate(top, start=1):
        if (query_id, doc_id) not in ds.excluded_judgements:
          e = next(x for x in examples if x[features.DOC_ID] == doc_id)
          assert e[features.FIRST_STAGE_RANK] == rank
          assert e[features.FIRST_STAGE_SCORE] == pytest.approx(score)
      added = [e for e in examples if e[features.DOC_ID] not in dict(top)]
      assert all(e[features.FIRST_STAGE_RANK] > CFG.candidates_k
                 for e in added)
  test_lists = _by_query(result.examples[TEST])
  for query_id in result.queries[TEST]:
    assert [e[features.DOC_ID] for e in test_lists[query_id]] == [
        d for d, _ in bm25_top(ds, query_id)]
  assert set(result.qrels) == {DEV, TEST, features.SPLIT_CALIBRATION}
  for split in (DEV, TEST):
    assert result.qrels[split] == {q: ds.qrels[q]
                                   for q in result.queries[split]}


def test_title_queries(ds, result):
  titles = [e for e in result.examples[UNL]
            if e[features.QUERY_ID].startswith(splits.TITLE_QUERY_PREFIX)]
  first = _by_query(titles)
  for query_id, examples in first.items():
    doc_id = query_id[len(splits.TITLE_QUERY_PREFIX):]
    assert examples[0][features.QUERY] == ds.documents[doc_id].title
    assert len(examples) <= CFG.candidates_k


def test_params_record_everything(result):
  params = json.loads(json.dumps(result.params))
  assert params['first_stage'] == 'bm25'
  assert params['split_config']['seed'] == 42
  assert params['split_config']['bm25'] == {
      'k1': 0.9, 'b': 0.4, 'method': 'lucene', 'stemmer': 'english',
      'stopwords': 'en'}


def _small_run_dataset():
  docs = {d: types.Document(d, f'title {d}', f'body {d} words')
          for d in ('a', 'b', 'c', 'd', 'e')}
  queries = {q: types.Query(q, f'words {q}') for q in ('1', '2', '3', '4')}
  qrels = {'1': {'a': 2, 'e': 1, 'd': 0}, '2': {'b': 1}, '3': {'c': 1},
           '4': {'c': 0}}
  run = {'1': [('a', 3.0), ('b', 2.0)], '2': [('b', 5.0), ('c', 4.0)],
         '3': [('c', 1.0)]}
  return types.RankingDataset(
      name='small', queries=queries, documents=docs, qrels=qrels, run=run,
      excluded_judgements={('1', 'd')}, max_gain=2)


def test_run_as_first_stage():
  ds = _small_run_dataset()
  cfg = splits.SplitConfig(train_queries=3, dev_queries=0, test_queries=0,
                           candidates_k=5, title_queries=False)
  result = splits.build_examples(ds, cfg)
  assert result.params['first_stage'] == 'run'
  assert result.queries[UNL] == ['4']              # no relevant judgement
  assert result.stats[UNL]['no_relevant_queries'] == 1
  assert result.stats[UNL]['queries_without_pairs'] == 1   # not in the run
  q1 = _by_query(result.examples[TRAIN])['1']
  # a, b from the run; e added (rank 0, lowest run score); d excluded (-1).
  assert [(e[features.DOC_ID], e[features.FIRST_STAGE_RANK],
           e[features.FIRST_STAGE_SCORE], e[features.LABEL]) for e in q1] == [
               ('a', 1, 3.0, 2.0), ('b', 2, 2.0, 0.0), ('e', 0, 2.0, 1.0)]
  assert result.stats[TRAIN]['excluded_pairs'] == 1   # d, judged -1
  assert result.stats[TRAIN]['added_judged_pairs'] == 1
  assert q1[0][features.DOC] == 'title a body a words'


def test_without_judged_docs_in_train():
  ds = _small_run_dataset()
  cfg = splits.SplitConfig(train_queries=3, dev_queries=0, test_queries=0,
                           include_judged_in_train=False, title_queries=False)
  q1 = _by_query(splits.build_examples(ds, cfg).examples[TRAIN])['1']
  assert [e[features.DOC_ID] for e in q1] == ['a', 'b']


def test_pairs_dataset_is_all_unlabelled():
  ds = _small_run_dataset()
  ds.qrels, ds.excluded_judgements = {}, set()
  cfg = splits.SplitConfig(train_queries=0, dev_queries=0, test_queries=0,
                           max_title_queries=2, title_candidates_k=2)
  result = splits.build_examples(ds, cfg)
  assert result.stats[UNL]['queries'] == 4 + 2
  assert result.stats[UNL]['title_queries'] == 2
  assert all(e[features.LABEL] is None for e in result.examples[UNL])
  with pytest.raises(ValueError, match='only 0 of 4 queries'):
    splits.build_examples(ds, splits.SplitConfig(
        train_queries=1, dev_queries=0, test_queries=0))
