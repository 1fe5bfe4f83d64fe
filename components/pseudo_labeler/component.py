"""PseudoLabeler: the teacher scores (query, document) pairs into pseudo-labels.

Step 2 of the SSD recipe. The selected teacher scores every pair of the
configured splits in Beam; per query list the scores become soft labels
(softmax with a temperature), hard labels (the teacher's top-k) and a list
confidence, and pairs without a true label are selected by confidence,
top/bottom-k and a per-query cap. Labelled pairs are kept unfiltered (with
their label and the teacher's scores, for distillation).

Nothing is lost silently: every input pair is kept, filtered (by reason) or
dead-lettered (by reason), and the counts, which must add up, are recorded on
both outputs, in the report's counts.json and as Beam metrics. Every kept
example names its teacher (`teacher_id` = the teacher's content fingerprint).
"""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts

from components.pseudo_labeler import executor
from components.pseudo_labeler import spec as S


class PseudoLabeler(base_beam_component.BaseBeamComponent):
  """Examples + teacher Model -> pseudo-labelled Examples + a PseudoLabelReport.

  A BaseBeamComponent (a BaseComponent with a BeamExecutorSpec), so the
  pipeline's `beam_pipeline_args` reach the executor.
  """

  SPEC_CLASS = S.PseudoLabelerSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel, model: types.BaseChannel, config_json: str,
               gate_blessing: Optional[types.BaseChannel] = None,
               code_fingerprint: Optional[str] = None):
    S.parse_config(config_json)  # fail at pipeline construction, not in the run
    spec = S.PseudoLabelerSpec(
        examples=examples, model=model, config_json=config_json, gate_blessing=gate_blessing,
        code_fingerprint=code_fingerprint,
        pseudo_labelled=types.Channel(type=standard_artifacts.Examples),
        report=types.Channel(type=S.PseudoLabelReport))
    super().__init__(spec=spec)
