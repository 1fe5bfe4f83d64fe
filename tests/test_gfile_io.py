"""Data and artifacts on a non-local filesystem (TensorFlow's `ram://`), read like local files.

`ram://` is a real tf.io.gfile filesystem that is not the local disk, so what
works here works on gs:// (which needs a network) through the same code.
"""

import ast
import json
import os

import pytest
import tensorflow as tf
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.common import example_io
from components.common import fileio
from components.ranking_example_gen import executor as ingest
from components.ranking_example_gen import spec as S
from rankdata import features as F
from rankdata import loaders
from rankdata import reading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NFCORPUS = os.path.join(ROOT, '..', 'shared', 'datasets', 'nfcorpus')


def _put(uri, data: bytes):
  tf.io.gfile.makedirs(os.path.dirname(uri))
  if tf.io.gfile.exists(uri):   # ram:// 'wb' appends to an existing file
    tf.io.gfile.remove(uri)
  with tf.io.gfile.GFile(uri, 'wb') as f:
    f.write(data)
  return uri


@pytest.mark.parametrize('block_size', [1, 3, 1 << 20])
def test_lines_keep_crlf_and_lone_cr_semantics(tmp_path, block_size):
  data = b'a\tb\r\nx\ry\n\n\xc3\xa9t\xc3\xa9\r\nlast'
  local = tmp_path / 'f.tsv'
  local.write_bytes(data)
  remote = _put(f'ram://lines/{block_size}/f.tsv', data)
  with open(local, 'rb') as f:
    want = list(f)   # what a local binary file yields: split on b'\n' only
  with tf.io.gfile.GFile(remote, 'rb') as f:
    assert list(reading._raw_lines(f, block_size)) == want   # pylint: disable=protected-access
  expected = [(1, 'a\tb'), (2, 'x\ry'), (3, ''), (4, 'été'), (5, 'last')]
  assert list(reading.iter_lines(str(local))) == expected
  assert list(reading.iter_lines(remote)) == expected


@pytest.mark.skipif(not os.path.isdir(NFCORPUS), reason='shared NFCorpus not present')
def test_nfcorpus_from_a_remote_copy_equals_the_local_read():
  """NFCorpus qrels are CRLF: a reader that lost or kept a stray '\\r' would differ."""
  remote = 'ram://datasets/nfcorpus'
  fileio.copy_tree(NFCORPUS, remote)
  assert fileio.sha256_files(remote) == fileio.sha256_files(NFCORPUS)
  local_ds = loaders.load('beir', NFCORPUS)
  remote_ds = loaders.load('beir', remote)
  assert remote_ds.qrels == local_ds.qrels and len(remote_ds.qrels) > 100
  assert remote_ds.queries == local_ds.queries
  assert remote_ds.documents == local_ds.documents
  assert remote_ds.report == local_ds.report


def _tiny_beir(root):
  words = 'wing flow heat shock drag lift plate jet cone mach'.split()
  docs = [{'_id': f'd{i}', 'title': '', 'text': f'{words[i % 10]} {words[(i * 3) % 10]} body'}
          for i in range(20)]
  queries = [{'_id': str(q), 'text': f'{words[q % 10]} {words[(q + 1) % 10]}'} for q in range(12)]
  qrels = 'query-id\tcorpus-id\tscore\r\n' + ''.join(
      f'{q}\td{(q * 2 + j) % 20}\t{2 - j}\r\n' for q in range(8) for j in range(2))
  _put(f'{root}/corpus.jsonl', '\n'.join(json.dumps(d) for d in docs).encode())
  _put(f'{root}/queries.jsonl', '\n'.join(json.dumps(q) for q in queries).encode())
  _put(f'{root}/qrels/test.tsv', qrels.encode())


def test_ingest_reads_remote_data_fingerprints_it_and_namespaces_extra_pairs(tmp_path):
  data, extra = 'ram://ingest/beir', 'ram://ingest/logged.jsonl'
  _tiny_beir(data)
  # Query "5" also exists in the dataset (judged): its JSONL namesake is another query.
  _put(extra, b'\n'.join(json.dumps({'query_id': 5, 'query': 'logged question', 'doc_id': d,
                                      'doc': f'logged document {d}'}).encode()
                         for d in ('d1', 'x9')) + b'\n')
  examples = standard_artifacts.Examples()
  examples.uri = str(tmp_path / 'examples')
  config = {'data': {'format': 'beir', 'path': data, 'unlabelled_pairs': extra},
            'splits': {'seed': 1, 'train_queries': 3, 'dev_queries': 2, 'test_queries': 3,
                       'candidates_k': 5, 'title_queries': False}}
  ingest.Executor().Do({}, {S.EXAMPLES_KEY: [examples]},
                       {S.DATA_FORMAT_KEY: 'beir', S.DATA_PATH_KEY: data,
                        S.CONFIG_KEY: json.dumps(config)})

  assert examples.get_string_custom_property(S.DATA_FINGERPRINT_PROPERTY) == \
      fileio.sha256_files(data)
  assert examples.get_string_custom_property(S.UNLABELLED_FINGERPRINT_PROPERTY) == \
      fileio.sha256_files(extra)
  assert examples.get_string_custom_property(S.UNLABELLED_PATH_PROPERTY) == extra
  rows = {s: example_io.read_split(examples.uri, s)
          for s in artifact_utils.decode_split_names(examples.split_names)}
  logged = [r for r in rows[F.SPLIT_UNLABELLED] if r[F.QUERY_ID] == 'u:5']
  assert [(r[F.DOC_ID], r[F.QUERY], r[F.FIRST_STAGE_RANK]) for r in logged] == [
      ('d1', 'logged question', 1), ('x9', 'logged question', 2)]
  # The dataset's query "5" keeps its own text and never holds a logged pair.
  for split_rows in rows.values():
    for r in split_rows:
      if r[F.QUERY_ID] == '5':
        assert r[F.QUERY] != 'logged question' and not r[F.DOC].startswith('logged')
  assert sum(r[F.QUERY_ID] == '5' for s in rows.values() for r in s) > 0


