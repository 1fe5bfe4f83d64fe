"""PseudoLabeler: selection arithmetic and the Beam transforms, without TFX.

Selection is tested on hand-made lists with numbers worked out by hand; the
Beam transforms run on TestPipeline with fake teachers (loaded through the
DoFns' `loader` hook) so routing, joins and counting are checked in seconds.
"""

import hashlib
import json
import logging
import math

import apache_beam as beam
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
import numpy as np
import pytest
import tensorflow as tf

from components.common import example_io
from components.common import hybrid
from components.pseudo_labeler import canonical
from components.pseudo_labeler import fusion
from components.pseudo_labeler import common as K
from components.pseudo_labeler import labelling as L
from components.pseudo_labeler import outputs as O
from components.pseudo_labeler import parse as P
from components.pseudo_labeler import selection
from components.pseudo_labeler import spec as S
from components.pseudo_labeler import teacher as T
from rankdata import features as F
from runconfig import config as C

# --- selection ---------------------------------------------------------------


def cfg(**kw) -> S.PseudoLabelConfig:
  return S.PseudoLabelConfig(**kw).validate()


def test_softmax_with_temperature():
  scores = [2.0, 1.0, 0.0]
  e = np.exp([2.0, 1.0, 0.0])
  np.testing.assert_allclose(selection.softmax(scores, 1.0), e / e.sum())
  e2 = np.exp([1.0, 0.5, 0.0])  # T = 2 halves the logits
  np.testing.assert_allclose(selection.softmax(scores, 2.0), e2 / e2.sum())
  labels = selection.label_list(scores, ['a', 'b', 'c'], [False] * 3, cfg(temperature=2.0))
  np.testing.assert_allclose(labels.soft, e2 / e2.sum())
  assert math.isclose(sum(labels.soft), 1.0)
  # Large scores do not overflow.
  np.testing.assert_allclose(selection.softmax([1000.0, 1000.0], 1.0), [0.5, 0.5])


def test_margin_and_entropy_confidence():
  scores = [0.0, math.log(3.0)]   # p = [0.25, 0.75]
  margin = selection.label_list(scores, ['a', 'b'], [False, False], cfg(confidence='margin'))
  assert margin.confidence == pytest.approx(0.5)
  entropy = selection.label_list(scores, ['a', 'b'], [False, False], cfg(confidence='entropy'))
  h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
  assert entropy.confidence == pytest.approx(1.0 - h / math.log(2.0))
  assert entropy.confidence == pytest.approx(0.18872, abs=1e-5)
  uniform = selection.label_list([1.0, 1.0 + 1e-3, 1.0], ['a', 'b', 'c'], [False] * 3,
                                 cfg(confidence='entropy'))
  assert uniform.confidence < 1e-3
  none = selection.label_list(scores, ['a', 'b'], [False, False], cfg(confidence='none'))
  assert none.confidence == 1.0


def test_hard_labels_top_k_ties_broken_by_doc_id():
  labels = selection.label_list([1.0, 3.0, 3.0, 0.0], ['d', 'c', 'b', 'a'], [False] * 4,
                                cfg(hard_top_k=2))
  assert labels.hard == [0.0, 1.0, 1.0, 0.0]
  assert labels.rank == [2, 1, 0, 3]   # equal scores: 'b' before 'c'
  none = selection.label_list([1.0, 3.0], ['x', 'y'], [False] * 2, cfg(hard_top_k=0))
  assert none.hard == [0.0, 0.0]


