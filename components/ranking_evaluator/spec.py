"""Keys and config of the RankingEvaluator component."""

import dataclasses
from typing import List

from tfx import types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

# Inputs.
EXAMPLES_KEY = 'examples'
MODEL_KEY = 'model'
BASELINE_MODEL_KEY = 'baseline_model'
# Parameters.
CONFIG_KEY = 'config_json'   # EvaluatorConfig as JSON
# Outputs.
EVALUATION_KEY = 'evaluation'
BLESSING_KEY = 'blessing'
SELECTED_MODEL_KEY = 'selected_model'

METRICS_FILE = 'metrics.json'
# Artifact custom properties a reader can rely on.
BLESSED_PROPERTY = 'blessed'   # same key and meaning as TFX's Evaluator (1/0)


class RankingEvaluatorSpec(types.ComponentSpec):
  PARAMETERS = {CONFIG_KEY: ExecutionParameter(type=str)}
  INPUTS = {
      EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
      MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
      BASELINE_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
  }
  OUTPUTS = {
      EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation),
      BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
      SELECTED_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
  }


@dataclasses.dataclass
class EvaluatorConfig:
  candidate_role: str = 'candidate'
  baseline_role: str = 'baseline'
  selected_role: str = 'selected'
  first_stage_role: str = 'bm25'
  decision_split: str = 'dev'
  report_splits: List[str] = dataclasses.field(default_factory=lambda: ['test'])
  decision_metric: str = 'ndcg@10'
  min_improvement: float = 0.0
  batch_size: int = 64
