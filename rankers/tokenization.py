"""In-graph BERT tokenisation, so exported rankers take raw strings.

Tokenising inside the TF graph (tensorflow_text) makes the vocabulary a
SavedModel asset and removes any train/serve skew: the same ops turn text into
ids during training, pseudo-labelling and serving. Batches are padded only to
their longest sequence (at most max_length), which on CPU is much faster than
always padding to max_length.
"""

from typing import Dict, Optional

import tensorflow as tf
import tensorflow_text as tf_text

CLS = '[CLS]'
SEP = '[SEP]'
PAD = '[PAD]'
MASK = '[MASK]'
UNK = '[UNK]'
SPECIAL_TOKENS = (CLS, SEP, PAD, MASK, UNK)

# Keys of the dicts the encoder takes.
WORD_IDS = 'input_word_ids'
INPUT_MASK = 'input_mask'
TYPE_IDS = 'input_type_ids'

_STRING_BATCH = tf.TensorSpec([None], tf.string)


def read_vocab(vocab_file: str) -> Dict[str, int]:
  """Token -> id (line number) of a BERT vocab.txt."""
  with tf.io.gfile.GFile(vocab_file, 'r') as f:
    tokens = f.read().split('\n')
  if tokens and tokens[-1] == '':
    tokens.pop()
  vocab = {}
  for i, token in enumerate(tokens):
    vocab.setdefault(token, i)
  return vocab


class BertInputs(tf.Module):
  """Text -> (input_word_ids, input_mask, input_type_ids), all int32 [B, L]."""

  def __init__(self, vocab_file: str, lower_case: bool = True,
               max_length: int = 128, name: Optional[str] = None):
    super().__init__(name=name)
    vocab = read_vocab(vocab_file)
    missing = [token for token in SPECIAL_TOKENS if token not in vocab]
    if missing:
      raise ValueError(f'{vocab_file}: vocabulary lacks special token(s) '
                       f'{missing}')
    self.vocab_size = len(vocab)
    self.max_length = max_length
    self.cls_id, self.sep_id, self.pad_id, self.mask_id, self.unk_id = (
        vocab[token] for token in SPECIAL_TOKENS)
    # The initializer tracks vocab_file as a SavedModel asset.
    initializer = tf.lookup.TextFileInitializer(
        vocab_file, key_dtype=tf.string,
        key_index=tf.lookup.TextFileIndex.WHOLE_LINE, value_dtype=tf.int64,
        value_index=tf.lookup.TextFileIndex.LINE_NUMBER)
    self._table = tf.lookup.StaticVocabularyTable(initializer,
                                                  num_oov_buckets=1)
    self._tokenizer = tf_text.BertTokenizer(
        self._table, token_out_type=tf.int64, unknown_token=UNK,
        lower_case=lower_case)

  def word_pieces(self, texts: tf.Tensor) -> tf.RaggedTensor:
    """Word-piece ids, int64 ragged [B, pieces], no special tokens."""
    texts = tf.convert_to_tensor(texts, tf.string)
    return self._tokenizer.tokenize(texts).merge_dims(-2, -1)

  def tokens_per_text(self, texts: tf.Tensor) -> tf.Tensor:
    """Number of word pieces of each text (before truncation), int32 [B]."""
    return tf.cast(self.word_pieces(texts).row_lengths(), tf.int32)

  def pairs(self, queries: tf.Tensor, docs: tf.Tensor) -> Dict[str, tf.Tensor]:
    """`[CLS] query [SEP] doc [SEP]`; the document is truncated first."""
    trimmer = tf_text.WaterfallTrimmer(self.max_length - 3)
    segments = trimmer.trim([self.word_pieces(queries),
                             self.word_pieces(docs)])
    return self._pack(segments)

  def single(self, texts: tf.Tensor,
             max_length: Optional[int] = None) -> Dict[str, tf.Tensor]:
    """`[CLS] text [SEP]`, truncated to max_length (default self.max_length)."""
    max_length = max_length or self.max_length
    trimmer = tf_text.WaterfallTrimmer(max_length - 2)
    return self._pack(trimmer.trim([self.word_pieces(texts)]))

  def _pack(self, segments) -> Dict[str, tf.Tensor]:
    ids, type_ids = tf_text.combine_segments(
        segments, start_of_sequence_id=self.cls_id,
        end_of_segment_id=self.sep_id)
    # to_tensor pads to the longest row of the batch.
    return {
        WORD_IDS: tf.cast(ids.to_tensor(default_value=self.pad_id), tf.int32),
        INPUT_MASK: tf.cast(tf.ones_like(ids).to_tensor(), tf.int32),
        TYPE_IDS: tf.cast(type_ids.to_tensor(), tf.int32),
    }
