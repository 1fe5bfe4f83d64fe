"""RankingExampleGen: a ranking dataset → a TFX `Examples` artifact.

Lineage starts here: the artifact records where the data came from (format,
path, a fingerprint of the files), how queries were split (seed, sizes) and
how first-stage candidates were made (BM25 parameters or a run file).
"""

import hashlib
import os
from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts

from components.ranking_example_gen import executor
from components.ranking_example_gen import spec as S


def fingerprint_path(path: str) -> str:
  """Cheap content fingerprint (names, sizes, mtimes) so the cache sees new data."""
  h = hashlib.sha256()
  paths = [path]
  if os.path.isdir(path):
    paths = []
    for root, _, files in os.walk(path):
      paths.extend(os.path.join(root, f) for f in files)
  for p in sorted(paths):
    try:
      st = os.stat(p)
    except FileNotFoundError:
      h.update(f'missing:{p}'.encode())
      continue
    h.update(f'{os.path.relpath(p, path) if p != path else ""}:{st.st_size}:{int(st.st_mtime)}'.encode())
  return h.hexdigest()[:16]


class RankingExampleGen(base_component.BaseComponent):
  """Reads cranfield | beir | trec | pairs data and writes split tf.Examples."""

  SPEC_CLASS = S.RankingExampleGenSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, data_format: str, data_path: str, config_json: str,
               code_fingerprint: Optional[str] = None):
    data_path = os.path.abspath(os.path.expanduser(data_path))
    spec = S.RankingExampleGenSpec(
        data_format=data_format,
        data_path=data_path,
        data_fingerprint=fingerprint_path(data_path),
        config_json=config_json,
        code_fingerprint=code_fingerprint,
        examples=types.Channel(type=standard_artifacts.Examples))
    super().__init__(spec=spec)
