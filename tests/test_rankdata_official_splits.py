"""Official splits (BEIR NFCorpus), the calibration split and the label budget."""

import os

import pytest

from rankdata import beir
from rankdata import bm25
from rankdata import features
from rankdata import loaders
from rankdata import metrics
from rankdata import splits
from tests import e2e_util

TRAIN, DEV, UNL, TEST, CAL = (features.SPLIT_TRAIN, features.SPLIT_DEV, features.SPLIT_UNLABELLED,
                              features.SPLIT_TEST, features.SPLIT_CALIBRATION)
NFCORPUS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), '..',
                        'shared', 'datasets', 'nfcorpus')


@pytest.fixture(scope='module')
def nfcorpus():
  assert os.path.isdir(NFCORPUS), f'NFCorpus not found at {NFCORPUS}'
  return beir.load_beir(NFCORPUS, official_splits=True)


def test_nfcorpus_official_counts(nfcorpus):
  # The README's counts: 2,590 / 324 / 323 queries; their union is every query.
  by_split = {}
  for split in nfcorpus.query_splits.values():
    by_split[split] = by_split.get(split, 0) + 1
  assert by_split == {'train': 2590, 'dev': 324, 'test': 323}
  assert len(nfcorpus.queries) == 3237 and len(nfcorpus.documents) == 3633
  assert nfcorpus.report['train_queries'] == 2590
  # CRLF qrels: grades parse as integers; train has grade 1 only.
  grades = {g for q, docs in nfcorpus.qrels.items() if nfcorpus.query_splits[q] == 'train'
            for g in docs.values()}
  assert grades == {1}
  assert sum(len(d) for q, d in nfcorpus.qrels.items()
             if nfcorpus.query_splits[q] == 'test') == 12334


def test_nfcorpus_bm25_matches_reference(nfcorpus):
  """BM25 over the official test split, empty runs scored 0: README 0.3177."""
  cfg = splits.SplitConfig(source='official', train_queries=None, dev_queries=None,
                           test_queries=None, title_queries=False)
  assigned = splits.assign_query_splits(nfcorpus.queries, cfg,
                                        labelled=nfcorpus.relevant_query_ids(),
                                        official=nfcorpus.query_splits)
  assert len(assigned[TEST]) == 323 and len(assigned[DEV]) == 324
  assert len(assigned[TRAIN]) == 2590 and assigned[UNL] == []
  index = bm25.BM25Index(list(nfcorpus.documents.values()), bm25.BM25Params(k1=0.9, b=0.4))
  run = bm25.bm25_run(index, {q: nfcorpus.queries[q] for q in assigned[TEST]}, 100)
  qrels = {q: nfcorpus.qrels[q] for q in assigned[TEST]}
  result = metrics.evaluate_run(metrics.run_as_dict(run), qrels, complete=True)
  assert result['num_queries'] == 323
  assert result['ndcg@10'] == pytest.approx(0.3177, abs=0.0015)
  # Dropping the queries BM25 finds nothing for would inflate it (README item 7).
  nonempty = {q: docs for q, docs in run.items() if docs}
  assert len(nonempty) < 323
  assert metrics.evaluate_run(metrics.run_as_dict(nonempty), qrels)['ndcg@10'] > result['ndcg@10']


def test_official_caps_calibration_and_budget():
  ids = [f'q{i}' for i in range(40)]
  official = {q: ('train' if i < 24 else 'dev' if i < 32 else 'test') for i, q in enumerate(ids)}
  cfg = splits.SplitConfig(source='official', seed=3, train_queries=None, dev_queries=5,
                           test_queries=None, calibration_queries=4, labelled_fraction=0.5)
  a = splits.assign_query_splits(ids, cfg, official=official)
  assert sorted(a[TEST]) == sorted(q for q in ids if official[q] == 'test')  # never capped
  assert len(a[DEV]) == 5 and set(a[DEV]) <= {q for q in ids if official[q] == 'dev'}
  assert len(a[CAL]) == 4 and set(a[CAL]) <= {q for q in ids if official[q] == 'train'}
  assert len(a[TRAIN]) == 10                       # half of the 20 train queries left
  assigned = [q for s in features.ALL_SPLITS for q in a[s]]
  assert sorted(assigned) == sorted(ids)          # disjoint and complete
  assert len(a[UNL]) == 3 + 10                    # capped dev + hidden-label train


