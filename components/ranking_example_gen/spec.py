"""Keys of the RankingExampleGen component (one place for each name)."""

from tfx import types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.common import code_version

# Parameters.
DATA_FORMAT_KEY = 'data_format'
DATA_PATH_KEY = 'data_path'       # a path or URI, as the config gives it
CONFIG_KEY = 'config_json'   # {"data": DataConfig, "splits": SplitsConfig}
# Key inside config_json: splits that must not come out empty (the run fails
# at ingestion otherwise); the pipeline sets it from what later stages read.
REQUIRED_SPLITS_CONFIG_KEY = 'required_splits'
# Outputs.
EXAMPLES_KEY = 'examples'

# Custom properties of the output, computed at run time from the bytes read
# (components.common.fileio.sha256_files): the dataset directory (or file) and the
# extra unlabelled JSONL corpus when `data.unlabelled_pairs` is set.
DATA_FINGERPRINT_PROPERTY = 'data_fingerprint'
UNLABELLED_FINGERPRINT_PROPERTY = 'unlabelled_fingerprint'
UNLABELLED_PATH_PROPERTY = 'unlabelled_pairs'
# Query ids of the extra unlabelled corpus get this prefix, so a JSONL query
# "5" never merges with the dataset's query "5".
UNLABELLED_QUERY_PREFIX = 'u:'

# Files written inside the Examples artifact next to the Split-* folders.
QRELS_FILE = 'qrels.json'          # {split: {query_id: {doc_id: gain}}}, dev and test
REPORT_FILE = 'ingest_report.json'  # statistics, counters and parameters


class RankingExampleGenSpec(types.ComponentSpec):
  PARAMETERS = {
      DATA_FORMAT_KEY: ExecutionParameter(type=str),
      DATA_PATH_KEY: ExecutionParameter(type=str),
      CONFIG_KEY: ExecutionParameter(type=str),
      code_version.CODE_FINGERPRINT_KEY: code_version.parameter(),
  }
  INPUTS = {}
  OUTPUTS = {EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}