def test_keep_top_and_bottom_k():
  scores = [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
  ids = list('abcdef')
  labels = selection.label_list(scores, ids, [False] * 6, cfg(keep_top_k=2, keep_bottom_k=1))
  assert labels.reasons == [None, None, 'not_top_or_bottom', 'not_top_or_bottom',
                            'not_top_or_bottom', None]
  top_only = selection.label_list(scores, ids, [False] * 6, cfg(keep_top_k=1))
  assert top_only.reasons == [None] + ['not_top_or_bottom'] * 5
  bottom_only = selection.label_list(scores, ids, [False] * 6, cfg(keep_bottom_k=2))
  assert bottom_only.reasons == ['not_top_or_bottom'] * 4 + [None, None]
  # Soft labels stay a distribution over the whole list.
  assert sum(labels.soft) == pytest.approx(1.0)


def test_query_cap_spreads_over_the_ranking():
  assert selection.spread_cap([0, 1, 2, 3, 4, 5], 3) == [0, 5, 1]
  assert selection.spread_cap([0, 1, 2], 10) == [0, 2, 1]
  scores = [1.0, 6.0, 2.0, 5.0, 3.0, 4.0]   # ranks: b f d? -> by score desc: b,d,f,e,c,a
  ids = list('abcdef')
  labels = selection.label_list(scores, ids, [False] * 6, cfg(max_pairs_per_query=3))
  kept = {ids[i] for i, r in enumerate(labels.reasons) if r is None}
  assert kept == {'b', 'a', 'd'}   # best, worst, 2nd best
  assert sorted(r for r in labels.reasons if r) == ['over_query_cap'] * 3
  # The cap applies after top/bottom-k: 4 survive, 2 kept.
  both = selection.label_list(scores, ids, [False] * 6,
                              cfg(keep_top_k=2, keep_bottom_k=2, max_pairs_per_query=2))
  assert {ids[i] for i, r in enumerate(both.reasons) if r is None} == {'b', 'a'}
  assert sorted(r for r in both.reasons if r) == ['not_top_or_bottom'] * 2 + ['over_query_cap'] * 2


def test_no_signal_lists():
  single = selection.label_list([3.0], ['a'], [False], cfg())
  assert single.reasons == ['no_signal']
  assert single.soft == [1.0]
  flat = selection.label_list([2.0, 2.0, 2.0], ['a', 'b', 'c'], [False] * 3, cfg())
  assert flat.reasons == ['no_signal'] * 3
  short = selection.label_list([2.0, 1.0], ['a', 'b'], [False] * 2, cfg(min_list_size=3))
  assert short.reasons == ['no_signal'] * 2
  assert selection.label_list([2.0, 1.0], ['a', 'b'], [False] * 2, cfg()).reasons == [None, None]


def test_low_confidence_filters_whole_list():
  scores = [1.0, 1.01, 0.0]
  labels = selection.label_list(scores, ['a', 'b', 'c'], [False] * 3, cfg(min_confidence=0.2))
  assert labels.confidence < 0.2
  assert labels.reasons == ['low_confidence'] * 3
  confident = selection.label_list([10.0, 0.0, 0.0], ['a', 'b', 'c'], [False] * 3,
                                   cfg(min_confidence=0.2))
  assert confident.confidence > 0.99 and confident.reasons == [None, None, None]


def test_labelled_pairs_are_never_filtered():
  strict = cfg(min_confidence=0.9, keep_top_k=1, max_pairs_per_query=1)
  labels = selection.label_list([1.0, 1.0, 1.0], ['a', 'b', 'c'], [True, False, True], strict)
  assert labels.reasons == [None, 'no_signal', None]
  mixed = selection.label_list([3.0, 2.0, 1.0, 0.5], list('abcd'), [True, False, False, True],
                               cfg(keep_top_k=1, keep_bottom_k=0))
  # rank 0 is labelled; unlabelled b, c are not in the top-1.
  assert mixed.reasons == [None, 'not_top_or_bottom', 'not_top_or_bottom', None]


def test_config_is_typed_and_validated():
  parsed = S.parse_config(C.to_json(S.PseudoLabelConfig(keep_top_k=3)))
  assert parsed.keep_top_k == 3 and parsed.splits == ['train', 'unlabelled']
  with pytest.raises(C.ConfigError, match='unknown config key'):
    S.parse_config(json.dumps({'temprature': 2.0}))
  with pytest.raises(C.ConfigError, match='expected a number'):
    S.parse_config(json.dumps({'temperature': 'hot'}))
  for bad in ({'temperature': 0}, {'confidence': 'vibes'}, {'min_confidence': 1.5},
              {'confidence': 'none', 'min_confidence': 0.1}, {'keep_top_k': -1},
              {'max_pairs_per_query': 0}, {'batch_size': 0}, {'splits': []}):
    with pytest.raises(C.ConfigError):
      S.parse_config(json.dumps(bad))


# --- fake teachers -----------------------------------------------------------


def _vector(text: str) -> np.ndarray:
  seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], 'little')
  return np.random.default_rng(seed).normal(size=8).astype(np.float32)


class FakeCrossEncoder:
  """score = dot(v(q), v(d)); raises on the text 'BOOM' (one bad pair)."""
  is_bi_encoder = False

  def score(self, queries, docs, batch_size=64):
    if 'BOOM' in list(queries) + list(docs):
      raise ValueError('cannot score BOOM')
    return np.array([float(_vector(q) @ _vector(d)) for q, d in zip(queries, docs)], np.float32)


