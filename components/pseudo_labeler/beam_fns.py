"""Beam transforms of the PseudoLabeler: parse, score, label, write, count.

Shape of the pipeline (one element = one serialized tf.Example of a split):

  ReadSplits ─ ParsePairs ─┬─ dead letters (malformed_record, missing_<field>)
                           └─ pairs ─ Score{Cross,Bi}Encoder ─┬─ dead letters
                                                             │  (scoring_error)
                                                             └─ scored pairs
  scored pairs ─ GroupByKey (split, query_id) ─ LabelLists ─┬─ kept (+ pseudo-labels)
                                                            ├─ filtered (by reason)
                                                            ├─ dead letters
                                                            │  (duplicate_pair)
                                                            └─ stats for the plot
  CountOutcomes: exact counts from these PCollections (not from metrics).

Duplicates of a (query_id, doc_id) are found in the per-query group, the
shuffle selection needs anyway, rather than in a shuffle of their own before
scoring: a duplicate costs one wasted teacher call, a separate dedup step
would cost a second shuffle of the whole corpus.

Scoring is batched: `beam.BatchElements` feeds a DoFn a list of pairs (or
texts) and the teacher runs once per batch, never once per example.

Teacher loading and the tensorflow_text pitfall: the exported rankers
tokenise inside the graph with tensorflow_text ops (case folding, WordPiece).
Those are custom TF ops, registered only when the Python module
`tensorflow_text` is imported into the process. The driver imports it
(rankers.export does), but a Beam worker is a fresh interpreter: with
`--direct_running_mode=multi_processing` (and on Dataflow / Flink) it
unpickles the DoFn, imports only the modules the pickled code names, and
`tf.saved_model.load` fails with "Op type not registered 'CaseFoldUTF8' in
binary". `load_teacher` therefore imports tensorflow_text itself, and is
called from `DoFn.setup()`, which runs once per DoFn instance in the worker
(not per element, not per bundle); a `beam.utils.shared.Shared` handle makes
the DoFns of one worker process (the bi-encoder's embed and score steps, the
threads of a multi-threaded worker) share one loaded model.

Bi-encoders are scored from embeddings: each unique query text and each
unique document text is embedded once (`beam.Distinct` on the text), and
embeddings are joined back to pairs with CoGroupByKey on a hash of the text
(see `ScoreBiEncoder` for why a join and not a side input).
"""

import base64
import hashlib
import json
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from absl import logging
import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.utils import shared as beam_shared
import numpy as np
from tensorflow.core.example import example_pb2

from components.pseudo_labeler import selection
from components.pseudo_labeler import spec as S
from rankdata import features as F

NAMESPACE = 'pseudo_labeler'   # Beam metrics namespace

# Output tags.
PAIRS = 'pairs'
SCORED = 'scored'
KEPT = 'kept'
FILTERED = 'filtered'
DEAD_LETTER = 'dead_letter'
STATS = 'stats'
EMB = 'embedding'   # CoGroupByKey tag of the embedding side of a join

# Pair dict fields besides the feature keys.
SPLIT = 'split'
LABELLED = 'labelled'
RAW = 'raw'
SCORE = 'score'

# Dead letters keep at most this much of a record's bytes (base64).
MAX_DEAD_LETTER_BYTES = 64 * 1024
PROGRESS_EVERY_S = 15.0

Pair = Dict[str, Any]


def inc(split: str, name: str, n: int = 1) -> None:
  """Beam counter `<split>_<name>` (informational; counts.json is exact)."""
  beam.metrics.Metrics.counter(NAMESPACE, f'{split}_{name}').inc(n)


def text_key(text: str) -> bytes:
  """Join key of a text: a hash, so identical texts share one embedding.

  Keying by content rather than by query_id / doc_id makes a reused id with
  different text impossible to mis-join, and embeds duplicate texts once.
  """
  return hashlib.sha256(text.encode('utf-8')).digest()[:16]


