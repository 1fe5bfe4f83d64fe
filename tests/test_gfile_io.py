"""Data and artifacts on a non-local filesystem (TensorFlow's `ram://`), read like local files.

`ram://` is a real tf.io.gfile filesystem that is not the local disk, so what
works here works on gs:// or s3:// (which need a network) through the same code.
"""

import json
import os

import pytest
import tensorflow as tf
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components import example_io
from components import fileio
from components.ranking_example_gen import executor as ingest
from components.ranking_example_gen import spec as S
from rankdata import features as F
from rankdata import loaders
from rankdata import reading

NFCORPUS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), '..',
                        'shared', 'datasets', 'nfcorpus')


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