class FakeBiEncoder(FakeCrossEncoder):
  """Same scores as FakeCrossEncoder, through embeddings; 'BOOM' cannot be embedded."""
  is_bi_encoder = True

  def _embed(self, texts):
    if 'BOOM' in texts:
      raise ValueError('cannot embed BOOM')
    return np.stack([_vector(t) for t in texts]) if texts else np.zeros((0, 8), np.float32)

  def embed_queries(self, texts, batch_size=64):
    return self._embed(list(texts))

  def embed_documents(self, texts, batch_size=64):
    return self._embed(list(texts))

  def score_embeddings(self, q, d):
    return (np.asarray(q) * np.asarray(d)).sum(axis=1)


def load_fake_cross(model_dir):
  del model_dir
  return FakeCrossEncoder()


def load_fake_bi(model_dir):
  del model_dir
  return FakeBiEncoder()


# --- records -----------------------------------------------------------------


def example_bytes(qid, did, query, doc, label=None) -> bytes:
  return example_io.to_tf_example({F.QUERY_ID: qid, F.DOC_ID: did, F.QUERY: query, F.DOC: doc,
                                   F.LABEL: label, F.FIRST_STAGE_SCORE: 1.0,
                                   F.FIRST_STAGE_RANK: 1}).SerializeToString()


def with_feature(raw: bytes, key: str, feature: tf.train.Feature = None) -> bytes:
  ex = tf.train.Example.FromString(raw)
  if feature is None:
    del ex.features.feature[key]
  else:
    ex.features.feature[key].CopyFrom(feature)
  return ex.SerializeToString()


MALFORMED = b'\xff\xff\xff\xff not a proto'
TRAILING_JUNK = b'\x00\xffjunk'   # the C++ parser stops early with only a warning


def bad_records():
  """(split, bytes, expected reason) for each dead-letter reason of parsing."""
  good = example_bytes('q1', 'd1', 'wing flow', 'body')
  return [
      ('unlabelled', MALFORMED, 'malformed_record'),
      ('unlabelled', TRAILING_JUNK, 'malformed_record'),
      ('unlabelled', with_feature(good, F.QUERY_ID), 'missing_query_id'),
      ('unlabelled', with_feature(good, F.QUERY_ID, tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[b'']))), 'missing_query_id'),
      ('unlabelled', with_feature(good, F.DOC_ID, tf.train.Feature(
          float_list=tf.train.FloatList(value=[1.0]))), 'missing_doc_id'),
      ('train', with_feature(good, F.QUERY, tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[b'\xc3\x28']))), 'missing_query'),
      ('unlabelled', with_feature(good, F.DOC), 'missing_doc'),
      ('unlabelled', with_feature(good, F.DOC, tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[b'a', b'b']))), 'missing_doc'),
  ]


def test_parse_record_reasons_and_empty_text():
  for split, raw, reason in bad_records():
    pair, dead = P.parse_record(split, raw)
    assert pair is None and dead['reason'] == reason and dead['split'] == split
    assert set(dead) == {'reason', 'split', 'record'}
    assert dead['record']['raw_base64']
  pair, dead = P.parse_record('unlabelled', example_bytes('q1', 'd9', 'wing', ''))
  assert dead is None and pair[F.DOC] == '' and not pair[K.LABELLED]
  pair, _ = P.parse_record('train', example_bytes('q1', 'd9', 'wing', 'x', label=2.0))
  assert pair[K.LABELLED]


def test_parse_pairs_routes_dead_letters():
  bad = bad_records()
  good = [('unlabelled', example_bytes('q1', f'd{i}', 'wing', f'doc {i}')) for i in range(3)]
  with test_pipeline.TestPipeline() as p:
    out = (p | beam.Create([(s, r) for s, r, _ in bad] + good)) | P.ParsePairs()
    assert_that(out[K.PAIRS] | 'Ids' >> beam.Map(lambda x: x[F.DOC_ID]),
                equal_to(['d0', 'd1', 'd2']), label='pairs')
    assert_that(out[K.DEAD_LETTER] | 'Reasons' >> beam.Map(lambda d: (d['split'], d['reason'])),
                equal_to([(s, reason) for s, _, reason in bad]), label='dead')