def raw_record(raw: bytes) -> Dict[str, Any]:
  """What a dead letter keeps of unusable bytes: base64, maybe truncated."""
  return {'raw_base64': base64.b64encode(raw[:MAX_DEAD_LETTER_BYTES]).decode('ascii'),
          'raw_bytes': len(raw), 'truncated': len(raw) > MAX_DEAD_LETTER_BYTES}


def dead_letter(reason: str, split: str, record: Dict[str, Any]) -> Dict[str, Any]:
  return {'reason': reason, 'split': split, 'record': record}


def pair_dead_letter(reason: str, pair: Pair, detail: str) -> Dict[str, Any]:
  record = {F.QUERY_ID: pair[F.QUERY_ID], F.DOC_ID: pair[F.DOC_ID], 'detail': detail}
  record.update(raw_record(pair[RAW]))
  return dead_letter(reason, pair[SPLIT], record)


# --- Parsing -----------------------------------------------------------------


def _text_feature(example: example_pb2.Example, key: str) -> Tuple[Optional[str], str]:
  """(text, '') or (None, why) for a one-value UTF-8 bytes feature."""
  feature_map = example.features.feature
  if key not in feature_map:
    return None, 'absent'
  feature = feature_map[key]
  kind = feature.WhichOneof('kind')
  if kind != 'bytes_list':
    return None, f'not bytes ({kind})'
  values = feature.bytes_list.value
  if len(values) != 1:
    return None, f'expected one value, got {len(values)}'
  try:
    return values[0].decode('utf-8'), ''
  except UnicodeDecodeError as e:
    return None, f'not UTF-8: {e}'


def has_label(example: example_pb2.Example) -> bool:
  """A pair is labelled when its `label` feature holds a value."""
  if F.LABEL not in example.features.feature:
    return False
  feature = example.features.feature[F.LABEL]
  kind = feature.WhichOneof('kind')
  return bool(kind) and len(getattr(feature, kind).value) > 0


def parse_record(split: str, raw: bytes) -> Tuple[Optional[Pair], Optional[Dict[str, Any]]]:
  """(pair, None) for a scorable record, else (None, dead letter).

  Ids must be non-empty; query and document texts may be empty (Cranfield
  has empty documents): the teacher scores them like any other text.
  """
  example = example_pb2.Example()
  try:
    consumed = example.ParseFromString(raw)
    # The C++ parser stops at a stray end-group tag with only a warning; a
    # record that is not consumed to its end is not a tf.Example either.
    problem = None if consumed == len(raw) else f'parsed {consumed} of {len(raw)} bytes'
  except Exception as e:  # pylint: disable=broad-except  # DecodeError and friends
    problem = f'{type(e).__name__}: {e}'
  if problem:
    record = raw_record(raw)
    record['detail'] = problem
    return None, dead_letter(S.DEAD_MALFORMED, split, record)
  pair: Pair = {SPLIT: split}
  for key in S.REQUIRED_FIELDS:
    text, why = _text_feature(example, key)
    if text is None or (key in (F.QUERY_ID, F.DOC_ID) and not text):
      record = {k: pair[k] for k in (F.QUERY_ID, F.DOC_ID) if k in pair}
      record['detail'] = why or 'empty id'
      record.update(raw_record(raw))
      return None, dead_letter(S.missing_reason(key), split, record)
    pair[key] = text
  pair[LABELLED] = has_label(example)
  pair[RAW] = raw
  return pair, None


class ParseDoFn(beam.DoFn):
  """(split, bytes) -> pair dicts; unusable records -> DEAD_LETTER."""

  def process(self, element):  # (split, bytes)
    split, raw = element
    inc(split, S.PAIRS_IN)
    pair, dead = parse_record(split, raw)
    if pair is not None:
      yield pair
    else:
      inc(split, S.dead_letter_name(dead['reason']))
      yield beam.pvalue.TaggedOutput(DEAD_LETTER, dead)


