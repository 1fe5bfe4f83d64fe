"""The MPNet encoder (rankers/mpnet.py): bucketing, shapes, HF layout, and
numerical parity with HF transformers' MPNetModel on all-mpnet-base-v2.

The parity oracle, tests/testdata/mpnet_reference.json, was computed once by
tools/reference/mpnet_reference.py with torch + transformers in a scratch
environment (neither is a project dependency; versions in the JSON). The
parity tests need the real checkpoint: `make test` fetches it first
(`ssd weights --model=mpnet-base`); without it they fail naming that command.
"""

import json
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from rankers import checkpoint
from rankers import export
from rankers import models
from rankers import mpnet
from rankers import tokenization
from rankers.config import EncoderConfig, RankerConfig
from runconfig import checkpoints
from runconfig import config

ORACLE = os.path.join(os.path.dirname(__file__), 'testdata', 'mpnet_reference.json')
WORDS = 'apple banana cherry grape lemon cat dog red blue the a of is'.split()
MPNET_SPECIAL = ('<s>', '<pad>', '</s>', '<unk>', '[UNK]', '<mask>')


@pytest.fixture(scope='module')
def oracle():
  with open(ORACLE) as f:
    return json.load(f)


# Always run: no download.


def test_bucket_thresholds_hand_computed():
  # Bucket 8 + k starts at ceil(8 * 16^(k/8)) = ceil(8 * 2^(k/2)):
  # 11.31, 16, 22.63, 32, 45.25, 64, 90.51.
  assert mpnet.bucket_thresholds(32, 128) == [12, 16, 23, 32, 46, 64, 91]
  # 16 buckets: 4 + k from ceil(4 * 32^(k/4)) = 9.51, 22.63, 53.82.
  assert mpnet.bucket_thresholds(16, 128) == [10, 23, 54]


@pytest.mark.parametrize('relative, bucket', [
    # key before the query (relative < 0): buckets 0..15
    (0, 0), (-1, 1), (-7, 7), (-8, 8), (-11, 8), (-12, 9), (-15, 9), (-16, 10),
    (-31, 11), (-32, 12), (-63, 13), (-64, 14), (-90, 14), (-91, 15), (-128, 15),
    (-500, 15),
    # key after the query: 16 + the same buckets
    (1, 17), (7, 23), (8, 24), (16, 26), (90, 30), (91, 31), (500, 31),
])
def test_relative_position_bucket_hand_values(relative, bucket):
  assert int(mpnet.relative_position_bucket(tf.constant(relative), 32)) == bucket


def test_buckets_equal_hf_table(oracle):
  """HF's relative_position_bucket of every relative position in [-520, 520]."""
  span = oracle['bucket_range']
  ours = mpnet.relative_position_bucket(tf.range(-span, span + 1), 32).numpy()
  expected = np.array(oracle['buckets'])
  assert len(expected) == 2 * span + 1
  np.testing.assert_array_equal(ours, expected)


