"""Cross-encoder and bi-encoder rankers, and the `Ranker` that scores text.

Keras models here take token-id dicts; `Ranker` adds the in-graph tokenizer
so that callers (training loop, pseudo-labelling, export) only deal with
strings. `build_ranker` is the single entry point that turns a RankerConfig
into a ready model: random initialisation or a (possibly truncated)
pretrained checkpoint.
"""

from typing import Any, Callable, Dict, List, Optional, Union

from absl import logging
import tensorflow as tf
import tf_keras as keras

from rankers import checkpoint
from rankers import tokenization
from rankers.config import EncoderConfig
from rankers.config import RankerConfig
from rankers.encoder import BertEncoder
from rankers.mpnet import MPNetEncoder

Inputs = Dict[str, tf.Tensor]
Encoder = Union[BertEncoder, MPNetEncoder]


def make_encoder(config: EncoderConfig, name: str = 'encoder') -> Encoder:
  """The encoder of config.model_type: BERT or MPNet."""
  if config.model_type == 'mpnet':
    return MPNetEncoder(config, name=name)
  return BertEncoder(config, name=name)


def graph_function(fn: Callable[..., Any],
                   input_signature: List[tf.TensorSpec]) -> Callable[..., Any]:
  """tf.function without autograph: the ranker code has no tensor-dependent
  Python control flow, and autograph conversion of the tokenizer and Keras
  layers makes tracing (and SavedModel export) several times slower."""
  return tf.function(fn, input_signature=input_signature, autograph=False)


def pool(sequence: tf.Tensor, input_mask: tf.Tensor, method: str) -> tf.Tensor:
  """[B, L, H] -> [B, H]: mean over non-padding tokens, or the [CLS] vector."""
  if method == 'cls':
    return sequence[:, 0]
  if method != 'mean':
    raise ValueError(f'unknown pooling {method!r}')
  mask = tf.cast(input_mask, sequence.dtype)[:, :, tf.newaxis]
  total = tf.reduce_sum(sequence * mask, axis=1)
  return total / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)


class CrossEncoder(keras.Model):
  """Encodes `[CLS] q [SEP] d [SEP]` jointly; pooled vector -> Dense(1)."""

  def __init__(self, encoder_config: EncoderConfig, pooling: str = 'mean',
               **kwargs):
    super().__init__(**kwargs)
    self.pooling = pooling
    self.encoder = make_encoder(encoder_config)
    self.head_dropout = keras.layers.Dropout(encoder_config.hidden_dropout)
    self.score_head = keras.layers.Dense(
        1, kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        name='score')

  def call(self, inputs: Inputs, training: bool = False) -> tf.Tensor:
    """Token ids of pairs -> scores [B]."""
    sequence = self.encoder(inputs, training=training)
    pooled = pool(sequence, inputs[tokenization.INPUT_MASK], self.pooling)
    pooled = self.head_dropout(pooled, training=training)
    return tf.squeeze(self.score_head(pooled), axis=-1)


class BiEncoder(keras.Model):
  """One shared encoder embeds queries and documents independently."""

  def __init__(self, encoder_config: EncoderConfig, pooling: str = 'mean',
               similarity: str = 'cosine', cosine_scale: float = 20.0,
               **kwargs):
    super().__init__(**kwargs)
    self.pooling = pooling
    self.similarity = similarity
    self.cosine_scale = cosine_scale
    self.encoder = make_encoder(encoder_config)

  def embed(self, inputs: Inputs, training: bool = False) -> tf.Tensor:
    """Token ids -> [B, H]; unit length when the similarity is cosine."""
    sequence = self.encoder(inputs, training=training)
    pooled = pool(sequence, inputs[tokenization.INPUT_MASK], self.pooling)
    if self.similarity == 'cosine':
      pooled = tf.math.l2_normalize(pooled, axis=-1)
    return pooled

  def score_embeddings(self, query_embedding: tf.Tensor,
                       document_embedding: tf.Tensor) -> tf.Tensor:
    """Row-wise similarity [B] (cosine x cosine_scale, or dot product)."""
    if self.similarity == 'cosine':
      query_embedding = tf.math.l2_normalize(query_embedding, axis=-1)
      document_embedding = tf.math.l2_normalize(document_embedding, axis=-1)
      scale = self.cosine_scale
    else:
      scale = 1.0
    return scale * tf.reduce_sum(query_embedding * document_embedding, -1)

  def score_matrix(self, query_embedding: tf.Tensor,
                   document_embedding: tf.Tensor) -> tf.Tensor:
    """Every query with every document: [B, H], [P, H] -> [B, P], each entry
    what score_embeddings gives for that pair."""
    return similarity_matrix(query_embedding, document_embedding, self.similarity,
                             self.cosine_scale)

  def call(self, inputs: Dict[str, Inputs], training: bool = False):
    """{'query': ids, 'doc': ids} -> scores [B]."""
    return self.score_embeddings(self.embed(inputs['query'], training),
                                 self.embed(inputs['doc'], training))