@beam.ptransform_fn
def ReadSplits(pipeline: beam.Pipeline, patterns: Dict[str, str]):  # pylint: disable=invalid-name
  """{split: file pattern} of gzipped TFRecords -> (split, bytes)."""
  per_split = []
  for split, pattern in sorted(patterns.items()):
    per_split.append(
        pipeline
        | f'Read[{split}]' >> beam.io.ReadFromTFRecord(
            pattern, coder=beam.coders.BytesCoder(), compression_type=CompressionTypes.AUTO)
        | f'Key[{split}]' >> beam.Map(lambda raw, s=split: (s, raw)))
  return per_split | 'FlattenSplits' >> beam.Flatten()


@beam.ptransform_fn
def ParsePairs(records):  # pylint: disable=invalid-name
  """(split, bytes) -> outputs PAIRS (pair dicts) and DEAD_LETTER."""
  return records | 'Parse' >> beam.ParDo(ParseDoFn()).with_outputs(DEAD_LETTER, main=PAIRS)


# --- The teacher -------------------------------------------------------------


def load_teacher(model_dir: str):
  """Loads the exported ranker; safe in a fresh Beam worker process.

  tensorflow_text must be imported before tf.saved_model.load in every
  process that loads the model, or its custom tokenizer ops are unknown
  (see the module docstring). rankers.export imports it too; the explicit
  import here keeps the fix visible where it matters.
  """
  import tensorflow_text  # pylint: disable=g-import-not-at-top,unused-import
  from rankers import export  # pylint: disable=g-import-not-at-top
  return export.load_scorer(model_dir)


class _Progress:
  """Logs items done and items/s every `every_s` seconds (per DoFn instance)."""

  def __init__(self, what: str, every_s: float = PROGRESS_EVERY_S):
    self.what = what
    self.every_s = every_s
    self.done = 0
    self.busy_s = 0.0
    self.start = self.last = time.time()

  def add(self, n: int, busy_s: float) -> None:
    self.done += n
    self.busy_s += busy_s
    now = time.time()
    if now - self.last >= self.every_s:
      self.last = now
      self.log()

  def log(self) -> None:
    logging.info('pseudo-labeller: %d %s scored in this worker (%.1f/s while scoring, '
                 '%.1f/s wall)', self.done, self.what, self.done / max(self.busy_s, 1e-9),
                 self.done / max(time.time() - self.start, 1e-9))


class _TeacherDoFn(beam.DoFn):
  """Base of the DoFns that call the teacher: one model per worker process."""

  def __init__(self, model_dir: str, what: str, shared: Optional[beam_shared.Shared] = None,
               loader: Callable[[str], Any] = load_teacher):
    self._model_dir = model_dir
    self._what = what
    self._shared = shared or beam_shared.Shared()
    self._loader = loader
    self._scorer = None
    self._progress: Optional[_Progress] = None

  def setup(self):
    self._scorer = self._shared.acquire(lambda: self._loader(self._model_dir),
                                        tag=self._model_dir)
    self._progress = _Progress(self._what)

  def teardown(self):
    if self._progress is not None and self._progress.done:
      self._progress.log()

  def _timed(self, fn, *args):
    t0 = time.time()
    out = fn(*args)
    return out, time.time() - t0


def _finite_or_dead(pairs: Sequence[Pair], scores: Sequence[float]):
  for pair, score in zip(pairs, scores):
    if np.isfinite(score):
      yield dict(pair, **{SCORE: float(score)})
    else:
      inc(pair[SPLIT], S.dead_letter_name(S.DEAD_SCORING_ERROR))
      yield beam.pvalue.TaggedOutput(
          DEAD_LETTER, pair_dead_letter(S.DEAD_SCORING_ERROR, pair, f'non-finite score {score}'))


