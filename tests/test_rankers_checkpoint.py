"""Import of HF-format BERT checkpoints.

The MiniLM test is the one that proves the weight mapping: a mis-mapped
import still runs but loses the pretrained similarity structure.
"""

import json
import logging
import math
import os

import numpy as np
import pytest
from safetensors import numpy as safetensors_numpy
import tensorflow as tf
import tf_keras

from rankers import checkpoint
from runconfig import config
from runconfig import checkpoints as weights
from rankers import models
from rankers.config import RankerConfig
from rankers.encoder import BertEncoder


PARAPHRASES = [
    ('how do I bake bread at home', 'home bread baking instructions'),
    ('what is the capital of france', 'paris is the capital city of france'),
    ('cheap flights to london', 'low cost airfare to london'),
    ('symptoms of the flu', 'signs that you have influenza'),
    ('how to learn python programming',
     'beginner tutorial for coding in python'),
]


@pytest.fixture(scope='module')
def minilm_dir() -> str:
  default = weights.checkpoint_dir(config.PipelineConfig.cache_dir)
  directory = os.environ.get('SSD_MINILM_DIR', default)
  if not os.path.exists(os.path.join(directory, 'model.safetensors')):
    pytest.fail(f'MiniLM checkpoint not found at {directory!r}: run `ssd weights` '
                f'(`make test` does) or set SSD_MINILM_DIR to a directory holding '
                f'config.json, model.safetensors and vocab.txt of all-MiniLM-L6-v2')
  return directory


def test_minilm_bi_encoder_keeps_pretrained_similarity(minilm_dir):
  ranker = models.build_ranker(RankerConfig('bi_encoder',
                                            checkpoint_dir=minilm_dir))
  assert ranker.config.encoder.num_layers == 6
  queries = [q for q, _ in PARAPHRASES]
  docs = [d for _, d in PARAPHRASES]
  query_embedding = ranker.embed_queries(queries).numpy()
  doc_embedding = ranker.embed_documents(docs).numpy()
  np.testing.assert_allclose(np.linalg.norm(query_embedding, axis=1), 1.0,
                             rtol=1e-5)
  cosine = query_embedding @ doc_embedding.T
  paraphrase = np.diag(cosine).mean()
  unrelated = cosine[~np.eye(len(PARAPHRASES), dtype=bool)].mean()
  assert paraphrase > 0.7, cosine
  assert unrelated < 0.3, cosine
  # score() is cosine_scale x cosine on the same pairs.
  np.testing.assert_allclose(ranker.score(queries, docs).numpy(),
                             20.0 * np.diag(cosine), rtol=1e-4, atol=1e-4)


def test_minilm_keep_layers_truncates(minilm_dir):
  ranker = models.build_ranker(RankerConfig(
      'cross_encoder', checkpoint_dir=minilm_dir, keep_layers=2,
      max_length=64))
  encoder = ranker.encoder
  assert len(encoder.transformer_layers) == 2
  weights = checkpoint.load_hf_weights(minilm_dir)
  first = encoder.transformer_layers[0]
  np.testing.assert_array_equal(
      first.query.kernel.numpy(),
      weights['encoder.layer.0.attention.self.query.weight'].T)
  np.testing.assert_array_equal(
      first.intermediate.bias.numpy(),
      weights['encoder.layer.0.intermediate.dense.bias'])
  np.testing.assert_array_equal(
      first.output_layer_norm.gamma.numpy(),
      weights['encoder.layer.0.output.LayerNorm.weight'])
  np.testing.assert_array_equal(
      encoder.embeddings.word_embeddings.embeddings.numpy(),
      weights['embeddings.word_embeddings.weight'])
  # The encoder computes what a plain NumPy BERT computes from HF names.
  inputs = ranker.tokenizer.pairs(tf.constant(['cheap flights']),
                                  tf.constant(['low cost airfare to london']))
  np.testing.assert_allclose(
      encoder(inputs).numpy()[0],
      _numpy_bert(weights, inputs['input_word_ids'].numpy()[0],
                  inputs['input_type_ids'].numpy()[0], num_layers=2,
                  num_heads=12),
      rtol=1e-4, atol=1e-4)
  scores = ranker.score(['cheap flights'], ['low cost airfare']).numpy()
  assert scores.shape == (1,) and np.isfinite(scores).all()


