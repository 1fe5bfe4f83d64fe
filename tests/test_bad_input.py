"""Bad input, case by case: a clear error naming file and line, or a count.

The cases of docs/reliability.md that the readers and the ingestion
component handle. Errors are `DataFormatError` (rankdata/errors.py) with the
file and, where there is one, the line; anomalies a run can live with
(unknown ids in qrels, empty texts, duplicate judgements) are counted in the
dataset's `report`, which ingestion records as `source_*` properties.
"""

import json
import os

from absl import flags
import pytest
from tfx.types import standard_artifacts

from components.ranking_example_gen import executor as eg_executor
from components.ranking_example_gen import spec as eg_spec
from components.splits_gate import component as splits_gate
from components.splits_gate import required
from rankdata import beir
from rankdata import cranfield
from rankdata import pairs
from rankdata import reading
from rankdata import trec
from rankdata.errors import DataFormatError
from ssd import cli
from tests import e2e_util


def _raises(fn, path, line, problem):
  with pytest.raises(DataFormatError) as e:
    fn()
  assert e.value.path == str(path), str(e.value)
  assert e.value.line == line, str(e.value)
  assert problem in str(e.value)
  return e.value


# ------------------------------------------------------------------ Cranfield

def _cranfield(tmp_path, docs='.I 1\n.T\ntitle one\n.W\nbody one\n.I 2\n.T\ntwo\n.W\n',
               queries='.I 001\n.W\nfirst query\n.I 002\n.W\n\n',
               qrels='1 1 2\n2 2 1\n'):
  for name, text in ((cranfield.DOCS_FILE, docs), (cranfield.QUERIES_FILE, queries),
                     (cranfield.QRELS_FILE, qrels)):
    (tmp_path / name).write_text(text)
  return str(tmp_path)


def test_cranfield_truncated_record_without_text(tmp_path):
  # The file ends inside record 2, before its .W.
  directory = _cranfield(tmp_path, docs='.I 1\n.T\nt\n.W\nbody\n.I 2\n.T\ncut he')
  _raises(lambda: cranfield.load_cranfield(directory), tmp_path / cranfield.DOCS_FILE, 6,
          'record .I 2 has no .W (text) field; the file may be truncated')


def test_cranfield_query_without_text_marker(tmp_path):
  directory = _cranfield(tmp_path, queries='.I 001\n.W\nq\n.I 002\n')
  _raises(lambda: cranfield.load_cranfield(directory), tmp_path / cranfield.QUERIES_FILE, 4,
          'record .I 2 has no .W')


def test_cranfield_missing_dot_i(tmp_path):
  directory = _cranfield(tmp_path, docs='.T\ntitle\n.W\nbody\n')
  _raises(lambda: cranfield.load_cranfield(directory), tmp_path / cranfield.DOCS_FILE, 1,
          'field .T before the first .I')


@pytest.mark.parametrize('name,what', [(cranfield.DOCS_FILE, 'documents'),
                                       (cranfield.QUERIES_FILE, 'queries'),
                                       (cranfield.QRELS_FILE, 'judgements')])
def test_cranfield_empty_files(tmp_path, name, what):
  directory = _cranfield(tmp_path)
  (tmp_path / name).write_text('\n\n')
  _raises(lambda: cranfield.load_cranfield(directory), tmp_path / name, None,
          f'no {what}')


def test_cranfield_empty_texts_are_kept_and_counted(tmp_path):
  ds = cranfield.load_cranfield(_cranfield(tmp_path))
  assert ds.documents['2'].text == '' and ds.queries['2'].text == ''
  assert ds.report['empty_queries'] == 1
  assert ds.report['empty_documents'] == 0   # doc 2 has a title


# ------------------------------------------------------------------ BEIR

