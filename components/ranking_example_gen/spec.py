"""Keys of the RankingExampleGen component (one place for each name)."""

from tfx import types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

# Parameters.
DATA_FORMAT_KEY = 'data_format'
DATA_PATH_KEY = 'data_path'
DATA_FINGERPRINT_KEY = 'data_fingerprint'
CONFIG_KEY = 'config_json'   # {"data": DataConfig, "splits": SplitsConfig}
# Key inside config_json: splits that must not come out empty (the run fails
# at ingestion otherwise); the pipeline sets it from what later stages read.
REQUIRED_SPLITS_CONFIG_KEY = 'required_splits'
# Outputs.
EXAMPLES_KEY = 'examples'

# Files written inside the Examples artifact next to the Split-* folders.
QRELS_FILE = 'qrels.json'          # {split: {query_id: {doc_id: gain}}}, dev and test
REPORT_FILE = 'ingest_report.json'  # statistics, counters and parameters


class RankingExampleGenSpec(types.ComponentSpec):
  PARAMETERS = {
      DATA_FORMAT_KEY: ExecutionParameter(type=str),
      DATA_PATH_KEY: ExecutionParameter(type=str),
      DATA_FINGERPRINT_KEY: ExecutionParameter(type=str),
      CONFIG_KEY: ExecutionParameter(type=str),
  }
  INPUTS = {}
  OUTPUTS = {EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}
