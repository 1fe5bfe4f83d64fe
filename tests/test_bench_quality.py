"""`ssd bench quality` pieces that run without a pipeline: stats, plan, report, targets."""

import math

import pytest

from runconfig import config as C
from ssd.bench import machine
from ssd.bench import quality as Q
from ssd.bench import report
from ssd.bench import stats


def test_mean_std_and_seed_average():
  assert stats.mean_std([0.3, 0.5]) == {'mean': pytest.approx(0.4), 'std': pytest.approx(
      math.sqrt(0.02)), 'n': 2}
  assert stats.mean_std([0.3]) == {'mean': 0.3, 'std': 0.0, 'n': 1}
  avg = stats.average_over_seeds([{'a': 1.0, 'b': 0.0, 'c': 1.0}, {'a': 0.0, 'b': 1.0}])
  assert avg == {'a': 0.5, 'b': 0.5}   # c is missing from a seed


def test_randomization_test_on_known_cases():
  # Identical systems: no difference, p = 1.
  same = stats.paired_randomization_test({'q1': 0.5, 'q2': 0.2}, {'q1': 0.5, 'q2': 0.2})
  assert same['mean_difference'] == 0 and same['p_value'] == 1.0
  # 12 queries all better by 0.1: only the all-plus and all-minus sign
  # vectors reach |mean| = 0.1, so p is about 2 / 2^12.
  a = {f'q{i}': 0.6 for i in range(12)}
  b = {f'q{i}': 0.5 for i in range(12)}
  out = stats.paired_randomization_test(a, b, permutations=20000, seed=1)
  assert out['mean_difference'] == pytest.approx(0.1) and out['queries'] == 12
  assert out['p_value'] < 0.005
  # Mixed signs of equal size: no evidence.
  mixed = stats.paired_randomization_test({'q1': 0.6, 'q2': 0.4}, {'q1': 0.5, 'q2': 0.5})
  assert mixed['p_value'] > 0.9
  with pytest.raises(ValueError, match='no common query'):
    stats.paired_randomization_test({'a': 1.0}, {'b': 1.0})


