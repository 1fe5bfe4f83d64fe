"""PretrainedCheckpoint executor: copies an HF checkpoint into its artifact, fingerprinted.

The source lives on TensorFlow's in-memory filesystem (`ram://`), a real
non-local gfile filesystem, so the copy is what a gs:// source would take.
"""

import hashlib
import os

import pytest
import tensorflow as tf

from components.common import fileio
from components.pretrained_checkpoint import executor as E
from components.pretrained_checkpoint import spec as S
from rankers import checkpoint as rcheckpoint
from runconfig import config as C
from runconfig import checkpoints as weights
from tests import e2e_util


def run(source, out_uri, cache_dir=''):
  out = S.PretrainedCheckpoint()
  out.uri = out_uri
  E.Executor().Do({}, {S.CHECKPOINT_KEY: [out]},
                  {S.SOURCE_KEY: source, S.CACHE_DIR_KEY: cache_dir})
  return out


def test_copies_fingerprints_and_describes_a_remote_checkpoint(tmp_path, tiny_vocab_file):
  source = e2e_util.write_tiny_checkpoint('ram://ckpt/tiny', tiny_vocab_file, num_layers=3)
  with tf.io.gfile.GFile(os.path.join(source, 'README.md'), 'w') as f:
    f.write('not part of the checkpoint')
  out = run(source, str(tmp_path / 'artifact'))
  names = sorted(os.listdir(out.uri))
  assert names == ['config.json', 'model.safetensors', 'tokenizer_config.json', 'vocab.txt']
  # sha256 as documented: per file in name order, name NUL size NUL bytes.
  h = hashlib.sha256()
  for name in names:
    data = (tmp_path / 'artifact' / name).read_bytes()
    h.update(name.encode() + b'\0' + str(len(data)).encode() + b'\0' + data)
  assert out.get_string_custom_property(S.SHA256_PROPERTY) == h.hexdigest()
  assert h.hexdigest() == fileio.sha256_files(source, names)
  assert out.get_string_custom_property(S.SOURCE_PROPERTY) == source
  assert out.get_int_custom_property(S.NUM_LAYERS_PROPERTY) == 3
  assert out.get_int_custom_property(S.HIDDEN_SIZE_PROPERTY) == 32
  # The copy is a checkpoint the rankers load, with the source's weights.
  a = rcheckpoint.load_hf_weights(source)
  b = rcheckpoint.load_hf_weights(out.uri)
  assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_a_directory_without_config_is_rejected(tmp_path):
  tf.io.gfile.makedirs('ram://ckpt/empty')
  with tf.io.gfile.GFile('ram://ckpt/empty/vocab.txt', 'w') as f:
    f.write('[PAD]\n')
  with pytest.raises(FileNotFoundError, match='has no config.json'):
    run('ram://ckpt/empty', str(tmp_path / 'out'))


def test_named_checkpoint_without_cache_says_what_to_do(tmp_path):
  with pytest.raises(weights.WeightsError, match='ssd weights.*URI'):
    run(C.MINILM_CHECKPOINT, str(tmp_path / 'out'), cache_dir=str(tmp_path / 'empty-cache'))
  with pytest.raises(weights.WeightsError, match='ssd weights --model=mpnet-base.*URI'):
    run('mpnet-base', str(tmp_path / 'out'), cache_dir=str(tmp_path / 'empty-cache'))


def test_sha256_files_of_a_single_file_and_missing_path(tmp_path):
  (tmp_path / 'f').write_bytes(b'abc')
  want = hashlib.sha256(b'\x003\x00abc').hexdigest()
  assert fileio.sha256_files(str(tmp_path / 'f')) == want
  with pytest.raises(FileNotFoundError):
    fileio.sha256_files(str(tmp_path / 'nope'))
