"""SavedModel export of rankers, and a small loader for scoring with them.

The export is a plain `tf.Module` with explicit tf.function signatures (not a
Keras model), so loading needs only TensorFlow and tensorflow_text, and only
`training=False` graphs are traced: no dropout or stochastic-depth op exists
in the exported functions. The vocabulary is a SavedModel asset; the
resolved RankerConfig is written to assets.extra/ranker_config.json and any
caller metadata to assets.extra/metadata.json.
"""

import json
import os
from typing import Any, Dict, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_text  # pylint: disable=unused-import  # registers ops

from rankdata import features
from rankers.config import RankerConfig
from rankers.models import graph_function
from rankers.models import Ranker

ASSETS_EXTRA = 'assets.extra'
CONFIG_FILE = 'ranker_config.json'
METADATA_FILE = 'metadata.json'

SERVING_DEFAULT = 'serving_default'
SCORE_EXAMPLES = 'score_examples'
EMBED_QUERIES = 'embed_queries'
EMBED_DOCUMENTS = 'embed_documents'
SCORE_EMBEDDINGS = 'score_embeddings'


class _ExportModule(tf.Module):
  """Holds the tokenizer, the variables and the serving functions.

  The Keras model itself is deliberately not an attribute (the functions
  close over the ranker), so saving does not go through Keras' own
  SavedModel machinery; the variables are tracked through a plain list.
  """

  def __init__(self, ranker: Ranker):
    super().__init__(name='exported_ranker')
    self.tokenizer = ranker.tokenizer
    self.model_variables = list(ranker.model.variables)
    strings = lambda name: tf.TensorSpec([None], tf.string, name=name)
    self.serve = graph_function(
        lambda query, document: {'score': ranker.score_fn(query, document)},
        [strings('query'), strings('document')])

    def score_examples(examples):
      parsed = tf.io.parse_example(examples, {
          features.QUERY: tf.io.FixedLenFeature([], tf.string),
          features.DOC: tf.io.FixedLenFeature([], tf.string),
      })
      return {'score': ranker.score_fn(parsed[features.QUERY],
                                       parsed[features.DOC])}

    self.score_examples = graph_function(score_examples,
                                         [strings('examples')])
    if ranker.is_bi_encoder:
      embeddings = lambda name: tf.TensorSpec(
          [None, ranker.embedding_dim], tf.float32, name=name)
      self.embed_queries = graph_function(
          lambda text: {'embedding': ranker.embed_queries_fn(text)},
          [strings('text')])
      self.embed_documents = graph_function(
          lambda text: {'embedding': ranker.embed_documents_fn(text)},
          [strings('text')])
      self.score_embeddings = graph_function(
          lambda query_embedding, document_embedding: {
              'score': ranker.model.score_embeddings(query_embedding,
                                                     document_embedding)},
          [embeddings('query_embedding'), embeddings('document_embedding')])

  def signatures(self) -> Dict[str, Any]:
    result = {SERVING_DEFAULT: self.serve, SCORE_EXAMPLES: self.score_examples}
    if hasattr(self, 'embed_queries'):
      result[EMBED_QUERIES] = self.embed_queries
      result[EMBED_DOCUMENTS] = self.embed_documents
      result[SCORE_EMBEDDINGS] = self.score_embeddings
    return result


def _write_json(path: str, data: Dict[str, Any]) -> None:
  with tf.io.gfile.GFile(path, 'w') as f:
    f.write(json.dumps(data, indent=2, sort_keys=True, default=str))


def export_ranker(ranker: Ranker, export_dir: str,
                  extra_metadata: Optional[Dict[str, Any]] = None) -> str:
  """Writes `ranker` as a SavedModel to export_dir; returns export_dir."""
  module = _ExportModule(ranker)
  tf.saved_model.save(module, export_dir, signatures=module.signatures())
  extra_dir = os.path.join(export_dir, ASSETS_EXTRA)
  tf.io.gfile.makedirs(extra_dir)
  _write_json(os.path.join(extra_dir, CONFIG_FILE), ranker.config.to_dict())
  if extra_metadata:
    _write_json(os.path.join(extra_dir, METADATA_FILE), extra_metadata)
  return export_dir


def _read_json(path: str) -> Dict[str, Any]:
  if not tf.io.gfile.exists(path):
    return {}
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def _batches(n: int, batch_size: int):
  if batch_size < 1:
    raise ValueError(f'batch_size must be >= 1, got {batch_size}')
  for start in range(0, n, batch_size):
    yield slice(start, min(start + batch_size, n))


