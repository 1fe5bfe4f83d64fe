"""Input (text) noise for Noisy Student training of rankers.

Noisy Student (Xie et al., 2020) trains the new teacher on noised inputs so
that it has to be robust where its own teacher was not. For text the noise is
the classic trio (as in Lample et al., 2018): drop word pieces, replace word
pieces with [MASK], and shuffle words locally. It is applied to the DOCUMENT
side of training pairs only; queries are short and every word matters.

The noise works on word-piece ids inside the graph, not on the text before
tokenisation, because:
  * word pieces only exist after tokenisation: dropping or masking pieces of
    raw text would need a second (Python) tokeniser that must agree with the
    in-graph one;
  * a "[MASK]" written into text is split by BertTokenizer into "[", "mask",
    "]"; in the graph it is simply the vocabulary's real [MASK] id;
  * it runs inside the traced train step, with no per-batch Python work.
The tokeniser yields ids shaped [batch, words, pieces], so words (for the
shuffle) and pieces (for dropout and masking) are both at hand.

`DocumentNoise` draws from its own seeded tf.random.Generator, so a run is
reproducible and independent of the global seed. It is only ever passed into
training graphs (`training=True`); the exported serving functions are traced
without it, so they contain no noise op (tests check the SavedModel).
"""

import dataclasses

import tensorflow as tf


@dataclasses.dataclass
class TextNoise:
  """How much to noise each training document.

  token_dropout: probability of dropping each word piece.
  mask_prob: probability of replacing each (kept) word piece with [MASK].
  shuffle_window: words move at most this many positions (0: no shuffle).
  """
  token_dropout: float = 0.0
  mask_prob: float = 0.0
  shuffle_window: int = 0

  def validate(self) -> 'TextNoise':
    """Raises ValueError naming the offending field; returns self."""
    for name in ('token_dropout', 'mask_prob'):
      value = getattr(self, name)
      if not 0.0 <= value < 1.0:
        raise ValueError(f'TextNoise.{name} must be in [0, 1), got {value}')
    window = self.shuffle_window
    if not isinstance(window, int) or isinstance(window, bool) or window < 0:
      raise ValueError(f'TextNoise.shuffle_window must be an integer >= 0, '
                       f'got {window!r}')
    return self

  @property
  def is_identity(self) -> bool:
    return (self.token_dropout == 0 and self.mask_prob == 0 and
            self.shuffle_window == 0)


class DocumentNoise(tf.Module):
  """Word-piece ids [B, (words), (pieces)] -> noised ids [B, (pieces)].

  The steps, in order: local word shuffle (sort each word by its index plus
  uniform(0, window + 1) noise: a word can only pass words fewer than
  window + 1 positions away, so none moves further than `window`), word-piece
  dropout, then [MASK] replacement of the surviving pieces. Zero noise
  returns the pieces unchanged (no random op is even built).
  """

  def __init__(self, noise: TextNoise, mask_id: int, seed: int = 0):
    super().__init__(name='document_noise')
    self.noise = dataclasses.replace(noise).validate()
    self.mask_id = int(mask_id)
    self.generator = tf.random.Generator.from_seed(seed)

  def __call__(self, words: tf.RaggedTensor) -> tf.RaggedTensor:
    noise = self.noise
    if noise.shuffle_window > 0:
      words = self._shuffle_words(words, noise.shuffle_window)
    pieces = words.merge_dims(-2, -1)
    if noise.token_dropout > 0:
      keep = self.generator.uniform(tf.shape(pieces.flat_values)) >= (
          noise.token_dropout)
      pieces = tf.ragged.boolean_mask(pieces, pieces.with_flat_values(keep))
    if noise.mask_prob > 0:
      values = pieces.flat_values
      masked = self.generator.uniform(tf.shape(values)) < noise.mask_prob
      pieces = pieces.with_flat_values(tf.where(
          masked, tf.constant(self.mask_id, values.dtype), values))
    return pieces

  def _shuffle_words(self, words: tf.RaggedTensor,
                     window: int) -> tf.RaggedTensor:
    """Permutes the words of each row; pieces of a word stay together."""
    word_index = tf.ragged.range(words.row_lengths())        # [B, (words)]
    flat_index = word_index.flat_values
    keys = tf.cast(flat_index, tf.float32) + self.generator.uniform(
        tf.shape(flat_index), 0.0, window + 1.0)
    keys = word_index.with_flat_values(keys).to_tensor(
        default_value=float('inf'))                          # [B, W]
    order = tf.argsort(keys, axis=1, stable=True)            # [B, W]
    # Back to ragged rows, then to positions among all words of the batch.
    order = tf.RaggedTensor.from_tensor(order, lengths=words.row_lengths())
    flat_order = (tf.cast(order.flat_values, tf.int64)
                  + tf.gather(words.row_starts(), order.value_rowids()))
    return words.with_values(tf.gather(words.values, flat_order))
