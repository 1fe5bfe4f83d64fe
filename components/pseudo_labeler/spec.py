"""Keys, config, reasons and the report artifact of the PseudoLabeler.

One place for every name a reader of the outputs relies on: channel keys,
the files inside the report artifact, the reasons a pair can be filtered or
dead-lettered, and the custom-property names the counts are recorded under.
"""

from tfx import types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.common import code_version
from components.pseudo_labeler.config import CONFIDENCE_ENTROPY  # pylint: disable=unused-import
from components.pseudo_labeler.config import CONFIDENCE_MARGIN  # pylint: disable=unused-import
from components.pseudo_labeler.config import CONFIDENCE_MEASURES  # pylint: disable=unused-import
from components.pseudo_labeler.config import CONFIDENCE_NONE  # pylint: disable=unused-import
from components.pseudo_labeler.config import FIRST_STAGE_WEIGHT_PROPERTY  # pylint: disable=unused-import
from components.pseudo_labeler.config import parse_config  # pylint: disable=unused-import
from components.pseudo_labeler.config import PseudoLabelConfig  # pylint: disable=unused-import
from rankdata import features as F

# The keys and teacher properties (TFX-free, in keys.py for `ssd lineage`).
from components.pseudo_labeler.keys import *  # noqa: F401,F403  pylint: disable=wildcard-import,unused-wildcard-import

# Files inside the report artifact.
COUNTS_FILE = 'counts.json'                  # exact counts, teacher, config, timing
PIPELINE_COUNTS_FILE = 'pipeline_counts.json'  # raw per-(split, name) counts the pipeline wrote
PLOT_SAMPLE_FILE = 'plot_sample.json'        # sample of (score, confidence) per status
PLOT_FILE = 'distribution.png'               # teacher score / confidence, kept vs filtered
DEAD_LETTER_PREFIX = 'dead_letter'           # dead_letter-SSSSS-of-NNNNN.jsonl
DEAD_LETTER_SUFFIX = '.jsonl'
FUSION_FILE = 'fusion.json'                  # fuse_first_stage: the weight and its fit
# Prefix of the kept examples' files inside each Split-<name> folder.
OUTPUT_FILE_PREFIX = 'data_tfrecord'

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


# With fuse_first_stage only: the record has no usable first_stage_score.
DEAD_MISSING_FIRST_STAGE = missing_reason(F.FIRST_STAGE_SCORE)
DEAD_LETTER_REASONS = ((DEAD_MALFORMED,) + tuple(missing_reason(f) for f in REQUIRED_FIELDS)
                       + (DEAD_MISSING_FIRST_STAGE, DEAD_DUPLICATE, DEAD_SCORING_ERROR))

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


# emit_embeddings: per side (query, document), unique texts, texts whose
# embedding was written, and texts the teacher failed on (their pairs are
# `scoring_error` dead letters); unique = embedded + failed, checked. Custom
# properties `embeddings_<side>_<name>` on both outputs; EMBEDDING_COUNTS_FILE
# in the report holds the raw rows.
TEXTS_UNIQUE = 'unique'
TEXTS_EMBEDDED = 'embedded'
TEXTS_FAILED = 'failed'
EMBEDDING_COUNTS_FILE = 'embedding_counts.json'
# On both outputs when embeddings were written: the folder inside the
# pseudo_labelled artifact (components/common/teacher_embeddings.py).
TEACHER_EMBEDDINGS_PROPERTY = 'teacher_embeddings'



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