def _length_order(*texts: Sequence[Any]) -> np.ndarray:
  """Indices sorting items by total text length: batches pad less."""
  lengths = np.zeros(len(texts[0]), dtype=np.int64)
  for column in texts:
    lengths += np.fromiter((len(t) for t in column), np.int64, len(column))
  return np.argsort(lengths, kind='stable')


class Scorer:
  """Scores with an exported ranker; needs only TF and tensorflow_text.

  Attributes:
    config: the ranker_config.json dict.
    metadata: the metadata.json dict ({} if none was written).
    signatures: the SavedModel's signature functions by name.
  """

  def __init__(self, export_dir: str):
    self.export_dir = export_dir
    self._loaded = tf.saved_model.load(export_dir)
    self.signatures = dict(self._loaded.signatures)
    extra_dir = os.path.join(export_dir, ASSETS_EXTRA)
    self.config = _read_json(os.path.join(extra_dir, CONFIG_FILE))
    self.metadata = _read_json(os.path.join(extra_dir, METADATA_FILE))

  @property
  def ranker_config(self) -> RankerConfig:
    return RankerConfig.from_dict(self.config)

  @property
  def is_bi_encoder(self) -> bool:
    return EMBED_QUERIES in self.signatures

  def _run(self, signature: str, output: str, inputs: Dict[str, Sequence[Any]],
           batch_size: int, sort_by_length: bool = True) -> np.ndarray:
    fn = self.signatures.get(signature)
    if fn is None:
      raise ValueError(f'{self.export_dir} has no {signature!r} signature '
                       f'(has {sorted(self.signatures)})')
    columns = {k: list(v) for k, v in inputs.items()}
    n = len(next(iter(columns.values())))
    if any(len(v) != n for v in columns.values()):
      raise ValueError(f'inputs differ in length: '
                       f'{ {k: len(v) for k, v in columns.items()} }')
    order = (_length_order(*columns.values()) if sort_by_length
             else np.arange(n))
    parts = []
    for part in _batches(n, batch_size):
      index = order[part]
      batch = {k: tf.constant([v[i] for i in index], tf.string)
               for k, v in columns.items()}
      parts.append(fn(**batch)[output].numpy())
    if not parts:
      width = fn.structured_outputs[output].shape[1:]
      return np.zeros([0] + [int(d) for d in width], np.float32)
    result = np.empty_like(np.concatenate(parts))
    result[order] = np.concatenate(parts)
    return result

  def score(self, queries: Sequence[Any], docs: Sequence[Any],
            batch_size: int = 64) -> np.ndarray:
    """Scores (query, document) pairs -> float32 [N]."""
    return self._run(SERVING_DEFAULT, 'score',
                     {'query': queries, 'document': docs}, batch_size)

  def score_examples(self, serialized: Sequence[bytes],
                     batch_size: int = 64) -> np.ndarray:
    """Scores serialized tf.Examples (features QUERY and DOC) -> [N]."""
    return self._run(SCORE_EXAMPLES, 'score', {'examples': serialized},
                     batch_size, sort_by_length=False)

  def embed_queries(self, texts: Sequence[Any],
                    batch_size: int = 64) -> np.ndarray:
    """Bi-encoder only: query embeddings float32 [N, H]."""
    return self._run(EMBED_QUERIES, 'embedding', {'text': texts}, batch_size)

  def embed_documents(self, texts: Sequence[Any],
                      batch_size: int = 64) -> np.ndarray:
    """Bi-encoder only: document embeddings float32 [N, H]."""
    return self._run(EMBED_DOCUMENTS, 'embedding', {'text': texts}, batch_size)

  def score_embeddings(self, query_embedding: np.ndarray,
                       document_embedding: np.ndarray) -> np.ndarray:
    """Bi-encoder only: row-wise scores of embedding pairs -> [N]."""
    fn = self.signatures.get(SCORE_EMBEDDINGS)
    if fn is None:
      raise ValueError(f'{self.export_dir} has no {SCORE_EMBEDDINGS!r} '
                       f'signature (not a bi-encoder)')
    return fn(query_embedding=tf.constant(query_embedding, tf.float32),
              document_embedding=tf.constant(document_embedding, tf.float32)
              )['score'].numpy()


def load_scorer(export_dir: str) -> Scorer:
  """Loads a SavedModel written by export_ranker."""
  return Scorer(export_dir)
