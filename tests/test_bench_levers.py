"""`ssd bench quality --levers` pieces that run without a pipeline."""

import pytest

from runconfig import config as C
from ssd.bench import levers as L
from ssd.bench import quality as Q


@pytest.mark.parametrize('dataset', sorted(Q.DATASET_CONFIGS))
def test_every_lever_is_a_valid_config_change(dataset):
  extra = list(Q.FULL_OVERRIDES[dataset])
  base = C.load_config(Q.DATASET_CONFIGS[dataset], extra)
  for lever in [lever for _, _, levers in L.STUDIES.values() for lever in levers]:
    overrides = lever.overrides(base)
    assert overrides, lever.name
    cfg = C.load_config(Q.DATASET_CONFIGS[dataset], extra + overrides)   # validates
    assert cfg != base, lever.name   # each lever changes something
  # Student levers first: they reuse the baseline's T' from TFX's cache.
  first_two = [C.load_config(Q.DATASET_CONFIGS[dataset], extra + lever.overrides(base))
               for lever in L.LEVERS[:2]]
  assert all(cfg.teacher_prime == base.teacher_prime for cfg in first_two)
  cross = C.load_config(Q.DATASET_CONFIGS[dataset], extra + L._cross_encoder_tp(base))
  assert cross.teacher_prime.model.architecture == 'cross_encoder'
  # The cross-encoder's input holds T's query and document budgets.
  assert cross.teacher_prime.model.max_length == (base.teacher.model.max_length
                                                   + base.teacher.model.query_max_length)
  five_x = next(lever for lever in L.LEVERS if lever.name.startswith("T' sees 5x"))
  more = C.load_config(Q.DATASET_CONFIGS[dataset], extra + five_x.overrides(base))
  assert (more.teacher_prime.objective.max_soft_lists
          == 5 * base.teacher_prime.objective.max_soft_lists)


@pytest.mark.parametrize('dataset', sorted(Q.DATASET_CONFIGS))
def test_larger_teacher_study_trains_an_mpnet_tp_at_ts_lengths(dataset):
  extra = list(Q.FULL_OVERRIDES[dataset])
  base = C.load_config(Q.DATASET_CONFIGS[dataset], extra)
  _, _, study = L.STUDIES['larger_teacher']
  cfgs = [C.load_config(Q.DATASET_CONFIGS[dataset], extra + lever.overrides(base))
          for lever in study]
  # The student-only row first: it reuses the baseline's T' (cache).
  assert cfgs[0].teacher_prime == base.teacher_prime
  assert cfgs[0].student.objective.embedding_loss == 'mse'
  for cfg in cfgs[1:]:
    tp = cfg.teacher_prime.model
    assert (tp.checkpoint, tp.architecture) == ('mpnet-base', 'bi_encoder')
    assert (tp.max_length, tp.query_max_length) == (base.teacher.model.max_length,
                                                     base.teacher.model.query_max_length)
    assert cfg.teacher.model == base.teacher.model   # T stays MiniLM-L6
  assert [c.student.objective.embedding_loss for c in cfgs] == ['mse', 'none', 'mse']


def test_row_reads_the_last_round_and_the_student():
  cfg = C.load_config('configs/cranfield_demo.yaml', ['teacher_prime.rounds=2'])
  summary = {'dev_metrics': {'teacher_prime_r2': {'ndcg@10': 0.5}, 'teacher_prime_r1':
                             {'ndcg@10': 0.1}, 'student': {'ndcg@10': 0.4}},
             'metrics': {'teacher_prime_r2': {'ndcg@10': 0.45}, 'student': {'ndcg@10': 0.35}},
             'decisions': [{'node': 'teacher_prime_evaluator_r1', 'selected_role': 'teacher'},
                           {'node': 'teacher_prime_evaluator_r2',
                            'selected_role': 'teacher_prime_r2'}]}
  assert L.row(summary, cfg) == {"T'": {'dev': 0.5, 'test': 0.45},
                                 'S': {'dev': 0.4, 'test': 0.35},
                                 'S distilled from': 'teacher_prime_r2'}


def test_table_shows_differences_to_the_baseline():
  rows = {L.BASELINE: {"T'": {'dev': 0.40, 'test': 0.39}, 'S': {'dev': 0.30, 'test': 0.35},
                       'S distilled from': 'teacher'},
          'more lists': {"T'": {'dev': 0.42, 'test': 0.385}, 'S': {'dev': None, 'test': None}}}
  text = L.table(rows, {L.BASELINE: [], 'more lists': ['a.b=1']})
  lines = text.splitlines()
  assert lines[2] == f'| {L.BASELINE} | – | 0.4000 | 0.3900 | 0.3000 | 0.3500 | teacher |'
  assert lines[3] == '| more lists | `a.b=1` | 0.4200 (+0.0200) | 0.3850 (-0.0050) | – | – | – |'