def test_label_budget_is_nested_and_keeps_other_splits():
  ids = [str(i) for i in range(1, 101)]
  base = dict(train_queries=40, dev_queries=10, test_queries=20, calibration_queries=5)
  full = splits.assign_query_splits(ids, splits.SplitConfig(**base))
  quarter = splits.assign_query_splits(ids, splits.SplitConfig(**base, labelled_fraction=0.25))
  tenth = splits.assign_query_splits(ids, splits.SplitConfig(**base, labelled_fraction=0.1))
  assert len(full[TRAIN]) == 35 and len(quarter[TRAIN]) == 9 and len(tenth[TRAIN]) == 4
  assert set(tenth[TRAIN]) <= set(quarter[TRAIN]) <= set(full[TRAIN])
  for split in (DEV, TEST, CAL):
    assert full[split] == quarter[split] == tenth[split]
  assert set(full[TRAIN]) - set(quarter[TRAIN]) <= set(quarter[UNL])


def test_calibration_zero_keeps_the_old_assignment():
  ids = [str(i) for i in range(1, 61)]
  cfg = splits.SplitConfig(train_queries=20, dev_queries=10, test_queries=10)
  a = splits.assign_query_splits(ids, cfg)
  assert a[CAL] == []
  with_cal = splits.assign_query_splits(ids, splits.SplitConfig(
      train_queries=20, dev_queries=10, test_queries=10, calibration_queries=5))
  assert with_cal[TEST] == a[TEST] and with_cal[DEV] == a[DEV]
  assert sorted(with_cal[TRAIN] + with_cal[CAL]) == sorted(a[TRAIN])


def test_official_needs_a_dataset_with_splits():
  cfg = splits.SplitConfig(source='official', train_queries=None, dev_queries=None,
                           test_queries=None)
  with pytest.raises(ValueError, match='no official splits'):
    splits.assign_query_splits(['1', '2'], cfg)
  with pytest.raises(ValueError, match="format 'cranfield' has no official splits"):
    loaders.load('cranfield', '/nonexistent', official_splits=True)
  with pytest.raises(ValueError, match='must be set when source'):
    splits.SplitConfig(train_queries=None)
  with pytest.raises(ValueError, match='labelled_fraction'):
    splits.SplitConfig(labelled_fraction=0.0)


def test_query_in_two_official_splits_is_an_error(tmp_path):
  (tmp_path / 'qrels').mkdir()
  (tmp_path / 'corpus.jsonl').write_text('{"_id": "d1", "title": "", "text": "wing lift"}\n')
  (tmp_path / 'queries.jsonl').write_text('{"_id": "q1", "text": "lift"}\n')
  for split in ('train', 'test'):
    (tmp_path / 'qrels' / f'{split}.tsv').write_text('query-id\tcorpus-id\tscore\nq1\td1\t1\n')
  with pytest.raises(Exception, match="also judged in qrels/train.tsv"):
    beir.load_beir(str(tmp_path), official_splits=True)


