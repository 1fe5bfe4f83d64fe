"""Noisy Student text noise: identity at zero, seeded, bounded, doc side only.

That exported serving graphs hold no noise is checked on real exports in
test_rankers_models.py (the cross-encoder there trains with text noise).
"""

import numpy as np
import pytest
import tensorflow as tf

from rankers import models
from rankers import noise as noise_lib
from rankers import tokenization
from rankers import training
from rankers.config import RankerConfig

MASK_ID = 999


def _words(rows):
  """[B, words, pieces] int64 ragged from nested lists."""
  return tf.ragged.constant(rows, dtype=tf.int64, ragged_rank=2,
                            inner_shape=())


def _batch(num_rows=40, seed=0):
  """Rows of words; word w of row r has pieces [1000 r + 10 w (+ 1)]."""
  rng = np.random.default_rng(seed)
  rows = []
  for r in range(num_rows):
    rows.append([[1000 * r + 10 * w + p for p in range(rng.integers(1, 3))]
                 for w in range(rng.integers(0, 12))])
  return rows


def _noised(config, rows, seed=0):
  return noise_lib.DocumentNoise(config, MASK_ID, seed)(_words(rows)).to_list()


def test_zero_noise_is_identity():
  rows = _batch()
  flat = [[p for word in row for p in word] for row in rows]
  assert noise_lib.TextNoise().is_identity
  assert _noised(noise_lib.TextNoise(), rows) == flat
  assert training.TextNoise is noise_lib.TextNoise


def test_seeded_and_noisy():
  config = noise_lib.TextNoise(token_dropout=0.2, mask_prob=0.2,
                               shuffle_window=3)
  rows = _batch()
  first = _noised(config, rows, seed=7)
  assert _noised(config, rows, seed=7) == first
  assert _noised(config, rows, seed=8) != first
  # One generator draws fresh noise at every call.
  layer = noise_lib.DocumentNoise(config, MASK_ID, seed=7)
  assert layer(_words(rows)).to_list() == first
  assert layer(_words(rows)).to_list() != first


def test_shuffle_moves_no_word_further_than_the_window():
  rows = _batch(num_rows=200, seed=1)
  for window in (1, 3):
    out = _noised(noise_lib.TextNoise(shuffle_window=window), rows, seed=3)
    moved = 0
    for r, (row, pieces) in enumerate(zip(rows, out)):
      # Each word keeps its pieces together and in order.
      assert sorted(pieces) == sorted(p for word in row for p in word)
      firsts = [p for p in pieces if p % 10 == 0]
      positions = [(p - 1000 * r) // 10 for p in firsts]
      for new, old in enumerate(positions):
        assert abs(new - old) <= window, (window, positions)
        moved += new != old
      for i, p in enumerate(pieces):
        if p % 10 == 1:
          assert pieces[i - 1] == p - 1
    assert moved > 50


def test_dropout_and_mask_rates():
  rows = [[[i] for i in range(1, 2001)]]
  dropped = _noised(noise_lib.TextNoise(token_dropout=0.3), rows, seed=0)[0]
  assert 0.25 < 1 - len(dropped) / 2000 < 0.35
  assert dropped == sorted(dropped)  # survivors keep their order
  masked = _noised(noise_lib.TextNoise(mask_prob=0.2), rows, seed=0)[0]
  assert len(masked) == 2000
  is_mask = np.array(masked) == MASK_ID
  assert 0.15 < is_mask.mean() < 0.25
  np.testing.assert_array_equal(np.array(masked)[~is_mask],
                                np.arange(1, 2001)[~is_mask])


def test_empty_texts_and_batch():
  config = noise_lib.TextNoise(0.5, 0.5, 2)
  assert _noised(config, [[], [[5]], []], seed=0)[0] == []
  empty = noise_lib.DocumentNoise(config, MASK_ID)(
      tf.RaggedTensor.from_row_lengths(
          tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int64),
                                           tf.zeros([0], tf.int64)),
          tf.zeros([0], tf.int64)))
  assert empty.shape[0] == 0


@pytest.mark.parametrize('fields,match', [
    (dict(token_dropout=1.0), 'token_dropout'),
    (dict(mask_prob=-0.1), 'mask_prob'),
    (dict(shuffle_window=-1), 'shuffle_window'),
    (dict(shuffle_window=1.5), 'shuffle_window'),
])
def test_invalid_noise(fields, match):
  with pytest.raises(ValueError, match=match):
    noise_lib.DocumentNoise(noise_lib.TextNoise(**fields), MASK_ID)


def test_noise_hits_the_document_only_with_the_real_mask_id(tiny_vocab_file):
  inputs = tokenization.BertInputs(tiny_vocab_file, max_length=64)
  queries = tf.constant(['red fox'] * 8)
  docs = tf.constant(['cat dog horse mouse tiger zebra lion bear'] * 8)
  clean = inputs.pairs(queries, docs)['input_word_ids'].numpy()
  noise = noise_lib.DocumentNoise(noise_lib.TextNoise(mask_prob=0.5),
                                  inputs.mask_id, seed=0)
  noisy = inputs.pairs(queries, docs, noise)['input_word_ids'].numpy()
  assert noisy.shape == clean.shape
  np.testing.assert_array_equal(noisy[:, :4], clean[:, :4])  # [CLS] q [SEP]
  doc = slice(4, clean.shape[1] - 1)
  changed = noisy[:, doc] != clean[:, doc]
  assert changed.any()
  assert (noisy[:, doc][changed] == inputs.mask_id).all()
  np.testing.assert_array_equal(noisy[:, -1], clean[:, -1])  # final [SEP]


def test_ranker_takes_noise_only_when_training(tiny_vocab_file,
                                               tiny_encoder_config):
  config = RankerConfig('bi_encoder', encoder=tiny_encoder_config(
      hidden_dropout=0.0, attention_dropout=0.0), vocab_file=tiny_vocab_file,
                        max_length=16, query_max_length=8)
  ranker = models.build_ranker(config, seed=0)
  noise = noise_lib.DocumentNoise(noise_lib.TextNoise(token_dropout=0.5),
                                  ranker.tokenizer.mask_id, seed=0)
  queries = ['cat', 'red fox', 'lion']
  docs = ['cat dog horse mouse', 'red fox owl', 'the lion is a cat']
  with pytest.raises(ValueError, match='training=True'):
    ranker.score(queries, docs, doc_noise=noise)
  with pytest.raises(ValueError, match='training=True'):
    ranker.score_lists(queries, [[d] for d in docs], [[True]] * 3,
                       doc_noise=noise)
  clean = ranker.score(queries, docs, training=True).numpy()
  np.testing.assert_allclose(clean, ranker.score(queries, docs).numpy(),
                             rtol=1e-5, atol=1e-5)
  noisy = ranker.score(queries, docs, training=True, doc_noise=noise).numpy()
  assert not np.allclose(noisy, clean)