# --- the whole labelling transform with fake teachers ------------------------


def corpus():
  """Two splits: train (labelled), unlabelled with a duplicate, an empty doc,
  a BOOM doc the teachers fail on, a single-pair list, and bad records."""
  records = []
  for q in range(3):
    for d in range(4):
      records.append(('train', example_bytes(f't{q}', f'd{d}', f'train query {q}',
                                             f'document {d}', label=float(d % 2))))
  for q in range(4):
    for d in range(5):
      records.append(('unlabelled', example_bytes(f'u{q}', f'd{d}', f'query {q}', f'doc {d}')))
  records.append(('unlabelled', example_bytes('u0', 'd0', 'query 0', 'doc 0')))   # duplicate
  records.append(('unlabelled', example_bytes('u1', 'empty', 'query 1', '')))    # empty doc
  records.append(('unlabelled', example_bytes('u2', 'boom', 'query 2', 'BOOM')))  # unscorable
  records.append(('unlabelled', example_bytes('lonely', 'd0', 'query x', 'doc 0')))
  records += [(s, r) for s, r, _ in bad_records()]
  return records


# assert_that callbacks are pickled; they record into this module-level dict,
# which the in-process runner shares with the test.
_COLLECTED = {}


class Collect:
  """An assert_that matcher that stores what it sees under `name`."""

  def __init__(self, name: str):
    self.name = name

  def __call__(self, actual):
    _COLLECTED[self.name] = list(actual)


def run_pseudo_label(loader, is_bi, config, records):
  """Runs PseudoLabel + CountOutcomes; returns the materialised outputs."""
  _COLLECTED.clear()
  with test_pipeline.TestPipeline() as p:
    recs = p | beam.Create(records)
    out = recs | L.PseudoLabel('/nowhere', is_bi, config, b'7:abc', loader=loader)
    counts = dict(out, records=recs) | O.CountOutcomes()
    for name in (K.KEPT, K.FILTERED, K.DEAD_LETTER, K.STATS, K.FUSION):
      if name in out:
        assert_that(out[name], Collect(name), label=f'collect_{name}')
    assert_that(counts, Collect('counts'), label='collect_counts')
  return dict(_COLLECTED)


@pytest.mark.parametrize('loader,is_bi', [(load_fake_cross, False), (load_fake_bi, True)])
def test_pseudo_label_routes_every_pair_once(loader, is_bi):
  config = cfg(keep_top_k=2, keep_bottom_k=1)
  records = corpus()
  got = run_pseudo_label(loader, is_bi, config, records)

  dead = sorted((d['split'], d['reason']) for d in got[K.DEAD_LETTER])
  expected_dead = sorted([(s, r) for s, _, r in bad_records()]
                         + [('unlabelled', 'duplicate_pair'), ('unlabelled', 'scoring_error')])
  assert dead == expected_dead
  boom = [d for d in got[K.DEAD_LETTER] if d['reason'] == 'scoring_error'][0]
  assert boom['record'][F.DOC_ID] == 'boom' and boom['record']['detail']

  kept = [(s, tf.train.Example.FromString(b)) for s, b in got[K.KEPT]]
  kept_train = [e for s, e in kept if s == 'train']
  assert len(kept_train) == 12   # labelled: all kept
  for e in kept_train:
    f = e.features.feature
    assert f[F.LABEL].float_list.value[0] in (0.0, 1.0)
    assert f[F.TEACHER_ID].bytes_list.value == [b'7:abc']
    expected = float(_vector(f[F.QUERY].bytes_list.value[0].decode())
                     @ _vector(f[F.DOC].bytes_list.value[0].decode()))
    assert f[F.TEACHER_SCORE].float_list.value[0] == pytest.approx(expected, rel=1e-5, abs=1e-5)
    assert f[F.FIRST_STAGE_RANK].int64_list.value == [1]   # original features kept
  # unlabelled: u0..u3 lists of 5 (u1 has 6 with the empty doc) -> top 2 + bottom 1 each
  kept_unlabelled = [e for s, e in kept if s == 'unlabelled']
  assert len(kept_unlabelled) == 4 * 3
  filtered = sorted((s, r) for s, r, _, _ in got[K.FILTERED])
  assert filtered == sorted([('unlabelled', 'not_top_or_bottom')] * (2 + 3 + 2 + 2)
                            + [('unlabelled', 'no_signal')])

  rows = json.loads(got['counts'][0])
  counts = O.counts_from_rows(rows, ['train', 'unlabelled'])
  assert counts['train']['pairs_in'] == 12 + 1 and counts['train']['kept'] == 12
  assert counts['unlabelled']['pairs_in'] == len(records) - 13
  assert counts['unlabelled']['empty_text_scored'] == 1
  assert counts['unlabelled']['filtered_not_top_or_bottom'] == 9
  assert counts['unlabelled']['dead_letter_duplicate_pair'] == 1
  for split in ('train', 'unlabelled', 'total'):
    assert O.unaccounted(counts[split]) == 0, counts[split]
  assert counts['total']['pairs_in'] == len(records)
  assert counts['total']['kept'] == len(got[K.KEPT])
  assert sum(v for k, v in counts['total'].items() if k.startswith('dead_letter_')) == len(
      got[K.DEAD_LETTER])
  stats_status = sorted(s[1] for s in got[K.STATS])
  assert stats_status.count('labelled') == 12 and stats_status.count('kept') == 12
  assert stats_status.count('filtered') == 10


