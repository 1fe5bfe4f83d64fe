"""Cranfield facts and the BM25 quality guard, on the real collection.

The collection is found by `cranfield.default_cranfield_dir()`
($SSD_CRANFIELD_DIR, else ../shared/datasets/cranfield); if it is missing the
tests fail with FileNotFoundError naming the directory (never skip).
"""

import os

import pytest

from rankdata import bm25
from rankdata import cranfield
from rankdata import metrics
from rankdata.errors import DataFormatError


@pytest.fixture(scope='module')
def ds():
  return cranfield.load_cranfield(cranfield.default_cranfield_dir())


def test_default_dir_env_override(monkeypatch, tmp_path):
  monkeypatch.setenv(cranfield.ENV_DIR, str(tmp_path))
  assert cranfield.default_cranfield_dir() == str(tmp_path)
  monkeypatch.delenv(cranfield.ENV_DIR)
  assert cranfield.default_cranfield_dir().endswith(
      os.path.join('shared', 'datasets', 'cranfield'))


def test_missing_directory_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match='does not exist'):
    cranfield.load_cranfield(str(tmp_path / 'nowhere'))


def test_sizes(ds):
  assert len(ds.documents) == 1400
  assert len(ds.queries) == 225
  assert sum(len(d) for d in ds.qrels.values()) == 1837
  assert sorted(ds.documents, key=int) == [str(i) for i in range(1, 1401)]
  assert sorted(ds.queries, key=int) == [str(i) for i in range(1, 226)]
  assert ds.max_gain == 4


def test_query_ids_are_file_positions(ds):
  # qrels query 1 = the first .I record of cran.qry (whose .I is 001) ...
  assert ds.queries['1'].text.startswith('what similarity laws must be obeyed')
  # ... and query 3 is the third record, whose .I number is 004, not 3.
  assert ds.queries['3'].text.startswith(
      'what problems of heat conduction in composite slabs')
  assert ds.queries['225'].text


def test_gain_mapping(ds):
  counts = {}
  for docs in ds.qrels.values():
    for gain in docs.values():
      counts[gain] = counts.get(gain, 0) + 1
  # code 1 (128 rows) -> 4, 2 (387) -> 3, 3 (734) -> 2, 4 (363) -> 1, -1 -> 0.
  assert counts == {4: 128, 3: 387, 2: 734, 1: 363, 0: 225}
  assert ds.qrels['1']['184'] == 3   # first cranqrel row: 1 184 2


def test_minus_one_rows_are_excluded(ds):
  assert len(ds.excluded_judgements) == 225
  assert ds.report['excluded_judgements'] == 225
  assert {q for q, _ in ds.excluded_judgements} == set(ds.queries)
  for query_id, doc_id in ds.excluded_judgements:
    assert ds.qrels[query_id][doc_id] == 0


def test_every_query_has_a_relevant_document(ds):
  assert len(ds.relevant_query_ids()) == 225


def test_empty_documents_kept_and_counted(ds):
  assert ds.documents['471'].is_empty and ds.documents['995'].is_empty
  assert ds.report['empty_documents'] == 2
  assert sum(d.is_empty for d in ds.documents.values()) == 2


def test_stray_markers_stay_in_abstract(ds):
  assert ds.report['stray_field_markers'] == 4
  # Record 240 has '.A'/'.B' in its abstract: their lines stay in the body.
  body = ds.documents['240'].text
  assert 'application to turbulent separations' in body
  assert 'unity in low-speed flow' in body
  assert ds.report['qrels_duplicate'] == 0


def test_full_text_is_title_then_abstract(ds):
  doc = ds.documents['1']
  assert doc.title == ('experimental investigation of the aerodynamics of a '
                       'wing in a slipstream .')
  assert doc.full_text == doc.title + ' ' + doc.text
  assert '\n' not in doc.text


