"""Parsing: (split, bytes) records -> pair dicts, or dead letters.

Ids must be non-empty; query and document texts may be empty (Cranfield
has empty documents). Unusable records become dead letters with the reason
(`malformed_record`, `missing_<field>`) and at most MAX_DEAD_LETTER_BYTES of
their bytes.
"""

import math
from typing import Any, Dict, Optional, Tuple

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from tensorflow.core.example import example_pb2

from components.pseudo_labeler import spec as S
from components.pseudo_labeler.common import DEAD_LETTER
from components.pseudo_labeler.common import dead_letter
from components.pseudo_labeler.common import inc
from components.pseudo_labeler.common import LABELLED
from components.pseudo_labeler.common import Pair
from components.pseudo_labeler.common import PAIRS
from components.pseudo_labeler.common import RAW
from components.pseudo_labeler.common import raw_record
from components.pseudo_labeler.common import SPLIT
from rankdata import features as F


def _one_value(example: example_pb2.Example, key: str, kinds: Tuple[str, ...],
               what: str) -> Tuple[Any, str]:
  """(the feature's one value, '') or (None, why), for a feature of `kinds`."""
  feature_map = example.features.feature
  if key not in feature_map:
    return None, 'absent'
  feature = feature_map[key]
  kind = feature.WhichOneof('kind')
  if kind not in kinds:
    return None, f'not {what} ({kind})'
  values = getattr(feature, kind).value
  if len(values) != 1:
    return None, f'expected one value, got {len(values)}'
  return values[0], ''


def _text_feature(example: example_pb2.Example, key: str) -> Tuple[Optional[str], str]:
  """(text, '') or (None, why) for a one-value UTF-8 bytes feature."""
  value, why = _one_value(example, key, ('bytes_list',), 'bytes')
  if value is None:
    return None, why
  try:
    return value.decode('utf-8'), ''
  except UnicodeDecodeError as e:
    return None, f'not UTF-8: {e}'


def _number_feature(example: example_pb2.Example, key: str) -> Tuple[Optional[float], str]:
  """(value, '') or (None, why) for a one-value, finite float or int feature."""
  value, why = _one_value(example, key, ('float_list', 'int64_list'), 'a number')
  if value is None:
    return None, why
  value = float(value)
  if not math.isfinite(value):
    return None, f'not finite ({value})'
  return value, ''


def has_label(example: example_pb2.Example) -> bool:
  """A pair is labelled when its `label` feature holds a value."""
  if F.LABEL not in example.features.feature:
    return False
  feature = example.features.feature[F.LABEL]
  kind = feature.WhichOneof('kind')
  return bool(kind) and len(getattr(feature, kind).value) > 0


def parse_record(split: str, raw: bytes, first_stage: bool = False
                 ) -> Tuple[Optional[Pair], Optional[Dict[str, Any]]]:
  """(pair, None) for a scorable record, else (None, dead letter).

  Ids must be non-empty; query and document texts may be empty (Cranfield
  has empty documents): the teacher scores them like any other text.
  With `first_stage` (fusion with the first stage, fusion.py) the record
  must also hold one finite `first_stage_score`; the pair then carries it,
  its `first_stage_rank` and its `label` (None when absent).
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
  if first_stage:
    score, why = _number_feature(example, F.FIRST_STAGE_SCORE)
    if score is None:
      record = {F.QUERY_ID: pair[F.QUERY_ID], F.DOC_ID: pair[F.DOC_ID], 'detail': why}
      record.update(raw_record(raw))
      return None, dead_letter(S.missing_reason(F.FIRST_STAGE_SCORE), split, record)
    pair[F.FIRST_STAGE_SCORE] = score
    pair[F.FIRST_STAGE_RANK] = _number_feature(example, F.FIRST_STAGE_RANK)[0]
    pair[F.LABEL] = _number_feature(example, F.LABEL)[0] if pair[LABELLED] else None
  return pair, None


class ParseDoFn(beam.DoFn):
  """(split, bytes) -> pair dicts; unusable records -> DEAD_LETTER."""

  def __init__(self, first_stage: bool = False):
    self._first_stage = first_stage

  def process(self, element):  # (split, bytes)
    split, raw = element
    inc(split, S.PAIRS_IN)
    pair, dead = parse_record(split, raw, self._first_stage)
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
def ParsePairs(records, first_stage: bool = False):  # pylint: disable=invalid-name
  """(split, bytes) -> outputs PAIRS (pair dicts) and DEAD_LETTER."""
  return records | 'Parse' >> beam.ParDo(ParseDoFn(first_stage)).with_outputs(
      DEAD_LETTER, main=PAIRS)
