"""RankingEvaluator: query-grouped ranking metrics, a blessing and a selection.

Why not the stock TFMA Evaluator: TFMA can group by query for NDCG but has no
MRR@k or MAP over graded qrels, and its ideal DCG only sees the candidates in
the examples, not the query's full judgements (which is what trec_eval and the
published Cranfield figures use). This component computes nDCG@5/10, MRR@10
and MAP with trec_eval semantics, and writes the standard `ModelEvaluation`
and `ModelBlessing` artifacts, so the stock Pusher works unchanged.

Decision (see `spec.EvaluatorConfig`): the candidate is blessed when every
enabled rule passes on the decision split (dev): beats the baseline model,
beats the first stage, keeps a fraction of the teacher's quality, is no
worse than the model now in production (the newest push under
`production_dir`, read at run time: production.py). `selected_model` is a
copy of the winner: downstream stages take it as the next teacher, and its custom properties say
which model it came from and why. With a `gate_blessing` input that is not
blessed (e.g. the previous round did not beat its teacher), the evaluation
is skipped and the baseline passes through: this is how later rounds end.
With a `prior_evaluation` input (the evaluation before it in the run), scores
it computed for the same model content and rows are reused
(score_store.py), and this evaluation passes them on with its own.
"""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts

from components.ranking_evaluator import executor
from components.ranking_evaluator import spec as S


class RankingEvaluator(base_component.BaseComponent):
  SPEC_CLASS = S.RankingEvaluatorSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel, model: types.BaseChannel,
               config_json: str, baseline_model: Optional[types.BaseChannel] = None,
               teacher_model: Optional[types.BaseChannel] = None,
               gate_blessing: Optional[types.BaseChannel] = None,
               prior_evaluation: Optional[types.BaseChannel] = None,
               code_fingerprint: Optional[str] = None):
    spec = S.RankingEvaluatorSpec(
        examples=examples, model=model, baseline_model=baseline_model,
        teacher_model=teacher_model,
        gate_blessing=gate_blessing, prior_evaluation=prior_evaluation, config_json=config_json,
        code_fingerprint=code_fingerprint,
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        blessing=types.Channel(type=standard_artifacts.ModelBlessing),
        selected_model=types.Channel(type=standard_artifacts.Model))
    super().__init__(spec=spec)
