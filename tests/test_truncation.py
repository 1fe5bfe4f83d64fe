"""Inputs longer than the model takes are counted, not cut silently."""

import tensorflow as tf

from rankers import tokenization


def test_long_documents_are_counted(tiny_vocab_file):
  tok = tokenization.BertInputs(tiny_vocab_file, max_length=8)
  queries = ['apple', 'apple banana', 'apple']
  docs = ['cat dog', 'cat dog horse mouse', 'cat dog horse mouse tiger zebra lion']
  pieces = tok.tokens_per_text(tf.constant(docs)).numpy().tolist()
  assert pieces == [2, 4, 7]
  # Cross-encoder: [CLS] q [SEP] d [SEP] in 8 -> q + d <= 5 fits.
  cross = tokenization.count_truncated(tok, queries, docs, max_length=8)
  assert cross == {'items': 3, 'truncated_pairs': 2, 'truncated_docs': 0,
                   'truncated_queries': 0, 'longest_pieces': 8}
  # Bi-encoder: documents fit in 6 pieces, queries in 1.
  bi = tokenization.count_truncated(tok, queries, docs, max_length=8, query_max_length=3,
                                    batch_size=2)
  assert bi == {'items': 3, 'truncated_pairs': 0, 'truncated_docs': 1,
                'truncated_queries': 1, 'longest_pieces': 7}
  # What the model sees is indeed cut to max_length.
  packed = tok.pairs(tf.constant(queries), tf.constant(docs))
  assert packed[tokenization.WORD_IDS].shape[1] == 8