def test_bi_encoder_path_matches_cross_encoder_path():
  records = [(s, r) for s, r in corpus() if s == 'train']
  cross = run_pseudo_label(load_fake_cross, False, cfg(), records)
  bi = run_pseudo_label(load_fake_bi, True, cfg(), records)

  def scores(got):
    out = {}
    for _, raw in got[K.KEPT]:
      f = tf.train.Example.FromString(raw).features.feature
      out[(f[F.QUERY_ID].bytes_list.value[0], f[F.DOC_ID].bytes_list.value[0])] = (
          f[F.TEACHER_SCORE].float_list.value[0], f[F.SOFT_LABEL].float_list.value[0],
          f[F.HARD_LABEL].float_list.value[0], f[F.CONFIDENCE].float_list.value[0])
    return out

  a, b = scores(cross), scores(bi)
  assert a.keys() == b.keys() and len(a) == 12
  for key in a:
    np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-5)
  # Per query: soft labels sum to 1, one hard label (hard_top_k=1).
  for q in (b't0', b't1', b't2'):
    assert sum(v[1] for k, v in b.items() if k[0] == q) == pytest.approx(1.0, abs=1e-5)
    assert sum(v[2] for k, v in b.items() if k[0] == q) == 1.0


def test_bi_encoder_embeds_each_unique_text_once():
  """12 train pairs share 3 query texts and 4 document texts: 4 doc embeddings."""
  with test_pipeline.TestPipeline() as p:
    pairs = (p | beam.Create([r for s, r in corpus() if s == 'train'][:12])
             | beam.Map(lambda raw: P.parse_record('train', raw)[0]))
    embedded = (pairs
                | 'Docs' >> beam.Map(lambda x: x[F.DOC])
                | 'Distinct' >> beam.Distinct()
                | canonical.CanonicalWindows(K.text_key, 2)
                | beam.ParDo(T.EmbedTextsDoFn('/nowhere', 'document', 2, loader=load_fake_bi)))
    assert_that(embedded | beam.Map(lambda kv: kv[0]),
                equal_to([K.text_key(f'document {d}') for d in range(4)]))
    assert_that(embedded | 'Vectors' >> beam.Map(lambda kv: np.frombuffer(kv[1], np.float32).size),
                equal_to([8] * 4), label='sizes')


def test_with_pseudo_labels_keeps_and_replaces_features():
  raw = example_bytes('q', 'd', 'query', 'doc', label=2.0)
  once = L.with_pseudo_labels(raw, 1.5, 0.25, 1.0, 0.5, b'1:aa')
  twice = L.with_pseudo_labels(once, -1.0, 0.75, 0.0, 0.1, b'2:bb')
  f = tf.train.Example.FromString(twice).features.feature
  assert f[F.LABEL].float_list.value == [2.0]
  assert f[F.QUERY].bytes_list.value == [b'query']
  assert list(f[F.TEACHER_SCORE].float_list.value) == [-1.0]
  assert f[F.SOFT_LABEL].float_list.value[0] == pytest.approx(0.75)
  assert list(f[F.HARD_LABEL].float_list.value) == [0.0]
  assert f[F.TEACHER_ID].bytes_list.value == [b'2:bb']