def _numpy_bert(w, ids, type_ids, num_layers, num_heads, eps=1e-12):
  """Reference post-LN BERT forward for one unpadded sequence."""
  def norm(x, name):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w[name + '.weight'] + w[
        name + '.bias']

  def linear(x, name):
    return x @ w[name + '.weight'].T + w[name + '.bias']

  erf = np.vectorize(math.erf)
  x = (w['embeddings.word_embeddings.weight'][ids]
       + w['embeddings.position_embeddings.weight'][:len(ids)]
       + w['embeddings.token_type_embeddings.weight'][type_ids])
  x = norm(x, 'embeddings.LayerNorm')
  for i in range(num_layers):
    p = f'encoder.layer.{i}.'
    heads = lambda t: t.reshape(len(ids), num_heads, -1).transpose(1, 0, 2)
    q = heads(linear(x, p + 'attention.self.query'))
    k = heads(linear(x, p + 'attention.self.key'))
    v = heads(linear(x, p + 'attention.self.value'))
    logits = q @ k.transpose(0, 2, 1) / math.sqrt(q.shape[-1])
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    context = (probs @ v).transpose(1, 0, 2).reshape(len(ids), -1)
    x = norm(x + linear(context, p + 'attention.output.dense'),
             p + 'attention.output.LayerNorm')
    h = linear(x, p + 'intermediate.dense')
    h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
    x = norm(x + linear(h, p + 'output.dense'), p + 'output.LayerNorm')
  return x


def _tiny_encoder(tiny_encoder_config, seed):
  tf.random.set_seed(seed)
  encoder = BertEncoder(tiny_encoder_config(hidden_dropout=0.0,
                                            attention_dropout=0.0))
  ids = tf.constant([[2, 7, 8, 3, 9, 3]])
  inputs = {'input_word_ids': ids, 'input_mask': tf.ones_like(ids),
            'input_type_ids': tf.constant([[0, 0, 0, 0, 1, 1]])}
  return encoder, encoder(inputs), inputs


def _write_checkpoint(directory, encoder, prefix='bert.', extra=None):
  """Writes `encoder` in HF layout: config.json + model.safetensors."""
  # Contiguous copies: safetensors writes a transposed view's raw buffer.
  tensors = {
      prefix + name: np.ascontiguousarray(v.numpy().T if transpose else
                                          v.numpy())
      for name, v, transpose in checkpoint.hf_variable_map(encoder)}
  tensors['embeddings.position_ids'] = np.arange(64)[None]
  tensors['pooler.dense.bias'] = np.zeros(32, np.float32)
  tensors.update(extra or {})
  safetensors_numpy.save_file(tensors, str(directory / 'model.safetensors'))
  c = encoder.config
  (directory / 'config.json').write_text(json.dumps({
      'model_type': 'bert', 'vocab_size': c.vocab_size,
      'hidden_size': c.hidden_size, 'num_hidden_layers': c.num_layers,
      'num_attention_heads': c.num_heads,
      'intermediate_size': c.intermediate_size,
      'max_position_embeddings': c.max_position_embeddings}))
  return tensors


def test_round_trip_through_hf_layout(tmp_path, tiny_encoder_config, caplog):
  source, expected, inputs = _tiny_encoder(tiny_encoder_config, seed=1)
  _write_checkpoint(tmp_path, source, extra={
      'cls.predictions.bias': np.zeros(3, np.float32)})
  target, before, _ = _tiny_encoder(tiny_encoder_config, seed=2)
  assert not np.allclose(before, expected)
  with caplog.at_level(logging.INFO):
    checkpoint.load_checkpoint(target, str(tmp_path))
  np.testing.assert_allclose(target(inputs), expected, rtol=1e-5, atol=1e-6)
  assert 'cls.predictions.bias' in caplog.text  # unused, reported
  assert 'pooler.dense.bias' not in caplog.text  # ignored quietly
  config = checkpoint.read_hf_config(str(tmp_path))
  assert config.num_layers == 2 and config.layer_norm_eps == 1e-12


def test_shape_mismatch_names_tensor_and_file(tmp_path, tiny_encoder_config):
  source, _, _ = _tiny_encoder(tiny_encoder_config, seed=1)
  name = 'encoder.layer.1.intermediate.dense.weight'
  _write_checkpoint(tmp_path, source, prefix='', extra={
      name: np.zeros([65, 32], np.float32)})
  target, _, _ = _tiny_encoder(tiny_encoder_config, seed=2)
  path = str(tmp_path / 'model.safetensors')
  with pytest.raises(ValueError) as error:
    checkpoint.load_checkpoint(target, str(tmp_path))
  assert name in str(error.value) and path in str(error.value)
  assert '(65, 32)' in str(error.value) and '(64, 32)' in str(error.value)


