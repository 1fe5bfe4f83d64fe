"""PseudoLabelConfig: how teacher scores become pseudo-labels (no TFX import).

Kept apart from spec.py (which imports TFX) so that `ssd validate` can check
`teacher_prime.pseudo_label` and `student.transfer` in well under a second,
before any TFX module is loaded. spec.py re-exports every name here.
"""

import dataclasses
import math
from typing import Any, Dict, List, Optional

from rankdata import features as F
from runconfig import config as C

# Confidence measures.
CONFIDENCE_MARGIN = 'margin'
CONFIDENCE_ENTROPY = 'entropy'
CONFIDENCE_NONE = 'none'
CONFIDENCE_MEASURES = (CONFIDENCE_MARGIN, CONFIDENCE_ENTROPY, CONFIDENCE_NONE)

# Float property of both outputs when the targets fuse the teacher with the
# first stage (fuse_first_stage): w in teacher_score + w * first_stage_score.
# Here (TFX-free, for `ssd lineage`), not in keys.py: the trainers import
# keys.py, and a name only the pseudo-labeller writes should not change
# their code fingerprint.
FIRST_STAGE_WEIGHT_PROPERTY = 'first_stage_weight'


@dataclasses.dataclass
class PseudoLabelConfig:
  """How the teacher's scores become pseudo-labels, and which pairs are kept.

  Selection applies only to pairs WITHOUT a `label` feature; labelled pairs
  (e.g. the train split) are scored and always kept with their label, so a
  student can be distilled on the teacher's scores of labelled data too.
  Every per-list quantity (soft labels, hard labels, confidence, ranks) is
  computed over the query's whole list of unique, scored candidates, before
  any pair is filtered.
  """
  # Splits of the input Examples to score and write (missing ones are skipped
  # with a warning; at least one must exist).
  splits: List[str] = dataclasses.field(
      default_factory=lambda: [F.SPLIT_TRAIN, F.SPLIT_UNLABELLED])
  # SOFT_LABEL = softmax(teacher_score / temperature) over the query's list;
  # > 1 flattens the distribution, < 1 sharpens it.
  temperature: float = 1.0
  # HARD_LABEL = 1.0 for the teacher's top-k of each list, else 0.0.
  hard_top_k: int = 1
  # Per-list confidence of the teacher: 'margin' = p(top1) - p(top2) of the
  # soft labels; 'entropy' = 1 - H(p) / log(n); 'none' = always 1.0.
  confidence: str = CONFIDENCE_MARGIN
  # Unlabelled lists whose confidence is below this are filtered
  # (`low_confidence`); 0 keeps every list.
  min_confidence: float = 0.0
  # When either is set, keep only the teacher's top-k and bottom-k of each
  # list (`not_top_or_bottom`); an unset one counts as 0.
  keep_top_k: Optional[int] = None
  keep_bottom_k: Optional[int] = None
  # Cap on kept pseudo-labelled pairs per query, applied after the filters
  # above (`over_query_cap`): the ranking analogue of Noisy Student's
  # per-class balancing. The cap is filled best, worst, 2nd best, 2nd worst,
  # ... so the kept pairs stay spread over the teacher's ranking.
  max_pairs_per_query: Optional[int] = None
  # Lists with fewer unique candidates carry no ranking signal (`no_signal`);
  # so do lists whose teacher scores are all equal (std < 1e-6).
  min_list_size: int = 2
  # Pairs (cross-encoder) or texts (bi-encoder) per teacher call.
  batch_size: int = 64
  # Role of the teacher in logs and properties (e.g. 'teacher', 'teacher_prime').
  teacher_role: str = 'teacher'
  # Tolerated share of dead letters (malformed records, missing fields,
  # duplicates, teacher failures) among the pairs read, over all splits.
  # Above it the execution fails, naming the first failing records, and no
  # output is published: a teacher that breaks on 5 % of the corpus is a bug
  # to fix, not noise to train around. 1.0 tolerates anything.
  max_dead_letter_fraction: float = 0.01
  # Bi-encoder teachers only: also write the teacher's embedding of every
  # unique query and document text it embeds (spec.EMBEDDINGS_DIR inside the
  # pseudo_labelled artifact). Not a user setting: the pipeline sets it when
  # the trainer reading this output learns embeddings
  # (runconfig.config.uses_teacher_embeddings).
  emit_embeddings: bool = False
  # Distil from a hybrid of the teacher and the first stage: every pair's
  # target score is teacher_score + w * first_stage_score (the example's
  # `first_stage_score`, e.g. BM25), and the soft labels, hard labels,
  # confidence and selection are computed from it. The teacher's own
  # ranking and the first stage's are different views of relevance; their
  # fusion ranks ~0.01 nDCG@10 better than the teacher on both collections
  # here, but the 2-layer, 64-token students measured so far did not gain
  # from learning it, so it is off by default (docs/design.md, "The
  # distillation target"). Pairs without a first-stage score are dead
  # letters (`missing_first_stage_score`).
  fuse_first_stage: bool = False
  # w of the fusion. null: fitted on the calibration split, by the same grid
  # search as the evaluator's hybrid score (components/common/hybrid.py):
  # that split must be in `splits` and labelled, and is never trained on
  # or used for a decision.
  first_stage_weight: Optional[float] = None
  # The first stage's K for that fit (the fit reranks the top K only, as the
  # evaluator does). Not a user setting: the pipeline sets splits.candidates_k.
  fusion_candidates_k: Optional[int] = None

  @property
  def fits_first_stage_weight(self) -> bool:
    return self.fuse_first_stage and self.first_stage_weight is None

  def validate(self) -> 'PseudoLabelConfig':
    """Raises runconfig.config.ConfigError naming the field; returns self."""
    if not self.splits:
      raise C.ConfigError('splits: at least one split is needed')
    if not self.temperature > 0:
      raise C.ConfigError(f'temperature must be > 0, got {self.temperature}')
    if self.hard_top_k < 0:
      raise C.ConfigError(f'hard_top_k must be >= 0, got {self.hard_top_k}')
    if self.confidence not in CONFIDENCE_MEASURES:
      raise C.ConfigError(f'confidence must be one of {CONFIDENCE_MEASURES}, '
                          f'got {self.confidence!r}')
    if not 0.0 <= self.min_confidence <= 1.0:
      raise C.ConfigError(f'min_confidence must be in [0, 1], got {self.min_confidence}')
    if self.confidence == CONFIDENCE_NONE and self.min_confidence > 0:
      raise C.ConfigError("min_confidence > 0 needs confidence 'margin' or 'entropy'")
    for name in ('keep_top_k', 'keep_bottom_k'):
      value = getattr(self, name)
      if value is not None and value < 0:
        raise C.ConfigError(f'{name} must be >= 0, got {value}')
    if self.max_pairs_per_query is not None and self.max_pairs_per_query < 1:
      raise C.ConfigError(f'max_pairs_per_query must be >= 1, got {self.max_pairs_per_query}')
    if self.min_list_size < 1:
      raise C.ConfigError(f'min_list_size must be >= 1, got {self.min_list_size}')
    if not 0.0 <= self.max_dead_letter_fraction <= 1.0:
      raise C.ConfigError('max_dead_letter_fraction must be in [0, 1], got '
                          f'{self.max_dead_letter_fraction}')
    if self.batch_size < 1:
      raise C.ConfigError(f'batch_size must be >= 1, got {self.batch_size}')
    if self.first_stage_weight is not None:
      if not self.fuse_first_stage:
        raise C.ConfigError('first_stage_weight is set but fuse_first_stage is false; '
                            'set fuse_first_stage: true to fuse, or drop the weight')
      if not (math.isfinite(self.first_stage_weight) and self.first_stage_weight >= 0):
        raise C.ConfigError('first_stage_weight must be a finite number >= 0 (null: fit it '
                            f'on the calibration split), got {self.first_stage_weight}')
    if self.fits_first_stage_weight and F.SPLIT_CALIBRATION not in self.splits:
      raise C.ConfigError(f'fuse_first_stage fits its weight on the {F.SPLIT_CALIBRATION!r} '
                          f'split, which is not in splits {self.splits}; add it, or set '
                          'first_stage_weight')
    if self.fusion_candidates_k is not None and self.fusion_candidates_k < 1:
      raise C.ConfigError(f'fusion_candidates_k must be >= 1, got {self.fusion_candidates_k}')
    return self


