"""`create_pipeline` is a pure factory: node ids, rounds, and config checks."""

import json
import pytest

from pipelines import pipeline as P
from runconfig import config as C
from tests import e2e_util


def _cfg(tmp_path, **overrides):
  return C.from_dict(C.PipelineConfig, e2e_util.tiny_pipeline_config(tmp_path, **overrides))


def _ids(p):
  return [c.id for c in p.components]


def test_rounds_are_unrolled_with_named_nodes(tmp_path):
  cfg = _cfg(tmp_path, teacher_prime={'rounds': 3})
  ids = _ids(P.create_pipeline(cfg))
  for r in (1, 2, 3):
    for node in (P.pseudo_labeler_id(r), P.teacher_prime_trainer_id(r), P.teacher_prime_evaluator_id(r)):
      assert node in ids
  assert ids.index(P.teacher_prime_evaluator_id(3)) < ids.index(P.TRANSFER_LABELER)
  for node in (P.STUDENT_TRAINER, P.STUDENT_SUPERVISED, P.STUDENT_EVALUATOR, P.STUDENT_PUSHER):
    assert node in ids
  # No resolver: open-source KFP cannot run one; the evaluator reads production itself.
  assert not [c for c in P.create_pipeline(cfg).components if 'Resolver' in type(c).__name__]


def test_teacher_only_pipeline(tmp_path):
  cfg = _cfg(tmp_path, semi_supervised=False, data_validation=False)
  assert sorted(_ids(P.create_pipeline(cfg))) == sorted(
      [P.EXAMPLE_GEN, P.TEACHER_TRAINER, P.TEACHER_PRETRAINED, P.TEACHER_EVALUATOR])


def test_optional_stages_can_be_turned_off(tmp_path):
  cfg = _cfg(tmp_path, student={'supervised_baseline': False},
             blessing={'compare_last_blessed': False}, push={'enabled': False})
  ids = _ids(P.create_pipeline(cfg))
  for node in (P.STUDENT_SUPERVISED, P.STUDENT_PUSHER):
    assert node not in ids
  assert P.uncached_nodes(cfg) == []   # nothing reads production: everything may be cached


def test_the_student_evaluator_reads_production_from_the_push_destination(tmp_path):
  cfg = _cfg(tmp_path, push={'serving_dir': 'gs://bucket/serving'})
  pipeline = P.create_pipeline(cfg)
  evaluator = next(c for c in pipeline.components if c.id == P.STUDENT_EVALUATOR)
  pusher = next(c for c in pipeline.components if c.id == P.STUDENT_PUSHER)
  config = json.loads(evaluator.exec_properties['config_json'])
  assert config['production_dir'] == 'gs://bucket/serving'
  assert 'gs://bucket/serving' in pusher.exec_properties['push_destination']
  assert P.uncached_nodes(cfg) == [P.STUDENT_EVALUATOR]


def test_a_second_checkpoint_adds_a_node_and_keeps_the_teachers(tmp_path):
  # Before 2026-12-03 a second checkpoint renamed the first node
  # (pretrained_checkpoint_minilm_l6), so T and S_sup lost their cache.
  base = C.load_config('configs/cranfield_demo.yaml', [f'pipeline_root={tmp_path}'])
  mpnet = C.load_config('configs/cranfield_demo.yaml', [
      f'pipeline_root={tmp_path}',
      'teacher_prime.model={architecture: bi_encoder, checkpoint: mpnet-base}'])
  nodes = {source: node.id for source, node in P.checkpoint_nodes(
      base, P.code_fp.NodeFingerprints()).items()}
  assert nodes == {'minilm-l6': 'pretrained_checkpoint'}
  nodes = {source: node.id for source, node in P.checkpoint_nodes(
      mpnet, P.code_fp.NodeFingerprints()).items()}
  assert nodes == {'minilm-l6': 'pretrained_checkpoint',
                   'mpnet-base': 'pretrained_checkpoint_mpnet_base'}
  # The teacher's trainer reads the same node in both DAGs.
  for cfg in (base, mpnet):
    trainer = next(c for c in P.create_pipeline(cfg).components if c.id == P.TEACHER_TRAINER)
    assert trainer.inputs['checkpoint'].producer_component_id == 'pretrained_checkpoint'


