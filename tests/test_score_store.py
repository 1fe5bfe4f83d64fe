"""Evaluation scores handed on between evaluators: keys and round trip."""

import os
import shutil

import numpy as np

from components.ranking_evaluator import score_store as SS
from rankdata import features as F


def _model(tmp_path, name, variables=b'crc-a', vocab=b'[PAD]\nflow\n', fingerprint=b'fp'):
  d = tmp_path / name
  (d / 'variables').mkdir(parents=True)
  (d / 'assets').mkdir()
  if fingerprint is not None:
    (d / 'fingerprint.pb').write_bytes(fingerprint)
  (d / 'variables' / 'variables.index').write_bytes(variables)
  (d / 'assets' / 'vocab.txt').write_bytes(vocab)
  return str(d)


def _rows(n, doc='flow'):
  return [{F.QUERY_ID: f'q{i // 3}', F.DOC_ID: f'd{i}', F.QUERY: 'supersonic', F.DOC: f'{doc} {i}'}
          for i in range(n)]


def test_model_key_follows_content_not_place(tmp_path):
  a = _model(tmp_path, 'a')
  copy = str(tmp_path / 'copy')
  shutil.copytree(a, copy)
  assert SS.model_key(a) == SS.model_key(copy)            # a selected_model copy keeps it
  assert SS.model_key(_model(tmp_path, 'b', variables=b'crc-b')) != SS.model_key(a)
  assert SS.model_key(_model(tmp_path, 'c', vocab=b'[PAD]\nwing\n')) != SS.model_key(a)
  assert SS.model_key(_model(tmp_path, 'd', fingerprint=b'other')) != SS.model_key(a)
  assert SS.model_key(_model(tmp_path, 'e', fingerprint=None)) is None   # never reused


def test_rows_key_changes_with_any_id_or_text():
  rows = _rows(6)
  assert SS.rows_key(rows) == SS.rows_key(_rows(6))
  assert SS.rows_key(rows) != SS.rows_key(rows[:5])
  assert SS.rows_key(rows) != SS.rows_key(_rows(6, doc='wing'))
  assert SS.rows_key(rows) != SS.rows_key(list(reversed(rows)))


def test_saved_scores_load_into_the_next_store_and_carry_on(tmp_path):
  first = SS.ScoreStore()
  rows = SS.rows_key(_rows(6))
  first.put('m1', rows, np.arange(6, dtype=np.float32))
  first.put(None, rows, np.ones(6))          # a model without a key is not stored
  assert len(first) == 1
  first.save(str(tmp_path / 'eval1'))

  second = SS.ScoreStore()
  assert second.load(str(tmp_path / 'eval1')) == 1
  np.testing.assert_array_equal(second.get('m1', rows), np.arange(6))
  assert second.get('m1', SS.rows_key(_rows(5))) is None
  assert second.get('m2', rows) is None and second.get(None, rows) is None
  assert second.from_prior('m1', rows)
  second.put('m2', rows, np.full(6, 0.5, np.float32))
  assert not second.from_prior('m2', rows) and not second.from_prior(None, rows)
  second.save(str(tmp_path / 'eval2'))

  third = SS.ScoreStore()
  assert third.load(str(tmp_path / 'eval2')) == 2        # the chain keeps m1's scores
  np.testing.assert_array_equal(third.get('m1', rows), np.arange(6))
  assert SS.ScoreStore().load(str(tmp_path / 'nothing-here')) == 0
  assert os.path.exists(tmp_path / 'eval2' / SS.SCORES_DIR / SS.INDEX_FILE)


def test_candidates_are_read_in_a_fixed_order(tmp_path):
  """Whatever order Beam wrote the split in, the evaluator scores the top-k
  in (query id, rank, doc id) order, so its batches (and its scores' last
  bits, and the rows' key) are the same in every run."""
  from components.common import example_io  # pylint: disable=g-import-not-at-top
  from components.ranking_evaluator import executor as E  # pylint: disable=g-import-not-at-top
  rows = [{F.QUERY_ID: q, F.DOC_ID: f'd{r}', F.QUERY: f'query {q}', F.DOC: f'doc {r}',
           F.FIRST_STAGE_RANK: r, F.FIRST_STAGE_SCORE: float(10 - r), F.LABEL: 0.0}
          for q in ('q2', 'q1') for r in (3, 1, 2, 4)]
  got = []
  for name, order in (('a', rows), ('b', rows[::-1])):
    uri = str(tmp_path / name)
    example_io.write_split(uri, 'test', order)
    got.append([(r[F.QUERY_ID], r[F.DOC_ID]) for r in E.read_candidates(uri, 'test', 3)])
  assert got[0] == got[1] == [('q1', 'd1'), ('q1', 'd2'), ('q1', 'd3'),
                              ('q2', 'd1'), ('q2', 'd2'), ('q2', 'd3')]


def test_a_model_whose_scores_are_all_reused_is_never_loaded(tmp_path):
  from components.ranking_evaluator import executor  # pylint: disable=g-import-not-at-top
  from rankers import export  # pylint: disable=g-import-not-at-top
  # Not a SavedModel: loading it would fail. Its key, scores and hybrid
  # weight are all an evaluation needs once a prior one scored these rows.
  model = _model(tmp_path, 'hybrid_model')
  extra = os.path.join(model, export.ASSETS_EXTRA)
  os.makedirs(extra)
  with open(os.path.join(extra, export.METADATA_FILE), 'w') as f:
    f.write('{"hybrid_weight": 0.25}')
  rows = _rows(6)
  prior = SS.ScoreStore()
  prior.put(SS.model_key(model), SS.rows_key(rows), np.arange(6, dtype=np.float32))
  prior.save(str(tmp_path / 'eval1'))
  store = SS.ScoreStore()
  store.load(str(tmp_path / 'eval1'))
  scorers = executor._Scorers(8, None, 3, True, store)  # pylint: disable=protected-access
  np.testing.assert_array_equal(scorers.scores(model, rows, 'teacher/dev'), np.arange(6))
  assert scorers.hybrid(model, 'teacher') == {'weight': 0.25, 'source': 'exported'}
  assert store.reused == ['teacher/dev']
  assert export.read_hybrid_weight(str(tmp_path / 'eval1')) is None   # no metadata: plain
