"""Named pretrained checkpoints: where the weights cache keeps them and how they are checked.

Only looks and verifies; it never downloads. Getting the files is the app's
job (`ssd weights`, ssd/weights.py), done before a run, never inside one.
"""

import hashlib
import os
from typing import Dict, Optional

from runconfig.config import MINILM_CHECKPOINT

CHECKPOINT_DIRNAME = 'minilm-l6-h384-uncased'
FILE_SHA256: Dict[str, str] = {
    'config.json': '953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41',
    'model.safetensors': '53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db',
    'vocab.txt': '07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3',
}


class WeightsError(RuntimeError):
  pass


def sha256_file(path: str) -> str:
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      h.update(block)
  return h.hexdigest()


def checkpoint_dir(cache_dir: str) -> str:
  return os.path.join(os.path.expanduser(cache_dir), CHECKPOINT_DIRNAME)


def verify_checkpoint(directory: str) -> Optional[str]:
  """Returns None when every file is present with its checksum, else why not."""
  for name, digest in FILE_SHA256.items():
    path = os.path.join(directory, name)
    if not os.path.exists(path):
      return f'{path} is missing'
    actual = sha256_file(path)
    if actual != digest:
      return f'{path}: sha256 {actual} != expected {digest}'
  return None


def resolve_checkpoint(name_or_path: Optional[str], cache_dir: str) -> Optional[str]:
  """Maps a config's `checkpoint` value to a directory (None = random init)."""
  if not name_or_path:
    return None
  if name_or_path == MINILM_CHECKPOINT:
    directory = checkpoint_dir(cache_dir)
    problem = verify_checkpoint(directory)
    if problem:
      raise WeightsError(f'checkpoint {MINILM_CHECKPOINT!r} not ready ({problem}); '
                         f'run `ssd weights --cache_dir={cache_dir}` (or `make weights`)')
    return directory
  directory = os.path.abspath(os.path.expanduser(name_or_path))
  for required in ('config.json', 'vocab.txt'):
    if not os.path.exists(os.path.join(directory, required)):
      raise WeightsError(f'checkpoint directory {directory} has no {required}; '
                         'expected a Hugging Face-format BERT (config.json, model.safetensors, vocab.txt)')
  return directory