def test_counts_from_rows_fills_known_names_and_totals():
  counts = O.counts_from_rows([['a', 'pairs_in', 5], ['a', 'kept', 3],
                               ['a', 'filtered_no_signal', 1],
                               ['a', 'dead_letter_malformed_record', 1],
                               ['b', 'pairs_in', 2], ['b', 'kept', 1]], ['a', 'b'])
  assert counts['a']['dead_letter_duplicate_pair'] == 0
  assert counts['total']['pairs_in'] == 7 and counts['total']['kept'] == 4
  assert O.unaccounted(counts['a']) == 0
  assert O.unaccounted(counts['b']) == 1   # one pair lost: detected


def test_progress_logs_items_per_second(caplog):
  with caplog.at_level(logging.INFO, logger='absl'):
    progress = T._Progress('pairs', every_s=0.0)  # pylint: disable=protected-access
    progress.add(10, 0.5)
  messages = [r.getMessage() for r in caplog.records]
  assert any('10 pairs scored' in m and '20.0/s while scoring' in m for m in messages), messages
  with caplog.at_level(logging.INFO, logger='absl'):
    caplog.clear()
    quiet = T._Progress('pairs', every_s=3600.0)  # pylint: disable=protected-access
    quiet.add(10, 0.5)
  assert not caplog.records   # at most one line per interval


# --- batches fixed by the data ----------------------------------------------


def test_canonical_windows_are_fixed_by_the_data():
  """The same items in two arrival orders (one through a Reshuffle) give the
  same windows, in the same order inside each: every item once, none over
  the window, ceil(250 / 16) = 16 buckets."""
  texts = [f'text {i}' for i in range(250)]
  runs = []
  for name, order in (('forward', texts), ('shuffled', texts[::-1])):
    _COLLECTED.clear()
    with test_pipeline.TestPipeline() as p:
      items = p | beam.Create(order)
      if name == 'shuffled':
        items = items | beam.Reshuffle()
      out = items | canonical.CanonicalWindows(K.text_key, 16) | beam.Map(tuple)
      assert_that(out, Collect(name))
    runs.append(sorted(_COLLECTED[name]))
  assert runs[0] == runs[1]
  windows = runs[0]
  assert sorted(t for w in windows for t in w) == sorted(texts)
  assert all(1 <= len(w) <= 16 for w in windows)
  buckets = {canonical.bucket(K.text_key(w[0]), 16) for w in windows}
  assert len(buckets) <= 16 and len(windows) >= 16
  for w in windows:   # inside a window: sorted by key, one bucket
    assert list(w) == sorted(w, key=K.text_key)
    assert {canonical.bucket(K.text_key(t), 16) for t in w} == {canonical.bucket(K.text_key(w[0]), 16)}


class BatchSensitiveBiEncoder(FakeBiEncoder):
  """Like a real model on CPU: an output's last bits depend on its batch
  (here its size and the item's position in it)."""

  def _embed(self, texts):
    base = super()._embed(texts)
    n = len(texts)
    return base * (1 + 1e-4 * np.arange(n, dtype=np.float32)[:, None]) + np.float32(1e-4 * n)

  def score_embeddings(self, q, d):
    return super().score_embeddings(q, d) + np.float32(1e-4 * len(q))


class BatchSensitiveCrossEncoder(FakeCrossEncoder):

  def score(self, queries, docs, batch_size=64):
    base = super().score(queries, docs, batch_size)
    return base + np.float32(1e-4) * (len(base) + np.arange(len(base), dtype=np.float32))


@pytest.mark.parametrize('loader,is_bi', [(lambda _: BatchSensitiveCrossEncoder(), False),
                                          (lambda _: BatchSensitiveBiEncoder(), True)])
def test_teacher_scores_do_not_depend_on_arrival_order(loader, is_bi):
  """A teacher whose outputs depend on their batch still labels the corpus
  to the same bits when its records arrive in another order: every teacher
  call gets a batch fixed by the data (canonical.py)."""
  teacher = loader(None)
  if is_bi:   # the fake is batch-sensitive, or this test would prove nothing
    assert teacher.embed_documents(['doc 0'])[0, 0] != teacher.embed_documents(['a', 'doc 0'])[1, 0]
  else:
    assert teacher.score(['q'], ['d'])[0] != teacher.score(['x', 'q'], ['y', 'd'])[1]
  records = [(s, r) for s, r in corpus() if s in ('train', 'unlabelled')]
  config = cfg(batch_size=2)   # windows of 32 texts or pairs: several per run

  def scores(got):
    out = {}
    for split, raw in got[K.KEPT]:
      f = tf.train.Example.FromString(raw).features.feature
      out[(split, f[F.QUERY_ID].bytes_list.value[0], f[F.DOC_ID].bytes_list.value[0])] = (
          f[F.TEACHER_SCORE].float_list.value[0], f[F.SOFT_LABEL].float_list.value[0])
    return out

  forward = scores(run_pseudo_label(loader, is_bi, config, records))
  backward = scores(run_pseudo_label(loader, is_bi, config, records[::-1]))
  assert len(forward) == 33 and forward == backward   # 12 train + 21 unlabelled kept


