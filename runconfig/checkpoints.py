"""Named pretrained checkpoints: where the weights cache keeps them and how they are checked.

A config names a checkpoint by one of NAMED_CHECKPOINTS' names:
- `minilm-l6`: sentence-transformers all-MiniLM-L6-v2 (BERT, 6 x 384), in
  `<cache_dir>/minilm-l6-h384-uncased`;
- `mpnet-base`: sentence-transformers all-mpnet-base-v2 (MPNet, 12 x 768),
  in `<cache_dir>/all-mpnet-base-v2`.

Only looks and verifies; it never downloads. Getting the files is the app's
job (`ssd weights [--model=NAME]`, ssd/weights.py), done before a run, never
inside one.
"""

import dataclasses
import hashlib
import os
from typing import Dict, Optional

from runconfig.config import MINILM_CHECKPOINT

MPNET_CHECKPOINT = 'mpnet-base'


@dataclasses.dataclass(frozen=True)
class NamedCheckpoint:
  """A checkpoint the weights cache holds: its folder, its files' sha256, and
  its size (so `ssd validate` checks T' >= T and max_length without the files;
  tests/test_ssd_weights.py checks them against the real config.json)."""
  name: str
  dirname: str
  files: Dict[str, str]   # path inside the folder -> sha256
  num_layers: int
  hidden_size: int
  max_tokens: int         # the longest input its position embeddings allow


MINILM = NamedCheckpoint(MINILM_CHECKPOINT, 'minilm-l6-h384-uncased', {
    'config.json': '953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41',
    'model.safetensors': '53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db',
    'vocab.txt': '07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3',
}, num_layers=6, hidden_size=384, max_tokens=512)
# The files of the HF repository a ranker reads (weights, config, vocabulary,
# special tokens) and the sentence-transformers pooling it was trained with.
MPNET = NamedCheckpoint(MPNET_CHECKPOINT, 'all-mpnet-base-v2', {
    'config.json': 'd46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0',
    'model.safetensors': '78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658',
    'vocab.txt': 'dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada',
    'tokenizer_config.json': '67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268',
    'special_tokens_map.json': '9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba',
    'modules.json': '84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf',
    '1_Pooling/config.json': 'a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56',
}, num_layers=12, hidden_size=768, max_tokens=512)   # 514 positions, 2 taken by the padding offset
NAMED_CHECKPOINTS: Dict[str, NamedCheckpoint] = {c.name: c for c in (MINILM, MPNET)}

# MiniLM's, under the names callers used before there were two.
CHECKPOINT_DIRNAME = MINILM.dirname
FILE_SHA256: Dict[str, str] = MINILM.files


class WeightsError(RuntimeError):
  pass


def sha256_file(path: str) -> str:
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      h.update(block)
  return h.hexdigest()


def is_named(name_or_path: Optional[str]) -> bool:
  """Whether a config's `checkpoint` value names a cached checkpoint."""
  return name_or_path in NAMED_CHECKPOINTS


def named(name: str) -> NamedCheckpoint:
  if name not in NAMED_CHECKPOINTS:
    raise WeightsError(f'unknown checkpoint name {name!r}; known: {sorted(NAMED_CHECKPOINTS)}')
  return NAMED_CHECKPOINTS[name]


def checkpoint_dir(cache_dir: str, name: str = MINILM_CHECKPOINT) -> str:
  return os.path.join(os.path.expanduser(cache_dir), named(name).dirname)


def verify_checkpoint(directory: str, name: str = MINILM_CHECKPOINT) -> Optional[str]:
  """Returns None when every file is present with its checksum, else why not."""
  for path_in_dir, digest in named(name).files.items():
    path = os.path.join(directory, path_in_dir)
    if not os.path.exists(path):
      return f'{path} is missing'
    actual = sha256_file(path)
    if actual != digest:
      return f'{path}: sha256 {actual} != expected {digest}'
  return None


def fetch_command(name: str, cache_dir: str) -> str:
  """The command that puts checkpoint `name` into cache_dir."""
  model = '' if name == MINILM_CHECKPOINT else f' --model={name}'
  return f'ssd weights{model} --cache_dir={cache_dir}'


def resolve_checkpoint(name_or_path: Optional[str], cache_dir: str) -> Optional[str]:
  """Maps a config's `checkpoint` value to a directory (None = random init)."""
  if not name_or_path:
    return None
  if is_named(name_or_path):
    directory = checkpoint_dir(cache_dir, name_or_path)
    problem = verify_checkpoint(directory, name_or_path)
    if problem:
      make = ' (or `make weights`)' if name_or_path == MINILM_CHECKPOINT else ''
      raise WeightsError(f'checkpoint {name_or_path!r} not ready ({problem}); '
                         f'run `{fetch_command(name_or_path, cache_dir)}`{make}')
    return directory
  directory = os.path.abspath(os.path.expanduser(name_or_path))
  for required in ('config.json', 'vocab.txt'):
    if not os.path.exists(os.path.join(directory, required)):
      raise WeightsError(f'checkpoint directory {directory} has no {required}; '
                         'expected a Hugging Face-format BERT or MPNet directory '
                         '(config.json, model.safetensors, vocab.txt)')
  return directory