class ScorePairsDoFn(_TeacherDoFn):
  """A batch of pairs -> scored pairs (cross-encoder: one call per batch).

  If a batch fails, its pairs are scored one by one so that one bad pair
  becomes a `scoring_error` dead letter instead of failing the run.
  """

  def __init__(self, model_dir: str, batch_size: int, **kwargs):
    super().__init__(model_dir, 'pairs', **kwargs)
    self._batch_size = batch_size

  def _score(self, batch: Sequence[Pair]) -> np.ndarray:
    return np.asarray(self._scorer.score([p[F.QUERY] for p in batch], [p[F.DOC] for p in batch],
                                         batch_size=self._batch_size), np.float64)

  def process(self, batch):  # List[Pair]
    try:
      scores, busy = self._timed(self._score, batch)
    except Exception as e:  # pylint: disable=broad-except
      logging.warning('teacher failed on a batch of %d pairs (%s); scoring one by one',
                      len(batch), e)
      scores, busy = [], 0.0
      for pair in batch:
        try:
          s, t = self._timed(self._score, [pair])
          scores.append(float(s[0]))
          busy += t
        except Exception as e1:  # pylint: disable=broad-except
          scores.append(float('nan'))
          logging.warning('teacher failed on pair %s/%s: %s', pair[F.QUERY_ID], pair[F.DOC_ID], e1)
    self._progress.add(len(batch), busy)
    yield from _finite_or_dead(batch, scores)


class EmbedTextsDoFn(_TeacherDoFn):
  """A batch of unique texts -> (text_key, float32 embedding bytes).

  A text the teacher cannot embed yields nothing; the join then
  dead-letters the pairs that need it (`scoring_error`).
  """

  def __init__(self, model_dir: str, side: str, batch_size: int, **kwargs):
    super().__init__(model_dir, f'unique {side} texts', **kwargs)
    if side not in ('query', 'document'):
      raise ValueError(f'side must be query or document, got {side!r}')
    self._side = side
    self._batch_size = batch_size

  def _embed(self, texts: Sequence[str]) -> np.ndarray:
    fn = self._scorer.embed_queries if self._side == 'query' else self._scorer.embed_documents
    return np.asarray(fn(list(texts), batch_size=self._batch_size), np.float32)

  def process(self, texts):  # List[str]
    try:
      embeddings, busy = self._timed(self._embed, texts)
      items = list(zip(texts, embeddings))
    except Exception as e:  # pylint: disable=broad-except
      logging.warning('teacher failed to embed a batch of %d %s texts (%s); one by one',
                      len(texts), self._side, e)
      items, busy = [], 0.0
      for text in texts:
        try:
          emb, t = self._timed(self._embed, [text])
          items.append((text, emb[0]))
          busy += t
        except Exception as e1:  # pylint: disable=broad-except
          logging.warning('teacher failed to embed %s text %r: %s', self._side, text[:80], e1)
    self._progress.add(len(texts), busy)
    for text, emb in items:
      yield text_key(text), np.asarray(emb, np.float32).tobytes()


class ScoreEmbeddingsDoFn(_TeacherDoFn):
  """A batch of (pair, query emb, doc emb) -> scored pairs, with the model's
  own similarity (the `score_embeddings` signature: cosine x scale or dot)."""

  def __init__(self, model_dir: str, **kwargs):
    super().__init__(model_dir, 'pairs (from embeddings)', **kwargs)

  def _score(self, batch) -> np.ndarray:
    q = np.stack([np.frombuffer(qe, np.float32) for _, qe, _ in batch])
    d = np.stack([np.frombuffer(de, np.float32) for _, _, de in batch])
    return np.asarray(self._scorer.score_embeddings(q, d), np.float64)

  def process(self, batch):  # List[(pair, query emb bytes, doc emb bytes)]
    pairs = [p for p, _, _ in batch]
    try:
      scores, busy = self._timed(self._score, batch)
    except Exception as e:  # pylint: disable=broad-except
      logging.warning('score_embeddings failed on a batch of %d: %s', len(batch), e)
      scores, busy = [float('nan')] * len(batch), 0.0
    self._progress.add(len(batch), busy)
    yield from _finite_or_dead(pairs, scores)


def _batch(batch_size: int) -> beam.BatchElements:
  # Fixed-size batches (the last one of a bundle may be smaller): predictable
  # memory per teacher call, and sizes the exported graph has been traced for.
  return beam.BatchElements(min_batch_size=batch_size, max_batch_size=batch_size)