# --- fusion with the first stage (fuse_first_stage) --------------------------


def staged(split, qid, did, query, doc, first_stage, rank, label=None):
  row = {F.QUERY_ID: qid, F.DOC_ID: did, F.QUERY: query, F.DOC: doc, F.LABEL: label,
         F.FIRST_STAGE_SCORE: first_stage, F.FIRST_STAGE_RANK: rank}
  return split, example_io.to_tf_example(row).SerializeToString()


def fusion_corpus():
  """Calibration: 4 queries x 5 candidates; the first stage ranks the one
  relevant document first (the fake teacher's ranking is arbitrary), plus a
  judged document outside the top 5. Unlabelled: 3 queries x 5, one record
  without a first-stage score."""
  records = []
  for q in range(4):
    for rank in range(1, 6):
      records.append(staged('calibration', f'c{q}', f'd{rank}', f'cal query {q}',
                            f'cal doc {q} {rank}', 10.0 - 2 * rank, rank,
                            label=1.0 if rank == 1 else 0.0))
    records.append(staged('calibration', f'c{q}', 'far', f'cal query {q}', f'far doc {q}',
                          0.5, 40, label=2.0))
  for q in range(3):
    for rank in range(1, 6):
      records.append(staged('unlabelled', f'u{q}', f'd{rank}', f'query {q}', f'doc {rank}',
                            8.0 - rank, rank))
  bare = with_feature(staged('unlabelled', 'u0', 'bare', 'query 0', 'bare doc', 1.0, 6)[1],
                      F.FIRST_STAGE_SCORE)
  records.append(('unlabelled', bare))
  return records


def kept_by_pair(got):
  out = {}
  for split, raw in got[K.KEPT]:
    f = tf.train.Example.FromString(raw).features.feature
    out[(split, f[F.QUERY_ID].bytes_list.value[0].decode(),
         f[F.DOC_ID].bytes_list.value[0].decode())] = {
             'query': f[F.QUERY].bytes_list.value[0].decode(),
             'doc': f[F.DOC].bytes_list.value[0].decode(),
             'first_stage': f[F.FIRST_STAGE_SCORE].float_list.value[0],
             'rank': f[F.FIRST_STAGE_RANK].int64_list.value[0],
             'label': list(f[F.LABEL].float_list.value),
             'score': f[F.TEACHER_SCORE].float_list.value[0],
             'soft': f[F.SOFT_LABEL].float_list.value[0]}
  return out


def test_parse_record_needs_a_first_stage_score_only_to_fuse():
  split, raw = staged('unlabelled', 'q', 'd', 'wing', 'flow', 3.5, 2)
  pair, _ = P.parse_record(split, raw)
  assert F.FIRST_STAGE_SCORE not in pair   # not fusing: not read
  pair, _ = P.parse_record(split, raw, first_stage=True)
  assert (pair[F.FIRST_STAGE_SCORE], pair[F.FIRST_STAGE_RANK], pair[F.LABEL]) == (3.5, 2.0, None)
  for feature, detail in ((None, 'absent'),
                          (tf.train.Feature(float_list=tf.train.FloatList(value=[math.nan])),
                           'not finite (nan)'),
                          (tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'3'])),
                           'not a number (bytes_list)')):
    pair, dead = P.parse_record(split, with_feature(raw, F.FIRST_STAGE_SCORE, feature),
                                first_stage=True)
    assert pair is None and dead['reason'] == 'missing_first_stage_score'
    assert dead['record']['detail'] == detail and dead['record'][F.DOC_ID] == 'd'


