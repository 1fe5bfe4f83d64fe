"""PseudoLabeler component: channel types, parameters, Beam executor spec."""

import pytest
from tfx import types
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts

from components.pseudo_labeler import component as P
from components.pseudo_labeler import executor as E
from components.pseudo_labeler import spec as S
from runconfig import config as C


def _make(config_json=None):
  return P.PseudoLabeler(
      examples=types.Channel(type=standard_artifacts.Examples),
      model=types.Channel(type=standard_artifacts.Model),
      config_json=config_json or C.to_json(S.PseudoLabelConfig()))


def test_channels_and_parameters():
  c = _make(C.to_json(S.PseudoLabelConfig(temperature=2.0, keep_top_k=5)))
  assert c.inputs[S.EXAMPLES_KEY].type is standard_artifacts.Examples
  assert c.inputs[S.MODEL_KEY].type is standard_artifacts.Model
  assert c.outputs[S.PSEUDO_LABELLED_KEY].type is standard_artifacts.Examples
  assert c.outputs[S.REPORT_KEY].type is S.PseudoLabelReport
  assert c.outputs[S.REPORT_KEY].type_name == 'ssd.PseudoLabelReport'
  parsed = S.parse_config(c.exec_properties[S.CONFIG_KEY])
  assert parsed.temperature == 2.0 and parsed.keep_top_k == 5


def test_is_a_beam_component():
  c = _make().with_beam_pipeline_args(['--direct_num_workers=2'])
  assert isinstance(c.executor_spec, executor_spec.BeamExecutorSpec)
  assert c.executor_spec.executor_class is E.Executor
  assert c.executor_spec.beam_pipeline_args == ['--direct_num_workers=2']


def test_bad_config_fails_at_construction():
  with pytest.raises(C.ConfigError, match='unknown config key'):
    _make('{"min_confidense": 0.5}')
  with pytest.raises(C.ConfigError, match='confidence'):
    _make('{"confidence": "vibes"}')
