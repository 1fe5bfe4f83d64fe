"""Keys, config, reasons and the report artifact of the PseudoLabeler.

One place for every name a reader of the outputs relies on: channel keys,
the files inside the report artifact, the reasons a pair can be filtered or
dead-lettered, and the custom-property names the counts are recorded under.
"""

import dataclasses
from typing import List, Optional

from tfx import types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components import code_version
from rankdata import features as F
from ssd import config as C

# Inputs.
EXAMPLES_KEY = 'examples'
MODEL_KEY = 'model'
# Optional: when this ModelBlessing is not blessed (e.g. the previous round's
# T' did not beat its teacher), the component writes empty splits and skips.
GATE_BLESSING_KEY = 'gate_blessing'
# Parameters.
CONFIG_KEY = 'config_json'   # PseudoLabelConfig as JSON (ssd.config.to_json)
# Outputs.
PSEUDO_LABELLED_KEY = 'pseudo_labelled'
REPORT_KEY = 'report'

# Files inside the report artifact.
COUNTS_FILE = 'counts.json'                  # exact counts, teacher, config, timing
PIPELINE_COUNTS_FILE = 'pipeline_counts.json'  # raw per-(split, name) counts the pipeline wrote
PLOT_SAMPLE_FILE = 'plot_sample.json'        # sample of (score, confidence) per status
PLOT_FILE = 'distribution.png'               # teacher score / confidence, kept vs filtered
DEAD_LETTER_PREFIX = 'dead_letter'           # dead_letter-SSSSS-of-NNNNN.jsonl
DEAD_LETTER_SUFFIX = '.jsonl'
# Prefix of the kept examples' files inside each Split-<name> folder.
OUTPUT_FILE_PREFIX = 'data_tfrecord'

# Confidence measures.
CONFIDENCE_MARGIN = 'margin'
CONFIDENCE_ENTROPY = 'entropy'
CONFIDENCE_NONE = 'none'
CONFIDENCE_MEASURES = (CONFIDENCE_MARGIN, CONFIDENCE_ENTROPY, CONFIDENCE_NONE)

# Why an unlabelled pair was scored but not kept (selection).
FILTER_NO_SIGNAL = 'no_signal'                    # list too short or all scores equal
FILTER_LOW_CONFIDENCE = 'low_confidence'          # list confidence < min_confidence
FILTER_NOT_TOP_OR_BOTTOM = 'not_top_or_bottom'    # outside keep_top_k / keep_bottom_k
FILTER_OVER_QUERY_CAP = 'over_query_cap'          # beyond max_pairs_per_query
FILTER_REASONS = (FILTER_NO_SIGNAL, FILTER_LOW_CONFIDENCE, FILTER_NOT_TOP_OR_BOTTOM,
                  FILTER_OVER_QUERY_CAP)

# Why a record could not be scored or used (dead letters).
DEAD_MALFORMED = 'malformed_record'   # bytes do not parse as a tf.Example
DEAD_DUPLICATE = 'duplicate_pair'     # (query_id, doc_id) seen before in the split
DEAD_SCORING_ERROR = 'scoring_error'  # the teacher failed on it or gave a non-finite score
REQUIRED_FIELDS = (F.QUERY_ID, F.DOC_ID, F.QUERY, F.DOC)


def missing_reason(field: str) -> str:
  return f'missing_{field}'


DEAD_LETTER_REASONS = ((DEAD_MALFORMED,) + tuple(missing_reason(f) for f in REQUIRED_FIELDS)
                       + (DEAD_DUPLICATE, DEAD_SCORING_ERROR))

# Count names: per split they become custom properties `<split>_<name>`
# (and `total_<name>` over all splits).
PAIRS_IN = 'pairs_in'
KEPT = 'kept'
EMPTY_TEXT_SCORED = 'empty_text_scored'   # informational: not a disposition
TOTAL = 'total'


def filtered_name(reason: str) -> str:
  return f'filtered_{reason}'


def dead_letter_name(reason: str) -> str:
  return f'dead_letter_{reason}'


# Custom properties on both outputs naming the teacher.
TEACHER_MODEL_ID_PROPERTY = 'teacher_model_id'
TEACHER_FINGERPRINT_PROPERTY = 'teacher_fingerprint'
TEACHER_URI_PROPERTY = 'teacher_uri'
TEACHER_ROLE_PROPERTY = 'teacher_role'


class PseudoLabelReport(types.Artifact):
  """What the pseudo-labeller did: counts.json, dead_letter-*.jsonl, a plot."""
  # `namespace.Name`: KFP v2 (TFX's KubeflowV2DagRunner) rejects custom type names without one.
  TYPE_NAME = 'ssd.PseudoLabelReport'


class PseudoLabelerSpec(types.ComponentSpec):
  PARAMETERS = {CONFIG_KEY: ExecutionParameter(type=str),
                code_version.CODE_FINGERPRINT_KEY: code_version.parameter()}
  INPUTS = {
      EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
      MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
      GATE_BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing, optional=True),
  }
  OUTPUTS = {
      PSEUDO_LABELLED_KEY: ChannelParameter(type=standard_artifacts.Examples),
      REPORT_KEY: ChannelParameter(type=PseudoLabelReport),
  }


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

  def validate(self) -> 'PseudoLabelConfig':
    """Raises ssd.config.ConfigError naming the field; returns self."""
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
    if self.batch_size < 1:
      raise C.ConfigError(f'batch_size must be >= 1, got {self.batch_size}')
    return self


def parse_config(text: str) -> PseudoLabelConfig:
  """The component's config_json -> a validated PseudoLabelConfig."""
  return C.from_json(PseudoLabelConfig, text).validate()
