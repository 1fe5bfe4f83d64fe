"""Shared fixtures: a tiny BERT vocabulary and encoder config for fast tests."""

import pytest

TINY_WORDS = (
    'apple banana cherry grape lemon mango olive peach pear plum kiwi lime '
    'cat dog horse mouse tiger zebra lion bear wolf fox owl '
    'red blue green black white the a of is ##s').split()
TINY_SPECIAL = ('[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]')


@pytest.fixture(scope='session')
def tiny_vocab_file(tmp_path_factory) -> str:
  """vocab.txt with the BERT special tokens and a few dozen words."""
  path = tmp_path_factory.mktemp('tiny_vocab') / 'vocab.txt'
  path.write_text('\n'.join(TINY_SPECIAL + tuple(TINY_WORDS)) + '\n')
  return str(path)


@pytest.fixture(scope='session')
def tiny_encoder_config():
  """A factory of 2-layer, hidden-32 encoder configs (fields overridable)."""
  from rankers import config  # pylint: disable=g-import-not-at-top

  def make(**overrides):
    fields = dict(vocab_size=len(TINY_SPECIAL) + len(TINY_WORDS),
                  hidden_size=32, num_layers=2, num_heads=2,
                  intermediate_size=64, max_position_embeddings=64)
    fields.update(overrides)
    return config.EncoderConfig(**fields)

  return make