def test_plan_rows_and_seeds():
  cfg = C.load_config('configs/cranfield_demo.yaml')
  quick = Q.plan('cranfield', cfg, [0, 1], quick=True)
  assert [v.name for v in quick] == ['ssd', 'noisy_student', 'from_teacher']
  rows = {row for v in quick for row in v.rows}
  assert rows == set(Q.MAIN_ROWS)
  full = Q.plan('cranfield', cfg, [0, 1, 2], quick=False)
  names = [v.name for v in full]
  assert [n for n in names if n.startswith('ladder')] == [
      'ladder_L1', 'ladder_L2', 'ladder_L4', 'ladder_L6']
  assert not any(name.startswith('budget') for name in names)
  assert all(v.seeds == [0] for v in full if v.name.startswith('ladder'))
  # Every rung, the default's 2 layers included, learns from 150 of the 800 lists.
  assert cfg.student.objective.max_soft_lists == 800
  assert all('student.objective.max_soft_lists=150' in v.overrides
             for v in full if v.name.startswith('ladder'))
  # A rung reports its student only, so it trains no S_sup of its own.
  rung = [v for v in full if v.name == 'ladder_L4'][0]
  assert rung.rows == {'S (4 layers)': 'student'}
  rung_cfg = C.load_config('configs/cranfield_demo.yaml', rung.overrides)
  assert not rung_cfg.student.supervised_baseline and rung_cfg.student.model.keep_layers == 4
  assert [v.seeds for v in full if v.name == 'noisy_student'] == [[0]]
  # T is shared by every seed; seeds vary the semi-supervised stages.
  assert Q.seed_overrides(2) == ['teacher_prime.train.seed=2', 'student.train.seed=2']
  order = [(seed, v.name) for seed, v in Q.schedule(full, [0, 1, 2])]
  assert order[:2] == [(0, 'ssd'), (0, 'from_teacher')]
  assert order[-5:] == [(0, 'noisy_student'), (0, 'ladder_L1'), (0, 'ladder_L2'),
                        (0, 'ladder_L4'), (0, 'ladder_L6')]
  assert len(order) == 3 * 2 + 1 + 4   # main x seeds, Noisy Student, 4 ladder rungs
  # NFCorpus: no ladder; the label budgets on the first seed, after the main table.
  nf = Q.plan('nfcorpus', C.load_config('configs/nfcorpus.yaml'), [0, 1, 2], quick=False)
  order = [(seed, v.name) for seed, v in Q.schedule(nf, [0, 1, 2])]
  assert order[-3:] == [(0, 'noisy_student'), (0, 'budget_0.1'), (0, 'budget_0.25')]
  assert len(order) == 3 * 2 + 3
  only = Q.plan('nfcorpus', C.load_config('configs/nfcorpus.yaml'), [0, 1, 2], quick=False,
                budgets=[0.1])
  assert [v.name for v in only if v.name.startswith('budget')] == ['budget_0.1']
  # A budget point distils S from the T trained on its labels (no T' round),
  # so the curve's 100% point is the row with the same route: S from T.
  [b10] = [v for v in only if v.name == 'budget_0.1']
  b10_cfg = C.load_config('configs/nfcorpus.yaml', b10.overrides)
  assert b10_cfg.teacher_prime.rounds == 0 and b10_cfg.splits.labelled_fraction == 0.1
  assert b10.rows == {'S_sup @ 0.1': 'student_supervised', 'S @ 0.1': 'student'}
  assert b10_cfg.student.supervised_baseline   # the curve needs S_sup @ 10%
  # S from T reports its student only: its S_sup is the ssd run's (a cache hit).
  [from_t] = [v for v in only if v.name == 'from_teacher']
  assert from_t.rows == {Q.S_FROM_T: 'student'}
  from_t_cfg = C.load_config('configs/nfcorpus.yaml', from_t.overrides)
  assert from_t_cfg.teacher_prime.rounds == 0 and not from_t_cfg.student.supervised_baseline
  assert Q.BUDGET_FULL_ROW == Q.S_FROM_T
  nf_cfg = C.load_config('configs/nfcorpus.yaml', list(Q.FULL_OVERRIDES['nfcorpus'])
                         + list(Q.BENCH_OVERRIDES))
  assert nf_cfg.splits.test_queries is None and nf_cfg.splits.candidates_k == 100  # official test
  assert nf_cfg.teacher_prime.selection == 'always'
  full_cfg = C.load_config('configs/cranfield_demo.yaml', list(Q.FULL_OVERRIDES['cranfield']))
  assert full_cfg.teacher.model.max_length == full_cfg.student.model.max_length == 64


def _result(dataset='cranfield'):
  def row(mean, queries):
    return {'seeds': 2, 'ndcg@10': {'mean': mean, 'std': 0.01, 'n': 2},
            'mrr@10': {'mean': mean, 'std': 0.0, 'n': 2}, 'map': {'mean': mean, 'std': 0.0, 'n': 2},
            'per_query_ndcg@10': queries}
  rows = {Q.BM25: row(0.36, {}), Q.T: row(0.39, {}), Q.TP_SSD: row(0.42, {}),
          Q.TP_NS: row(0.40, {}), Q.S_FROM_TP: row(0.40, {}), Q.S_FROM_T: row(0.38, {}),
          Q.S_SUP: row(0.375, {}), 'S (4 layers)': row(0.41, {})}
  rows['S (4 layers)']['pairs_per_second'] = 50.0
  return {'dataset': dataset, 'rows': rows, 'seeds': [0, 1], 'quick': False, 'config': 'x.yaml',
          'wall_seconds': 60.0}


def test_targets_cranfield():
  checks = {c['target']: c for c in Q.targets(_result())}
  assert checks["T' >= T + 0.02"]['met']                     # 0.42 >= 0.41
  assert not checks['S >= S_sup + 0.03']['met']              # 0.40 < 0.405
  assert checks['S >= S_sup + 0.03']['threshold'] == pytest.approx(0.405)
  assert checks["S >= 0.95 x T'"]['met']


