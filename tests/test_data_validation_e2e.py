"""`data_validation_mode: fail` with a supplied schema stops a real run before training."""

import os

import pytest

from pipelines import local_runner
from pipelines import pipeline as P
from runconfig import config as C
from ssd import lineage
from pipelines import validation as V
from tests import e2e_util

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

# The data has no `weight` feature; the schema requires one in every example.
SCHEMA = '''
feature { name: "query_id" type: BYTES presence { min_fraction: 1.0 min_count: 1 } }
feature { name: "weight" type: FLOAT presence { min_fraction: 1.0 min_count: 1 } }
'''


def test_anomalies_fail_the_run_before_any_trainer(tmp_path):
  schema = tmp_path / 'schema.pbtxt'
  schema.write_text(SCHEMA)
  raw = e2e_util.tiny_pipeline_config(tmp_path, semi_supervised=False)
  raw.update(data_validation_mode='fail', data_validation_schema=str(schema))
  cfg = V.validate(C.from_dict(C.PipelineConfig, raw))
  with pytest.raises(Exception) as e:   # LocalDagRunner re-raises the node's error
    local_runner.run(cfg)
  assert 'data validation found' in str(e.value) or 'anomal' in repr(e.value).lower(), e.value
  rows = lineage.execution_table(lineage.open_store(os.path.abspath(cfg.metadata_sqlite)),
                                 cfg.pipeline_name)
  states = {r['node']: r['state'] for r in rows}
  assert states[P.EXAMPLE_VALIDATOR] == 'COMPLETE'
  assert states[P.ANOMALIES_GATE] == 'FAILED'
  assert P.TEACHER_TRAINER not in states and P.TEACHER_PRETRAINED not in states