def test_bm25_guard(ds):
  """BM25 k1=0.9 b=0.4 top 100 must land on the dataset README's figures."""
  index = bm25.BM25Index(list(ds.documents.values()),
                         bm25.BM25Params(k1=0.9, b=0.4))
  run = bm25.bm25_run(index, ds.queries, 100)
  result = metrics.evaluate_run(metrics.run_as_dict(run), ds.qrels)
  assert result['num_queries'] == 225
  assert result['ndcg@10'] == pytest.approx(0.352, abs=0.01)
  assert result['map'] == pytest.approx(0.281, abs=0.01)
  assert result['mrr'] == pytest.approx(0.518, abs=0.01)


def _write_cranfield(tmp_path, docs=None, queries=None, qrels=None):
  files = {
      cranfield.DOCS_FILE: docs or '.I 1\n.T\ntitle one .\n.A\nx\n.B\ny\n'
                                   '.W\nbody one .\n.I 2\n.T\n.A\n.B\n.W\n',
      cranfield.QUERIES_FILE: queries or '.I 001\n.W\nfirst query .\n'
                                         '.I 005\n.W\nsecond query .\n',
      cranfield.QRELS_FILE: qrels or '1 1 2\n2 1 -1\n2 2 1\n',
  }
  for name, text in files.items():
    (tmp_path / name).write_text(text)
  return str(tmp_path)


def test_small_collection(tmp_path):
  ds = cranfield.load_cranfield(_write_cranfield(tmp_path))
  assert ds.queries['2'].text == 'second query .'
  assert ds.qrels == {'1': {'1': 3}, '2': {'1': 0, '2': 4}}
  assert ds.excluded_judgements == {('2', '1')}
  assert ds.documents['2'].is_empty


def test_duplicate_qrels_keep_highest_gain(tmp_path):
  ds = cranfield.load_cranfield(_write_cranfield(
      tmp_path, qrels='1 1 3\n1 1 1\n1 1 -1\n'))
  assert ds.qrels == {'1': {'1': 4}}
  assert ds.report['qrels_duplicate'] == 2
  assert not ds.excluded_judgements


def test_unknown_ids_in_qrels_are_counted(tmp_path):
  ds = cranfield.load_cranfield(_write_cranfield(
      tmp_path, qrels='1 1 2\n3 1 2\n1 9 2\n'))
  assert ds.report['qrels_unknown_query'] == 1
  assert ds.report['qrels_unknown_doc'] == 1
  assert ds.qrels == {'1': {'1': 3}}


@pytest.mark.parametrize('name,text,line,problem', [
    (cranfield.DOCS_FILE, '.I 1\n.T\nt\n.X\nw\n', 4, 'unknown field marker .X'),
    (cranfield.DOCS_FILE, '.I 1\n.W\nt\n.I one\n', 4, 'non-integer record id'),
    (cranfield.DOCS_FILE, 'hello\n.I 1\n', 1, 'text before the first .I'),
    (cranfield.DOCS_FILE, '.I 1\n.W\na\n.I 1\n.W\nb\n', 4,
     'duplicate document id 1'),
    (cranfield.QUERIES_FILE, '.I 001\n.T\nq\n', 2, 'unknown field marker .T'),
    (cranfield.QRELS_FILE, '1 1 2\n1 2\n', 2, 'expected 3 columns'),
    (cranfield.QRELS_FILE, '1 1 2\n1 x 2\n', 2, 'document id must be an integer'),
    (cranfield.QRELS_FILE, '1 1 7\n', 1, 'unknown relevance code 7'),
])
def test_malformed_files(tmp_path, name, text, line, problem):
  kwargs = {cranfield.DOCS_FILE: 'docs', cranfield.QUERIES_FILE: 'queries',
            cranfield.QRELS_FILE: 'qrels'}
  directory = _write_cranfield(tmp_path, **{kwargs[name]: text})
  with pytest.raises(DataFormatError) as e:
    cranfield.load_cranfield(directory)
  path = os.path.join(directory, name)
  assert e.value.path == path and e.value.line == line
  assert str(e.value).startswith(f'{path}:{line}: ')
  assert problem in str(e.value)