def similarity_matrix(query_embedding: tf.Tensor, document_embedding: tf.Tensor,
                      similarity: str, cosine_scale: float) -> tf.Tensor:
  """[B, H], [P, H] -> [B, P]: cosine x cosine_scale, or the dot product."""
  if similarity == 'cosine':
    query_embedding = tf.math.l2_normalize(query_embedding, axis=-1)
    document_embedding = tf.math.l2_normalize(document_embedding, axis=-1)
    return cosine_scale * tf.matmul(query_embedding, document_embedding, transpose_b=True)
  return tf.matmul(query_embedding, document_embedding, transpose_b=True)


class Ranker(tf.Module):
  """Scores (query, document) strings with a cross- or bi-encoder.

  `training` arguments must be Python bools. With training=False, calls go
  through the tf.functions `score_fn`, `score_lists_fn`, `embed_queries_fn`,
  `embed_documents_fn` (traced once; the export reuses them); with
  training=True the graph-building `_score*`/`_embed_*` code runs in the
  caller's context (e.g. a train step). Only training calls accept
  `doc_noise` (rankers.noise.DocumentNoise), which noises the documents'
  word pieces; the inference functions never see it.
  """

  def __init__(self, config: RankerConfig, tokenizer: tokenization.BertInputs,
               model: Union[CrossEncoder, BiEncoder]):
    super().__init__(name='ranker')
    self.config = config
    self.tokenizer = tokenizer
    self.model = model
    strings = tokenization.STRING_BATCH
    # Inference functions; export.py reuses them, so each is traced once.
    if self.is_bi_encoder:
      self.embed_queries_fn = graph_function(
          lambda t: self._embed_queries(t, training=False), [strings])
      self.embed_documents_fn = graph_function(
          lambda t: self._embed_documents(t, training=False), [strings])
      self.score_fn = graph_function(
          lambda q, d: self.model.score_embeddings(
              self.embed_queries_fn(q), self.embed_documents_fn(d)),
          [strings, strings])
    else:
      self.score_fn = graph_function(
          lambda q, d: self._score(q, d, training=False), [strings, strings])
    self.score_lists_fn = graph_function(
        lambda q, d, m: self._score_lists(q, d, m, training=False),
        [strings, tf.TensorSpec([None, None], tf.string),
         tf.TensorSpec([None, None], tf.bool)])

  def build(self) -> None:
    """Creates the model's variables with one small eager call."""
    self._score(tf.constant(['a']), tf.constant(['b']), training=False)

  @property
  def is_bi_encoder(self) -> bool:
    return self.config.is_bi_encoder

  @property
  def encoder(self) -> Encoder:
    return self.model.encoder

  @property
  def embedding_dim(self) -> int:
    return self.config.encoder.hidden_size

  @property
  def trainable_variables(self):
    return self.model.trainable_variables

  @property
  def word_embedding_table(self) -> tf.Variable:
    """The encoder's word-piece embedding table [vocab, hidden]."""
    return self.encoder.embeddings.word_embeddings.embeddings

  @property
  def variables(self):
    return self.model.variables

  # Graph-building implementations (no tf.function of their own).

  def _score(self, queries, docs, training: bool,
             doc_noise: Optional[tokenization.PieceNoise] = None) -> tf.Tensor:
    if self.is_bi_encoder:
      return self.model.score_embeddings(
          self._embed_queries(queries, training),
          self._embed_documents(docs, training, doc_noise))
    return self.model(self.tokenizer.pairs(queries, docs, doc_noise),
                      training=training)

  def _embed_queries(self, texts, training: bool) -> tf.Tensor:
    self._require_bi_encoder('embed_queries')
    return self.model.embed(
        self.tokenizer.single(texts, self.config.query_max_length), training)

  def _embed_documents(self, texts, training: bool,
                       doc_noise: Optional[tokenization.PieceNoise] = None
                       ) -> tf.Tensor:
    self._require_bi_encoder('embed_documents')
    return self.model.embed(
        self.tokenizer.single(texts, self.config.max_length, doc_noise),
        training)

  def _require_bi_encoder(self, what: str) -> None:
    if not self.is_bi_encoder:
      raise ValueError(f'{what} needs a bi_encoder, this ranker is a '
                       f'{self.config.architecture}')

  @staticmethod
  def _check_noise(doc_noise, training: bool) -> None:
    if doc_noise is not None and training is not True:
      raise ValueError('doc_noise is training-time noise: it needs '
                       'training=True')

  # Public API.

  def score(self, queries, docs, training: bool = False,
            doc_noise: Optional[tokenization.PieceNoise] = None) -> tf.Tensor:
    """String tensors [B], [B] -> float32 scores [B]."""
    self._check_noise(doc_noise, training)
    if training:
      return self._score(queries, docs, training=True, doc_noise=doc_noise)
    return self.score_fn(tf.convert_to_tensor(queries, tf.string),
                          tf.convert_to_tensor(docs, tf.string))

  def embed_queries(self, texts, training: bool = False) -> tf.Tensor:
    """Bi-encoder only: query strings [B] -> embeddings [B, H]."""
    if training:
      return self._embed_queries(texts, training=True)
    self._require_bi_encoder('embed_queries')
    return self.embed_queries_fn(tf.convert_to_tensor(texts, tf.string))

  def embed_documents(self, texts, training: bool = False) -> tf.Tensor:
    """Bi-encoder only: document strings [B] -> embeddings [B, H]."""
    if training:
      return self._embed_documents(texts, training=True)
    self._require_bi_encoder('embed_documents')
    return self.embed_documents_fn(tf.convert_to_tensor(texts, tf.string))

  def score_embeddings(self, query_embedding, document_embedding) -> tf.Tensor:
    """Bi-encoder only: embeddings [B, H], [B, H] -> scores [B]."""
    self._require_bi_encoder('score_embeddings')
    return self.model.score_embeddings(
        tf.convert_to_tensor(query_embedding, tf.float32),
        tf.convert_to_tensor(document_embedding, tf.float32))

  def score_lists(self, queries, docs, mask, training: bool = False,
                  doc_noise: Optional[tokenization.PieceNoise] = None):
    """Scores lists: queries [B], docs [B, L], mask [B, L] -> [B, L].

    Only the unmasked pairs are encoded (masked slots score 0); a
    bi-encoder embeds each query once per list.
    """
    self._check_noise(doc_noise, training)
    queries = tf.convert_to_tensor(queries, tf.string)
    docs = tf.convert_to_tensor(docs, tf.string)
    mask = tf.convert_to_tensor(mask, tf.bool)
    if training:
      return self._score_lists(queries, docs, mask, training=True,
                               doc_noise=doc_noise)
    return self.score_lists_fn(queries, docs, mask)

  def score_lists_with_embeddings(self, queries, docs, mask,
                                  doc_noise: Optional[tokenization.PieceNoise]
                                  = None):
    """Training graphs only (bi-encoder): scores [B, L] as `score_lists`,
    plus the pooled embeddings they come from: queries [B, H] and the
    unmasked documents [P, H], with their flat positions [P] in [B * L]."""
    self._require_bi_encoder('score_lists_with_embeddings')
    shape = tf.shape(docs)
    positions = tf.where(tf.reshape(mask, [-1]))[:, 0]
    flat_docs = tf.gather(tf.reshape(docs, [-1]), positions)
    rows = positions // tf.cast(shape[1], tf.int64)
    query_embedding = self._embed_queries(queries, True)
    doc_embedding = self._embed_documents(flat_docs, True, doc_noise)
    scores = self.model.score_embeddings(tf.gather(query_embedding, rows),
                                         doc_embedding)
    flat = tf.scatter_nd(positions[:, tf.newaxis], scores,
                         tf.cast([shape[0] * shape[1]], tf.int64))
    return (tf.reshape(flat, shape), query_embedding, doc_embedding,
            positions)

  def _score_lists(self, queries, docs, mask, training: bool,
                   doc_noise: Optional[tokenization.PieceNoise] = None
                   ) -> tf.Tensor:
    shape = tf.shape(docs)
    list_size = shape[1]
    positions = tf.where(tf.reshape(mask, [-1]))[:, 0]
    flat_docs = tf.gather(tf.reshape(docs, [-1]), positions)
    rows = positions // tf.cast(list_size, tf.int64)
    if self.is_bi_encoder:
      query_embedding = tf.gather(self._embed_queries(queries, training), rows)
      scores = self.model.score_embeddings(
          query_embedding,
          self._embed_documents(flat_docs, training, doc_noise))
    else:
      scores = self._score(tf.gather(queries, rows), flat_docs, training,
                           doc_noise)
    flat = tf.scatter_nd(positions[:, tf.newaxis], scores,
                         tf.cast([shape[0] * list_size], tf.int64))
    return tf.reshape(flat, shape)


