"""RankerConfig / EncoderConfig validation and JSON round trip."""

import dataclasses
import json

import pytest

from rankers import checkpoint
from rankers import config as rconfig
from rankers.config import EncoderConfig
from rankers.config import RankerConfig


def _write_hf_checkpoint_config(directory, vocab_lines=40, **overrides):
  """A config.json + vocab.txt of a tiny BERT (no weights needed here)."""
  config = {'model_type': 'bert', 'vocab_size': 40, 'hidden_size': 32,
            'num_hidden_layers': 3, 'num_attention_heads': 2,
            'intermediate_size': 64, 'max_position_embeddings': 64,
            'hidden_act': 'gelu', 'layer_norm_eps': 1e-12}
  config.update(overrides)
  (directory / 'config.json').write_text(json.dumps(config))
  special = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
  words = [f'w{i}' for i in range(vocab_lines - len(special))]
  (directory / 'vocab.txt').write_text('\n'.join(special + words) + '\n')
  return str(directory)


def _tiny(tiny_encoder_config, tiny_vocab_file, **fields):
  return RankerConfig('cross_encoder', encoder=tiny_encoder_config(),
                      vocab_file=tiny_vocab_file, max_length=32, **fields)


def test_valid_config_round_trips_through_json(tiny_encoder_config,
                                               tiny_vocab_file):
  config = _tiny(tiny_encoder_config, tiny_vocab_file, pooling='cls')
  assert config.validate() is config
  again = RankerConfig.from_dict(json.loads(json.dumps(config.to_dict())))
  assert again == config
  assert isinstance(again.encoder, EncoderConfig)


@pytest.mark.parametrize('field,value,message', [
    ('hidden_size', 30, r'hidden_size \(30\).*divisible by num_heads \(4\)'),
    ('num_layers', 0, 'num_layers must be a positive integer'),
    ('hidden_dropout', 1.0, r'hidden_dropout must be in \[0, 1\)'),
    ('stochastic_depth', -0.1, 'stochastic_depth'),
])
def test_encoder_errors(tiny_encoder_config, field, value, message):
  config = tiny_encoder_config(num_heads=4, **{field: value})
  with pytest.raises(ValueError, match=message):
    config.validate()


@pytest.mark.parametrize('field,value,message', [
    ('architecture', 'poly_encoder', r'architecture must be one of'),
    ('pooling', 'max', 'pooling must be one of'),
    ('similarity', 'l2', 'similarity must be one of'),
    ('max_length', 100, r'max_length/query_max_length \(100\) exceed.*64'),
    ('keep_layers', 1, 'keep_layers needs checkpoint_dir'),
    ('vocab_file', None, 'either checkpoint_dir, or both encoder and vocab'),
])
def test_ranker_errors(tiny_encoder_config, tiny_vocab_file, field, value,
                       message):
  config = dataclasses.replace(_tiny(tiny_encoder_config, tiny_vocab_file),
                               **{field: value})
  with pytest.raises(ValueError, match=message):
    config.validate()


def test_vocab_larger_than_embedding_table(tiny_encoder_config,
                                           tiny_vocab_file):
  config = RankerConfig('bi_encoder', encoder=tiny_encoder_config(
      vocab_size=10), vocab_file=tiny_vocab_file, max_length=32)
  with pytest.raises(ValueError, match=r'vocab\.txt: \d+ tokens, more than'):
    checkpoint.resolve_ranker(config)


def test_unknown_field_is_an_error():
  with pytest.raises(ValueError, match=r"unknown RankerConfig field\(s\) "
                                       r"\['max_len'\]"):
    RankerConfig.from_dict({'architecture': 'bi_encoder', 'max_len': 3})


def test_checkpoint_supplies_encoder_and_vocab(tmp_path):
  directory = _write_hf_checkpoint_config(tmp_path)
  config = RankerConfig('bi_encoder', checkpoint_dir=directory, keep_layers=2,
                        max_length=32, query_max_length=16)
  resolved = checkpoint.resolve_ranker(config)
  assert resolved.encoder.num_layers == 2
  assert resolved.encoder.hidden_size == 32
  assert resolved.vocab_file == str(tmp_path / 'vocab.txt')
  # An explicit encoder only changes noise settings, and must match.
  noisy = dataclasses.replace(resolved.encoder, stochastic_depth=0.2)
  again = checkpoint.resolve_ranker(dataclasses.replace(config, encoder=noisy))
  assert again.encoder.stochastic_depth == 0.2
  wrong = dataclasses.replace(noisy, hidden_size=64)
  with pytest.raises(ValueError, match='does not match the checkpoint'):
    checkpoint.resolve_ranker(dataclasses.replace(config, encoder=wrong))


def test_keep_layers_beyond_checkpoint(tmp_path):
  directory = _write_hf_checkpoint_config(tmp_path)
  config = RankerConfig('cross_encoder', checkpoint_dir=directory,
                        keep_layers=4, max_length=32)
  with pytest.raises(ValueError, match=r'keep_layers \(4\).*3 layers.*'
                                       r'config\.json'):
    checkpoint.resolve_ranker(config)


def test_not_a_bert_checkpoint_names_the_file(tmp_path):
  directory = _write_hf_checkpoint_config(tmp_path, model_type='roberta')
  with pytest.raises(ValueError, match=r'config\.json: model_type'):
    checkpoint.resolve_ranker(RankerConfig('cross_encoder', checkpoint_dir=directory))
  with pytest.raises(FileNotFoundError, match=r'nowhere.config\.json'):
    checkpoint.resolve_ranker(RankerConfig('cross_encoder',
                                           checkpoint_dir=str(tmp_path / 'nowhere')))


def test_lower_case_must_agree_with_checkpoint_tokenizer(tmp_path):
  directory = _write_hf_checkpoint_config(tmp_path, max_position_embeddings=512)
  (tmp_path / 'tokenizer_config.json').write_text('{"do_lower_case": false}')
  with pytest.raises(ValueError, match='do_lower_case=False'):
    checkpoint.resolve_ranker(RankerConfig('cross_encoder', checkpoint_dir=directory))
  checkpoint.resolve_ranker(RankerConfig('cross_encoder', checkpoint_dir=directory,
                                         lower_case=False))


def test_a_padded_vocabulary_is_fine_a_longer_one_is_not():
  """One rule for the loader and `ssd validate`: fewer tokens than rows is a padded table."""
  assert rconfig.vocab_size_problem(30522, 30528) is None
  assert rconfig.vocab_size_problem(30522, 30522) is None
  assert rconfig.vocab_size_problem(11, 10) == "11 tokens, more than the encoder's vocab_size (10)"


def test_hf_config_parse_is_pure_and_names_its_source():
  data = {'vocab_size': 10, 'hidden_size': 8, 'num_hidden_layers': 2, 'num_attention_heads': 2,
          'intermediate_size': 16, 'max_position_embeddings': 514, 'model_type': 'mpnet'}
  encoder = rconfig.encoder_from_hf(data, 'x/config.json')
  assert (encoder.model_type, encoder.num_layers, encoder.type_vocab_size) == ('mpnet', 2, 1)
  with pytest.raises(ValueError, match=r"x/config\.json: not a bert config, missing \['hidden_size'\]"):
    rconfig.encoder_from_hf({k: v for k, v in data.items()
                             if k not in ('hidden_size', 'model_type')}, 'x/config.json')