def test_train_candidates_k_shortens_training_lists_only():
  from rankdata import cranfield  # pylint: disable=g-import-not-at-top
  ds = cranfield.load_cranfield(cranfield.default_cranfield_dir())
  base = dict(train_queries=10, dev_queries=5, test_queries=5, calibration_queries=2,
              candidates_k=20, title_queries=False, include_judged_in_train=False)
  full = splits.build_examples(ds, splits.SplitConfig(**base))
  short = splits.build_examples(ds, splits.SplitConfig(**base, train_candidates_k=5))
  for split in (DEV, TEST, CAL):   # what evaluation reranks (and calibrates on)
    assert short.examples[split] == full.examples[split]
  # Labelled and unlabelled training queries: the first 5 of each list
  # (Cranfield's excluded -1 pairs can make a list shorter).
  for split in (TRAIN, UNL):
    assert short.queries[split] == full.queries[split]
    for query_id in short.queries[split]:
      full_list = [e for e in full.examples[split] if e[features.QUERY_ID] == query_id]
      short_list = [e for e in short.examples[split] if e[features.QUERY_ID] == query_id]
      assert short_list == [e for e in full_list if e[features.FIRST_STAGE_RANK] <= 5]
  assert 30 <= len(short.examples[TRAIN]) <= 5 * 8 < len(full.examples[TRAIN])
  assert len(short.examples[UNL]) <= 5 * len(short.queries[UNL]) < len(full.examples[UNL])
  with pytest.raises(ValueError, match='train_candidates_k'):
    splits.SplitConfig(candidates_k=10, train_candidates_k=11)


def _trec_split(root, split, topics, qrels, run=None):
  d = root / split
  d.mkdir()
  (d / 'topics.tsv').write_text(topics)
  (d / 'qrels.txt').write_text(qrels)
  if run is not None:
    (d / 'run.txt').write_text(run)


def test_trec_official_splits(tmp_path):
  from rankdata import trec  # pylint: disable=g-import-not-at-top
  (tmp_path / 'docs.tsv').write_text('d1\twing lift\nd2\tshock wave\nd3\tboundary layer\n')
  _trec_split(tmp_path, 'train', 't1\tlift\n', 't1 0 d1 1\n', 't1 Q0 d1 1 2.0 bm25\n')
  _trec_split(tmp_path, 'test', 'q1\tshock\nq2\tlayer\n', 'q1 0 d2 2\nq2 0 d3 1\n',
              'q1 Q0 d2 1 3.0 bm25\nq2 Q0 d3 1 1.5 bm25\n')
  ds = loaders.load('trec', str(tmp_path), official_splits=True)
  assert ds.query_splits == {'t1': 'train', 'q1': 'test', 'q2': 'test'}
  assert ds.qrels == {'t1': {'d1': 1}, 'q1': {'d2': 2}, 'q2': {'d3': 1}}
  assert set(ds.run) == {'t1', 'q1', 'q2'}
  # No dev split and none wanted (dev_queries=0): see the BEIR tests below.
  cfg = splits.SplitConfig(source='official', train_queries=None, dev_queries=0,
                           test_queries=None, candidates_k=2, title_queries=False)
  result = splits.build_examples(ds, cfg)
  assert result.queries[TEST] == ['q1', 'q2'] and result.queries[TRAIN] == ['t1']
  assert result.params['first_stage'] == 'run'
  # A run for train but not for test: one first stage must rank every split.
  (tmp_path / 'test' / 'run.txt').unlink()
  with pytest.raises(Exception, match='not for every split'):
    trec.load_trec(str(tmp_path), official_splits=True)
  # A topic in two splits.
  (tmp_path / 'test' / 'topics.tsv').write_text('t1\tlift\n')
  (tmp_path / 'test' / 'qrels.txt').write_text('t1 0 d1 1\n')
  (tmp_path / 'train' / 'run.txt').unlink()
  with pytest.raises(Exception, match='also a train topic'):
    trec.load_trec(str(tmp_path), official_splits=True)


# ----------------------------------------- BEIR without dev: train + test only

def _official(**fields):
  base = dict(source='official', train_queries=None, dev_queries=4, test_queries=None,
              candidates_k=3, title_queries=False)
  return splits.SplitConfig(**{**base, **fields})


def _beir_split_of(query_id):
  return query_id.split('-')[0]


