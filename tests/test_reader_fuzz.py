"""Property-based fuzzing of every text reader (hypothesis).

The property: whatever bytes one input file holds (the dataset's other files
being valid), the reader either returns a dataset or raises the project's
own `DataFormatError` naming that file (and the line, where there is one).
No other exception escapes: no UnicodeDecodeError, KeyError, IndexError,
RecursionError, ... a user would have to debug.

Inputs mix raw bytes with text built from each format's own tokens (field
markers, tabs, JSON keys, numbers), which reaches far deeper into the parsers
than random bytes alone. `derandomize=True` keeps CI runs reproducible.
"""

import json
import os

from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from rankdata import beir
from rankdata import cranfield
from rankdata import pairs
from rankdata import trec
from rankdata import types
from rankdata.errors import DataFormatError

FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

_COMMON = ['\n', '\n', ' ', '\t', '\r', '0', '1', '2', '-1', '99', 'x', 'é', '\x00', '1e9',
           'nan', '\\', '"']
_TOKENS = {
    'cranfield': _COMMON + ['.I ', '.I', '.T', '.A', '.B', '.W', '.X', '001', '471', '5',
                            'abc ', '.I 1\n.W\n', '.I 2\n.T\nt\n.W\nw\n'],
    'jsonl': _COMMON + ['{', '}', '[', ']', ':', ',', '"_id"', '"text"', '"title"',
                        '"query_id"', '"query"', '"doc_id"', '"doc"', 'null', 'true',
                        '"d1"', '"q1"', '\\ud800', '[[[[[[[[', '{"_id": "d9", "text": "z"}'],
    'tsv': _COMMON + ['query-id\tcorpus-id\tscore\n', 'q1', 'd1', 'Q0', 'bm25', '3.5',
                      '1 0 d1 1\n', '1 Q0 d1 1 2.0 run\n', '1\ttopic\n', 'd1\ttext\n'],
}


def _content(kind: str):
  text = st.lists(st.sampled_from(_TOKENS[kind]), max_size=40).map(''.join)
  return st.one_of(st.binary(max_size=200),
                   text.map(lambda t: t.encode('utf-8', 'surrogatepass')),
                   # a valid file cut short, or with junk bytes appended
                   st.tuples(text, st.binary(max_size=8)).map(
                       lambda tb: tb[0].encode('utf-8') + tb[1]))


def _check(load, path):
  """Runs the reader; only a dataset or a DataFormatError naming `path` is fine."""
  try:
    ds = load()
  except DataFormatError as e:
    assert e.path == str(path), f'error names {e.path}, not the fuzzed {path}: {e}'
    assert str(e).startswith(str(path))
    assert e.line is None or e.line >= 1
    return
  assert isinstance(ds, types.RankingDataset)


# ------------------------------------------------------------------ Cranfield

def _cranfield_dir(root):
  os.makedirs(root, exist_ok=True)
  files = {cranfield.DOCS_FILE: '.I 1\n.T\ntitle\n.W\nbody\n.I 2\n.W\nother\n',
           cranfield.QUERIES_FILE: '.I 001\n.W\nquery\n',
           cranfield.QRELS_FILE: '1 1 2\n'}
  for name, text in files.items():
    with open(os.path.join(root, name), 'w', encoding='utf-8') as f:
      f.write(text)
  return root


@pytest.mark.parametrize('name', [cranfield.DOCS_FILE, cranfield.QUERIES_FILE,
                                  cranfield.QRELS_FILE])
@FUZZ
@given(data=_content('cranfield'))
def test_cranfield(tmp_path, name, data):
  root = _cranfield_dir(str(tmp_path / 'cran'))
  path = os.path.join(root, name)
  with open(path, 'wb') as f:
    f.write(data)
  _check(lambda: cranfield.load_cranfield(root), path)


# ------------------------------------------------------------------ BEIR

def _beir_dir(root):
  os.makedirs(os.path.join(root, 'qrels'), exist_ok=True)
  with open(os.path.join(root, 'corpus.jsonl'), 'w', encoding='utf-8') as f:
    f.write(json.dumps({'_id': 'd1', 'title': 't', 'text': 'one'}) + '\n')
  with open(os.path.join(root, 'queries.jsonl'), 'w', encoding='utf-8') as f:
    f.write(json.dumps({'_id': 'q1', 'text': 'query'}) + '\n')
  with open(os.path.join(root, 'qrels', 'test.tsv'), 'w', encoding='utf-8') as f:
    f.write('query-id\tcorpus-id\tscore\nq1\td1\t1\n')
  return root


@pytest.mark.parametrize('name,kind', [('corpus.jsonl', 'jsonl'), ('queries.jsonl', 'jsonl'),
                                       (os.path.join('qrels', 'test.tsv'), 'tsv')])
@FUZZ
@given(data=st.data())
def test_beir(tmp_path, name, kind, data):
  root = _beir_dir(str(tmp_path / 'beir'))
  path = os.path.join(root, name)
  with open(path, 'wb') as f:
    f.write(data.draw(_content(kind)))
  _check(lambda: beir.load_beir(root), path)


# ------------------------------------------------------------------ TREC

def _trec_dir(root):
  os.makedirs(root, exist_ok=True)
  files = {trec.TOPICS_FILE: '1\tfirst topic\n', trec.QRELS_FILE: '1 0 d1 1\n',
           trec.RUN_FILE: '1 Q0 d1 1 2.0 bm25\n', trec.DOCS_TSV: 'd1\tdoc one\n'}
  for name, text in files.items():
    with open(os.path.join(root, name), 'w', encoding='utf-8') as f:
      f.write(text)
  return root


@pytest.mark.parametrize('name', [trec.TOPICS_FILE, trec.QRELS_FILE, trec.RUN_FILE,
                                  trec.DOCS_TSV])
@FUZZ
@given(data=_content('tsv'))
def test_trec(tmp_path, name, data):
  root = _trec_dir(str(tmp_path / 'trec'))
  path = os.path.join(root, name)
  with open(path, 'wb') as f:
    f.write(data)
  _check(lambda: trec.load_trec(root), path)


# ------------------------------------------------------------------ pairs

@FUZZ
@given(data=_content('jsonl'))
def test_pairs(tmp_path, data):
  path = str(tmp_path / 'pairs.jsonl')
  with open(path, 'wb') as f:
    f.write(data)
  _check(lambda: pairs.load_pairs_dataset(path), path)


def test_deeply_nested_json_is_a_format_error(tmp_path):
  """The one escape the fuzzing above is unlikely to stumble on by itself."""
  path = tmp_path / 'pairs.jsonl'
  path.write_text('[' * 100000 + '\n')
  with pytest.raises(DataFormatError, match='nested too deeply') as e:
    pairs.load_pairs(str(path))
  assert e.value.line == 1
