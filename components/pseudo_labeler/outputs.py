"""Counting and writing the PseudoLabeler's outputs.

Counts (CountOutcomes) are exact: counted from the very PCollections that
are written, not from Beam metrics.
"""

import json
from typing import Any, Dict, Sequence

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes

from components.common import teacher_embeddings as TE
from components.pseudo_labeler import spec as S
from components.pseudo_labeler.common import DEAD_LETTER
from components.pseudo_labeler.common import EMBED_FAILED
from components.pseudo_labeler.common import EMBEDDED
from components.pseudo_labeler.common import FILTERED
from components.pseudo_labeler.common import KEPT
from components.pseudo_labeler.common import STATS
from components.pseudo_labeler.common import UNIQUE


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
  return rows_json(tallies, 'Tallies')


def rows_json(tallies: Sequence[Any], label: str):
  """PCollections of (key, name) tallies -> one JSON list of sorted [key, name, count]
  rows; `label` prefixes the stage names (unique per call in a pipeline)."""
  return (tuple(tallies)
          | f'Flatten{label}' >> beam.Flatten()
          | f'Count{label}' >> beam.combiners.Count.PerElement()
          | f'{label}Rows' >> beam.Map(lambda kv: [kv[0][0], kv[0][1], int(kv[1])])
          | f'All{label}Rows' >> beam.combiners.ToList()
          | f'{label}RowsJson' >> beam.Map(lambda rows: json.dumps(sorted(rows))))


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


@beam.ptransform_fn
def WriteEmbeddings(texts, artifact_uri: str):  # pylint: disable=invalid-name
  """{side: {EMBEDDED: (side, text, bytes)}} -> teacher_embeddings records
  under `<artifact_uri>/TeacherEmbeddings/` (one per unique embedded text)."""
  embedded = ([texts[side][EMBEDDED] for side in sorted(texts)]
              | 'FlattenEmbedded' >> beam.Flatten())
  return (embedded
          | 'EmbeddingRecords' >> beam.MapTuple(TE.to_record)
          | 'WriteEmbeddingRecords' >> beam.io.WriteToTFRecord(
              TE.file_prefix(artifact_uri), file_name_suffix='.gz',
              compression_type=CompressionTypes.GZIP))


@beam.ptransform_fn
def CountTexts(texts):  # pylint: disable=invalid-name
  """{side: {UNIQUE, EMBEDDED, EMBED_FAILED}} -> one JSON list of
  [side, name, count] rows, name being S.TEXTS_UNIQUE, TEXTS_EMBEDDED or
  TEXTS_FAILED, counted from the very PCollections written."""
  tallies = []
  for side in sorted(texts):
    for tag, name in ((UNIQUE, S.TEXTS_UNIQUE), (EMBEDDED, S.TEXTS_EMBEDDED),
                      (EMBED_FAILED, S.TEXTS_FAILED)):
      tallies.append(texts[side][tag]
                     | f'Tally[{side},{name}]' >> beam.Map(lambda _, k=(side, name): k))
  return rows_json(tallies, 'TextTallies')


def text_counts_from_rows(rows: Sequence[Sequence[Any]]) -> Dict[str, Dict[str, int]]:
  """[side, name, count] rows -> {side: {name: count}}, every side and name present."""
  names = (S.TEXTS_UNIQUE, S.TEXTS_EMBEDDED, S.TEXTS_FAILED)
  counts = {side: {name: 0 for name in names} for side in TE.SIDES}
  for side, name, n in rows:
    counts[side][name] += int(n)
  return counts