def test_smaller_teacher_prime_is_rejected(tmp_path):
  raw = e2e_util.tiny_pipeline_config(tmp_path)
  small = dict(raw['teacher']['model'], encoder=dict(raw['teacher']['model']['encoder'], hidden_size=16))
  cfg = C.from_dict(C.PipelineConfig, dict(raw, teacher_prime={'model': small}))
  with pytest.raises(C.ConfigError, match=r"1 layers x 16 hidden < 1 x 32.*equal or larger"):
    P.create_pipeline(cfg)


def test_bad_pseudo_label_config_fails_at_construction(tmp_path):
  cfg = _cfg(tmp_path, teacher_prime={'pseudo_label': {'temprature': 2.0}})
  with pytest.raises(Exception, match='temprature'):
    P.create_pipeline(cfg)


def test_unknown_mode_is_rejected(tmp_path):
  cfg = _cfg(tmp_path, teacher_prime={'mode': 'noisy'})
  with pytest.raises(C.ConfigError, match="noisy_student"):
    P.create_pipeline(cfg)


def test_noise_defaults_per_mode():
  ssd = C.resolve_noise('ssd', C.NoiseConfig())
  noisy = C.resolve_noise('noisy_student', C.NoiseConfig(mask_prob=0.2))
  assert (ssd.token_dropout, ssd.stochastic_depth, ssd.hidden_dropout) == (0.0, 0.0, 0.0)
  assert noisy.mask_prob == 0.2 and noisy.token_dropout > 0 and noisy.stochastic_depth > 0


def test_the_factory_applies_the_validation_rules_but_not_this_machines_files(tmp_path):
  """One validation function (pipelines/validation.py) for `ssd validate`, `ssd run` and
  create_pipeline; the factory skips the checks of local files (it may build for a cluster)."""
  from pipelines import validation  # pylint: disable=g-import-not-at-top
  bad = _cfg(tmp_path, evaluation={'decision_metric': 'ndcg@11'})
  with pytest.raises(validation.ValidationError) as raised:
    P.create_pipeline(bad)
  assert raised.value.problems == validation.problems(bad)
  assert raised.value.problems[0].startswith('evaluation.decision_metric: unknown value')
  elsewhere = _cfg(tmp_path, data={'format': 'cranfield', 'path': '/data/on/the/cluster'})
  assert [p for p in validation.problems(elsewhere) if p.startswith('data.path')]
  assert validation.problems(elsewhere, files=False) == []
  assert P.create_pipeline(elsewhere).pipeline_info.pipeline_name == elsewhere.pipeline_name


def test_fused_targets_score_the_calibration_split_where_w_is_fitted(tmp_path):
  """fuse_first_stage: each labeller that fuses scores the calibration split
  (where w is fitted) with the first stage's K; one that does not is as before."""
  raw = C.apply_overrides(e2e_util.tiny_pipeline_config(tmp_path), [
      'splits.calibration_queries=3', 'teacher_prime.pseudo_label.fuse_first_stage=true',
      'student.transfer={fuse_first_stage: true, first_stage_weight: 0.5}'])
  pipeline = P.create_pipeline(C.from_dict(C.PipelineConfig, raw))
  configs = {c.id: json.loads(c.exec_properties['config_json']) for c in pipeline.components
             if c.id in (P.pseudo_labeler_id(1), P.TRANSFER_LABELER)}
  t_prime, transfer = configs[P.pseudo_labeler_id(1)], configs[P.TRANSFER_LABELER]
  assert (t_prime['splits'], t_prime['fuse_first_stage'], t_prime['first_stage_weight'],
          t_prime['fusion_candidates_k']) == (['train', 'unlabelled', 'calibration'], True,
                                              None, 8)
  # The transfer labeller scores calibration for the student's hybrid fit anyway;
  # its weight is set, so it fits nothing.
  assert (transfer['splits'], transfer['first_stage_weight'],
          transfer['fusion_candidates_k']) == (['train', 'unlabelled', 'calibration'], 0.5, None)
  plain = P.create_pipeline(_cfg(tmp_path))
  labeller = next(c for c in plain.components if c.id == P.pseudo_labeler_id(1))
  plain_config = json.loads(labeller.exec_properties['config_json'])
  assert plain_config['splits'] == ['train', 'unlabelled'] and not plain_config['fuse_first_stage']
