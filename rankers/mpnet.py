"""An MPNet encoder (e.g. sentence-transformers' all-mpnet-base-v2) in Keras 2.

MPNet is BERT's post-LayerNorm transformer with three differences, each
written here as HF transformers' `MPNetModel` computes it:
- no token-type embeddings;
- position ids start after the padding index: a real token at index i of
  its row (padding on the right) takes position pad_token_id + 1 + i, a
  padding token takes pad_token_id (HF `create_position_ids_from_input_ids`);
- every layer adds one shared relative-position bias to its attention
  logits: an embedding of `relative_attention_num_buckets` buckets x heads,
  looked up by the bidirectional bucket of key position - query position
  (HF `MPNetEncoder.relative_position_bucket`, max distance 128).

The transformer layers are rankers.encoder's: the position bias simply joins
the padding mask in the additive attention bias. rankers.checkpoint maps HF
MPNet tensor names onto these variables.
"""

from typing import Dict, List

import tensorflow as tf
import tf_keras as keras

from rankers import tokenization
from rankers.config import EncoderConfig
from rankers.encoder import TokenEmbeddings, TransformerLayer, initializer, layer_drop_rate

# HF hard-codes it (MPNetEncoder.relative_position_bucket's max_distance).
MAX_DISTANCE = 128
_MASK_BIAS = -1e9


def bucket_thresholds(num_buckets: int, max_distance: int = MAX_DISTANCE) -> List[int]:
  """Smallest distance of each logarithmic bucket, in exact integer arithmetic.

  HF computes a distance n >= max_exact (= num_buckets // 4) as bucket
  max_exact + floor(log(n / max_exact) / log(max_distance / max_exact) * h),
  h = num_buckets // 2 - max_exact, capped at num_buckets // 2 - 1. Bucket
  max_exact + k starts at the smallest n with
  n^h * max_exact^k >= max_distance^k * max_exact^h; comparing integers gives
  the exact value where float32 logs could round either way (n = 16, 32, 64).
  """
  max_exact = num_buckets // 4
  h = num_buckets // 2 - max_exact
  thresholds = []
  n = max_exact
  for k in range(1, h):
    while n ** h * max_exact ** k < max_distance ** k * max_exact ** h:
      n += 1
    thresholds.append(n)
  return thresholds


def relative_position_bucket(relative_position: tf.Tensor, num_buckets: int,
                             max_distance: int = MAX_DISTANCE) -> tf.Tensor:
  """Bucket (int32) of key position - query position, as HF MPNet buckets it.

  Half the buckets are for keys after the query, half for keys before it;
  within a half, distances below num_buckets // 4 have a bucket each and
  longer ones share logarithmically wider buckets up to max_distance.
  """
  relative_position = tf.cast(relative_position, tf.int32)
  half = num_buckets // 2
  n = -relative_position
  side = tf.cast(n < 0, tf.int32) * half
  n = tf.abs(n)
  max_exact = half // 2
  thresholds = tf.constant(bucket_thresholds(num_buckets, max_distance), tf.int32)
  far = max_exact + tf.reduce_sum(
      tf.cast(n[..., tf.newaxis] >= thresholds, tf.int32), axis=-1)
  return side + tf.where(n < max_exact, n, far)


def position_ids(input_mask: tf.Tensor, pad_token_id: int) -> tf.Tensor:
  """HF's position ids: pad_token_id + 1, + 2, ... on real tokens, pad_token_id on padding.

  HF finds padding by `input_ids != pad_token_id`; the rankers' tokenizer
  puts the pad id exactly where input_mask is 0, so both agree.
  """
  mask = tf.cast(input_mask, tf.int32)
  return tf.cumsum(mask, axis=1) * mask + pad_token_id


class MPNetEmbeddings(TokenEmbeddings):
  """Word + (offset) position embeddings, LayerNorm, dropout; no token types."""

  def call(self, word_ids: tf.Tensor, input_mask: tf.Tensor,
           training: bool = False) -> tf.Tensor:
    positions = position_ids(input_mask, self.config.pad_token_id)
    x = (self.word_embeddings(word_ids)
         + tf.gather(self.position_embeddings, positions))
    return self.normalise(x, training)


class MPNetEncoder(keras.layers.Layer):
  """Token ids -> contextual embeddings [B, L, H]; input_type_ids are ignored."""

  def __init__(self, config: EncoderConfig, **kwargs):
    super().__init__(**kwargs)
    self.config = config.validate()
    if config.model_type != 'mpnet':
      raise ValueError(f'MPNetEncoder needs model_type "mpnet", got '
                       f'{config.model_type!r}')
    self.embeddings = MPNetEmbeddings(config, name='embeddings')
    self.relative_attention_bias = keras.layers.Embedding(
        config.relative_attention_num_buckets, config.num_heads,
        embeddings_initializer=initializer(), name='relative_attention_bias')
    self.transformer_layers = [
        TransformerLayer(config, drop_rate=layer_drop_rate(config, i),
                         name=f'layer_{i}')
        for i in range(config.num_layers)
    ]

  def position_bias(self, length: tf.Tensor) -> tf.Tensor:
    """[1, heads, L, L]: bias of query i attending to key j (HF compute_position_bias)."""
    positions = tf.range(length)
    relative = positions[tf.newaxis, :] - positions[:, tf.newaxis]  # key - query
    buckets = relative_position_bucket(
        relative, self.config.relative_attention_num_buckets)
    values = self.relative_attention_bias(buckets)  # [L, L, heads]
    return tf.transpose(values, [2, 0, 1])[tf.newaxis]

  def call(self, inputs: Dict[str, tf.Tensor],
           training: bool = False) -> tf.Tensor:
    input_mask = inputs[tokenization.INPUT_MASK]
    mask = tf.cast(input_mask, tf.float32)
    attention_bias = ((1.0 - mask)[:, tf.newaxis, tf.newaxis, :] * _MASK_BIAS
                      + self.position_bias(tf.shape(mask)[1]))
    x = self.embeddings(inputs[tokenization.WORD_IDS], input_mask,
                        training=training)
    for layer in self.transformer_layers:
      x = layer(x, attention_bias, training=training)
    return x