def _trec_official(root):
  """A TREC folder with train/dev/test subfolders, each with topics, qrels and a run."""
  os.makedirs(root)
  with open(os.path.join(root, 'docs.tsv'), 'w', encoding='utf-8') as f:
    f.write(''.join(f'd{i}\tdocument {i} about wing flow\n' for i in range(6)))
  for s, split in enumerate(('train', 'dev', 'test')):
    os.makedirs(os.path.join(root, split))
    queries = [f'{split}{q}' for q in range(2)]
    files = {
        'topics.tsv': ''.join(f'{q}\t{split} question {n}\n' for n, q in enumerate(queries)),
        'qrels.txt': ''.join(f'{q} 0 d{2 * s + n} {n + 1}\n' for n, q in enumerate(queries)),
        'run.txt': ''.join(f'{q} Q0 d{d} {r} {9.0 - r} bm25\n'
                           for q in queries for r, d in enumerate(range(2 * s, 2 * s + 2), 1)),
    }
    for name, text in files.items():
      with open(os.path.join(root, split, name), 'w', encoding='utf-8') as f:
        f.write(text)


def test_trec_official_splits_are_read_completely_from_a_uri(tmp_path):
  """Every split subfolder and its run file is found on a non-local filesystem too."""
  local = str(tmp_path / 'trec')
  _trec_official(local)
  remote = f'ram://datasets/{tmp_path.name}/trec'
  fileio.copy_tree(local, remote)
  local_ds = loaders.load('trec', local, official_splits=True)
  remote_ds = loaders.load('trec', remote, official_splits=True)
  assert sorted(set(remote_ds.query_splits.values())) == ['dev', 'test', 'train']
  assert len(remote_ds.query_splits) == 6 and len(remote_ds.qrels) == 6
  assert remote_ds.run is not None and set(remote_ds.run) == set(remote_ds.query_splits)
  assert remote_ds.query_splits == local_ds.query_splits
  assert (remote_ds.queries, remote_ds.qrels, remote_ds.run, remote_ds.report) == \
      (local_ds.queries, local_ds.qrels, local_ds.run, local_ds.report)


_LOCAL_ONLY = {('os.path', n) for n in ('exists', 'isdir', 'isfile', 'getsize')} | \
    {('os', n) for n in ('listdir', 'scandir', 'walk', 'makedirs', 'remove', 'stat')} | \
    {('shutil', '*'), ('glob', '*')}


def _local_only_calls(path):
  """(line, call) of each local-disk-only file call in a module (builtin open too)."""
  with open(path, encoding='utf-8') as f:
    tree = ast.parse(f.read(), path)
  for node in ast.walk(tree):
    if not isinstance(node, ast.Call):
      continue
    if isinstance(node.func, ast.Name) and node.func.id == 'open':
      yield node.lineno, 'open'
    elif isinstance(node.func, ast.Attribute):
      owner = ast.unparse(node.func.value)
      if (owner, node.func.attr) in _LOCAL_ONLY or (owner, '*') in _LOCAL_ONLY:
        yield node.lineno, f'{owner}.{node.func.attr}'


def test_readers_and_executors_use_gfile_only():
  """Data and artifacts may be URIs: rankdata/ and components/ never touch the disk directly."""
  found = []
  for package in ('rankdata', 'components'):
    for folder, _, files in os.walk(os.path.join(ROOT, package)):
      for name in sorted(f for f in files if f.endswith('.py')):
        path = os.path.join(folder, name)
        found += [f'{os.path.relpath(path, ROOT)}:{line}: {call}'
                  for line, call in _local_only_calls(path)]
  assert found == [], 'use rankdata/reading.py or components/common/fileio.py (tf.io.gfile):\n' + \
      '\n'.join(found)


def test_the_guard_sees_local_calls(tmp_path):
  module = tmp_path / 'm.py'
  module.write_text('import os\nos.path.isdir(p)\nopen(p)\ntf.io.gfile.isdir(p)\n')
  assert list(_local_only_calls(str(module))) == [(2, 'os.path.isdir'), (3, 'open')]
