"""What the PseudoLabeler's Beam modules share: output tags, pair fields,
counters and dead-letter records.

Module map of the PseudoLabeler's Beam pipeline (one element = one
serialized tf.Example of a split):

  parse.py      ReadSplits, ParsePairs: bytes -> pair dicts | dead letters
  teacher.py    ScoreCrossEncoder / ScoreBiEncoder: pairs -> scored pairs
  joins.py      the bi-encoder's joins of embeddings back to pairs
  fusion.py     FuseFirstStage (fuse_first_stage): teacher + w * first stage
  labelling.py  LabelLists (per query: dedup, soft/hard labels, selection)
                and PseudoLabel, the whole transform from records to outputs
  outputs.py    CountOutcomes, SampleForPlot, WriteSplits, WriteDeadLetters
"""

import base64
import hashlib
from typing import Any, Dict

import apache_beam as beam

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
# Unique texts of a bi-encoder teacher (emit_embeddings): every unique text
# (UNIQUE), the embedded ones with their vectors (EMBEDDED) and those the
# teacher failed on (EMBED_FAILED); outputs.py counts and writes them.
UNIQUE = 'unique_texts'
EMBEDDED = 'embedded_texts'
EMBED_FAILED = 'embed_failed'
TEXTS = 'texts'   # PseudoLabel's output key of the above, by side
FUSION = 'fusion'   # fuse_first_stage: the fusion weight and its fit (fusion.py)

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
