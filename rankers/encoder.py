"""A post-LayerNorm BERT encoder written out layer by layer in Keras 2.

Attention is written with Dense layers and einsum rather than taken from a
library layer so that every variable corresponds one-to-one to an HF BERT
tensor (see checkpoint.hf_variable_map). All noise (dropout, stochastic
depth) is active only when `training=True`; `training` must be a Python bool,
so inference graphs contain no random ops at all.
"""

import math
from typing import Dict

import tensorflow as tf
import tf_keras as keras

from rankers import tokenization
from rankers.config import EncoderConfig

_MASK_BIAS = -1e9


def initializer() -> keras.initializers.Initializer:
  """BERT's (and MPNet's) weight initialiser."""
  return keras.initializers.TruncatedNormal(stddev=0.02)


def gelu(x: tf.Tensor) -> tf.Tensor:
  """Exact (erf) GELU, as in BERT."""
  return tf.nn.gelu(x, approximate=False)


def layer_drop_rate(config: EncoderConfig, index: int) -> float:
  """Stochastic-depth rate of layer `index` (0-based): linear in depth."""
  return config.stochastic_depth * (index + 1) / config.num_layers


class TokenEmbeddings(keras.layers.Layer):
  """What BERT's and MPNet's embeddings share: word and position tables,
  LayerNorm, dropout. Subclasses say how positions (and token types) add up."""

  def __init__(self, config: EncoderConfig, **kwargs):
    super().__init__(**kwargs)
    self.config = config
    self.word_embeddings = keras.layers.Embedding(
        config.vocab_size, config.hidden_size,
        embeddings_initializer=initializer(), name='word_embeddings')
    self.layer_norm = keras.layers.LayerNormalization(
        epsilon=config.layer_norm_eps, name='layer_norm')
    self.dropout = keras.layers.Dropout(config.hidden_dropout)

  def build(self, input_shape):
    self.position_embeddings = self.add_weight(
        'position_embeddings',
        shape=[self.config.max_position_embeddings, self.config.hidden_size],
        initializer=initializer())
    super().build(input_shape)

  def normalise(self, x: tf.Tensor, training: bool) -> tf.Tensor:
    return self.dropout(self.layer_norm(x), training=training)


class BertEmbeddings(TokenEmbeddings):
  """Word + position + token-type embeddings, LayerNorm, dropout."""

  def __init__(self, config: EncoderConfig, **kwargs):
    super().__init__(config, **kwargs)
    self.token_type_embeddings = keras.layers.Embedding(
        config.type_vocab_size, config.hidden_size,
        embeddings_initializer=initializer(), name='token_type_embeddings')

  def call(self, word_ids: tf.Tensor, type_ids: tf.Tensor,
           training: bool = False) -> tf.Tensor:
    length = tf.shape(word_ids)[1]
    x = (self.word_embeddings(word_ids) + self.token_type_embeddings(type_ids)
         + self.position_embeddings[tf.newaxis, :length])
    return self.normalise(x, training)


class TransformerLayer(keras.layers.Layer):
  """Self-attention and feed-forward blocks, each residual then LayerNorm."""

  def __init__(self, config: EncoderConfig, drop_rate: float = 0.0, **kwargs):
    super().__init__(**kwargs)
    self.config = config
    self.drop_rate = drop_rate
    hidden = config.hidden_size

    def dense(units, name):
      return keras.layers.Dense(units, kernel_initializer=initializer(),
                                name=name)

    def norm(name):
      return keras.layers.LayerNormalization(epsilon=config.layer_norm_eps,
                                             name=name)

    self.query = dense(hidden, 'query')
    self.key = dense(hidden, 'key')
    self.value = dense(hidden, 'value')
    self.attention_output = dense(hidden, 'attention_output')
    self.attention_layer_norm = norm('attention_layer_norm')
    self.intermediate = dense(config.intermediate_size, 'intermediate')
    self.output_dense = dense(hidden, 'output')
    self.output_layer_norm = norm('output_layer_norm')
    self.attention_dropout = keras.layers.Dropout(config.attention_dropout)
    self.hidden_dropout = keras.layers.Dropout(config.hidden_dropout)

  def _heads(self, x: tf.Tensor) -> tf.Tensor:
    """[B, L, H] -> [B, L, heads, head_size]."""
    shape = tf.shape(x)
    return tf.reshape(x, [shape[0], shape[1], self.config.num_heads,
                          self.config.head_size])

  def call(self, x: tf.Tensor, attention_bias: tf.Tensor,
           training: bool = False) -> tf.Tensor:
    """x: [B, L, H]; attention_bias: [B, 1, 1, L] (0 or a large negative)."""
    q = self._heads(self.query(x))
    k = self._heads(self.key(x))
    v = self._heads(self.value(x))
    logits = tf.einsum('bqhd,bkhd->bhqk', q, k)
    logits = logits / math.sqrt(self.config.head_size) + attention_bias
    probs = self.attention_dropout(tf.nn.softmax(logits, axis=-1),
                                   training=training)
    context = tf.einsum('bhqk,bkhd->bqhd', probs, v)
    context = tf.reshape(context, tf.shape(x))
    attended = self.hidden_dropout(self.attention_output(context),
                                   training=training)
    h = self.attention_layer_norm(x + attended)
    ffn = self.output_dense(gelu(self.intermediate(h)))
    ffn = self.hidden_dropout(ffn, training=training)
    out = self.output_layer_norm(h + ffn)
    if training and self.drop_rate > 0:
      # Stochastic depth (layer drop): each example skips the layer with
      # probability drop_rate. Inference always runs every layer.
      keep = tf.random.uniform([tf.shape(x)[0], 1, 1]) >= self.drop_rate
      out = tf.where(keep, out, x)
    return out


class BertEncoder(keras.layers.Layer):
  """Token ids -> contextual embeddings [B, L, H]."""

  def __init__(self, config: EncoderConfig, **kwargs):
    super().__init__(**kwargs)
    self.config = config.validate()
    self.embeddings = BertEmbeddings(config, name='embeddings')
    self.transformer_layers = [
        TransformerLayer(config, drop_rate=layer_drop_rate(config, i),
                         name=f'layer_{i}')
        for i in range(config.num_layers)
    ]

  def call(self, inputs: Dict[str, tf.Tensor],
           training: bool = False) -> tf.Tensor:
    mask = tf.cast(inputs[tokenization.INPUT_MASK], tf.float32)
    attention_bias = (1.0 - mask)[:, tf.newaxis, tf.newaxis, :] * _MASK_BIAS
    x = self.embeddings(inputs[tokenization.WORD_IDS],
                        inputs[tokenization.TYPE_IDS], training=training)
    for layer in self.transformer_layers:
      x = layer(x, attention_bias, training=training)
    return x
