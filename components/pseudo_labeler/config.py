"""PseudoLabelConfig: how teacher scores become pseudo-labels (no TFX import).

Kept apart from spec.py (which imports TFX) so that `ssd validate` can check
`teacher_prime.pseudo_label` and `student.transfer` in well under a second,
before any TFX module is loaded. spec.py re-exports every name here.
"""

import dataclasses
from typing import List, Optional

from rankdata import features as F
from runconfig import config as C

# Confidence measures.
CONFIDENCE_MARGIN = 'margin'
CONFIDENCE_ENTROPY = 'entropy'
CONFIDENCE_NONE = 'none'
CONFIDENCE_MEASURES = (CONFIDENCE_MARGIN, CONFIDENCE_ENTROPY, CONFIDENCE_NONE)


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
    return self


def parse_config(text: str) -> PseudoLabelConfig:
  """The component's config_json -> a validated PseudoLabelConfig."""
  return C.from_json(PseudoLabelConfig, text).validate()