@beam.ptransform_fn
def ScoreCrossEncoder(pairs, model_dir: str, batch_size: int,  # pylint: disable=invalid-name
                      shared: Optional[beam_shared.Shared] = None,
                      loader: Callable[[str], Any] = load_teacher):
  """Pairs -> (scored pairs, dead letters); one teacher call per batch.

  The Reshuffle is a fusion break: without it scoring is fused with reading,
  so a split stored as one file is scored by one worker however many there
  are. After it, the runner spreads the pairs over its workers.
  """
  out = (pairs
         | 'SpreadPairs' >> beam.Reshuffle()
         | 'BatchPairs' >> _batch(batch_size)
         | 'ScorePairs' >> beam.ParDo(ScorePairsDoFn(
             model_dir, batch_size, shared=shared, loader=loader)).with_outputs(
                 DEAD_LETTER, main=SCORED))
  return out[SCORED], out[DEAD_LETTER]


def _join_doc_embedding(element):
  """CoGroupByKey on the doc text: (doc key, {pairs, emb}) -> (query key, (pair, d_emb))."""
  _, grouped = element
  embeddings = list(grouped[EMB])
  for pair in grouped[PAIRS]:
    if not embeddings:
      inc(pair[SPLIT], S.dead_letter_name(S.DEAD_SCORING_ERROR))
      yield beam.pvalue.TaggedOutput(DEAD_LETTER, pair_dead_letter(
          S.DEAD_SCORING_ERROR, pair, 'the teacher could not embed the document'))
    else:
      yield text_key(pair[F.QUERY]), (pair, embeddings[0])


def _join_query_embedding(element):
  """(query key, {pairs: (pair, d_emb), emb}) -> (pair, q_emb, d_emb)."""
  _, grouped = element
  embeddings = list(grouped[EMB])
  for pair, doc_emb in grouped[PAIRS]:
    if not embeddings:
      inc(pair[SPLIT], S.dead_letter_name(S.DEAD_SCORING_ERROR))
      yield beam.pvalue.TaggedOutput(DEAD_LETTER, pair_dead_letter(
          S.DEAD_SCORING_ERROR, pair, 'the teacher could not embed the query'))
    else:
      yield pair, embeddings[0], doc_emb



@beam.ptransform_fn
def ScoreBiEncoder(pairs, model_dir: str, batch_size: int,  # pylint: disable=invalid-name
                   shared: Optional[beam_shared.Shared] = None,
                   loader: Callable[[str], Any] = load_teacher):
  """Pairs -> (scored pairs, dead letters), embedding each unique text once.

  Why CoGroupByKey and not side inputs: a side input is materialised whole
  in every worker, so the embedding table (documents x dim x 4 bytes: 13 GB
  for MS MARCO's 8.8M passages at dim 384) would have to fit in each
  worker's memory. A keyed join shuffles each pair and each embedding once
  and holds only one key's group at a time, so it scales with the number of
  workers rather than with one worker's RAM. Two joins are needed (document
  side, then query side); a query key's group is one query's candidates.
  """
  shared = shared or beam_shared.Shared()
  query_embeddings = (
      pairs
      | 'QueryTexts' >> beam.Map(lambda p: p[F.QUERY])
      | 'DistinctQueries' >> beam.Distinct()
      | 'BatchQueries' >> _batch(batch_size)
      | 'EmbedQueries' >> beam.ParDo(EmbedTextsDoFn(
          model_dir, 'query', batch_size, shared=shared, loader=loader)))
  doc_embeddings = (
      pairs
      | 'DocTexts' >> beam.Map(lambda p: p[F.DOC])
      | 'DistinctDocs' >> beam.Distinct()
      | 'BatchDocs' >> _batch(batch_size)
      | 'EmbedDocs' >> beam.ParDo(EmbedTextsDoFn(
          model_dir, 'document', batch_size, shared=shared, loader=loader)))
  with_doc = (
      {PAIRS: pairs | 'KeyByDoc' >> beam.Map(lambda p: (text_key(p[F.DOC]), p)),
       EMB: doc_embeddings}
      | 'JoinDocs' >> beam.CoGroupByKey()
      | 'AttachDocEmbedding' >> beam.FlatMap(_join_doc_embedding).with_outputs(
          DEAD_LETTER, main=PAIRS))
  with_both = (
      {PAIRS: with_doc[PAIRS], EMB: query_embeddings}
      | 'JoinQueries' >> beam.CoGroupByKey()
      | 'AttachQueryEmbedding' >> beam.FlatMap(_join_query_embedding).with_outputs(
          DEAD_LETTER, main=PAIRS))
  scored = (
      with_both[PAIRS]
      | 'BatchEmbeddingPairs' >> _batch(max(batch_size, 256))
      | 'ScoreEmbeddings' >> beam.ParDo(ScoreEmbeddingsDoFn(
          model_dir, shared=shared, loader=loader)).with_outputs(DEAD_LETTER, main=SCORED))
  dead = ((with_doc[DEAD_LETTER], with_both[DEAD_LETTER], scored[DEAD_LETTER])
          | 'FlattenScoringDeadLetters' >> beam.Flatten())
  return scored[SCORED], dead


