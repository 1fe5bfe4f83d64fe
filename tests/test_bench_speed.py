"""`ssd bench speed`: FLOP counting, padding, crossover, report and summary;
and one tiny end-to-end run of the real machinery (Beam, BulkInferrer)."""

import json
import os

import pytest

from ssd.bench import flops as FL
from ssd.bench import report
from ssd.bench import speed_report as R


def test_encoder_flops_on_known_shapes():
  # One layer, n=1, H=1, I=1: 8 + 4 + 4 = 16.
  assert FL.encoder_flops(1, 1, 1, 1) == 16
  # MiniLM-L6 (H 384, I 1536), 128 tokens: 6 x (8nH^2 + 4n^2H + 4nHI).
  n, h, i = 128, 384, 1536
  want = 6 * (8 * n * h * h + 4 * n * n * h + 4 * n * h * i)
  assert FL.encoder_flops(n, h, 6, i) == want
  assert want == pytest.approx(2.87e9, rel=0.01)
  # Linear in layers, quadratic term in n.
  assert FL.encoder_flops(10, 4, 2, 8) == 2 * FL.encoder_flops(10, 4, 1, 8)
  assert FL.total_flops([3, 5], 4, 1, 8) == FL.encoder_flops(3, 4, 1, 8) + FL.encoder_flops(
      5, 4, 1, 8)


def test_token_counts_truncate_as_the_tokenizer_packs():
  # [CLS] q [SEP] d [SEP], budget 10 - 3 = 7, the query kept first.
  assert FL.pair_tokens([2, 9, 3], [3, 1, 20], 10).tolist() == [8, 10, 10]
  assert FL.single_tokens([0, 5, 50], 8).tolist() == [2, 7, 8]


def test_padded_lengths_sort_within_calls_and_pad_to_longest():
  tokens = [5, 1, 4, 2]
  # input order, batches of 2: [5,1] -> 5, [4,2] -> 4
  assert FL.padded_lengths(tokens, None, 2, 100).tolist() == [5, 5, 4, 4]
  # sorted by key (= tokens): [1,2] -> 2, [4,5] -> 5
  assert FL.padded_lengths(tokens, tokens, 2, 100).tolist() == [5, 2, 5, 2]
  # chunks of 2 are sorted separately: [5,1] and [4,2]
  assert FL.padded_lengths(tokens, tokens, 2, 2).tolist() == [5, 5, 4, 4]


def test_crossover_of_two_linear_fits():
  # 1 worker: 2 s + n/100; 2 workers: 12 s + n/180 -> equal at n = 2250.
  one = {1000: 12.0, 5000: 52.0}
  two = {1000: 12 + 1000 / 180, 5000: 12 + 5000 / 180}
  assert FL.crossover(one, two) == pytest.approx(2250, rel=1e-6)
  # 2 workers no faster per pair: never.
  assert FL.crossover(one, {1000: 20.0, 5000: 60.0}) is None
  assert FL.crossover({1000: 1.0}, two) is None
  assert FL.median([3.0, 1.0, 2.0]) == 2.0


def fake_result():
  """A speed_run.run result with round numbers (shape only matters here)."""
  tp = lambda pl1, pl2, loop, bulk: {'pairs': 600, R.PL1: pl1, R.PL2: pl2, R.LOOP: loop,
                                     R.BULK: bulk}
  flops = {'useful': 6e11, 'executed': 7e11, 'tokens': 60000, 'padded_tokens': 70000,
           'per_pair': 1e9, 'useful_gflops': 35.0, 'fraction_of_peak': 0.35,
           'executed_fraction_of_peak': 0.4}
  return {
      'quick': True, 'wall_seconds': 300.0,
      'machine_peak': {'peak_gflops': 100.0, 'gflops_by_shape': {'1024x1024x1024': 100.0}},
      'models': {'cross': {'architecture': 'cross_encoder', 'hidden': 128, 'layers': 2,
                           'intermediate': 512, 'max_length': 128}},
      'throughput': {'cross': tp(90, 150, 100, 45), 'bi': tp(500, 600, 400, 100)},
      'flops': {'cross': flops, 'bi': dict(flops, fraction_of_peak=0.2)},
      'wins': {'batch 64, length-sorted (default)': {'pairs_per_s': 100.0, 'max_abs_diff': 0.0},
               'batch 64, jit_compile': {'pairs_per_s': None, 'error': 'no XLA kernel'}},
      'wins_padding': {'pad to max_length': 8e11, 'no padding (useful)': 6e11},
      'profile': {'total': 10.0, 'tfx_dependency_packaging': 3.0, 'beam_run': 6.0,
                  'teacher_calls': 2.0, 'beam_overhead': 4.0, 'other': 1.0},
      'latency': {"T' (teacher)": {'latency_ms_batch1': 10.0, 'pairs_per_s_batch64': 100.0},
                  'S (student)': {'latency_ms_batch1': 2.0, 'pairs_per_s_batch64': 900.0}},
      'memory': {'1x': {'bm25_top_k': 30, 'pairs': 6750, 'peak_rss_mb': 1000.0, 'seconds': 10.0},
                 '10x': {'bm25_top_k': 300, 'pairs': 67500, 'peak_rss_mb': 1500.0,
                         'seconds': 90.0}},
      'scaling': {'seconds': {'1': {'300': 5.0, '1500': 20.0}, '2': {'300': 15.0, '1500': 12.0}},
                  'marginal_pairs_per_s': {'1': 80.0, '2': 120.0}, 'crossover_pairs': 800.0},
  }