def _beir(tmp_path, corpus=None, queries=None, qrels='query-id\tcorpus-id\tscore\nq1\td1\t1\n'):
  rows = corpus if corpus is not None else [{'_id': 'd1', 'text': 'one'},
                                            {'_id': 'd2', 'text': ''}]
  (tmp_path / 'corpus.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
  rows = queries if queries is not None else [{'_id': 'q1', 'text': 'query'},
                                              {'_id': 'q2', 'text': ''}]
  (tmp_path / 'queries.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
  (tmp_path / 'qrels').mkdir(exist_ok=True)
  (tmp_path / 'qrels' / 'test.tsv').write_text(qrels)
  return str(tmp_path)


def test_beir_non_utf8_bytes(tmp_path):
  directory = _beir(tmp_path)
  (tmp_path / 'corpus.jsonl').write_bytes(b'{"_id": "d1", "text": "ok"}\n'
                                          b'{"_id": "d2", "text": "caf\xe9"}\n')
  _raises(lambda: beir.load_beir(directory), tmp_path / 'corpus.jsonl', 2, 'not valid UTF-8')


def test_beir_lone_surrogate_escape(tmp_path):
  directory = _beir(tmp_path)
  (tmp_path / 'queries.jsonl').write_text('{"_id": "q1", "text": "a \\ud800 b"}\n')
  _raises(lambda: beir.load_beir(directory), tmp_path / 'queries.jsonl', 1,
          "'text' holds an invalid Unicode escape")


@pytest.mark.parametrize('name,what', [('corpus.jsonl', 'documents'),
                                       ('queries.jsonl', 'queries')])
def test_beir_empty_files(tmp_path, name, what):
  directory = _beir(tmp_path)
  (tmp_path / name).write_text('')
  _raises(lambda: beir.load_beir(directory), tmp_path / name, None, f'no {what} found')


def test_beir_qrels_with_only_a_header(tmp_path):
  directory = _beir(tmp_path, qrels='query-id\tcorpus-id\tscore\n')
  _raises(lambda: beir.load_beir(directory), tmp_path / 'qrels' / 'test.tsv', None,
          'no judgements after the header')


@pytest.mark.parametrize('grade', ['11', '-11', '12345'])
def test_beir_out_of_range_grades(tmp_path, grade):
  directory = _beir(tmp_path, qrels=f'query-id\tcorpus-id\tscore\nq1\td1\t{grade}\n')
  _raises(lambda: beir.load_beir(directory), tmp_path / 'qrels' / 'test.tsv', 2,
          f'score {int(grade)} is out of range [{reading.MIN_GRADE}, {reading.MAX_GRADE}]')


@pytest.mark.parametrize('name,rows,problem', [
    ('corpus.jsonl', [{'_id': 'd1', 'text': 'a'}, {'_id': 'd1', 'text': 'b'}],
     "duplicate document id 'd1'"),
    ('queries.jsonl', [{'_id': 'q1', 'text': 'a'}, {'_id': 'q1', 'text': 'b'}],
     "duplicate query id 'q1'"),
])
def test_beir_duplicate_ids(tmp_path, name, rows, problem):
  directory = _beir(tmp_path, **{name.split('.')[0]: rows})
  _raises(lambda: beir.load_beir(directory), tmp_path / name, 2, problem)


def test_beir_unknown_ids_and_empty_texts_are_counted(tmp_path):
  ds = beir.load_beir(_beir(tmp_path, qrels='query-id\tcorpus-id\tscore\nq1\td1\t1\n'
                            'q9\td1\t1\nq1\td9\t2\nq1\td1\t-1\n'))
  assert ds.qrels == {'q1': {'d1': 1}}
  assert {k: ds.report[k] for k in ('qrels_unknown_query', 'qrels_unknown_doc',
                                    'qrels_duplicate', 'qrels_negative', 'empty_documents',
                                    'empty_queries')} == {
      'qrels_unknown_query': 1, 'qrels_unknown_doc': 1, 'qrels_duplicate': 1,
      'qrels_negative': 1, 'empty_documents': 1, 'empty_queries': 1}


def test_cli_data_stats_on_an_empty_beir_corpus(tmp_path, capsys):
  directory = _beir(tmp_path)
  (tmp_path / 'corpus.jsonl').write_text('')
  flags.FLAGS.unparse_flags()
  flags.FLAGS(['ssd'])
  assert cli.main(['ssd', 'data', 'stats', 'beir', directory]) == 1
  captured = capsys.readouterr()
  assert captured.out == ''
  assert f'{tmp_path / "corpus.jsonl"}: no documents found: the file is empty' in captured.err


# ------------------------------------------------------------------ TREC, pairs

def _trec(tmp_path, run='1 Q0 d1 1 2.0 bm25\n'):
  (tmp_path / 'topics.tsv').write_text('1\tfirst\n')
  (tmp_path / 'qrels.txt').write_text('1 0 d1 1\n')
  (tmp_path / 'docs.tsv').write_text('d1\tdoc one\n')
  (tmp_path / 'run.txt').write_text(run)
  return str(tmp_path)


@pytest.mark.parametrize('run,line,problem', [
    ('1 Q0 d1 1 2.0 bm25 extra\n', 1, 'expected 6 columns (qid Q0 docid rank score tag), got 7'),
    ('1\tQ0\td1\n', 1, 'expected 6 columns'),
    ('1 Q0 d1 1 nan bm25\n', 1, 'score must be finite'),
    ('', None, 'no run lines'),
])
def test_trec_run_file_with_bad_columns(tmp_path, run, line, problem):
  directory = _trec(tmp_path, run=run)
  _raises(lambda: trec.load_trec(directory), tmp_path / 'run.txt', line, problem)


def test_trec_out_of_range_grade_and_empty_files(tmp_path):
  directory = _trec(tmp_path)
  (tmp_path / 'qrels.txt').write_text('1 0 d1 1\n1 0 d1 99\n')
  _raises(lambda: trec.load_trec(directory), tmp_path / 'qrels.txt', 2,
          'grade 99 is out of range')
  (tmp_path / 'qrels.txt').write_text('1 0 d1 1\n')
  (tmp_path / 'docs.tsv').write_text('')
  _raises(lambda: trec.load_trec(directory), tmp_path / 'docs.tsv', None, 'no documents')


def test_empty_pairs_file(tmp_path):
  path = tmp_path / 'pairs.jsonl'
  path.write_text('\n')
  _raises(lambda: pairs.load_pairs(str(path)), path, None, 'no pairs found')


# ------------------------------------------------------------------ ingestion

def _ingest(tmp_path, directory, splits, required, fmt='cranfield'):
  examples = standard_artifacts.Examples()
  examples.uri = str(tmp_path / 'examples')
  os.makedirs(examples.uri, exist_ok=True)
  eg_executor.Executor().Do({}, {eg_spec.EXAMPLES_KEY: [examples]}, {
      eg_spec.DATA_FORMAT_KEY: fmt, eg_spec.DATA_PATH_KEY: directory,
      eg_spec.CONFIG_KEY: json.dumps({'splits': splits,
                                      eg_spec.REQUIRED_SPLITS_CONFIG_KEY: required})})
  return examples


def test_a_beir_dataset_with_train_and_test_only_ingests_with_dev_from_train(tmp_path):
  """BEIR's commonest shape (qrels/train.tsv + test.tsv): a seeded dev split
  carved out of train, through the ingestion component."""
  directory = e2e_util.write_beir(str(tmp_path / 'beir'), {'train': 12, 'test': 5})
  splits = {'source': 'official', 'train_queries': None, 'dev_queries': 3,
            'test_queries': None, 'candidates_k': 3, 'title_queries': False}
  with pytest.raises(ValueError, match='no official dev split'):
    _ingest(tmp_path, directory, splits, ['train', 'dev'], fmt='beir')
  examples = _ingest(tmp_path, directory, dict(splits, dev_from_train=True), ['train', 'dev'],
                     fmt='beir')
  counts = {s: examples.get_int_custom_property(f'{s}_queries') for s in ('train', 'dev', 'test')}
  assert counts == {'train': 9, 'dev': 3, 'test': 5}
  assert examples.get_int_custom_property('dev_examples_written') > 0
  with open(os.path.join(examples.uri, eg_spec.QRELS_FILE)) as f:
    qrels = json.load(f)
  assert len(qrels['dev']) == 3 and all(q.startswith('train-') for q in qrels['dev'])
  assert sorted(qrels['test']) == [f'test-{i}' for i in range(5)]


def _six_queries(tmp_path):
  docs = ''.join(f'.I {i}\n.T\ntitle {i}\n.W\nword{i} shared text\n' for i in range(1, 7))
  queries = ''.join(f'.I {i:03d}\n.W\nword{i}\n' for i in range(1, 7))
  qrels = ''.join(f'{i} {i} 1\n' for i in range(1, 7))
  return _cranfield(tmp_path, docs=docs, queries=queries, qrels=qrels)


def test_an_empty_unlabelled_split_fails_the_splits_gate_in_an_ssd_run(tmp_path):
  (tmp_path / 'data').mkdir()
  directory = _six_queries(tmp_path / 'data')
  splits = {'train_queries': 2, 'dev_queries': 2, 'test_queries': 2, 'candidates_k': 3,
            'title_queries': False}
  # Ingestion needs train and dev in every mode (so supervised and SSD runs
  # share it from the cache); the same data ingests.
  examples = _ingest(tmp_path, directory, splits, ['train', 'dev'])
  assert examples.get_int_custom_property('train_queries') == 2
  assert examples.get_int_custom_property('unlabelled_queries') == 0
  # The SSD run's gate, next in line before any trainer, refuses it.
  written, queries = splits_gate.counts(examples)
  assert written['train'] == examples.get_int_custom_property('train_examples_written') > 0
  assert 'unlabelled' not in written and queries['unlabelled'] == 0
  with pytest.raises(required.EmptySplitError) as e:
    splits_gate.check_examples(examples, 'unlabelled')
  assert "split 'unlabelled' has no examples (0 queries)" in str(e.value)
  assert 'semi_supervised: false' in str(e.value)
  assert str(directory) in str(e.value)


def test_zero_labelled_queries_is_a_clear_error(tmp_path):
  (tmp_path / 'data').mkdir()
  directory = _six_queries(tmp_path / 'data')
  (tmp_path / 'data' / cranfield.QRELS_FILE).write_text('1 1 5\n')   # gain 0 only
  with pytest.raises(ValueError, match='only 0 of 6 queries have a relevant judgement'):
    _ingest(tmp_path, directory, {'train_queries': 1, 'dev_queries': 1, 'test_queries': 0},
            ['train', 'dev'])