# --- Labelling and selection -------------------------------------------------


def with_pseudo_labels(raw: bytes, score: float, soft: float, hard: float,
                       confidence: float, teacher_id: bytes) -> bytes:
  """The original example plus the pseudo-label features (replacing old ones)."""
  example = example_pb2.Example.FromString(raw)
  feature_map = example.features.feature
  for key, value in ((F.TEACHER_SCORE, score), (F.SOFT_LABEL, soft), (F.HARD_LABEL, hard),
                     (F.CONFIDENCE, confidence)):
    feature_map[key].Clear()
    feature_map[key].float_list.value.append(value)
  feature_map[F.TEACHER_ID].Clear()
  feature_map[F.TEACHER_ID].bytes_list.value.append(teacher_id)
  return example.SerializeToString()


def dedup(pairs: Iterable[Pair]) -> Tuple[List[Pair], List[Pair]]:
  """(unique pairs, duplicates) of one list; the kept copy of a doc_id is
  the one with the smallest bytes, so the choice is runner-independent."""
  unique: Dict[str, Pair] = {}
  duplicates: List[Pair] = []
  for pair in sorted(pairs, key=lambda p: (p[F.DOC_ID], p[RAW])):
    if pair[F.DOC_ID] in unique:
      duplicates.append(pair)
    else:
      unique[pair[F.DOC_ID]] = pair
  return list(unique.values()), duplicates


class LabelListsDoFn(beam.DoFn):
  """((split, query_id), scored pairs) -> KEPT / FILTERED / DEAD_LETTER / STATS.

  Outputs:
    KEPT (main): (split, serialized tf.Example with the pseudo-label features).
    FILTERED: (split, reason, query_id, doc_id).
    DEAD_LETTER: duplicates of a (query_id, doc_id) already in the list.
    STATS: (split, status, teacher score, confidence, empty_text) of every
      unique scored pair; status is 'kept', 'filtered' or 'labelled'.
  """

  def __init__(self, cfg: S.PseudoLabelConfig, teacher_id: bytes):
    self._cfg = cfg
    self._teacher_id = teacher_id

  def process(self, element):
    (split, query_id), pairs = element
    unique, duplicates = dedup(pairs)
    for pair in duplicates:
      inc(split, S.dead_letter_name(S.DEAD_DUPLICATE))
      yield beam.pvalue.TaggedOutput(DEAD_LETTER, pair_dead_letter(
          S.DEAD_DUPLICATE, pair, f'doc_id {pair[F.DOC_ID]!r} already in query {query_id!r}'))
    labels = selection.label_list([p[SCORE] for p in unique], [p[F.DOC_ID] for p in unique],
                                  [p[LABELLED] for p in unique], self._cfg)
    for i, pair in enumerate(unique):
      empty = pair[F.QUERY] == '' or pair[F.DOC] == ''
      if empty:
        inc(split, S.EMPTY_TEXT_SCORED)
      reason = labels.reasons[i]
      if reason is None:
        inc(split, S.KEPT)
        status = 'labelled' if pair[LABELLED] else 'kept'
        yield split, with_pseudo_labels(pair[RAW], pair[SCORE], labels.soft[i], labels.hard[i],
                                        labels.confidence, self._teacher_id)
      else:
        inc(split, S.filtered_name(reason))
        status = 'filtered'
        yield beam.pvalue.TaggedOutput(FILTERED, (split, reason, query_id, pair[F.DOC_ID]))
      yield beam.pvalue.TaggedOutput(
          STATS, (split, status, float(pair[SCORE]), float(labels.confidence), empty))