def test_position_ids_start_after_padding_index():
  mask = tf.constant([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
  np.testing.assert_array_equal(mpnet.position_ids(mask, pad_token_id=1).numpy(),
                                [[2, 3, 4, 1, 1], [2, 3, 4, 5, 6]])


def _tiny_config(**overrides) -> EncoderConfig:
  fields = dict(vocab_size=len(MPNET_SPECIAL) + len(WORDS), hidden_size=32,
                num_layers=2, num_heads=2, intermediate_size=64,
                max_position_embeddings=66, type_vocab_size=1,
                hidden_dropout=0.0, attention_dropout=0.0,
                layer_norm_eps=1e-5, model_type='mpnet')
  fields.update(overrides)
  return EncoderConfig(**fields)


def _ids(rows):
  width = max(len(r) for r in rows)
  ids = [r + [1] * (width - len(r)) for r in rows]
  mask = [[1] * len(r) + [0] * (width - len(r)) for r in rows]
  return {tokenization.WORD_IDS: tf.constant(ids), tokenization.INPUT_MASK: tf.constant(mask),
          tokenization.TYPE_IDS: tf.zeros([len(rows), width], tf.int32)}


def test_tiny_encoder_shapes_and_layout():
  tf_keras.utils.set_random_seed(0)
  encoder = mpnet.MPNetEncoder(_tiny_config())
  out = encoder(_ids([[0, 7, 8, 9, 2], [0, 10, 2]]))
  assert tuple(out.shape) == (2, 5, 32)
  assert tuple(encoder.position_bias(tf.constant(5)).shape) == (1, 2, 5, 5)
  names = [name for name, _, _ in checkpoint.hf_variable_map(encoder)]
  assert len(names) == 5 + 16 * 2
  assert 'encoder.relative_attention_bias.weight' in names
  assert 'encoder.layer.1.attention.attn.o.weight' in names
  # word 19 x 32 + positions 66 x 32 + LayerNorm 64 + bias 32 buckets x 2 heads
  # + per layer: 4 x (32 x 32 + 32) + 2 LayerNorms 128 + 32 x 64 + 64 + 64 x 32 + 32
  per_layer = 4 * (32 * 32 + 32) + 128 + 32 * 64 + 64 + 64 * 32 + 32
  assert sum(int(tf.size(v)) for v in encoder.trainable_variables) == (
      19 * 32 + 66 * 32 + 64 + 32 * 2 + 2 * per_layer)


def test_tiny_encoder_ignores_padding_and_uses_position_bias():
  tf_keras.utils.set_random_seed(1)
  encoder = mpnet.MPNetEncoder(_tiny_config())
  alone = encoder(_ids([[0, 10, 11, 2]])).numpy()
  padded = encoder(_ids([[0, 10, 11, 2], [0, 7, 8, 9, 12, 13, 2]])).numpy()
  np.testing.assert_allclose(padded[0, :4], alone[0], atol=1e-5)
  # The shared relative bias reaches every layer's attention.
  table = encoder.relative_attention_bias.embeddings
  table.assign(table + 5.0 * tf.random.normal(table.shape))
  assert np.abs(encoder(_ids([[0, 10, 11, 2]])).numpy() - alone).max() > 1e-2


@pytest.fixture(scope='module')
def tiny_vocab(tmp_path_factory) -> str:
  path = tmp_path_factory.mktemp('mpnet_vocab') / 'vocab.txt'
  path.write_text('\n'.join(MPNET_SPECIAL + tuple(WORDS)) + '\n')
  return str(path)


def test_mpnet_pairs_are_framed_as_hf_frames_them(tiny_vocab):
  inputs = tokenization.BertInputs(tiny_vocab, max_length=9,
                                   special_tokens=tokenization.MPNET_TOKENS)
  vocab = tokenization.read_vocab(tiny_vocab)
  out = inputs.pairs(tf.constant(['apple cat', 'dog']),
                     tf.constant(['red blue the a', 'lemon']))
  ids = out[tokenization.WORD_IDS].numpy()
  # <s> q </s></s> d </s>, the document cut to the 9-token budget
  expected = [[0, vocab['apple'], vocab['cat'], 2, 2, vocab['red'], vocab['blue'],
               vocab['the'], 2],
              [0, vocab['dog'], 2, 2, vocab['lemon'], 2, 1, 1, 1]]
  np.testing.assert_array_equal(ids, expected)
  np.testing.assert_array_equal(out[tokenization.INPUT_MASK].numpy().sum(1), [9, 6])
  counts = tokenization.count_truncated(inputs, ['apple cat'], ['red blue the a'], 9)
  assert counts['truncated_pairs'] == 1


def test_tiny_export_round_trip(tiny_vocab, tmp_path):
  """A SavedModel export and its HF checkpoint score like the model, with
  MPNet's framing and special tokens (T' -> student goes through this)."""
  config = RankerConfig('cross_encoder', encoder=_tiny_config(), vocab_file=tiny_vocab,
                        max_length=16, query_max_length=8)
  ranker = models.build_ranker(config, seed=3)
  assert ranker.tokenizer.special_tokens == tokenization.MPNET_TOKENS
  export_dir = export.export_ranker(ranker, str(tmp_path / 'export'))
  directory = export.checkpoint_dir_of(export_dir)
  with open(os.path.join(directory, 'config.json')) as f:
    hf_config = json.load(f)
  assert (hf_config['model_type'], hf_config['pad_token_id'],
          hf_config['relative_attention_num_buckets']) == ('mpnet', 1, 32)
  assert checkpoint.read_special_tokens(directory, 'mpnet') == tokenization.MPNET_TOKENS
  rebuilt = models.build_ranker(RankerConfig('cross_encoder', checkpoint_dir=directory,
                                             max_length=16, query_max_length=8))
  assert rebuilt.config.encoder.shape_dict() == ranker.config.encoder.shape_dict()
  queries, docs = ['apple cat', 'dog'], ['red blue the', 'lemon grape']
  expected = ranker.score(queries, docs).numpy()
  np.testing.assert_allclose(rebuilt.score(queries, docs).numpy(), expected, atol=1e-5)
  np.testing.assert_allclose(export.load_scorer(export_dir).score(queries, docs), expected,
                             atol=1e-5)


def test_special_tokens_map_overrides_defaults(tmp_path):
  (tmp_path / 'tokenizer_config.json').write_text('{"unk_token": "<unk>", "cls_token": "<s>"}')
  (tmp_path / 'special_tokens_map.json').write_text(
      '{"unk_token": "[UNK]", "mask_token": {"content": "<m>", "lstrip": true}}')
  tokens = checkpoint.read_special_tokens(str(tmp_path), 'mpnet')
  assert tokens.tokens() == ('<s>', '</s>', '<pad>', '<m>', '[UNK]')
  assert tokens.pair_separators == 2


# The real checkpoint (fetched by `make test`).


@pytest.fixture(scope='module')
def mpnet_dir() -> str:
  cache = config.PipelineConfig.cache_dir
  default = checkpoints.checkpoint_dir(cache, checkpoints.MPNET_CHECKPOINT)
  directory = os.environ.get('SSD_MPNET_DIR', default)
  problem = checkpoints.verify_checkpoint(directory, checkpoints.MPNET_CHECKPOINT)
  if problem:
    pytest.fail(f'all-mpnet-base-v2 not ready at {directory!r} ({problem}): run '
                f'`.venv/bin/{checkpoints.fetch_command(checkpoints.MPNET_CHECKPOINT, cache)}` '
                f'(`make test` does), or set SSD_MPNET_DIR to a verified copy')
  return directory


@pytest.fixture(scope='module')
def mpnet_ranker(mpnet_dir):
  return models.build_ranker(RankerConfig('bi_encoder', checkpoint_dir=mpnet_dir,
                                          max_length=128))


def test_oracle_is_of_the_pinned_checkpoint(oracle):
  assert oracle['model_safetensors_sha256'] == checkpoints.MPNET.files['model.safetensors']
  assert oracle['max_length'] == 128


def test_config_name_resolves_to_an_mpnet(mpnet_dir, mpnet_ranker):
  cache = os.path.dirname(mpnet_dir.rstrip('/'))
  assert checkpoints.resolve_checkpoint('mpnet-base', cache) == mpnet_dir
  encoder = mpnet_ranker.config.encoder
  assert (encoder.model_type, encoder.num_layers, encoder.hidden_size, encoder.max_tokens,
          encoder.layer_norm_eps) == ('mpnet', 12, 768, 512, 1e-5)
  assert isinstance(mpnet_ranker.encoder, mpnet.MPNetEncoder)
  # HF MPNetModel's 109,486,464 less its unused pooler (768 x 768 + 768).
  assert sum(int(tf.size(v)) for v in mpnet_ranker.trainable_variables) == 108_895_872
  tokenizer = mpnet_ranker.tokenizer
  assert (tokenizer.cls_id, tokenizer.pad_id, tokenizer.sep_id, tokenizer.unk_id,
          tokenizer.mask_id) == (0, 1, 2, 104, 30526)


def test_checkpoint_pools_like_the_bi_encoder(mpnet_dir, mpnet_ranker):
  """sentence-transformers: mean pooling, then Normalize (modules.json)."""
  assert checkpoint.read_sentence_pooling(mpnet_dir) == ('mean', True)
  assert (mpnet_ranker.config.pooling, mpnet_ranker.config.similarity) == ('mean', 'cosine')


def test_token_ids_equal_hf_tokenizer(oracle, mpnet_ranker):
  inputs = mpnet_ranker.tokenizer.single(tf.constant(oracle['texts']), oracle['max_length'])
  ids = inputs[tokenization.WORD_IDS].numpy()
  expected = np.array(oracle['input_ids'])
  assert ids.shape == expected.shape == (6, 128)   # the longest text is truncated
  np.testing.assert_array_equal(ids, expected)
  np.testing.assert_array_equal(inputs[tokenization.INPUT_MASK].numpy(),
                                oracle['attention_mask'])


def test_hidden_states_equal_hf_mpnet(oracle, mpnet_ranker):
  inputs = mpnet_ranker.tokenizer.single(tf.constant(oracle['texts']), oracle['max_length'])
  hidden = mpnet_ranker.encoder(inputs).numpy()
  stride = oracle['hidden_stride']
  ours = np.array([hidden[r['row'], r['position'], ::stride] for r in oracle['hidden']])
  theirs = np.array([r['values'] for r in oracle['hidden']])
  assert ours.shape == theirs.shape == (29, 96)
  assert np.abs(ours - theirs).max() < 1e-4, np.abs(ours - theirs).max()


def test_sentence_embeddings_equal_hf_mean_pooled_normalised(oracle, mpnet_ranker):
  ours = mpnet_ranker.embed_documents(oracle['texts']).numpy()
  theirs = np.array(oracle['embeddings'])
  assert ours.shape == theirs.shape == (6, 768)
  assert np.abs(ours - theirs).max() < 1e-5, np.abs(ours - theirs).max()
  # One text alone (no padding) embeds as it does inside the padded batch.
  alone = mpnet_ranker.embed_documents(oracle['texts'][2:3]).numpy()
  assert np.abs(alone[0] - theirs[2]).max() < 1e-5


def test_keep_layers_takes_the_first_layers_and_the_shared_bias(mpnet_dir, mpnet_ranker,
                                                                caplog):
  with caplog.at_level(logging.INFO, logger='absl'):
    student = models.build_ranker(RankerConfig('bi_encoder', checkpoint_dir=mpnet_dir,
                                               keep_layers=2, max_length=32))
  teacher = mpnet_ranker.encoder
  assert len(student.encoder.transformer_layers) == 2
  np.testing.assert_array_equal(student.encoder.relative_attention_bias.embeddings.numpy(),
                                teacher.relative_attention_bias.embeddings.numpy())
  np.testing.assert_array_equal(student.encoder.transformer_layers[1].key.kernel.numpy(),
                                teacher.transformer_layers[1].key.kernel.numpy())
  assert '160 tensors of layers >= 2 not used' in caplog.text
  assert 'not used by the encoder' not in caplog.text