def test_missing_tensor_is_an_error(tmp_path, tiny_encoder_config):
  source, _, _ = _tiny_encoder(tiny_encoder_config, seed=1)
  tensors = _write_checkpoint(tmp_path, source, prefix='')
  del tensors['encoder.layer.0.attention.self.key.bias']
  safetensors_numpy.save_file(tensors, str(tmp_path / 'model.safetensors'))
  target, _, _ = _tiny_encoder(tiny_encoder_config, seed=2)
  with pytest.raises(ValueError, match=r'model\.safetensors: missing 1 '
                                       r'tensor.*self\.key\.bias'):
    checkpoint.load_checkpoint(target, str(tmp_path))


def test_missing_weights_file_is_an_error(tmp_path):
  (tmp_path / 'pytorch_model.bin').write_bytes(b'')
  with pytest.raises(FileNotFoundError, match=r'model\.safetensors: not found'
                                              r'.*pytorch_model\.bin'):
    checkpoint.load_hf_weights(str(tmp_path))


def _head(seed):
  tf.random.set_seed(seed)
  head = tf_keras.layers.Dense(1)
  head.build([None, 32])
  return head


def test_head_round_trip_and_one_label_check(tmp_path, tiny_encoder_config,
                                             tiny_vocab_file, caplog):
  source, _, _ = _tiny_encoder(tiny_encoder_config, seed=1)
  source_head = _head(1)
  directory = checkpoint.write_hf_checkpoint(
      str(tmp_path / 'ckpt'), source, tiny_vocab_file, lower_case=True,
      head=source_head, ranker_fields={'pooling': 'mean'})
  assert sorted(os.listdir(directory)) == [
      'config.json', 'model.safetensors', 'tokenizer_config.json',
      'vocab.txt']
  assert checkpoint.read_hf_lower_case(directory) is True
  assert checkpoint.read_ranker_fields(directory) == {'pooling': 'mean'}
  target, _, _ = _tiny_encoder(tiny_encoder_config, seed=2)
  target_head = _head(2)
  assert checkpoint.load_checkpoint(target, directory, head=target_head)
  np.testing.assert_array_equal(target_head.kernel.numpy(),
                                source_head.kernel.numpy())
  np.testing.assert_array_equal(target_head.bias.numpy(),
                                source_head.bias.numpy())
  # Without a head to fill (a bi-encoder) the classifier is skipped quietly.
  with caplog.at_level(logging.INFO, logger='absl'):
    assert not checkpoint.load_checkpoint(target, directory)
  assert 'classifier not used' in caplog.text
  assert 'not used by the encoder' not in caplog.text
  # A two-label classifier cannot become a ranker's score head.
  path = os.path.join(directory, 'model.safetensors')
  tensors = safetensors_numpy.load_file(path)
  tensors['classifier.weight'] = np.zeros([2, 32], np.float32)
  tensors['classifier.bias'] = np.zeros([2], np.float32)
  safetensors_numpy.save_file(tensors, path)
  with pytest.raises(ValueError, match=r'classifier\.weight \(2, 32\).*'
                                       r'\(1, 32\)'):
    checkpoint.load_checkpoint(target, directory, head=target_head)


def test_foreign_classifier_loads_with_a_warning(tmp_path, tiny_encoder_config,
                                                 tiny_vocab_file, caplog):
  source, _, _ = _tiny_encoder(tiny_encoder_config, seed=1)
  source_head = _head(1)
  directory = checkpoint.write_hf_checkpoint(
      str(tmp_path), source, tiny_vocab_file, lower_case=True,
      head=source_head)  # no `ranker` entry: as a checkpoint from elsewhere
  with caplog.at_level(logging.INFO, logger='absl'):
    ranker = models.build_ranker(RankerConfig(
        'cross_encoder', checkpoint_dir=directory, keep_layers=1,
        max_length=16))
  assert 'not a rankers export' in caplog.text
  assert 'trained on layer 2, this ranker keeps 1' in caplog.text
  np.testing.assert_array_equal(ranker.model.score_head.kernel.numpy(),
                                source_head.kernel.numpy())