def _check_head_provenance(config: RankerConfig) -> None:
  """Warns when a loaded head was trained on a different representation."""
  written_by = checkpoint.read_ranker_fields(config.checkpoint_dir)
  pooling = written_by.get('pooling')
  if pooling != config.pooling:
    logging.warning(
        '%s: the classifier was trained on %s, this ranker uses %s pooling; '
        'it is only a starting point', config.checkpoint_dir,
        f'{pooling} pooling' if pooling else
        'another model\'s pooled output (not a rankers export)',
        config.pooling)
  layers = checkpoint.read_hf_config(config.checkpoint_dir).num_layers
  if layers != config.encoder.num_layers:
    logging.info('%s: the classifier was trained on layer %d, this ranker '
                 'keeps %d layers', config.checkpoint_dir, layers,
                 config.encoder.num_layers)


def _check_sentence_pooling(config: RankerConfig) -> None:
  """Warns when a bi-encoder embeds differently from how its
  sentence-transformers checkpoint was trained to (modules.json)."""
  found = checkpoint.read_sentence_pooling(config.checkpoint_dir)
  if found is None:
    return
  pooling, normalised = found
  if pooling != config.pooling or normalised != (config.similarity == 'cosine'):
    logging.warning(
        '%s: the checkpoint embeds by %s pooling%s, this bi-encoder by %s '
        'pooling with %s similarity', config.checkpoint_dir, pooling,
        ' + L2 normalisation' if normalised else '', config.pooling,
        config.similarity)


