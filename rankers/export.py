"""SavedModel export of rankers, and a small loader for scoring with them.

The export is a plain `tf.Module` with explicit tf.function signatures (not a
Keras model), so loading needs only TensorFlow and tensorflow_text, and only
`training=False` graphs are traced: no dropout, stochastic-depth or text
noise op exists in the exported functions. The vocabulary is a SavedModel
asset; the resolved RankerConfig is written to
assets.extra/ranker_config.json and any caller metadata to
assets.extra/metadata.json.

Every export is also an HF-format checkpoint (assets.extra/hf_checkpoint/,
see `checkpoint_dir_of`): later models warm-start from it (T' from its
teacher, a student from a teacher's first k layers) through the ordinary
`RankerConfig.checkpoint_dir` path, with no second loader to keep in sync.

Hybrid scoring (`hybrid_weight=w`): serving_default and score_examples
return score = model + w * first_stage_score (and the plain `model_score`),
so a deployed reranker can fuse with the first stage (e.g. BM25) in one
call. The weight is stored in metadata.json as `hybrid_weight`.
"""

import json
import math
import os
from typing import Any, Dict, Optional, Sequence

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_text  # pylint: disable=unused-import  # registers ops

from rankdata import features
from rankers import checkpoint
from rankers.config import RankerConfig
from rankers.models import graph_function
from rankers.models import Ranker

ASSETS_EXTRA = 'assets.extra'
CONFIG_FILE = 'ranker_config.json'
METADATA_FILE = 'metadata.json'
HF_CHECKPOINT_DIR = 'hf_checkpoint'
HYBRID_WEIGHT = 'hybrid_weight'      # metadata.json key
FIRST_STAGE_SCORE = features.FIRST_STAGE_SCORE  # serving input name
MODEL_SCORE = 'model_score'          # hybrid output: the model alone

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

  def __init__(self, ranker: Ranker, hybrid_weight: Optional[float] = None):
    super().__init__(name='exported_ranker')
    self.tokenizer = ranker.tokenizer
    self.model_variables = list(ranker.model.variables)
    strings = lambda name: tf.TensorSpec([None], tf.string, name=name)
    example_spec = {
        features.QUERY: tf.io.FixedLenFeature([], tf.string),
        features.DOC: tf.io.FixedLenFeature([], tf.string),
    }
    if hybrid_weight is None:
      self.serve = graph_function(
          lambda query, document: {'score': ranker.score_fn(query, document)},
          [strings('query'), strings('document')])

      def score_examples(examples):
        parsed = tf.io.parse_example(examples, example_spec)
        return {'score': ranker.score_fn(parsed[features.QUERY],
                                         parsed[features.DOC])}
    else:
      weight = float(hybrid_weight)

      def fuse(query, document, first_stage_score):
        model_score = ranker.score_fn(query, document)
        return {'score': model_score + weight * first_stage_score,
                MODEL_SCORE: model_score}

      self.serve = graph_function(fuse, [
          strings('query'), strings('document'),
          tf.TensorSpec([None], tf.float32, name=FIRST_STAGE_SCORE)])
      # Required: a fused score without the first-stage score is meaningless.
      example_spec[FIRST_STAGE_SCORE] = tf.io.FixedLenFeature([], tf.float32)

      def score_examples(examples):
        parsed = tf.io.parse_example(examples, example_spec)
        return fuse(parsed[features.QUERY], parsed[features.DOC],
                    parsed[FIRST_STAGE_SCORE])

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
                  extra_metadata: Optional[Dict[str, Any]] = None,
                  hybrid_weight: Optional[float] = None) -> str:
  """Writes `ranker` as a SavedModel to export_dir; returns export_dir.

  Args:
    ranker: the model (as built by models.build_ranker).
    export_dir: the SavedModel directory.
    extra_metadata: JSON-able dict written to assets.extra/metadata.json.
    hybrid_weight: if set, serving_default takes a third input
      `first_stage_score` float32 [B] and returns {'score': model + w *
      first_stage_score, 'model_score': model}; score_examples reads the
      FIRST_STAGE_SCORE feature and fuses the same way. Stored in
      metadata.json as `hybrid_weight`.

  The ranker's weights are also written as an HF checkpoint to
  assets.extra/hf_checkpoint (checkpoint_dir_of).
  """
  metadata = dict(extra_metadata or {})
  if hybrid_weight is not None:
    hybrid_weight = float(hybrid_weight)
    if not math.isfinite(hybrid_weight):
      raise ValueError(f'hybrid_weight must be finite, got {hybrid_weight}')
    if metadata.get(HYBRID_WEIGHT, hybrid_weight) != hybrid_weight:
      raise ValueError(f'extra_metadata[{HYBRID_WEIGHT!r}] is '
                       f'{metadata[HYBRID_WEIGHT]}, hybrid_weight is '
                       f'{hybrid_weight}')
    metadata[HYBRID_WEIGHT] = hybrid_weight
  elif HYBRID_WEIGHT in metadata:
    raise ValueError(f'extra_metadata has {HYBRID_WEIGHT!r} but the export '
                     f'is not hybrid; pass hybrid_weight= instead')
  config = ranker.config
  if config.vocab_file is None:
    raise ValueError('export_ranker needs a resolved RankerConfig (with '
                     'vocab_file), as build_ranker gives')
  module = _ExportModule(ranker, hybrid_weight)
  tf.saved_model.save(module, export_dir, signatures=module.signatures())
  extra_dir = os.path.join(export_dir, ASSETS_EXTRA)
  tf.io.gfile.makedirs(extra_dir)
  _write_json(os.path.join(extra_dir, CONFIG_FILE), config.to_dict())
  if metadata:
    _write_json(os.path.join(extra_dir, METADATA_FILE), metadata)
  checkpoint.write_hf_checkpoint(
      os.path.join(extra_dir, HF_CHECKPOINT_DIR), ranker.encoder,
      config.vocab_file, config.lower_case,
      head=None if ranker.is_bi_encoder else ranker.model.score_head,
      ranker_fields={'architecture': config.architecture,
                     'pooling': config.pooling},
      special_tokens=ranker.tokenizer.special_tokens)
  logging.info('Exported %s to %s%s', config.architecture, export_dir,
               '' if hybrid_weight is None else
               f' (hybrid, weight {hybrid_weight})')
  return export_dir


