"""PretrainedCheckpoint: brings a pretrained BERT checkpoint into the pipeline root.

Why a component and not TFX's Importer: an Importer records a URI that
must exist when the pipeline is compiled and neither copies nor
fingerprints it, and `minilm-l6` is a name only the machine that runs the
step can resolve. This component resolves the name or path at run time,
copies the files into its output artifact and records their sha256, so
every trainer that takes the artifact as input reads weights from the
pipeline root and MLMD links checkpoint -> trainer -> model.
"""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec

from components.pretrained_checkpoint import executor
from components.pretrained_checkpoint import spec as S


class PretrainedCheckpointComponent(base_component.BaseComponent):
  """source (`minilm-l6`, a path or a URI) -> a PretrainedCheckpoint artifact."""

  SPEC_CLASS = S.PretrainedCheckpointSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, source: str, cache_dir: str = '', code_fingerprint: Optional[str] = None):
    spec = S.PretrainedCheckpointSpec(
        source=source, cache_dir=cache_dir, code_fingerprint=code_fingerprint,
        checkpoint=types.Channel(type=S.PretrainedCheckpoint))
    super().__init__(spec=spec)
