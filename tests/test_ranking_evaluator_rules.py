"""Blessing rules on hand-computed numbers: each rule passing, failing, and ties."""

import pytest

from components.ranking_evaluator import rules as R

NAMES = {R.CANDIDATE: 'student', R.BASELINE: 'student_supervised'}


def _dev(**values):
  """role -> {'ndcg@10': v}; keys ending in _h become '<role>_hybrid'."""
  return {k[:-2] + R.HYBRID_SUFFIX if k.endswith('_h') else k: {'ndcg@10': v}
          for k, v in values.items()}


def _decide(dev, names=NAMES, **cfg):
  return R.decide(R.RuleConfig(**cfg), dev, names)


def test_beats_baseline_by_margin_pass_fail_and_tie():
  checks, blessed, chosen = _decide(_dev(student=0.40, student_supervised=0.35, bm25=0.30),
                                    min_improvement=0.04)
  assert blessed and chosen == R.CANDIDATE
  assert checks == [{'rule': 'beats student_supervised by > 0.04', 'value': 0.40,
                     'reference': 0.35, 'passed': True, 'score': 'plain'}]
  _, blessed, chosen = _decide(_dev(student=0.40, student_supervised=0.37, bm25=0.30),
                               min_improvement=0.04)
  assert not blessed and chosen == R.BASELINE
  # A tie is not an improvement (strictly greater).
  _, blessed, _ = _decide(_dev(student=0.40, student_supervised=0.40, bm25=0.30))
  assert not blessed


def test_always_select_candidate_selects_it_and_still_records_the_rules():
  dev = _dev(student=0.30, student_supervised=0.35, bm25=0.20)
  checks, blessed, chosen = _decide(dev, always_select_candidate=True)
  assert not blessed and chosen == R.CANDIDATE
  assert [c['passed'] for c in checks] == [False]
  cfg = R.RuleConfig(always_select_candidate=True)
  reason = R.reason_of(cfg, NAMES, checks, blessed, chosen, 'dev')
  assert 'not blessed; selected student (always_select_candidate' in reason
  # Without it the baseline is selected, and the reason says only that.
  _, _, chosen = _decide(dev)
  assert chosen == R.BASELINE
  assert 'always_select_candidate' not in R.reason_of(R.RuleConfig(), NAMES, checks, False,
                                                      chosen, 'dev')


def test_first_stage_rule_and_its_tie():
  dev = _dev(student=0.40, student_supervised=0.30, bm25=0.40)
  checks, blessed, _ = _decide(dev, must_beat_first_stage=True)
  assert [c['passed'] for c in checks] == [True, False] and not blessed
  checks, blessed, _ = _decide(_dev(student=0.41, student_supervised=0.30, bm25=0.40),
                               must_beat_first_stage=True)
  assert blessed and checks[1]['rule'] == 'beats bm25'
  # Without a baseline the first-stage rule always applies.
  checks, blessed, chosen = _decide(_dev(student=0.39, bm25=0.40), names={R.CANDIDATE: 'student'})
  assert [c['rule'] for c in checks] == ['beats bm25'] and not blessed and chosen == R.CANDIDATE


def test_retention_rule_inclusive():
  names = dict(NAMES, **{R.TEACHER: 'best_teacher'})
  dev = _dev(student=0.40, student_supervised=0.30, bm25=0.2, best_teacher=0.50)
  checks, blessed, _ = _decide(dev, names=names, retention=0.8)
  assert checks[-1]['reference'] == pytest.approx(0.40) and checks[-1]['passed'] and blessed
  checks, blessed, _ = _decide(dev, names=names, retention=0.81)
  assert not checks[-1]['passed'] and not blessed


def test_last_blessed_tie_passes():
  names = dict(NAMES, **{R.LAST_BLESSED: 'last_blessed_student'})
  dev = _dev(student=0.40, student_supervised=0.30, bm25=0.2, last_blessed_student=0.40)
  _, blessed, _ = _decide(dev, names=names)
  assert blessed
  dev = _dev(student=0.40, student_supervised=0.30, bm25=0.2, last_blessed_student=0.4001)
  _, blessed, chosen = _decide(dev, names=names)
  assert not blessed and chosen == R.BASELINE


def test_like_with_like():
  # The candidate's hybrid beats the baseline's plain score, but not its hybrid.
  dev = _dev(student=0.35, student_h=0.45, student_supervised=0.33, student_supervised_h=0.46,
             bm25=0.40)
  checks, blessed, _ = _decide(dev, decision_score='hybrid', must_beat_first_stage=True)
  assert checks[0]['score'] == 'hybrid' and checks[0]['value'] == 0.45
  assert checks[0]['reference'] == 0.46 and not checks[0]['passed']
  assert checks[1]['score'] == 'hybrid' and checks[1]['passed']    # 0.45 > bm25 0.40
  assert not blessed
  # Plain decisions never look at hybrid rows.
  checks, blessed, _ = _decide(dev, decision_score='plain', must_beat_first_stage=True)
  assert [c['score'] for c in checks] == ['plain', 'plain']
  assert [c['passed'] for c in checks] == [True, False] and not blessed
  # When one side has no hybrid score, both sides compare plain scores.
  dev = _dev(student=0.35, student_h=0.45, student_supervised=0.36, bm25=0.30)
  checks, blessed, _ = _decide(dev, decision_score='hybrid')
  assert checks[0]['score'] == 'plain' and not blessed


def test_unknown_decision_score():
  with pytest.raises(ValueError, match='decision_score'):
    _decide(_dev(student=0.4, bm25=0.3), names={R.CANDIDATE: 'student'}, decision_score='best')


def test_reason_names_every_check():
  checks, blessed, chosen = _decide(_dev(student=0.40, student_supervised=0.35, bm25=0.30),
                                    must_beat_first_stage=True)
  reason = R.reason_of(R.RuleConfig(), NAMES, checks, blessed, chosen, 'dev')
  assert reason == ('student ndcg@10 on dev: beats student_supervised by > 0.0 [plain] '
                    '(0.4000 vs 0.3500): yes; beats bm25 [plain] (0.4000 vs 0.3000): yes '
                    '-> blessed; selected student')