def test_targets_nfcorpus_and_label_curve_plot(tmp_path):
  result = _result('nfcorpus')
  rows = result['rows']
  rows['S_sup @ 0.1'] = dict(rows[Q.S_SUP], **{'ndcg@10': {'mean': 0.355, 'std': 0.0, 'n': 1}})
  rows['S @ 0.1'] = dict(rows[Q.S_SUP], **{'ndcg@10': {'mean': 0.367, 'std': 0.0, 'n': 1}})
  rows[Q.S_FROM_TP]['vs S_sup'] = {'mean_difference': 0.025, 'p_value': 0.01}
  checks = {c['target']: c for c in Q.targets(result)}
  assert checks['S >= S_sup, p < 0.05']['met']               # 0.40 >= 0.375, p = 0.01
  assert checks['best teacher >= 0.350']['value'] == 0.42    # max(T, T', T' NS)
  assert checks['S >= BM25 + 0.02']['met']                   # 0.40 >= 0.38
  # (0.367 - 0.355) / (0.375 - 0.355) = 0.6 of the gap recovered
  assert checks['S @ 10% recovers >= 50% of the S_sup gap']['value'] == pytest.approx(0.6)
  png = report.plot(result, str(tmp_path / 'nf.png'))   # three panels: bars, ladder, curve
  with open(png, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  # The curve's 100% point of S is S from T (0.38), the budget rows' route, not S from T'.
  assert report.label_curve(rows) == ([0.1, 1.0], [0.355, 0.375], [0.367, 0.38])


def test_report_section_is_replaced_in_place(tmp_path):
  path = str(tmp_path / 'benchmarks.md')
  report.replace_section(path, 'quality-cranfield', 'first')
  report.replace_section(path, 'speed', 'speed text')
  report.replace_section(path, 'quality-cranfield', 'second')
  text = open(path).read()
  assert text.count('quality-cranfield:start') == 1 and 'second' in text and 'first' not in text
  assert 'speed text' in text
  result = _result()
  png = report.plot(result, str(tmp_path / 'img' / 'q.png'))
  with open(png, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  table = report.table(result)
  assert table.splitlines()[2].startswith('| BM25 | 0.3600 ± 0.0100')
  one = _result()
  one['rows'][Q.TP_NS]['ndcg@10'] = {'mean': 0.4, 'std': 0.0, 'n': 1}
  one['rows'][Q.S_FROM_TP]['vs S_sup'] = {'mean_difference': 0.01, 'p_value': 0.0001}
  lines = report.table(one).splitlines()
  assert next(l for l in lines if l.startswith(f"| {Q.TP_NS} |")).startswith(
      f"| {Q.TP_NS} | 0.4000 (1 seed) |")
  assert '+0.0100 (p<0.001)' in next(l for l in lines if l.startswith(f"| {Q.S_FROM_TP} |"))
  assert '| S (4 layers) |' in table.splitlines()[-1]


def test_report_says_which_teacher_each_student_learnt_from():
  result = _result()
  result['rows'][Q.S_FROM_TP]['distilled_from'] = {'0': 'teacher_prime_r1', '1': 'teacher',
                                                   '2': 'teacher'}
  assert report.distillation_sources(result) == [
      "- S from T': teacher_prime_r1 in seed 0; teacher in seeds 1, 2"]
  cfg = C.load_config('configs/cranfield_demo.yaml')
  summary = {'decisions': [{'node': 'teacher_evaluator', 'selected_role': 'teacher'},
                           {'node': 'teacher_prime_evaluator_r1', 'selected_role': 'teacher'}]}
  assert Q.distilled_from(summary, cfg) == 'teacher'
  no_rounds = C.load_config('configs/cranfield_demo.yaml', ['teacher_prime.rounds=0'])
  assert Q.distilled_from({'decisions': []}, no_rounds) == 'teacher'


def test_report_pairs_t_prime_with_t_and_its_student_with_ts():
  result = _result()
  rows = result['rows']
  # Every query 0.1 higher for T' than T: mean difference 0.1, and with all 4
  # signs the same a sign-flip test can only match it 2 ways in 16.
  rows[Q.T]['per_query_ndcg@10'] = {f'q{i}': 0.3 for i in range(4)}
  rows[Q.TP_SSD]['per_query_ndcg@10'] = {f'q{i}': 0.4 for i in range(4)}
  rows[Q.S_FROM_T]['per_query_ndcg@10'] = {'q0': 0.2, 'q1': 0.4}
  rows[Q.S_FROM_TP]['per_query_ndcg@10'] = {'q0': 0.4, 'q1': 0.2}   # no difference on average
  lines = report.paired_ablations(result)
  assert lines[0].startswith(f"- {Q.TP_SSD} − {Q.T} (the T' step, for the teacher): +0.1000 (p=0.1")
  assert lines[0].endswith('over 4 queries')
  assert lines[1].startswith(f"- {Q.S_FROM_TP} − {Q.S_FROM_T} (the T' step, for the student): "
                             '+0.0000 (p=1.000)')
  result['variant_overrides'] = {'ladder_L1': ['student.model.keep_layers=1']}
  text = report.section(result, machine.describe(), 'ssd bench quality', 'img/q.png', [])
  assert "the T' step, for the student" in text
  assert '- ladder_L1: `student.model.keep_layers=1`' in text


def test_speed_is_measured_once_per_model_shape():
  cfg = C.load_config('configs/cranfield_demo.yaml')
  rung = C.load_config('configs/cranfield_demo.yaml', ['student.model.keep_layers=4'])
  rung2 = C.load_config('configs/cranfield_demo.yaml', ['student.objective.max_soft_lists=150'])
  # T' defaults to T's model; S_sup is S's model; training settings do not count.
  assert Q.speed_key(cfg, 'teacher') == Q.speed_key(cfg, 'teacher_prime_r1')
  assert Q.speed_key(cfg, 'student') == Q.speed_key(cfg, 'student_supervised') == Q.speed_key(
      rung2, 'student')
  assert Q.speed_key(rung, 'student') != Q.speed_key(cfg, 'student')
  assert Q.speed_key(cfg, 'teacher') != Q.speed_key(cfg, 'student')
  assert Q.speed_key(cfg, 'bm25') is None
  calls, by_shape = [], {}

  def measure(pps):
    return lambda: calls.append(pps) or {'pairs_per_second': pps, 'parameters': 7}

  key_s, key_l4 = Q.speed_key(cfg, 'student'), Q.speed_key(rung, 'student')
  assert Q.shared_speed(Q.S_FROM_TP, key_s, by_shape, measure(100.0)) == {
      'pairs_per_second': 100.0, 'parameters': 7}
  assert Q.shared_speed(Q.S_SUP, key_s, by_shape, measure(90.0)) == {
      'pairs_per_second': 100.0, 'parameters': 7, 'measured_with': Q.S_FROM_TP}
  assert Q.shared_speed('S (4 layers)', key_l4, by_shape, measure(50.0))['pairs_per_second'] == 50
  assert Q.shared_speed('odd', None, by_shape, measure(10.0))['pairs_per_second'] == 10
  assert Q.shared_speed('odd2', None, by_shape, measure(11.0))['pairs_per_second'] == 11
  assert calls == [100.0, 50.0, 10.0, 11.0]   # S_sup was not measured again
  result = _result()
  result['matmul_gflops'] = {'before': 101.26, 'after': 88.4}
  result['rows'][Q.S_SUP]['measured_with'] = Q.S_FROM_TP
  result['rows'][Q.S_FROM_T]['measured_with'] = Q.S_FROM_TP
  assert report.speed_sharing(result['rows']) == [f"{Q.S_FROM_T}, {Q.S_SUP} as {Q.S_FROM_TP}"]
  text = report.section(result, machine.describe(), 'ssd bench quality', 'img/q.png', [])
  assert f"once per model shape (architecture, layers, input lengths): {Q.S_FROM_T}, " in text
  assert 'Machine speed (fp32 matmul peak, before / after the run): 101 / 88 GFLOP/s' in text