def test_fused_targets_with_a_set_weight():
  """teacher_score = teacher + 0.5 x first stage; soft labels are the softmax
  of that over the list; a pair without a first-stage score is a dead letter."""
  records = [r for r in fusion_corpus() if r[0] == 'unlabelled']
  got = run_pseudo_label(load_fake_cross, False,
                         cfg(splits=['unlabelled'], fuse_first_stage=True,
                             first_stage_weight=0.5), records)
  assert got[K.FUSION] == [{'weight': 0.5, 'source': 'config'}]
  assert [(d['reason'], d['record'][F.DOC_ID]) for d in got[K.DEAD_LETTER]] == [
      ('missing_first_stage_score', 'bare')]
  kept = kept_by_pair(got)
  assert len(kept) == 15
  for q in range(3):
    rows = [kept[('unlabelled', f'u{q}', f'd{r}')] for r in range(1, 6)]
    teacher = np.array([float(_vector(x['query']) @ _vector(x['doc'])) for x in rows])
    fused = teacher + 0.5 * np.array([8.0 - r for r in range(1, 6)])
    np.testing.assert_allclose([x['score'] for x in rows], fused, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose([x['soft'] for x in rows], selection.softmax(fused, 1.0),
                               rtol=1e-5, atol=1e-6)
  counts = O.counts_from_rows(json.loads(got['counts'][0]), ['unlabelled'])
  assert counts['unlabelled']['dead_letter_missing_first_stage_score'] == 1
  assert counts['unlabelled']['pairs_in'] == 16 and O.unaccounted(counts['unlabelled']) == 0


def test_fusion_weight_is_fitted_on_calibration_as_the_evaluator_fits_it():
  """The weight equals components/common/hybrid.py's fit on the same
  calibration rows and teacher scores (top-5 reranked, the judged document
  at rank 40 only in the ideal DCG), and every pair is fused with it."""
  records = fusion_corpus()
  got = run_pseudo_label(load_fake_cross, False,
                         cfg(splits=['calibration', 'unlabelled'], fuse_first_stage=True,
                             fusion_candidates_k=5), records)
  [fit] = got[K.FUSION]
  rows = []
  for split, raw in records:
    if split == 'calibration':
      f = tf.train.Example.FromString(raw).features.feature
      rows.append({F.QUERY_ID: f[F.QUERY_ID].bytes_list.value[0].decode(),
                   F.DOC_ID: f[F.DOC_ID].bytes_list.value[0].decode(),
                   F.LABEL: f[F.LABEL].float_list.value[0],
                   F.FIRST_STAGE_SCORE: f[F.FIRST_STAGE_SCORE].float_list.value[0],
                   F.FIRST_STAGE_RANK: f[F.FIRST_STAGE_RANK].int64_list.value[0],
                   'score': float(_vector(f[F.QUERY].bytes_list.value[0].decode())
                                  @ _vector(f[F.DOC].bytes_list.value[0].decode()))})
  scored, qrels = hybrid.calibration_rows(rows, 5)
  assert len(scored) == 20 and len(qrels) == 4
  expected = hybrid.fit_weight(scored, [r['score'] for r in scored], qrels)
  assert fit['weight'] == expected['weight'] > 0
  assert fit['calibration_ndcg@10'] == pytest.approx(expected['calibration_ndcg@10'])
  assert fit['calibration_ndcg@10'] >= fit['calibration_ndcg@10_model_only']
  assert (fit['source'], fit['calibration_queries'], fit['calibration_pairs'],
          fit['candidates_k']) == ('calibration', 4, 20, 5)
  # The first stage puts the relevant document first; the judged one at rank 40
  # keeps its nDCG below 1.
  assert 0 < fit['calibration_ndcg@10_first_stage'] < 1
  kept = kept_by_pair(got)
  assert len(kept) == 20 + 4 + 15   # calibration pairs are labelled: all kept
  for x in kept.values():
    teacher = float(_vector(x['query']) @ _vector(x['doc']))
    assert x['score'] == pytest.approx(teacher + fit['weight'] * x['first_stage'],
                                       rel=1e-5, abs=1e-5)
  assert fusion.fit(rows, 5)['weight'] == fit['weight']


def test_fitting_without_calibration_pairs_fails_naming_the_fix():
  records = [r for r in fusion_corpus() if r[0] == 'unlabelled']
  with pytest.raises(Exception, match='fuse_first_stage: no labelled .calibration. pairs'):
    run_pseudo_label(load_fake_cross, False,
                     cfg(splits=['calibration', 'unlabelled'], fuse_first_stage=True,
                         fusion_candidates_k=5), records)