@beam.ptransform_fn
def LabelLists(scored, cfg: S.PseudoLabelConfig, teacher_id: bytes):  # pylint: disable=invalid-name
  """Scored pairs -> outputs KEPT, FILTERED, DEAD_LETTER, STATS (per query list)."""
  return (scored
          | 'KeyByQuery' >> beam.Map(lambda p: ((p[SPLIT], p[F.QUERY_ID]), p))
          | 'GroupByQuery' >> beam.GroupByKey()
          | 'Label' >> beam.ParDo(LabelListsDoFn(cfg, teacher_id)).with_outputs(
              FILTERED, DEAD_LETTER, STATS, main=KEPT))


@beam.ptransform_fn
def PseudoLabel(records, model_dir: str, is_bi_encoder: bool,  # pylint: disable=invalid-name
                cfg: S.PseudoLabelConfig, teacher_id: bytes,
                loader: Callable[[str], Any] = load_teacher) -> Dict[str, Any]:
  """(split, bytes) -> {KEPT, FILTERED, DEAD_LETTER, STATS} PCollections."""
  parsed = records | 'ParsePairs' >> ParsePairs()
  score = ScoreBiEncoder if is_bi_encoder else ScoreCrossEncoder
  scored, scoring_dead = parsed[PAIRS] | 'Score' >> score(
      model_dir, cfg.batch_size, shared=beam_shared.Shared(), loader=loader)
  labelled = scored | 'LabelLists' >> LabelLists(cfg, teacher_id)
  dead = ((parsed[DEAD_LETTER], scoring_dead, labelled[DEAD_LETTER])
          | 'FlattenDeadLetters' >> beam.Flatten())
  return {KEPT: labelled[KEPT], FILTERED: labelled[FILTERED], DEAD_LETTER: dead,
          STATS: labelled[STATS]}


# --- Counting and writing ----------------------------------------------------


@beam.ptransform_fn
def CountOutcomes(pcolls: Dict[str, Any]):  # pylint: disable=invalid-name
  """Exact counts from the outputs themselves -> one JSON string.

  Input: {'records': (split, bytes), KEPT, FILTERED, DEAD_LETTER, STATS}.
  Output: a JSON list of [split, name, count] rows, name being `pairs_in`,
  `kept`, `filtered_<reason>`, `dead_letter_<reason>` or `empty_text_scored`.
  These are counted from the very PCollections that are written, so they
  hold on runners where Beam metrics are missing or approximate.
  """
  tallies = (
      pcolls['records'] | 'TallyIn' >> beam.Map(lambda r: (r[0], S.PAIRS_IN)),
      pcolls[KEPT] | 'TallyKept' >> beam.Map(lambda k: (k[0], S.KEPT)),
      pcolls[FILTERED] | 'TallyFiltered' >> beam.Map(lambda f: (f[0], S.filtered_name(f[1]))),
      pcolls[DEAD_LETTER] | 'TallyDead' >> beam.Map(
          lambda d: (d['split'], S.dead_letter_name(d['reason']))),
      pcolls[STATS] | 'EmptyOnly' >> beam.Filter(lambda s: s[4])
      | 'TallyEmpty' >> beam.Map(lambda s: (s[0], S.EMPTY_TEXT_SCORED)),
  )
  return (tallies
          | 'FlattenTallies' >> beam.Flatten()
          | 'CountTallies' >> beam.combiners.Count.PerElement()
          | 'Rows' >> beam.Map(lambda kv: [kv[0][0], kv[0][1], int(kv[1])])
          | 'AllRows' >> beam.combiners.ToList()
          | 'RowsJson' >> beam.Map(lambda rows: json.dumps(sorted(rows))))