def checkpoint_dir_of(export_dir: str) -> str:
  """The HF checkpoint inside an export, for RankerConfig.checkpoint_dir.

  Raises:
    FileNotFoundError: export_dir holds no such checkpoint (not written by
      export_ranker, or by a version before checkpoints were exported).
  """
  directory = os.path.join(export_dir, ASSETS_EXTRA, HF_CHECKPOINT_DIR)
  missing = [name for name in (checkpoint.CONFIG_FILE, checkpoint.WEIGHTS_FILE,
                               checkpoint.VOCAB_FILE)
             if not tf.io.gfile.exists(os.path.join(directory, name))]
  if missing:
    raise FileNotFoundError(
        f'{directory}: no HF checkpoint (missing {missing}); is {export_dir} '
        f'a ranker exported by rankers.export.export_ranker? Re-export '
        f'models written before exports carried checkpoints')
  return directory


def read_ranker_config(export_dir: str) -> RankerConfig:
  """The RankerConfig an export was written with, without loading it."""
  path = os.path.join(export_dir, ASSETS_EXTRA, CONFIG_FILE)
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f'{export_dir} holds no {ASSETS_EXTRA}/{CONFIG_FILE} (not '
                            'written by export_ranker)')
  return RankerConfig.from_dict(_read_json(path))


def read_hybrid_weight(export_dir: str) -> Optional[float]:
  """w of a hybrid export (Scorer.hybrid_weight), None for a plain one,
  read from its metadata.json without loading the SavedModel."""
  return _hybrid_weight(_read_json(os.path.join(export_dir, ASSETS_EXTRA, METADATA_FILE)))


