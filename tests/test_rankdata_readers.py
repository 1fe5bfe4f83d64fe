"""BEIR, TREC and pairs readers, the format dispatch and dataset stats."""

import json
import os

import pytest

from rankdata import beir
from rankdata import loaders
from rankdata import pairs
from rankdata import stats
from rankdata import trec
from rankdata.errors import DataFormatError


def _jsonl(path, rows):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(''.join(json.dumps(r) + '\n' for r in rows))


def _assert_error(error_info, path, line, problem):
  error = error_info.value
  assert error.path == str(path) and error.line == line
  assert str(error).startswith(f'{path}:{line}: ')
  assert problem in str(error)


# ---------------------------------------------------------------- BEIR

def _beir(tmp_path, qrels='query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\n'
          'q2\td3\t1\nq9\td1\t1\nq1\tdx\t1\nq2\td3\t2\n'):
  _jsonl(tmp_path / 'corpus.jsonl', [
      {'_id': 'd1', 'title': 'Title one', 'text': 'body one'},
      {'_id': 'd2', 'title': '', 'text': 'body two', 'metadata': {}},
      {'_id': 'd3', 'text': 'no title key'},
      {'_id': 4, 'title': None, 'text': ''},
  ])
  _jsonl(tmp_path / 'queries.jsonl', [
      {'_id': 'q1', 'text': 'first'}, {'_id': 'q2', 'text': 'second'},
      {'_id': 'q3', 'text': 'unjudged'}])
  (tmp_path / 'qrels').mkdir(exist_ok=True)
  (tmp_path / 'qrels' / 'test.tsv').write_text(qrels)
  return tmp_path


def test_beir_happy_path(tmp_path):
  ds = beir.load_beir(str(_beir(tmp_path)))
  assert set(ds.queries) == {'q1', 'q2', 'q3'}      # unjudged q3 kept
  assert ds.documents['d1'].full_text == 'Title one body one'
  assert ds.documents['d3'].title == '' and ds.documents['4'].is_empty
  assert ds.qrels == {'q1': {'d1': 2, 'd2': 0}, 'q2': {'d3': 2}}
  assert ds.report['qrels_unknown_query'] == 1
  assert ds.report['qrels_unknown_doc'] == 1
  assert ds.report['qrels_duplicate'] == 1
  assert ds.report['queries_without_qrels'] == 1
  assert ds.report['empty_documents'] == 1
  assert ds.run is None and ds.max_gain == 2


@pytest.mark.parametrize('corpus_line,problem', [
    ('{"_id": "d1", "text": "x"', 'invalid JSON'),
    ('{"_id": "d1"}', "missing key 'text'"),
    ('{"text": "x"}', "missing key '_id'"),
    ('["d1", "x"]', 'expected a JSON object'),
    ('{"_id": "d1", "text": 5}', "'text' must be a string"),
])
def test_beir_corpus_errors(tmp_path, corpus_line, problem):
  _beir(tmp_path)
  path = tmp_path / 'corpus.jsonl'
  path.write_text('{"_id": "d0", "text": "ok"}\n' + corpus_line + '\n')
  with pytest.raises(DataFormatError) as e:
    beir.load_beir(str(tmp_path))
  _assert_error(e, path, 2, problem)


@pytest.mark.parametrize('qrels,line,problem', [
    ('q1\td1\t1\n', 1, 'expected header'),
    ('query-id\tcorpus-id\tscore\nq1\td1\n', 2, 'expected 3 tab-separated'),
    ('query-id\tcorpus-id\tscore\nq1\td1\thigh\n', 2,
     "score must be an integer, got 'high'"),
])
def test_beir_qrels_errors(tmp_path, qrels, line, problem):
  _beir(tmp_path, qrels=qrels)
  with pytest.raises(DataFormatError) as e:
    beir.load_beir(str(tmp_path))
  _assert_error(e, tmp_path / 'qrels' / 'test.tsv', line, problem)


