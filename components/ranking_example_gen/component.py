"""RankingExampleGen: a ranking dataset → a TFX `Examples` artifact.

Lineage starts here: the artifact records where the data came from (format,
path, a sha256 of the files the executor read, computed at run time), how
queries were split (seed, sizes) and how first-stage candidates were made
(BM25 parameters or a run file). `data_path` is passed as given (a path or
URI): nothing is resolved or read while the pipeline is built.
"""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts

from components.ranking_example_gen import executor
from components.ranking_example_gen import spec as S


class RankingExampleGen(base_component.BaseComponent):
  """Reads cranfield | beir | trec | pairs data and writes split tf.Examples."""

  SPEC_CLASS = S.RankingExampleGenSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, data_format: str, data_path: str, config_json: str,
               code_fingerprint: Optional[str] = None):
    spec = S.RankingExampleGenSpec(
        data_format=data_format,
        data_path=data_path,
        config_json=config_json,
        code_fingerprint=code_fingerprint,
        examples=types.Channel(type=standard_artifacts.Examples))
    super().__init__(spec=spec)
