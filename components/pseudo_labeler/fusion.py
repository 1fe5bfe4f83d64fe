"""Fusion with the first stage: the distillation target teacher + w * first stage.

With `fuse_first_stage`, every scored pair's score becomes

    teacher_score + w * first_stage_score

before the per-list labelling (labelling.py), so soft labels, hard labels,
confidence and selection all follow the fused ranking: the student learns
the hybrid, not the teacher alone. w is the config's `first_stage_weight`,
or fitted on the calibration split's labelled pairs with the grid search
the evaluator uses for every model's hybrid score (components/common/
hybrid.py): the same top-K reranking, the same metric, the same ties. The
calibration split is held out of training and of every decision; dev,
which decides blessing, never fits it.

The fit is a global step of the pipeline: the calibration pairs are
gathered (a few hundred to a few thousand), the weight is computed once,
and every pair reads it as a side input.
"""

from typing import Any, Dict, List, Optional

import apache_beam as beam

from components.common import hybrid
from components.pseudo_labeler import config as pl_config
from components.pseudo_labeler.common import LABELLED
from components.pseudo_labeler.common import Pair
from components.pseudo_labeler.common import SCORE
from components.pseudo_labeler.common import SPLIT
from rankdata import features as F
from rankdata import metrics as M

SOURCE_CONFIG = 'config'
SOURCE_CALIBRATION = F.SPLIT_CALIBRATION


def fit(rows: List[Dict[str, Any]], candidates_k: Optional[int]) -> Dict[str, Any]:
  """The fusion weight fitted on scored calibration pairs (dicts with the
  ids, label, first-stage score and rank, and the teacher's SCORE)."""
  scored, qrels = hybrid.calibration_rows(rows, candidates_k)
  if not scored:
    raise ValueError(
        f'fuse_first_stage: no labelled {F.SPLIT_CALIBRATION!r} pairs with a first-stage '
        f'rank in 1..{candidates_k} were scored ({len(rows)} calibration pairs), so the '
        'fusion weight cannot be fitted; set splits.calibration_queries > 0 or '
        'first_stage_weight')
  result = hybrid.fit_weight(scored, [r[SCORE] for r in scored], qrels)
  first_stage = {}
  for r in scored:
    first_stage.setdefault(r[F.QUERY_ID], {})[r[F.DOC_ID]] = float(r[F.FIRST_STAGE_SCORE])
  result[f'calibration_{hybrid.FIT_METRIC}_first_stage'] = M.evaluate_run(
      first_stage, qrels, complete=True)[hybrid.FIT_METRIC]
  result['calibration_pairs'] = len(scored)
  result['candidates_k'] = candidates_k
  result['source'] = SOURCE_CALIBRATION
  result['grid'] = {str(w): v for w, v in result['grid'].items()}
  return result


def fuse(pair: Pair, weight_fit: Dict[str, Any]) -> Pair:
  """The pair with SCORE = teacher score + w * first-stage score."""
  return dict(pair, **{SCORE: float(pair[SCORE])
                             + weight_fit['weight'] * pair[F.FIRST_STAGE_SCORE]})


def _calibration_row(pair: Pair) -> Dict[str, Any]:
  return {F.QUERY_ID: pair[F.QUERY_ID], F.DOC_ID: pair[F.DOC_ID], F.LABEL: pair[F.LABEL],
          F.FIRST_STAGE_SCORE: pair[F.FIRST_STAGE_SCORE],
          F.FIRST_STAGE_RANK: pair[F.FIRST_STAGE_RANK], SCORE: float(pair[SCORE])}


@beam.ptransform_fn
def FuseFirstStage(scored, cfg: pl_config.PseudoLabelConfig):  # pylint: disable=invalid-name
  """Scored pairs (parsed with their first-stage score) -> (fused pairs, the
  fit: a one-element PCollection of {'weight', 'source', ...})."""
  if cfg.first_stage_weight is not None:
    weight_fit = scored.pipeline | 'FusionWeight' >> beam.Create(
        [{'weight': float(cfg.first_stage_weight), 'source': SOURCE_CONFIG}])
  else:
    k = cfg.fusion_candidates_k
    weight_fit = (
        scored
        | 'CalibrationPairs' >> beam.Filter(
            lambda p: p[SPLIT] == F.SPLIT_CALIBRATION and p[LABELLED])
        | 'CalibrationRows' >> beam.Map(_calibration_row)
        | 'AllCalibrationRows' >> beam.combiners.ToList()
        | 'FitWeight' >> beam.Map(fit, k))
  fused = scored | 'Fuse' >> beam.Map(fuse, beam.pvalue.AsSingleton(weight_fit))
  return fused, weight_fit