def test_beir_train_and_test_only_carves_a_seeded_dev_from_train(tmp_path, caplog):
  directory = e2e_util.write_beir(str(tmp_path / 'beir'), {'train': 20, 'test': 6})
  ds = loaders.load('beir', directory, official_splits=True)
  assert set(ds.query_splits.values()) == {'train', 'test'}
  with caplog.at_level('INFO', logger='absl'):
    result = splits.build_examples(ds, _official(dev_from_train=True))
  q = result.queries
  assert len(q[DEV]) == 4 and {_beir_split_of(x) for x in q[DEV]} == {'train'}
  assert q[TEST] == sorted((x for x in ds.queries if x.startswith('test-')),
                           key=splits.id_sort_key)   # the official test, whole
  assert sorted(q[TRAIN] + q[DEV], key=splits.id_sort_key) == sorted(
      (x for x in ds.queries if x.startswith('train-')), key=splits.id_sort_key)
  assert q[UNL] == [] and q[CAL] == []
  # Dev is built and judged like any dev split.
  assert {e[features.QUERY_ID] for e in result.examples[DEV]} == set(q[DEV])
  assert set(result.qrels[DEV]) == set(q[DEV])
  assert ('splits.dev_from_train: the dataset has no dev split; 4 of its 20 official train '
          'queries became dev (seed 42)') in caplog.text
  # Seeded: the same seed carves the same dev; the train cap samples what is left.
  again = splits.assign_query_splits(ds.queries, _official(dev_from_train=True),
                                     official=ds.query_splits)
  assert again[DEV] == q[DEV]
  other = splits.assign_query_splits(ds.queries, _official(dev_from_train=True, seed=1),
                                     official=ds.query_splits)
  assert other[DEV] != q[DEV] and other[TEST] == q[TEST]
  capped = splits.assign_query_splits(ds.queries, _official(dev_from_train=True,
                                                            train_queries=10),
                                      official=ds.query_splits)
  assert capped[DEV] == q[DEV] and len(capped[TRAIN]) == 10 and len(capped[UNL]) == 6


def test_beir_without_dev_needs_dev_from_train(tmp_path):
  directory = e2e_util.write_beir(str(tmp_path / 'beir'), {'train': 20, 'test': 6})
  ds = loaders.load('beir', directory, official_splits=True)
  with pytest.raises(ValueError, match=r'no official dev split .*splits\.dev_from_train: true'):
    splits.build_examples(ds, _official())
  with pytest.raises(ValueError, match='dev_queries=20 leaves no train query'):
    splits.assign_query_splits(ds.queries, _official(dev_from_train=True, dev_queries=20),
                               official=ds.query_splits)


def test_dev_from_train_is_refused_where_it_cannot_apply(tmp_path):
  directory = e2e_util.write_beir(str(tmp_path / 'beir'), {'train': 8, 'dev': 3, 'test': 3})
  ds = loaders.load('beir', directory, official_splits=True)
  with pytest.raises(ValueError, match='dev_from_train is set but the dataset has an official '
                     'dev split'):
    splits.assign_query_splits(ds.queries, _official(dev_from_train=True),
                               official=ds.query_splits)
  with pytest.raises(ValueError, match="dev_from_train needs source 'official'"):
    splits.SplitConfig(dev_from_train=True)
  with pytest.raises(ValueError, match="dev_from_train needs source 'official'"):
    _official(dev_from_train=True, dev_queries=None)


def test_beir_test_only_is_an_error_that_names_the_seeded_alternative(tmp_path):
  directory = e2e_util.write_beir(str(tmp_path / 'beir'), {'test': 30})
  ds = loaders.load('beir', directory, official_splits=True)
  with pytest.raises(ValueError, match=r'only the official test split .*splits\.source: seeded'):
    splits.build_examples(ds, _official(dev_from_train=True))
  # The seeded alternative: train/dev/test cut by seed from the judged queries.
  seeded = splits.build_examples(loaders.load('beir', directory), splits.SplitConfig(
      train_queries=15, dev_queries=5, test_queries=10, candidates_k=3, title_queries=False))
  assert [len(seeded.queries[s]) for s in (TRAIN, DEV, TEST)] == [15, 5, 10]