def parse_config(text: str) -> PseudoLabelConfig:
  """The component's config_json -> a validated PseudoLabelConfig."""
  return C.from_json(PseudoLabelConfig, text).validate()


def stage_config(raw: Dict[str, Any], *, teacher_role: str, emit_embeddings: bool,
                 calibration_split: bool, candidates_k: Optional[int],
                 score_calibration: bool = False) -> Dict[str, Any]:
  """A stage's PseudoLabelConfig fields (`teacher_prime.pseudo_label`,
  `student.transfer`) completed as the pipeline runs them: one function for
  the pipeline and for `ssd validate`, so both judge the same config.

  Unless the user lists `splits`: train and unlabelled, plus the calibration
  split when the run has one (`calibration_split`) and the stage scores it,
  either for a trainer's hybrid fit (`score_calibration`) or to fit the
  fusion weight.
  """
  out = dict(raw, teacher_role=teacher_role, emit_embeddings=emit_embeddings)
  fit = bool(out.get('fuse_first_stage')) and out.get('first_stage_weight') is None
  if fit:
    out['fusion_candidates_k'] = candidates_k
  if 'splits' not in out:
    scores_calibration = calibration_split and (score_calibration or fit)
    out['splits'] = ([F.SPLIT_TRAIN, F.SPLIT_UNLABELLED]
                     + ([F.SPLIT_CALIBRATION] if scores_calibration else []))
  return out
