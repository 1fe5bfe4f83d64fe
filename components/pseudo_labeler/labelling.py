"""Labelling: per-query lists of scored pairs -> pseudo-labelled examples.

Duplicates of a (query_id, doc_id) are found in the per-query group, the
shuffle selection needs anyway, rather than in a shuffle of their own before
scoring: a duplicate costs one wasted teacher call, a separate dedup step
would cost a second shuffle of the whole corpus.

`PseudoLabel` is the whole transform (see common.py for the module map):

  records ─ ParsePairs ─┬─ dead letters (malformed_record, missing_<field>)
                        └─ pairs ─ Score{Cross,Bi}Encoder ─┬─ dead letters
                                                          │  (scoring_error)
                                                          └─ scored pairs
  scored pairs ─ [FuseFirstStage: + w * first stage, w fitted on calibration]
               ─ GroupByKey (split, query_id) ─ LabelLists ─┬─ kept (+ pseudo-labels)
                                                            ├─ filtered (by reason)
                                                            ├─ dead letters
                                                            │  (duplicate_pair)
                                                            └─ stats for the plot
"""

from typing import Any, Callable, Dict, Iterable, List, Tuple

import apache_beam as beam
from apache_beam.utils import shared as beam_shared
from tensorflow.core.example import example_pb2

from components.pseudo_labeler import fusion
from components.pseudo_labeler import parse
from components.pseudo_labeler import selection
from components.pseudo_labeler import spec as S
from components.pseudo_labeler import teacher
from components.pseudo_labeler.common import DEAD_LETTER
from components.pseudo_labeler.common import FILTERED
from components.pseudo_labeler.common import FUSION
from components.pseudo_labeler.common import inc
from components.pseudo_labeler.common import KEPT
from components.pseudo_labeler.common import LABELLED
from components.pseudo_labeler.common import pair_dead_letter
from components.pseudo_labeler.common import Pair
from components.pseudo_labeler.common import PAIRS
from components.pseudo_labeler.common import RAW
from components.pseudo_labeler.common import SCORE
from components.pseudo_labeler.common import SPLIT
from components.pseudo_labeler.common import STATS
from components.pseudo_labeler.common import TEXTS
from rankdata import features as F


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
                loader: Callable[[str], Any] = teacher.load_teacher) -> Dict[str, Any]:
  """(split, bytes) -> {KEPT, FILTERED, DEAD_LETTER, STATS} PCollections.

  With cfg.emit_embeddings (bi-encoder teachers only) also TEXTS: the
  teacher's unique texts ({side: {UNIQUE, EMBEDDED, EMBED_FAILED}}). With
  cfg.fuse_first_stage the labels follow teacher + w * first stage
  (fusion.py), and FUSION holds the weight and its fit.
  """
  if cfg.emit_embeddings and not is_bi_encoder:
    raise ValueError('emit_embeddings needs a bi-encoder teacher (embeddings of single '
                     'texts); this teacher is a cross-encoder')
  parsed = records | 'ParsePairs' >> parse.ParsePairs(first_stage=cfg.fuse_first_stage)
  texts = None
  if is_bi_encoder:
    scored, scoring_dead, texts = parsed[PAIRS] | 'Score' >> teacher.ScoreBiEncoder(
        model_dir, cfg.batch_size, shared=beam_shared.Shared(), loader=loader,
        emit_embeddings=cfg.emit_embeddings)
  else:
    scored, scoring_dead = parsed[PAIRS] | 'Score' >> teacher.ScoreCrossEncoder(
        model_dir, cfg.batch_size, shared=beam_shared.Shared(), loader=loader)
  weight_fit = None
  if cfg.fuse_first_stage:
    scored, weight_fit = scored | 'FuseFirstStage' >> fusion.FuseFirstStage(cfg)
  labelled = scored | 'LabelLists' >> LabelLists(cfg, teacher_id)
  dead = ((parsed[DEAD_LETTER], scoring_dead, labelled[DEAD_LETTER])
          | 'FlattenDeadLetters' >> beam.Flatten())
  out = {KEPT: labelled[KEPT], FILTERED: labelled[FILTERED], DEAD_LETTER: dead,
         STATS: labelled[STATS]}
  if cfg.emit_embeddings:
    out[TEXTS] = texts
  if weight_fit is not None:
    out[FUSION] = weight_fit
  return out
