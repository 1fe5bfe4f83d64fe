"""The teacher in Beam: batched scoring DoFns and the two scoring transforms.

Scoring is batched: `canonical.CanonicalWindows` feeds a DoFn a list of
pairs (or texts) and the teacher runs once per batch, never once per
example.

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

Bi-encoders are scored from embeddings with components/common/embeddings.py (the
same code as batch scoring in components/common/scoring.py): each unique query text
and each unique document text is embedded once (`beam.Distinct` on the
text), and embeddings are joined back to pairs with CoGroupByKey on a hash
of the text (see `ScoreBiEncoder` for why a join and not a side input).

Every teacher call gets a batch fixed by the data, not by the runner's
bundles (canonical.py), so a teacher scores a corpus to the same bits in
every run, on every runner.
"""

import time
from typing import Any, Callable, Optional, Sequence

from absl import logging
import apache_beam as beam
from apache_beam.utils import shared as beam_shared
import numpy as np

from components.common import embeddings
from components.pseudo_labeler import canonical
from components.pseudo_labeler import joins
from components.pseudo_labeler import spec as S
from components.pseudo_labeler.common import DEAD_LETTER
from components.pseudo_labeler.common import EMB
from components.pseudo_labeler.common import EMBED_FAILED
from components.pseudo_labeler.common import EMBEDDED
from components.pseudo_labeler.common import inc
from components.pseudo_labeler.common import pair_dead_letter
from components.pseudo_labeler.common import Pair
from components.pseudo_labeler.common import PAIRS
from components.pseudo_labeler.common import PROGRESS_EVERY_S
from components.pseudo_labeler.common import SCORE
from components.pseudo_labeler.common import SCORED
from components.pseudo_labeler.common import SPLIT
from components.pseudo_labeler.common import text_key
from components.pseudo_labeler.common import UNIQUE
from rankdata import features as F


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
  dead-letters the pairs that need it (`scoring_error`). With `emit`, each
  text also goes to EMBEDDED as (side, text, bytes), or, when the teacher
  failed on it, to EMBED_FAILED as (side, text_key): what the
  pseudo-labeller writes and counts (emit_embeddings).
  """

  def __init__(self, model_dir: str, side: str, batch_size: int, emit: bool = False,
               **kwargs):
    super().__init__(model_dir, f'unique {side} texts', **kwargs)
    if side not in embeddings.SIDES:
      raise ValueError(f'side must be query or document, got {side!r}')
    self._side = side
    self._batch_size = batch_size
    self._emit = emit

  def _embed(self, texts: Sequence[str]) -> np.ndarray:
    return embeddings.embed(self._scorer, self._side, texts, self._batch_size)

  def process(self, texts):  # List[str]
    try:
      vectors, busy = self._timed(self._embed, texts)
      items = list(zip(texts, vectors))
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
      vector = embeddings.to_bytes(emb)
      yield text_key(text), vector
      if self._emit:
        yield beam.pvalue.TaggedOutput(EMBEDDED, (self._side, text, vector))
    if self._emit and len(items) < len(texts):
      done = {text for text, _ in items}
      for text in texts:
        if text not in done:
          yield beam.pvalue.TaggedOutput(EMBED_FAILED, (self._side, text_key(text)))


class ScoreEmbeddingsDoFn(_TeacherDoFn):
  """A batch of (pair, query emb, doc emb) -> scored pairs, with the model's
  own similarity (the `score_embeddings` signature: cosine x scale or dot)."""

  def __init__(self, model_dir: str, **kwargs):
    super().__init__(model_dir, 'pairs (from embeddings)', **kwargs)

  def _score(self, batch) -> np.ndarray:
    return embeddings.score_rows(self._scorer, batch)

  def process(self, batch):  # List[(pair, query emb bytes, doc emb bytes)]
    pairs = [p for p, _, _ in batch]
    try:
      scores, busy = self._timed(self._score, batch)
    except Exception as e:  # pylint: disable=broad-except
      logging.warning('score_embeddings failed on a batch of %d: %s', len(batch), e)
      scores, busy = [float('nan')] * len(batch), 0.0
    self._progress.add(len(batch), busy)
    yield from _finite_or_dead(pairs, scores)


# A DoFn call takes this many model batches of texts: the Scorer sorts a
# call's inputs by length and pads each model batch to its longest item, so
# a window of several batches pads far less than one batch in arrival order
# (the model runs on batch_size items at a time either way). `ssd bench
# speed` measures the difference.
SORT_WINDOW_BATCHES = 16


def _pair_key(pair) -> bytes:
  """Content key of a pair: equal keys are equal inputs to the teacher."""
  return text_key('\x00'.join((pair[F.QUERY], pair[F.DOC], pair[SPLIT],
                                 str(pair[F.QUERY_ID]), str(pair[F.DOC_ID]))))


def _window(batch_size: int, key_fn) -> beam.PTransform:
  """Windows of SORT_WINDOW_BATCHES model batches, fixed by the data."""
  return canonical.CanonicalWindows(key_fn, batch_size * SORT_WINDOW_BATCHES)


@beam.ptransform_fn
def ScoreCrossEncoder(pairs, model_dir: str, batch_size: int,  # pylint: disable=invalid-name
                      shared: Optional[beam_shared.Shared] = None,
                      loader: Callable[[str], Any] = load_teacher):
  """Pairs -> (scored pairs, dead letters); one teacher call per window of
  SORT_WINDOW_BATCHES batches (sorted by length, run batch_size at a time).

  The windows' GroupByKey (canonical.py) is a fusion break: without one,
  scoring is fused with reading, so a split stored as one file is scored by
  one worker however many there are. After it, the runner spreads the
  windows over its workers.
  """
  out = (pairs
         | 'WindowPairs' >> _window(batch_size, _pair_key)
         | 'ScorePairs' >> beam.ParDo(ScorePairsDoFn(
             model_dir, batch_size, shared=shared, loader=loader)).with_outputs(
                 DEAD_LETTER, main=SCORED))
  return out[SCORED], out[DEAD_LETTER]


@beam.ptransform_fn
def EmbedUniqueTexts(pairs, side: str, model_dir: str,  # pylint: disable=invalid-name
                     batch_size: int, emit: bool, shared: beam_shared.Shared,
                     loader: Callable[[str], Any]):
  """Pairs -> {EMB: (text_key, bytes), EMBEDDED, EMBED_FAILED} for one side
  (EmbedTextsDoFn), and with `emit` UNIQUE: (side, text_key) per unique text."""
  field = F.QUERY if side == embeddings.QUERY else F.DOC
  texts = (pairs
           | 'Texts' >> beam.Map(lambda p: p[field])
           | 'Distinct' >> beam.Distinct())
  out = (texts
         | 'Window' >> _window(batch_size, text_key)
         | 'Embed' >> beam.ParDo(EmbedTextsDoFn(
             model_dir, side, batch_size, emit=emit, shared=shared,
             loader=loader)).with_outputs(EMBEDDED, EMBED_FAILED, main=EMB))
  found = {EMB: out[EMB], EMBEDDED: out[EMBEDDED], EMBED_FAILED: out[EMBED_FAILED]}
  if emit:   # counted against the written embeddings (outputs.CountTexts)
    found[UNIQUE] = texts | 'Keys' >> beam.Map(lambda t: (side, text_key(t)))
  return found


@beam.ptransform_fn
def ScoreBiEncoder(pairs, model_dir: str, batch_size: int,  # pylint: disable=invalid-name
                   shared: Optional[beam_shared.Shared] = None,
                   loader: Callable[[str], Any] = load_teacher,
                   emit_embeddings: bool = False):
  """Pairs -> (scored pairs, dead letters, texts), embedding each unique text once.

  `texts` is {side: EmbedUniqueTexts' outputs}; with `emit_embeddings` its
  EMBEDDED and EMBED_FAILED outputs hold every unique text (else empty).

  Why CoGroupByKey and not side inputs: a side input is materialised whole
  in every worker, so the embedding table (documents x dim x 4 bytes: 13 GB
  for MS MARCO's 8.8M passages at dim 384) would have to fit in each
  worker's memory. A keyed join shuffles each pair and each embedding once
  and holds only one key's group at a time, so it scales with the number of
  workers rather than with one worker's RAM. Two joins are needed (document
  side, then query side); a query key's group is one query's candidates.
  """
  shared = shared or beam_shared.Shared()
  texts = {side: pairs | f'Embed[{side}]' >> EmbedUniqueTexts(
      side, model_dir, batch_size, emit_embeddings, shared, loader)
           for side in embeddings.SIDES}
  query_embeddings = texts[embeddings.QUERY][EMB]
  doc_embeddings = texts[embeddings.DOCUMENT][EMB]
  with_doc = (
      {PAIRS: pairs | 'KeyByDoc' >> beam.Map(lambda p: (text_key(p[F.DOC]), p)),
       EMB: doc_embeddings}
      | 'JoinDocs' >> beam.CoGroupByKey()
      | 'AttachDocEmbedding' >> beam.FlatMap(joins.attach_doc_embedding).with_outputs(
          DEAD_LETTER, main=PAIRS))
  with_both = (
      {PAIRS: with_doc[PAIRS], EMB: query_embeddings}
      | 'JoinQueries' >> beam.CoGroupByKey()
      | 'AttachQueryEmbedding' >> beam.FlatMap(joins.attach_query_embedding).with_outputs(
          DEAD_LETTER, main=PAIRS))
  # with_both's elements are lists already: a query's joined rows, sorted
  # and cut by joins.attach_query_embedding.
  scored = (
      with_both[PAIRS]
      | 'ScoreEmbeddings' >> beam.ParDo(ScoreEmbeddingsDoFn(
          model_dir, shared=shared, loader=loader)).with_outputs(DEAD_LETTER, main=SCORED))
  dead = ((with_doc[DEAD_LETTER], with_both[DEAD_LETTER], scored[DEAD_LETTER])
          | 'FlattenScoringDeadLetters' >> beam.Flatten())
  return scored[SCORED], dead, texts
