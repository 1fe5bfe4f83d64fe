"""Config parsing: defaults, the demo file, overrides and clear errors."""

import os

import pytest

from runconfig import config as C

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, 'configs', 'cranfield_demo.yaml')


def test_demo_config_parses_with_expected_split():
  cfg = C.load_config(DEMO)
  assert cfg.data.format == 'cranfield'
  assert (cfg.splits.train_queries, cfg.splits.dev_queries, cfg.splits.test_queries) == (50, 25, 75)
  assert cfg.teacher.model.checkpoint == C.MINILM_CHECKPOINT
  assert cfg.metadata_sqlite == os.path.join(cfg.pipeline_root, 'metadata.sqlite')


def test_overrides_are_typed_and_nested():
  cfg = C.load_config(DEMO, ['teacher.train.epochs=3', 'splits.bm25.k1=1.2',
                             'data_validation=false', 'beam.extra_args=["--a=1"]'])
  assert cfg.teacher.train.epochs == 3
  assert cfg.splits.bm25.k1 == pytest.approx(1.2)
  assert cfg.data_validation is False
  assert cfg.beam.pipeline_args()[-1] == '--a=1'


def test_unknown_key_is_named():
  with pytest.raises(C.ConfigError, match=r'teacher\.train\.epoch\b'):
    C.load_config(DEMO, ['teacher.train.epoch=3'])


def test_wrong_type_is_named():
  with pytest.raises(C.ConfigError, match=r'splits\.train_queries: expected an integer'):
    C.load_config(DEMO, ['splits.train_queries=many'])


def test_json_round_trip():
  cfg = C.load_config(DEMO)
  again = C.from_json(C.TeacherConfig, C.to_json(cfg.teacher))
  assert again == cfg.teacher


def test_missing_file_is_a_config_error(tmp_path):
  with pytest.raises(C.ConfigError, match='not found'):
    C.load_config(str(tmp_path / 'nope.yaml'))
