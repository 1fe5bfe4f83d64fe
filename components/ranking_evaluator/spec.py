"""Keys and config of the RankingEvaluator component."""

import dataclasses
from typing import List, Optional

from tfx import types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.common import code_version

# The names (TFX-free, in keys.py so `ssd lineage` reads them without TFX).
from components.ranking_evaluator.keys import *  # noqa: F401,F403  pylint: disable=wildcard-import,unused-wildcard-import


class RankingEvaluatorSpec(types.ComponentSpec):
  PARAMETERS = {CONFIG_KEY: ExecutionParameter(type=str),
                code_version.CODE_FINGERPRINT_KEY: code_version.parameter()}
  INPUTS = {
      EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
      MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
      BASELINE_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
      TEACHER_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
      GATE_BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing, optional=True),
      PRIOR_EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation,
                                             optional=True),
  }
  OUTPUTS = {
      EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation),
      BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
      SELECTED_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
  }


# Roles that name the optional input models in configs and reports.
CANDIDATE = 'candidate'
BASELINE = 'baseline'
TEACHER = 'teacher'
LAST_BLESSED = 'last_blessed'
SELECTED = 'selected'


@dataclasses.dataclass
class EvaluatorConfig:
  """What to measure and how to decide.

  The candidate is blessed when every enabled rule passes on
  `decision_split` (never on a report split), comparing like with like
  (rules.py):
    - beats the baseline model (if given) by > `min_improvement`,
    - beats the first stage, when `must_beat_first_stage`,
    - reaches `retention` x the teacher model's value, when `retention` is set
      and a teacher model is given,
    - is no worse than the last blessed model: the model now in production,
      the newest complete push under `production_dir` (production.py), when
      `production_dir` is set and holds one.
  `selected_model` is the candidate when blessed (or when there is no
  baseline), else the baseline; with `always_select_candidate` it is the
  candidate whatever the rules say (the blessing still records them).
  """
  candidate_role: str = 'candidate'
  baseline_role: str = 'baseline'
  teacher_role: str = 'teacher'
  last_blessed_role: str = 'last_blessed'
  selected_role: str = 'selected'
  first_stage_role: str = 'bm25'
  decision_split: str = 'dev'
  report_splits: List[str] = dataclasses.field(default_factory=lambda: ['test'])
  # Which models to score on the report splits: any of candidate, baseline,
  # teacher, last_blessed, selected (reported under its own role name).
  report_models: List[str] = dataclasses.field(default_factory=lambda: ['selected'])
  decision_metric: str = 'ndcg@10'
  # plain | hybrid: which score the rules compare, like with like (rules.py).
  decision_score: str = 'plain'
  # Report (and, with decision_score hybrid, decide on) a hybrid score for
  # models that were not exported with one: w fitted on the calibration
  # split when the examples have one.
  hybrid_report: bool = True
  min_improvement: float = 0.0
  must_beat_first_stage: bool = False
  retention: Optional[float] = None
  always_select_candidate: bool = False
  batch_size: int = 64
  # The Pusher's destination; the model now in production is read from it at
  # run time, so this evaluator never comes from the cache
  # (pipelines/pipeline.py UNCACHED_NODES).
  production_dir: Optional[str] = None
