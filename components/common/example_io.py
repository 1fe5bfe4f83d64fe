"""Reading and writing ranking tf.Examples (one place for the on-disk layout).

Split data lives as gzipped TFRecord files under `<artifact uri>/Split-<name>/`,
the layout every stock TFX component expects from an `Examples` artifact.
All file access goes through tf.io.gfile, so artifact URIs may be remote.
"""

import os
from typing import Any, Dict, Iterable, Iterator, List, Optional

import tensorflow as tf

from rankdata import features as F

_STRING_KEYS = (F.QUERY_ID, F.DOC_ID, F.QUERY, F.DOC)
_FLOAT_KEYS = (F.LABEL, F.FIRST_STAGE_SCORE)
_INT_KEYS = (F.FIRST_STAGE_RANK,)
FILE_PREFIX = 'data_tfrecord'


def split_dir(uri: str, split: str) -> str:
  return os.path.join(uri, f'Split-{split}')


def split_files(uri: str, split: str) -> List[str]:
  files = sorted(tf.io.gfile.glob(os.path.join(split_dir(uri, split), '*.gz')))
  if not files:
    raise FileNotFoundError(f'no TFRecord files for split {split!r} under {uri}')
  return files


def to_tf_example(ex: Dict[str, Any], extra_float: Optional[Dict[str, float]] = None) -> tf.train.Example:
  """Builds a tf.Example from an example dict; a None label is left out."""
  feats = {}
  for k in _STRING_KEYS:
    feats[k] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(ex[k]).encode('utf-8')]))
  for k in _FLOAT_KEYS:
    if ex.get(k) is not None:
      feats[k] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(ex[k])]))
  for k in _INT_KEYS:
    if ex.get(k) is not None:
      feats[k] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(ex[k])]))
  for k, v in (extra_float or {}).items():
    feats[k] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(v)]))
  return tf.train.Example(features=tf.train.Features(feature=feats))


def from_tf_example(example: tf.train.Example) -> Dict[str, Any]:
  """Inverse of `to_tf_example`; absent numeric features come back as None.

  Features other than the standard ones (e.g. pseudo-label scores added by
  later stages) are returned too, as Python scalars.
  """
  out: Dict[str, Any] = {}
  for k, feat in example.features.feature.items():
    kind = feat.WhichOneof('kind')
    values = list(getattr(feat, kind).value) if kind else []
    if kind == 'bytes_list':
      out[k] = values[0].decode('utf-8') if values else ''
    else:
      out[k] = values[0] if values else None
  for k in _STRING_KEYS:
    out.setdefault(k, '')
  for k in _FLOAT_KEYS + _INT_KEYS:
    out.setdefault(k, None)
  return out


def write_split(uri: str, split: str, examples: Iterable[Dict[str, Any]]) -> int:
  """Writes one split as a single gzipped TFRecord file; returns the count."""
  tf.io.gfile.makedirs(split_dir(uri, split))
  path = os.path.join(split_dir(uri, split), f'{FILE_PREFIX}-00000-of-00001.gz')
  n = 0
  with tf.io.TFRecordWriter(path, options='GZIP') as writer:
    for ex in examples:
      writer.write(to_tf_example(ex).SerializeToString())
      n += 1
  return n


def iter_serialized(files: List[str], batch_size: int = 1024) -> Iterator[bytes]:
  """Serialized records in file order. Batched: one eager tf.data step per
  record costs ~0.15 ms, more than parsing it (45,812 records: 7.7 s vs 0.2 s)."""
  for path in files:
    for batch in tf.data.TFRecordDataset(path, compression_type='GZIP').batch(batch_size):
      yield from batch.numpy()


def read_split(uri: str, split: str) -> List[Dict[str, Any]]:
  return read_files(split_files(uri, split))


def read_files(files: List[str]) -> List[Dict[str, Any]]:
  """Reads TFRecord files (e.g. a Trainer's fn_args.train_files) into dicts."""
  expanded: List[str] = []
  for pattern in files:
    matches = sorted(tf.io.gfile.glob(pattern)) if any(c in pattern for c in '*?[') else [pattern]
    expanded.extend(matches)
  return [from_tf_example(tf.train.Example.FromString(b)) for b in iter_serialized(expanded)]