def special_tokens(config: RankerConfig) -> tokenization.SpecialTokens:
  """The tokenizer's special tokens: the checkpoint's, else the model type's."""
  model_type = config.encoder.model_type
  if config.checkpoint_dir is None:
    return tokenization.DEFAULT_TOKENS[model_type]
  return checkpoint.read_special_tokens(config.checkpoint_dir, model_type)


def build_ranker(config: RankerConfig, seed: Optional[int] = None) -> Ranker:
  """Builds a ranker: random init, or the checkpoint's first layers.

  A cross-encoder also takes its scoring head from the checkpoint when the
  checkpoint has one (`classifier.weight` / `classifier.bias`, as exported
  rankers write them); otherwise the head starts random.

  Args:
    config: the ranker; resolved and validated here.
    seed: if set, seeds Python/NumPy/TF random generators
      (keras.utils.set_random_seed) before initialising variables.
  """
  config = checkpoint.resolve_ranker(config)
  if seed is not None:
    keras.utils.set_random_seed(seed)
  tokenizer = tokenization.BertInputs(config.vocab_file, config.lower_case,
                                      config.max_length,
                                      special_tokens=special_tokens(config))
  if config.is_bi_encoder:
    model = BiEncoder(config.encoder, config.pooling, config.similarity,
                      config.cosine_scale, name='bi_encoder')
  else:
    model = CrossEncoder(config.encoder, config.pooling, name='cross_encoder')
  ranker = Ranker(config, tokenizer, model)
  ranker.build()
  if config.checkpoint_dir is not None:
    head = None if config.is_bi_encoder else model.score_head
    loaded_head = checkpoint.load_checkpoint(
        model.encoder, config.checkpoint_dir, keep_layers=config.keep_layers,
        head=head)
    if loaded_head:
      _check_head_provenance(config)
    if config.is_bi_encoder:
      _check_sentence_pooling(config)
  logging.info('Built %s: %d layers, hidden %d, %d parameters',
               config.architecture, config.encoder.num_layers,
               config.encoder.hidden_size,
               sum(int(tf.size(v)) for v in model.trainable_variables))
  return ranker