def counts_from_rows(rows: Sequence[Sequence[Any]],
                     splits: Sequence[str]) -> Dict[str, Dict[str, int]]:
  """[split, name, count] rows -> {split: {name: count}} with every known name
  (0 when absent) and a 'total' entry summed over splits."""
  names = ([S.PAIRS_IN, S.KEPT, S.EMPTY_TEXT_SCORED]
           + [S.filtered_name(r) for r in S.FILTER_REASONS]
           + [S.dead_letter_name(r) for r in S.DEAD_LETTER_REASONS])
  counts = {split: {name: 0 for name in names} for split in splits}
  for split, name, n in rows:
    counts.setdefault(split, {k: 0 for k in names})
    counts[split][name] = counts[split].get(name, 0) + int(n)
  total = {name: 0 for name in names}
  for split in list(counts):
    for name, n in counts[split].items():
      total[name] = total.get(name, 0) + n
  counts[S.TOTAL] = total
  return counts


def unaccounted(counts: Dict[str, int]) -> int:
  """pairs_in - kept - filtered_* - dead_letter_* (0 when nothing was lost)."""
  out = counts.get(S.PAIRS_IN, 0) - counts.get(S.KEPT, 0)
  for name, n in counts.items():
    if name.startswith('filtered_') or name.startswith('dead_letter_'):
      out -= n
  return out


@beam.ptransform_fn
def SampleForPlot(stats, size: int = 5000):  # pylint: disable=invalid-name
  """STATS -> one JSON {status: [[score, confidence], ...]} (a bounded sample)."""
  return (stats
          | 'ByStatus' >> beam.Map(lambda s: (s[1], (s[2], s[3])))
          | 'Sample' >> beam.combiners.Sample.FixedSizePerKey(size)
          | 'ToDict' >> beam.combiners.ToDict()
          | 'SampleJson' >> beam.Map(lambda d: json.dumps(
              {k: [list(map(float, v)) for v in vs] for k, vs in d.items()}, sort_keys=True)))


@beam.ptransform_fn
def WriteSplits(kept, split_dirs: Dict[str, str]):  # pylint: disable=invalid-name
  """(split, bytes) -> gzipped TFRecords `<dir>/data_tfrecord-*.gz` per split.

  A split with no kept pair still gets one (empty) file, so readers that
  glob the split folder find it.
  """
  results = []
  for split, directory in sorted(split_dirs.items()):
    results.append(
        kept
        | f'Only[{split}]' >> beam.Filter(lambda kv, s=split: kv[0] == s)
        | f'Bytes[{split}]' >> beam.Map(lambda kv: kv[1])
        | f'Write[{split}]' >> beam.io.WriteToTFRecord(
            f'{directory}/{S.OUTPUT_FILE_PREFIX}', file_name_suffix='.gz',
            compression_type=CompressionTypes.GZIP))
  return results


@beam.ptransform_fn
def WriteDeadLetters(dead, report_dir: str):  # pylint: disable=invalid-name
  """Dead letters -> `<report_dir>/dead_letter-*.jsonl`, one JSON per line."""
  return (dead
          | 'DeadJson' >> beam.Map(lambda d: json.dumps(d, sort_keys=True))
          | 'WriteDead' >> beam.io.WriteToText(
              f'{report_dir}/{S.DEAD_LETTER_PREFIX}', file_name_suffix=S.DEAD_LETTER_SUFFIX))


@beam.ptransform_fn
def WriteJson(pcoll, path: str):  # pylint: disable=invalid-name
  """A one-element PCollection of text -> exactly the file `path`."""
  return pcoll | 'WriteOne' >> beam.io.WriteToText(path, shard_name_template='', num_shards=1)
