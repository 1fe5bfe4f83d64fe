"""Blessing rules as a pure function of the decision split's metrics.

Kept free of TFX and TensorFlow so every rule can be tested on hand-computed
numbers (tests/test_ranking_evaluator_rules.py).

Like with like: with `decision_score: plain` every comparison uses plain
model scores; with `hybrid`, two models are compared on their hybrid scores
when both have one (each fitted on the calibration split, never on the
decision split), else both on plain scores. The first-stage rule compares the
candidate's decision score with the first stage's own ranking: a hybrid
contains the first stage, and the rule asks whether what would serve beats
the first stage alone. Each check records which kind of score it compared.
"""

import dataclasses
from typing import Dict, List, Mapping, Tuple

HYBRID_SUFFIX = '_hybrid'
SCORE_PLAIN = 'plain'
SCORE_HYBRID = 'hybrid'
DECISION_SCORES = (SCORE_PLAIN, SCORE_HYBRID)

# Model keys (match spec.CANDIDATE etc.).
CANDIDATE, BASELINE, TEACHER, LAST_BLESSED = 'candidate', 'baseline', 'teacher', 'last_blessed'

Metrics = Mapping[str, Mapping[str, float]]   # role (or role_hybrid) -> metric -> value


@dataclasses.dataclass
class RuleConfig:
  decision_metric: str = 'ndcg@10'
  decision_score: str = SCORE_PLAIN
  min_improvement: float = 0.0
  must_beat_first_stage: bool = False
  retention: float = None   # Optional[float]
  first_stage_role: str = 'bm25'
  # The candidate is selected whatever the rules say (they are still applied
  # and recorded): teacher_prime.selection=always.
  always_select_candidate: bool = False


def pair_values(dev: Metrics, role: str, other: str, metric: str, score: str
                ) -> Tuple[float, float, str]:
  """(value of role, value of other, kind compared): like with like."""
  if (score == SCORE_HYBRID and role + HYBRID_SUFFIX in dev
      and other + HYBRID_SUFFIX in dev):
    return (dev[role + HYBRID_SUFFIX][metric], dev[other + HYBRID_SUFFIX][metric],
            SCORE_HYBRID)
  return dev[role][metric], dev[other][metric], SCORE_PLAIN


def own_value(dev: Metrics, role: str, metric: str, score: str) -> Tuple[float, str]:
  if score == SCORE_HYBRID and role + HYBRID_SUFFIX in dev:
    return dev[role + HYBRID_SUFFIX][metric], SCORE_HYBRID
  return dev[role][metric], SCORE_PLAIN


def decide(cfg: RuleConfig, dev: Metrics, names: Mapping[str, str]
           ) -> Tuple[List[Dict], bool, str]:
  """Applies the rules; returns (checks, blessed, chosen model key).

  Args:
    cfg: the rules.
    dev: metrics on the decision split by role (first stage included).
    names: model key -> role, for the models present (candidate required).
  """
  if cfg.decision_score not in DECISION_SCORES:
    raise ValueError(f'decision_score must be one of {DECISION_SCORES}, got '
                     f'{cfg.decision_score!r}')
  metric, score = cfg.decision_metric, cfg.decision_score
  cand = names[CANDIDATE]
  checks = []

  def check(rule, value, reference, passed, kind):
    checks.append({'rule': rule, 'value': value, 'reference': reference,
                   'passed': bool(passed), 'score': kind})

  if BASELINE in names:
    value, ref, kind = pair_values(dev, cand, names[BASELINE], metric, score)
    check(f'beats {names[BASELINE]} by > {cfg.min_improvement}', value, ref,
          value > ref + cfg.min_improvement, kind)
  if cfg.must_beat_first_stage or BASELINE not in names:
    value, kind = own_value(dev, cand, metric, score)
    ref = dev[cfg.first_stage_role][metric]
    check(f'beats {cfg.first_stage_role}', value, ref, value > ref, kind)
  if cfg.retention is not None and TEACHER in names:
    value, ref, kind = pair_values(dev, cand, names[TEACHER], metric, score)
    check(f'keeps >= {cfg.retention} x {names[TEACHER]}', value, cfg.retention * ref,
          value >= cfg.retention * ref, kind)
  if LAST_BLESSED in names:
    value, ref, kind = pair_values(dev, cand, names[LAST_BLESSED], metric, score)
    check(f'no worse than {names[LAST_BLESSED]}', value, ref, value >= ref, kind)
  blessed = all(c['passed'] for c in checks)
  chosen = (CANDIDATE if blessed or BASELINE not in names or cfg.always_select_candidate
            else BASELINE)
  return checks, blessed, chosen


def reason_of(cfg: RuleConfig, names: Mapping[str, str], checks: List[Dict], blessed: bool,
              chosen: str, decision_split: str) -> str:
  parts = '; '.join(f'{c["rule"]} [{c["score"]}] ({c["value"]:.4f} vs {c["reference"]:.4f}): '
                    f'{"yes" if c["passed"] else "NO"}' for c in checks)
  return (f'{names[CANDIDATE]} {cfg.decision_metric} on {decision_split}: {parts} -> '
          f'{"blessed" if blessed else "not blessed"}; selected {names[chosen]}'
          + (' (always_select_candidate: the candidate goes on whatever dev says)'
             if cfg.always_select_candidate else ''))
