"""In-graph BERT tokenisation, so exported rankers take raw strings.

Tokenising inside the TF graph (tensorflow_text) makes the vocabulary a
SavedModel asset and removes any train/serve skew: the same ops turn text into
ids during training, pseudo-labelling and serving. Batches are padded only to
their longest sequence (at most max_length), which on CPU is much faster than
always padding to max_length.
"""

import dataclasses
from typing import Callable, Dict, Optional, Sequence, Tuple

import tensorflow as tf
import tensorflow_text as tf_text

CLS = '[CLS]'
SEP = '[SEP]'
PAD = '[PAD]'
MASK = '[MASK]'
UNK = '[UNK]'
SPECIAL_TOKENS = (CLS, SEP, PAD, MASK, UNK)


@dataclasses.dataclass(frozen=True)
class SpecialTokens:
  """The special tokens of a vocabulary and how they frame the segments.

  `pair_separators` separators end a segment that another follows: 1 gives
  BERT's `[CLS] a [SEP] b [SEP]`, 2 RoBERTa's and MPNet's
  `<s> a </s></s> b </s>`.
  """
  cls: str = CLS
  sep: str = SEP
  pad: str = PAD
  mask: str = MASK
  unk: str = UNK
  pair_separators: int = 1

  def tokens(self) -> Tuple[str, str, str, str, str]:
    return (self.cls, self.sep, self.pad, self.mask, self.unk)


BERT_TOKENS = SpecialTokens()
# HF MPNetTokenizer's defaults; a checkpoint's tokenizer files override them
# (rankers.checkpoint.read_special_tokens).
MPNET_TOKENS = SpecialTokens(cls='<s>', sep='</s>', pad='<pad>', mask='<mask>',
                             unk='[UNK]', pair_separators=2)
DEFAULT_TOKENS = {'bert': BERT_TOKENS, 'mpnet': MPNET_TOKENS}

# Keys of the dicts the encoder takes.
WORD_IDS = 'input_word_ids'
INPUT_MASK = 'input_mask'
TYPE_IDS = 'input_type_ids'

STRING_BATCH = tf.TensorSpec([None], tf.string)