def test_targets_values_and_verdicts():
  checks = {c['target']: c for c in R.targets(fake_result())}
  assert len(checks) == 8
  assert checks['cross-encoder: PseudoLabeler 1 worker / plain loop']['value'] == 0.9
  assert checks['cross-encoder: PseudoLabeler 1 worker / plain loop']['met']
  assert checks['cross-encoder: PseudoLabeler 1 worker / BulkInferrer']['value'] == 2.0
  assert not checks['cross-encoder inference / matmul peak']['met']
  assert checks['2 workers / 1 worker (1500 pairs)']['value'] == pytest.approx(20 / 12, abs=1e-3)
  assert not checks['2 workers / 1 worker (1500 pairs)']['met']   # 1.667 < 1.7
  assert checks["S / T' throughput (batch 64)"]['value'] == 9.0
  assert checks["S / T' throughput (batch 64)"]['met']
  assert checks['peak RSS 10x / 1x corpus']['value'] == 1.5
  assert not checks['peak RSS 10x / 1x corpus']['met']   # lower is better here


def test_section_and_summary(tmp_path):
  result = fake_result()
  checks = R.targets(result)
  machine = {'cpu': 'Test CPU', 'cores': '2', 'date': '2026-01-01', 'tensorflow': '2.16'}
  body = R.section(result, machine, 'ssd bench speed --quick', 'img/speed-quick.png', checks)
  assert body.startswith('## Speed (--quick)')
  assert 'Test CPU, 2 cores' in body and 'tensorflow 2.16' in body
  assert '`ssd bench speed --quick`' in body
  assert '| cross-encoder | 600 | 90.0 | 150.0 | 100.0 | 45.0 |' in body
  assert 'not run: no XLA kernel' in body
  assert '| TFX BaseBeamExecutor: sdist of the code for Beam | 3.00 | 30% |' in body
  assert '| 1500 | 20.0 | 12.0 | 1.67x |' in body
  assert '~800 pairs' in body
  assert '1 worker 80.0 pairs/s, 2 workers 120.0 pairs/s; plain loop 100.0 pairs/s' in body
  assert '![pseudo-labelling throughput](img/speed-quick.png)' in body
  assert body.count('| **no** |') == sum(not c['met'] for c in checks)
  # The section replaces only its own markers in the report.
  path = str(tmp_path / 'benchmarks.md')
  report.replace_section(path, 'quality-cranfield', 'quality text')
  report.replace_section(path, 'speed-quick', body)
  report.replace_section(path, 'speed-quick', body.replace('Test CPU', 'Other CPU'))
  text = open(path).read()
  assert 'quality text' in text and text.count('<!-- speed-quick:start -->') == 1
  assert 'Other CPU' in text and 'Test CPU' not in text

  summary = R.summary(result, checks)
  assert tuple(summary) == R.SUMMARY_KEYS
  assert summary['student_speedup'] == 9.0 and summary['rss_ratio_10x'] == 1.5
  assert summary['pairs_per_s']['bi-encoder'][R.BULK] == 100
  assert summary['targets'] == 8 and summary['targets_met'] == sum(c['met'] for c in checks)
  json.dumps(summary)   # JSON-able


def test_plot_writes_a_png(tmp_path):
  path = R.plot(fake_result(), str(tmp_path / 'img' / 'speed.png'))
  with open(path, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'


@pytest.mark.e2e   # real Beam runs (2 with worker processes), BulkInferrer, subprocesses
@pytest.mark.timeout(1800)   # ~4 min alone; more beside another xdist worker
def test_speed_run_on_tiny_models(tmp_path):
  from ssd.bench import speed_run  # pylint: disable=g-import-not-at-top
  result = speed_run.run(str(tmp_path / 'work'), False, log=lambda _: None, tiny=True)
  for key in ('cross', 'bi'):
    row = result['throughput'][key]
    assert row['pairs'] == 40
    for method in R.METHODS:
      assert row[method] > 0
    assert 0 < result['flops'][key]['fraction_of_peak'] < 1
  assert result['flops']['cross']['useful'] <= result['flops']['cross']['executed']
  default = result['wins']['batch 64, length-sorted (default)']
  assert default['max_abs_diff'] == 0.0
  assert result['wins']['batch 64, input order']['max_abs_diff'] < 1e-4   # same scores
  assert result['memory']['10x']['pairs'] > result['memory']['1x']['pairs'] > 0
  assert set(result['scaling']['seconds']) == {'1', '2'}
  assert list(result['scaling']['seconds']['1']) == ['40', '120']
  # Peak RSS is the child's own (VmHWM resets at exec), not the parent's.
  assert result['memory']['1x']['peak_rss_mb'] >= result['memory']['1x']['rss_before_run_mb']
  checks = R.targets(result)
  assert len(checks) == 8
  assert tuple(R.summary(result, checks)) == R.SUMMARY_KEYS
  prof = result['profile']
  assert 0 < prof['teacher_calls'] < prof['beam_run'] < prof['total']
  assert any(k.endswith('(before)') for k in result['wins'])
  assert result['wins']['batch 16, threads intra 1 / inter 1 (fresh process)']['pairs_per_s'] > 0
  assert os.path.isdir(str(tmp_path / 'work'))