def _hybrid_weight(metadata: Dict[str, Any]) -> Optional[float]:
  weight = metadata.get(HYBRID_WEIGHT)
  return None if weight is None else float(weight)


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
    hybrid_weight: w of a hybrid export (score = model + w * first stage),
      None for a plain one. `score` always returns the model's own score;
      `score_hybrid` the fused one.
  """

  def __init__(self, export_dir: str):
    self.export_dir = export_dir
    self._loaded = tf.saved_model.load(export_dir)
    self.signatures = dict(self._loaded.signatures)
    extra_dir = os.path.join(export_dir, ASSETS_EXTRA)
    self.config = _read_json(os.path.join(extra_dir, CONFIG_FILE))
    self.metadata = _read_json(os.path.join(extra_dir, METADATA_FILE))
    serve = self.signatures.get(SERVING_DEFAULT)
    self._serving_inputs = (
        set(serve.structured_input_signature[1]) if serve is not None
        else set())
    weight = self.metadata.get(HYBRID_WEIGHT)
    self.hybrid_weight = _hybrid_weight(self.metadata)
    if (self.hybrid_weight is not None) != self.is_hybrid:
      raise ValueError(
          f'{export_dir}: metadata.json {HYBRID_WEIGHT}={weight} but '
          f'serving_default takes {sorted(self._serving_inputs)}')

  @property
  def ranker_config(self) -> RankerConfig:
    return RankerConfig.from_dict(self.config)

  @property
  def is_bi_encoder(self) -> bool:
    return EMBED_QUERIES in self.signatures

  @property
  def is_hybrid(self) -> bool:
    """Whether serving_default fuses with a first-stage score."""
    return FIRST_STAGE_SCORE in self._serving_inputs

  def _run(self, signature: str, output: str, inputs: Dict[str, Sequence[Any]],
           batch_size: int, sort_by_length: bool = True,
           floats: Sequence[str] = ()) -> np.ndarray:
    """Runs a signature in batches; `floats` name float32 inputs (others are
    strings, and only they count for the length sort)."""
    fn = self.signatures.get(signature)
    if fn is None:
      raise ValueError(f'{self.export_dir} has no {signature!r} signature '
                       f'(has {sorted(self.signatures)})')
    columns = {k: (np.asarray(v, np.float32) if k in floats else list(v))
               for k, v in inputs.items()}
    n = len(next(iter(columns.values())))
    if any(len(v) != n for v in columns.values()):
      raise ValueError(f'inputs differ in length: '
                       f'{ {k: len(v) for k, v in columns.items()} }')
    texts = [v for k, v in columns.items() if k not in floats]
    order = (_length_order(*texts) if sort_by_length else np.arange(n))
    parts = []
    for part in _batches(n, batch_size):
      index = order[part]
      batch = {k: (tf.constant(v[index]) if k in floats else
                   tf.constant([v[i] for i in index], tf.string))
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
    """Scores (query, document) pairs -> float32 [N], the model's own score.

    For a hybrid export too (its `model_score` output): teacher scores,
    pseudo-labels and metrics of the model alone must not mix in the first
    stage. Use score_hybrid for the fused score.
    """
    inputs = {'query': queries, 'document': docs}
    if not self.is_hybrid:
      return self._run(SERVING_DEFAULT, 'score', inputs, batch_size)
    inputs[FIRST_STAGE_SCORE] = np.zeros(len(inputs['query']), np.float32)
    return self._run(SERVING_DEFAULT, MODEL_SCORE, inputs, batch_size,
                     floats=[FIRST_STAGE_SCORE])

  def score_hybrid(self, queries: Sequence[Any], docs: Sequence[Any],
                   first_stage_scores: Sequence[float],
                   batch_size: int = 64) -> np.ndarray:
    """Hybrid exports only: model + hybrid_weight * first stage -> [N]."""
    if not self.is_hybrid:
      raise ValueError(f'{self.export_dir} is not a hybrid export (exported '
                       f'without hybrid_weight); use score()')
    return self._run(SERVING_DEFAULT, 'score',
                     {'query': queries, 'document': docs,
                      FIRST_STAGE_SCORE: first_stage_scores}, batch_size,
                     floats=[FIRST_STAGE_SCORE])

  def score_examples(self, serialized: Sequence[bytes],
                     batch_size: int = 64) -> np.ndarray:
    """Scores serialized tf.Examples -> [N], as the score_examples signature:
    features QUERY and DOC, and for a hybrid export also FIRST_STAGE_SCORE
    (required), fused like score_hybrid."""
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
