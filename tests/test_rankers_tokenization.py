"""In-graph BERT input packing: layout, type ids, truncation, padding."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text

from rankers import tokenization


@pytest.fixture(scope='module')
def inputs(tiny_vocab_file):
  return tokenization.BertInputs(tiny_vocab_file, lower_case=True,
                                 max_length=8)


def _ids(vocab_file, words):
  vocab = tokenization.read_vocab(vocab_file)
  return [vocab[w] for w in words]


def test_special_ids_come_from_vocab(inputs, tiny_vocab_file):
  vocab = tokenization.read_vocab(tiny_vocab_file)
  assert (inputs.cls_id, inputs.sep_id, inputs.pad_id, inputs.mask_id,
          inputs.unk_id) == tuple(vocab[t] for t in tokenization.SPECIAL_TOKENS)


def test_pair_layout_and_type_ids(inputs, tiny_vocab_file):
  out = inputs.pairs(tf.constant(['Apple PEAR']), tf.constant(['red fox']))
  expected = _ids(tiny_vocab_file, ['[CLS]', 'apple', 'pear', '[SEP]', 'red',
                                    'fox', '[SEP]'])
  np.testing.assert_array_equal(out['input_word_ids'].numpy(), [expected])
  np.testing.assert_array_equal(out['input_type_ids'].numpy(),
                                [[0, 0, 0, 0, 1, 1, 1]])
  np.testing.assert_array_equal(out['input_mask'].numpy(), [[1] * 7])
  for value in out.values():
    assert value.dtype == tf.int32


def test_word_pieces_and_unknown_words(inputs, tiny_vocab_file):
  out = inputs.single(tf.constant(['apples xyzzy']))
  expected = _ids(tiny_vocab_file, ['[CLS]', 'apple', '##s', '[UNK]', '[SEP]'])
  np.testing.assert_array_equal(out['input_word_ids'].numpy(), [expected])
  np.testing.assert_array_equal(
      inputs.tokens_per_text(tf.constant(['apples xyzzy', ''])).numpy(), [3, 0])


def test_truncation_keeps_query_and_trims_document(inputs, tiny_vocab_file):
  out = inputs.pairs(tf.constant(['cat dog']),
                     tf.constant(['red blue green black white owl']))
  # max_length 8: [CLS] cat dog [SEP] + 3 doc pieces + [SEP].
  expected = _ids(tiny_vocab_file, ['[CLS]', 'cat', 'dog', '[SEP]', 'red',
                                    'blue', 'green', '[SEP]'])
  np.testing.assert_array_equal(out['input_word_ids'].numpy(), [expected])
  single = inputs.single(tf.constant(['red blue green black white owl']), 4)
  np.testing.assert_array_equal(
      single['input_word_ids'].numpy(),
      [_ids(tiny_vocab_file, ['[CLS]', 'red', 'blue', '[SEP]'])])


def test_pads_only_to_longest_in_batch(inputs):
  out = inputs.pairs(tf.constant(['cat', 'cat']),
                     tf.constant(['dog', 'dog horse']))
  assert out['input_word_ids'].shape == (2, 6)
  np.testing.assert_array_equal(out['input_mask'].numpy(),
                                [[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]])
  assert out['input_word_ids'].numpy()[0, 5] == inputs.pad_id
  long = inputs.pairs(tf.constant(['cat']), tf.constant(['dog ' * 50]))
  assert long['input_word_ids'].shape == (1, 8)


def test_vocab_without_special_tokens_is_an_error(tmp_path):
  path = tmp_path / 'vocab.txt'
  path.write_text('[PAD]\n[UNK]\ncat\n')
  with pytest.raises(ValueError, match=r'vocab\.txt.*\[CLS\].*\[SEP\]'):
    tokenization.BertInputs(str(path))


@pytest.mark.parametrize('num_segments,max_length', [(1, 5), (2, 8), (2, 4)])
def test_pack_matches_tf_text_waterfall_and_combine(inputs, num_segments,
                                                    max_length):
  rng = np.random.default_rng(num_segments * 100 + max_length)
  segments = [
      tf.ragged.constant([list(rng.integers(5, 30, size=n)) for n in
                          rng.integers(0, 9, size=12)], dtype=tf.int64,
                         ragged_rank=1, inner_shape=())
      for _ in range(num_segments)]
  out = inputs.pack(segments, max_length)
  trimmed = tf_text.WaterfallTrimmer(max_length - 1 - num_segments).trim(
      segments)
  ids, type_ids = tf_text.combine_segments(
      trimmed, start_of_sequence_id=inputs.cls_id,
      end_of_segment_id=inputs.sep_id)
  np.testing.assert_array_equal(out['input_word_ids'].numpy(),
                                ids.to_tensor(inputs.pad_id).numpy())
  np.testing.assert_array_equal(out['input_type_ids'].numpy(),
                                type_ids.to_tensor().numpy())
  np.testing.assert_array_equal(out['input_mask'].numpy(),
                                tf.ones_like(ids).to_tensor().numpy())


def test_empty_batch(inputs):
  out = inputs.pairs(tf.constant([], tf.string), tf.constant([], tf.string))
  assert out['input_word_ids'].shape == (0, 0)