def test_beir_missing_split(tmp_path):
  _beir(tmp_path)
  with pytest.raises(FileNotFoundError, match='dev.tsv'):
    beir.load_beir(str(tmp_path), split='dev')


# ---------------------------------------------------------------- TREC

def _trec(tmp_path, run=True, docs='d1\tdoc one\nd2\tdoc two\nd3\t\n'):
  (tmp_path / 'topics.tsv').write_text('1\tfirst topic\n2\tsecond topic\n')
  (tmp_path / 'qrels.txt').write_text(
      '1 0 d1 2\n1 0 d2 -1\n2 0 d3 1\n3 0 d1 1\n2 0 d9 1\n')
  if docs is not None:
    (tmp_path / 'docs.tsv').write_text(docs)
  if run:
    (tmp_path / 'run.txt').write_text(
        '1 Q0 d2 1 3.5 bm25\n1 Q0 d1 2 3.5 bm25\n1 Q0 d3 3 9.0 bm25\n'
        '1 Q0 d7 4 1.0 bm25\n2 Q0 d3 1 1.0 bm25\n2 Q0 d3 1 2.0 bm25\n')
  return tmp_path


def test_trec_happy_path(tmp_path):
  ds = trec.load_trec(str(_trec(tmp_path)))
  assert ds.queries['2'].text == 'second topic'
  assert ds.qrels == {'1': {'d1': 2, 'd2': 0}, '2': {'d3': 1}}
  assert ds.report['qrels_negative'] == 1
  assert ds.report['qrels_unknown_query'] == 1
  assert ds.report['qrels_unknown_doc'] == 1
  assert not ds.excluded_judgements       # TREC negatives are real judgements
  # trec_eval order: score desc, then doc id desc; rank column ignored.
  assert ds.run['1'] == [('d3', 9.0), ('d2', 3.5), ('d1', 3.5)]
  assert ds.run['2'] == [('d3', 2.0)]
  assert ds.report['run_unknown_ids'] == 1
  assert ds.report['run_duplicate'] == 1
  assert ds.report['empty_documents'] == 1


def test_trec_three_column_docs_and_jsonl(tmp_path):
  ds = trec.load_trec(str(_trec(tmp_path, run=False,
                                docs='d1\tT1\tb1\nd2\t\tb2\nd3\tT3\t\n')))
  assert ds.run is None
  assert ds.documents['d1'].full_text == 'T1 b1'
  assert ds.documents['d3'].full_text == 'T3'
  os.remove(tmp_path / 'docs.tsv')
  _jsonl(tmp_path / 'corpus.jsonl', [{'_id': d, 'text': d}
                                     for d in ('d1', 'd2', 'd3')])
  assert trec.load_trec(str(tmp_path)).documents['d2'].text == 'd2'


def test_trec_two_corpora_is_an_error(tmp_path):
  _trec(tmp_path)
  _jsonl(tmp_path / 'corpus.jsonl', [{'_id': 'd1', 'text': 'x'}])
  with pytest.raises(DataFormatError, match='keep one corpus'):
    trec.load_trec(str(tmp_path))


@pytest.mark.parametrize('name,text,line,problem', [
    ('qrels.txt', '1 0 d1 2\n1 0 d2\n', 2, 'expected 4 columns'),
    ('qrels.txt', '1 0 d1 yes\n', 1, "grade must be an integer, got 'yes'"),
    ('run.txt', '1 Q0 d1 1 2.0\n', 1, 'expected 6 columns'),
    ('run.txt', '1 Q0 d1 1 high t\n', 1, "score must be a number"),
    ('run.txt', '1 Q0 d1 first 2.0 t\n', 1, 'rank must be an integer'),
    ('topics.tsv', '1\tok\n2 no tab\n', 2, 'expected 2 tab-separated'),
    ('topics.tsv', '1\tok\n1\tagain\n', 2, "duplicate topic id '1'"),
    ('docs.tsv', 'd1\ttext\nd2\ttitle\ttext\n', 2, 'expected 2 tab-separated'),
])
def test_trec_errors(tmp_path, name, text, line, problem):
  _trec(tmp_path)
  (tmp_path / name).write_text(text)
  with pytest.raises(DataFormatError) as e:
    trec.load_trec(str(tmp_path))
  _assert_error(e, tmp_path / name, line, problem)