# Training-time text noise: word-piece ids [B, (words), (pieces)] -> noised
# ids [B, (pieces)] (see rankers/noise.py). Never passed when serving.
PieceNoise = Callable[[tf.RaggedTensor], tf.RaggedTensor]


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
               max_length: int = 128, name: Optional[str] = None,
               special_tokens: SpecialTokens = BERT_TOKENS):
    super().__init__(name=name)
    vocab = read_vocab(vocab_file)
    missing = [token for token in special_tokens.tokens()
               if token not in vocab]
    if missing:
      raise ValueError(f'{vocab_file}: vocabulary lacks special token(s) '
                       f'{missing}')
    self.vocab_size = len(vocab)
    self.max_length = max_length
    self.special_tokens = special_tokens
    self.cls_id, self.sep_id, self.pad_id, self.mask_id, self.unk_id = (
        vocab[token] for token in special_tokens.tokens())
    # The initializer tracks vocab_file as a SavedModel asset.
    initializer = tf.lookup.TextFileInitializer(
        vocab_file, key_dtype=tf.string,
        key_index=tf.lookup.TextFileIndex.WHOLE_LINE, value_dtype=tf.int64,
        value_index=tf.lookup.TextFileIndex.LINE_NUMBER)
    self._table = tf.lookup.StaticVocabularyTable(initializer,
                                                  num_oov_buckets=1)
    self._tokenizer = tf_text.BertTokenizer(
        self._table, token_out_type=tf.int64,
        unknown_token=special_tokens.unk, lower_case=lower_case)

  def words(self, texts: tf.Tensor) -> tf.RaggedTensor:
    """Word-piece ids grouped by word, int64 ragged [B, words, pieces]."""
    texts = tf.convert_to_tensor(texts, tf.string)
    return self._tokenizer.tokenize(texts)

  def word_pieces(self, texts: tf.Tensor,
                  noise: Optional[PieceNoise] = None) -> tf.RaggedTensor:
    """Word-piece ids, int64 ragged [B, pieces], no special tokens.

    `noise` (training only) rewrites the pieces of each text, e.g.
    rankers.noise.DocumentNoise.
    """
    words = self.words(texts)
    if noise is not None:
      return noise(words)
    return words.merge_dims(-2, -1)

  def tokens_per_text(self, texts: tf.Tensor) -> tf.Tensor:
    """Number of word pieces of each text (before truncation), int32 [B]."""
    return tf.cast(self.word_pieces(texts).row_lengths(), tf.int32)

  def pairs(self, queries: tf.Tensor, docs: tf.Tensor,
            doc_noise: Optional[PieceNoise] = None) -> Dict[str, tf.Tensor]:
    """`[CLS] query [SEP] doc [SEP]`; the document is truncated first.

    `doc_noise` (training only) applies to the document's pieces before
    truncation.
    """
    return self.pack([self.word_pieces(queries),
                      self.word_pieces(docs, doc_noise)], self.max_length)

  def single(self, texts: tf.Tensor, max_length: Optional[int] = None,
             noise: Optional[PieceNoise] = None) -> Dict[str, tf.Tensor]:
    """`[CLS] text [SEP]`, truncated to max_length (default self.max_length)."""
    return self.pack([self.word_pieces(texts, noise)],
                     max_length or self.max_length)

  def pack(self, segments: Sequence[tf.RaggedTensor],
           max_length: int) -> Dict[str, tf.Tensor]:
    """`[CLS] s0 [SEP] s1 [SEP] ...`, at most max_length tokens per row.

    Truncation is a waterfall: earlier segments keep their pieces, later ones
    get what is left (as tf_text.WaterfallTrimmer + combine_segments, which
    tests use as the reference). It is written with dense ops because the
    ragged version puts ~3x more ops in every traced graph (train step,
    serving signatures), which makes tracing and export several times
    slower. Rows are padded to the longest row of the batch only. Type ids
    are the segment index ([CLS] is 0; each [SEP] takes its segment's id).
    With `pair_separators` 2 (MPNet) every segment after the first opens
    with one more separator: `<s> s0 </s></s> s1 </s>`.
    """
    extra = self.special_tokens.pair_separators - 1
    budget = max_length - 1 - len(segments) - extra * (len(segments) - 1)
    if budget < 0:
      raise ValueError(f'max_length {max_length} leaves no room for '
                       f'{len(segments)} segment(s)')
    remaining = tf.fill(tf.reshape(segments[0].nrows(), [1]),
                        tf.constant(budget, tf.int64))
    lengths = []
    for segment in segments:
      length = tf.minimum(segment.row_lengths(), remaining)
      lengths.append(length)
      remaining -= length
    total = (1 + extra * (len(segments) - 1)
             + tf.add_n([length + 1 for length in lengths]))     # [B]
    width = tf.maximum(tf.reduce_max(total), 0)  # 0 for an empty batch
    position = tf.range(width, dtype=tf.int64)[tf.newaxis, :]    # [1, W]
    grid = tf.zeros_like(total)[:, tf.newaxis] + position        # [B, W]
    ids = tf.where(grid == 0, tf.constant(self.cls_id, tf.int64),
                   tf.constant(self.pad_id, tf.int64))
    type_ids = tf.zeros_like(grid)
    start = tf.ones_like(total)[:, tf.newaxis]
    sep = tf.constant(self.sep_id, tf.int64)
    for index, (segment, length) in enumerate(zip(segments, lengths)):
      first = start                             # this segment's first token
      if index and extra:
        ids = tf.where((grid >= start) & (grid < start + extra), sep, ids)
        start = start + extra
      end = start + length[:, tf.newaxis]       # position of this [SEP]
      pieces = segment.to_tensor(shape=[None, None])
      pieces = tf.pad(pieces, [[0, 0], [0, 1]])  # keeps gathers in range
      offset = tf.clip_by_value(grid - start, 0,
                                tf.shape(pieces, out_type=tf.int64)[1] - 1)
      inside = (grid >= start) & (grid < end)
      ids = tf.where(inside, tf.gather(pieces, offset, batch_dims=1), ids)
      ids = tf.where(grid == end, sep, ids)
      type_ids = tf.where((grid >= first) & (grid <= end),
                          tf.constant(index, tf.int64), type_ids)
      start = end + 1
    return {
        WORD_IDS: tf.cast(ids, tf.int32),
        INPUT_MASK: tf.cast(grid < total[:, tf.newaxis], tf.int32),
        TYPE_IDS: tf.cast(type_ids, tf.int32),
    }


def count_truncated(tokenizer: BertInputs, queries: Sequence[str], docs: Sequence[str],
                    max_length: int, query_max_length: Optional[int] = None,
                    batch_size: int = 512) -> Dict[str, int]:
  """How many inputs the model will cut to fit, so truncation is counted, not silent.

  Cross-encoder (`query_max_length` None): a pair is cut when its pieces do
  not fit `[CLS] q [SEP] d [SEP]` (MPNet: `<s> q </s></s> d </s>`) in
  max_length. Bi-encoder: a document is
  cut beyond max_length - 2 pieces, a query beyond query_max_length - 2.
  Counts are over the given items (duplicates included).
  """
  out = {'items': len(docs), 'truncated_pairs': 0, 'truncated_docs': 0,
         'truncated_queries': 0, 'longest_pieces': 0}
  for start in range(0, len(docs), batch_size):
    q = tokenizer.tokens_per_text(tf.constant(list(queries[start:start + batch_size]))).numpy()
    d = tokenizer.tokens_per_text(tf.constant(list(docs[start:start + batch_size]))).numpy()
    if query_max_length is None:
      total = q + d
      frame = 2 + tokenizer.special_tokens.pair_separators
      out['truncated_pairs'] += int((total > max_length - frame).sum())
      out['longest_pieces'] = max(out['longest_pieces'], int(total.max(initial=0)))
    else:
      out['truncated_docs'] += int((d > max_length - 2).sum())
      out['truncated_queries'] += int((q > query_max_length - 2).sum())
      out['longest_pieces'] = max(out['longest_pieces'], int(d.max(initial=0)))
  return out
