"""Data validation that acts: anomalies are read, printed or fail the run."""

import os

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2

from components.anomalies_gate import anomalies as A
from pipelines import pipeline as P
from runconfig import config as C
from pipelines import validation as V
from tests import e2e_util


def _write(uri, split, anomalies):
  os.makedirs(os.path.join(uri, f'Split-{split}'))
  with open(os.path.join(uri, f'Split-{split}', A.ANOMALIES_FILE), 'wb') as f:
    f.write(anomalies.SerializeToString())


def test_anomalies_are_read_per_split_and_fail_the_gate(tmp_path):
  uri = str(tmp_path / 'anomalies')
  bad = anomalies_pb2.Anomalies()
  bad.anomaly_info['label'].short_description = 'Column dropped'
  bad.anomaly_info['doc'].description = 'The feature was present in fewer examples than expected.'
  _write(uri, 'train', bad)
  _write(uri, 'dev', anomalies_pb2.Anomalies())
  found = A.read_anomalies(uri)
  assert found == {'dev': [], 'train': [
      'doc: The feature was present in fewer examples than expected.',
      'label: Column dropped']}
  with pytest.raises(A.DataAnomaliesError) as e:
    A.check(uri)
  assert str(e.value).startswith(f'data validation found 2 anomalies (data_validation_mode: '
                                 f'fail), in {uri}:\n  train: doc: The feature')
  clean = str(tmp_path / 'clean')
  _write(clean, 'train', anomalies_pb2.Anomalies())
  A.check(clean)   # no anomalies: the gate passes


def _cfg(tmp_path, **overrides):
  raw = e2e_util.tiny_pipeline_config(tmp_path, semi_supervised=False)
  raw.update(overrides)
  return C.from_dict(C.PipelineConfig, raw)


def test_fail_mode_gates_every_trainer_and_a_schema_is_imported(tmp_path):
  schema = tmp_path / 'schema.pbtxt'
  schema.write_text('feature { name: "query" type: BYTES }\n')
  cfg = _cfg(tmp_path, data_validation_mode='fail', data_validation_schema=str(schema))
  assert V.problems(cfg) == []
  nodes = {c.id: c for c in P.create_pipeline(cfg).components}
  assert type(nodes[P.SCHEMA_GEN]).__name__ == 'ImportSchemaGen'
  assert nodes[P.SCHEMA_GEN].exec_properties['schema_file'] == str(schema)
  gate = nodes[P.ANOMALIES_GATE]
  assert nodes[P.EXAMPLE_VALIDATOR] in gate.upstream_nodes
  for trainer in (P.TEACHER_TRAINER, P.TEACHER_PRETRAINED):
    assert gate in nodes[trainer].upstream_nodes


def test_warn_mode_is_the_default_and_adds_no_gate(tmp_path):
  cfg = _cfg(tmp_path)
  assert cfg.data_validation_mode == 'warn'
  nodes = {c.id: c for c in P.create_pipeline(cfg).components}
  assert P.ANOMALIES_GATE not in nodes
  assert type(nodes[P.SCHEMA_GEN]).__name__ == 'SchemaGen'


def test_ingestion_requires_the_same_splits_in_every_mode(tmp_path):
  """train and dev always; the same ingest config whether or not the run is
  semi-supervised, so the teacher stage is shared from the cache. An SSD run
  adds the SplitsGate (unlabelled) before both teacher trainers instead."""
  import json  # pylint: disable=g-import-not-at-top
  from components.ranking_example_gen import spec as eg_spec  # pylint: disable=g-import-not-at-top
  configs = []
  for semi_supervised in (True, False):
    cfg = _cfg(tmp_path, semi_supervised=semi_supervised)
    gen = {c.id: c for c in P.create_pipeline(cfg).components}[P.EXAMPLE_GEN]
    configs.append(gen.exec_properties[eg_spec.CONFIG_KEY])
    assert json.loads(configs[-1])[eg_spec.REQUIRED_SPLITS_CONFIG_KEY] == ['train', 'dev']
    nodes = {c.id: c for c in P.create_pipeline(cfg).components}
    if semi_supervised:
      gate = nodes[P.SPLITS_GATE]
      assert gate.exec_properties['required_splits'] == 'unlabelled'
      assert nodes[P.EXAMPLE_GEN] in gate.upstream_nodes
      for trainer in (P.TEACHER_TRAINER, P.TEACHER_PRETRAINED):
        assert gate in nodes[trainer].upstream_nodes
        # ordering only: the trainers' inputs (hence cache keys) do not change
        assert P.SPLITS_GATE not in {ch.producer_component_id
                                     for ch in nodes[trainer].inputs.values()}
    else:
      assert P.SPLITS_GATE not in nodes
  assert configs[0] == configs[1]