# ---------------------------------------------------------------- pairs

def test_pairs_happy_path(tmp_path):
  path = tmp_path / 'logged.jsonl'
  _jsonl(path, [
      {'query_id': 'a', 'query': 'qa', 'doc_id': 'x', 'doc': 'dx'},
      {'query_id': 'a', 'query': 'qa', 'doc_id': 'y', 'doc': ''},
      {'query_id': 'b', 'query': '', 'doc_id': 'x', 'doc': 'dx', 'extra': 1},
      {'query_id': 'a', 'query': 'qa', 'doc_id': 'x', 'doc': 'dx'},
  ])
  rows = pairs.load_pairs(str(path))
  assert rows[2] == {'query_id': 'b', 'query': '', 'doc_id': 'x', 'doc': 'dx'}
  ds = pairs.pairs_as_dataset(rows, name='logged')
  assert ds.run == {'a': [('x', 0.0), ('y', 0.0)], 'b': [('x', 0.0)]}
  assert ds.qrels == {} and set(ds.documents) == {'x', 'y'}
  assert ds.report == {'run_duplicate': 1, 'empty_documents': 1,
                       'empty_queries': 1}
  assert loaders.load('pairs', str(path)).name == 'logged'


@pytest.mark.parametrize('line,problem', [
    ('{"query_id": "a", "query": "q", "doc_id": "x"}', "missing key 'doc'"),
    ('{"query_id": "a", "query": "q", "doc_id": "x", "doc": "d"', 'invalid JSON'),
    ('{"query_id": "a", "query": "other", "doc_id": "z", "doc": "d"}',
     "query id 'a' has a different text"),
    ('{"query_id": [1], "query": "q", "doc_id": "x", "doc": "d"}',
     "'query_id' must be a string or integer"),
])
def test_pairs_errors(tmp_path, line, problem):
  path = tmp_path / 'pairs.jsonl'
  path.write_text('{"query_id": "a", "query": "q", "doc_id": "x", "doc": "d"}'
                  '\n\n' + line + '\n')
  with pytest.raises(DataFormatError) as e:
    pairs.load_pairs(str(path))
  _assert_error(e, path, 3, problem)


# ---------------------------------------------------------------- dispatch, stats

def test_load_dispatch(tmp_path):
  assert loaders.FORMATS == ('cranfield', 'beir', 'trec', 'pairs')
  ds = loaders.load('beir', str(_beir(tmp_path)), split='test')
  assert ds.name == os.path.basename(str(tmp_path))
  with pytest.raises(ValueError, match="unknown dataset format 'msmarco'.*"
                     'cranfield, beir, trec, pairs'):
    loaders.load('msmarco', str(tmp_path))


def test_stats(tmp_path):
  ds = trec.load_trec(str(_trec(tmp_path)))
  s = stats.dataset_stats(ds)
  assert s['queries'] == 2 and s['documents'] == 3
  assert s['judgements'] == 3
  assert (s['judgements_gain_0'], s['judgements_gain_1'],
          s['judgements_gain_2']) == (1, 1, 1)
  assert s['queries_with_relevant'] == 2
  assert s['empty_documents'] == ds.report['empty_documents'] == 1
  assert s['run_pairs'] == 4 and s['qrels_negative'] == 1
  table = stats.format_stats(s).splitlines()
  assert len(table) == len(s)
  assert len({len(row) for row in table}) == 1      # aligned columns
  assert table[1].split() == ['queries', '2']
