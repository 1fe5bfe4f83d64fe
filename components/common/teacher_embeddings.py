"""A teacher's embeddings of unique texts: the on-disk layout, in one place.

With `emit_embeddings` the PseudoLabeler writes, beside the pseudo-labelled
splits of its `Examples` output, the folder `<artifact uri>/TeacherEmbeddings/`
of gzipped TFRecords, one tf.Example per unique text the teacher embedded:
`side` (b'query' | b'document'), `text` (the exact text, UTF-8) and
`embedding` (float32 list: the teacher's `embed_queries` / `embed_documents`
output for it, unchanged). The folder is not a split (split_names do not
name it), so nothing that reads splits sees it; it lives in the same
artifact as the pseudo-labels so that the artifact's `teacher_uri` and
`teacher_fingerprint` name the teacher of both. Trainers with an embedding
loss read it back with `read` (components/ranker_trainer/module.py).
"""

import os
from typing import Dict, Iterable, Optional

import numpy as np
import tensorflow as tf
from tensorflow.core.example import example_pb2

from components.common import example_io

DIR = 'TeacherEmbeddings'
FILE_PREFIX = 'embeddings'
SIDE = 'side'
TEXT = 'text'
EMBEDDING = 'embedding'
QUERY = 'query'        # components.common.embeddings.SIDES
DOCUMENT = 'document'
SIDES = (QUERY, DOCUMENT)

# Key of the examples artifact's URI in a trainer's custom_config
# `embedding_teacher` (components/ranker_trainer).
EXAMPLES_URI_KEY = 'examples_uri'

# {side: {text: float32 [H]}}
Table = Dict[str, Dict[str, np.ndarray]]


def embeddings_dir(artifact_uri: str) -> str:
  return os.path.join(artifact_uri, DIR)


def file_prefix(artifact_uri: str) -> str:
  return os.path.join(embeddings_dir(artifact_uri), FILE_PREFIX)


def exists(artifact_uri: str) -> bool:
  return bool(tf.io.gfile.glob(file_prefix(artifact_uri) + '*'))


def to_record(side: str, text: str, vector: bytes) -> bytes:
  """One text's record; `vector` is float32 bytes (embeddings.to_bytes)."""
  example = example_pb2.Example()
  feature = example.features.feature
  feature[SIDE].bytes_list.value.append(side.encode('utf-8'))
  feature[TEXT].bytes_list.value.append(text.encode('utf-8'))
  feature[EMBEDDING].float_list.value.extend(np.frombuffer(vector, np.float32).tolist())
  return example.SerializeToString()


def read(artifact_uri: str, wanted: Optional[Dict[str, Iterable[str]]] = None) -> Table:
  """{side: {text: embedding}}; with `wanted`, only those texts (per side).

  Raises ValueError on a text written twice for one side (a writer bug:
  the pseudo-labeller embeds each unique text once).
  """
  keep = None if wanted is None else {s: set(wanted.get(s, ())) for s in SIDES}
  files = sorted(tf.io.gfile.glob(file_prefix(artifact_uri) + '*'))
  if not files:
    raise FileNotFoundError(f'no teacher embeddings under {embeddings_dir(artifact_uri)}')
  table: Table = {s: {} for s in SIDES}
  for raw in example_io.iter_serialized(files):
    feature = example_pb2.Example.FromString(raw).features.feature
    side = feature[SIDE].bytes_list.value[0].decode('utf-8')
    text = feature[TEXT].bytes_list.value[0].decode('utf-8')
    if keep is not None and text not in keep[side]:
      continue
    if text in table[side]:
      raise ValueError(f'{side} text {text[:80]!r} has two embeddings in {artifact_uri}')
    table[side][text] = np.asarray(feature[EMBEDDING].float_list.value, np.float32)
  return table
