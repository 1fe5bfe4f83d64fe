"""The speed section of docs/benchmarks.md, its bar chart, targets and the
JSON summary of `ssd bench speed` (pure formatting of speed_run's result)."""

import os
from typing import Any, Dict, List, Sequence

from ssd.bench import machine as machine_lib

PL1 = 'PseudoLabeler (1 worker)'
PL2 = 'PseudoLabeler (2 workers)'
LOOP = 'plain TF loop'
BULK = 'TFX BulkInferrer'
METHODS = (PL1, PL2, LOOP, BULK)
TEACHERS = {'cross': 'cross-encoder', 'bi': 'bi-encoder'}
SUMMARY_KEYS = ('benchmark', 'quick', 'pairs_per_s', 'peak_gflops', 'fraction_of_peak',
                'student_speedup', 'rss_ratio_10x', 'crossover_pairs', 'targets_met', 'targets',
                'wall_seconds')


def _f(x, fmt='{:.1f}') -> str:
  return '–' if x is None else fmt.format(x)


def targets(result: Dict[str, Any]) -> List[Dict[str, Any]]:
  """The issue's targets, each with its value, threshold and whether met."""
  out = []

  def add(name, value, threshold):
    out.append({'target': name, 'value': None if value is None else round(value, 3),
                'threshold': threshold, 'met': value is not None and value >= threshold})
  for key, teacher in TEACHERS.items():
    row = result['throughput'][key]
    add(f'{teacher}: PseudoLabeler 1 worker / plain loop', row[PL1] / row[LOOP], 0.9)
    add(f'{teacher}: PseudoLabeler 1 worker / BulkInferrer', row[PL1] / row[BULK], 1.0)
  add('cross-encoder inference / matmul peak', result['flops']['cross']['fraction_of_peak'], 0.7)
  seconds = result['scaling']['seconds']
  largest = max(seconds['1'], key=int)
  add(f'2 workers / 1 worker ({largest} pairs)', seconds['1'][largest] / seconds['2'][largest],
      1.7)
  lat = result['latency']
  add("S / T' throughput (batch 64)",
      lat['S (student)']['pairs_per_s_batch64'] / lat["T' (teacher)"]['pairs_per_s_batch64'], 8.0)
  mem = result['memory']
  ratio = mem['10x']['peak_rss_mb'] / mem['1x']['peak_rss_mb']
  out.append({'target': 'peak RSS 10x / 1x corpus', 'value': round(ratio, 3), 'threshold': 1.2,
              'met': ratio <= 1.2})
  return out


def throughput_table(result: Dict[str, Any]) -> str:
  lines = ['| teacher | pairs | ' + ' | '.join(METHODS) + ' |',
           '|---|---|' + '---|' * len(METHODS)]
  for key, teacher in TEACHERS.items():
    row = result['throughput'][key]
    lines.append(f'| {teacher} | {row["pairs"]} | '
                 + ' | '.join(_f(row[m]) for m in METHODS) + ' |')
  return '\n'.join(lines)


def flops_table(result: Dict[str, Any]) -> str:
  lines = ['| teacher | tokens | GFLOP/pair | useful GFLOP/s | of peak | executed of peak |',
           '|---|---|---|---|---|---|']
  for key, teacher in TEACHERS.items():
    f = result['flops'][key]
    lines.append(f'| {teacher} | {f["tokens"]} | {f["per_pair"] / 1e9:.3f} | '
                 f'{f["useful_gflops"]:.1f} | {f["fraction_of_peak"]:.1%} | '
                 f'{f["executed_fraction_of_peak"]:.1%} |')
  return '\n'.join(lines)


def wins_table(result: Dict[str, Any]) -> str:
  k = result.get('sizes', {}).get('wins_pairs', '')
  lines = [f'| cross-encoder setting (loop rows: first {k} pairs) | pairs/s | '
           'max abs score diff vs default |',
           '|---|---|---|']
  for name, v in result['wins'].items():
    if v.get('pairs_per_s') is None:
      lines.append(f'| {name} | not run: {v.get("error", "")} | – |')
    else:
      lines.append(f'| {name} | {v["pairs_per_s"]:.1f} | {_f(v.get("max_abs_diff"), "{:.2g}")} |')
  pad = result['wins_padding']
  base = pad['pad to max_length']
  lines += ['', '| padding (model FLOPs, computed from token counts) | GFLOP | vs max_length |',
            '|---|---|---|']
  for name, v in pad.items():
    lines.append(f'| {name} | {v / 1e9:.1f} | {v / base:.0%} |')
  return '\n'.join(lines)


def profile_table(result: Dict[str, Any]) -> str:
  prof = result.get('profile')
  if not prof:
    return ''
  names = (('total', 'one PseudoLabeler run, wall'),
           ('tfx_dependency_packaging', 'TFX BaseBeamExecutor: sdist of the code for Beam'),
           ('beam_run', 'Beam pipeline run'),
           ('teacher_calls', '  of which teacher (SavedModel) calls'),
           ('beam_overhead', '  of which Beam (bundles, shuffles, coders, writes)'),
           ('other', 'pipeline construction, fingerprint, plot, counts'))
  lines = ['| where the time goes (cProfile, cross-encoder, 1 worker) | s | share |',
           '|---|---|---|']
  for key, label in names:
    if key in prof:
      lines.append(f'| {label} | {prof[key]:.2f} | {prof[key] / prof["total"]:.0%} |')
  return '\n'.join(lines)


def other_tables(result: Dict[str, Any]) -> str:
  lat = result['latency']
  lines = ['| model | latency/pair, batch 1 (ms) | pairs/s, batch 64 |', '|---|---|---|']
  for name, v in lat.items():
    lines.append(f'| {name} | {v["latency_ms_batch1"]:.2f} | {v["pairs_per_s_batch64"]:.1f} |')
  lines += ['', '| corpus | BM25 top-k | pairs | peak RSS (MB) | pairs/s |', '|---|---|---|---|---|']
  for label, v in result['memory'].items():
    lines.append(f'| {label} | {v["bm25_top_k"]} | {v["pairs"]} | {v["peak_rss_mb"]:.0f} | '
                 f'{v["pairs"] / v["seconds"]:.1f} |')
  sc = result['scaling']
  lines += ['', '| pairs | 1 worker (s) | 2 workers (s) | speed-up |', '|---|---|---|---|']
  for size in sorted(sc['seconds']['1'], key=int):
    s1, s2 = sc['seconds']['1'][size], sc['seconds']['2'][size]
    lines.append(f'| {size} | {s1:.1f} | {s2:.1f} | {s1 / s2:.2f}x |')
  marginal = sc.get('marginal_pairs_per_s', {})
  lines += ['', 'Steady state (cross-encoder, slope between the two sizes, start-up '
            f'excluded): 1 worker {_f(marginal.get("1"))} pairs/s, 2 workers '
            f'{_f(marginal.get("2"))} pairs/s; plain loop '
            f'{_f(result["throughput"]["cross"][LOOP])} pairs/s.']
  cross = sc['crossover_pairs']
  lines += ['', 'Crossover (2 workers faster above): '
            + (f'~{cross:.0f} pairs' if cross is not None else
               'none: 2 workers are not faster per pair on this machine')]
  return '\n'.join(lines)


def plot(result: Dict[str, Any], path: str) -> str:
  """Grouped horizontal bars of pairs/s per method, one group per teacher."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
  for ax, (key, teacher) in zip(axes, TEACHERS.items()):
    row = result['throughput'][key]
    ax.barh(list(METHODS)[::-1], [row[m] for m in METHODS][::-1], color='#4c72b0')
    ax.set_xlabel('pairs/s (median)')
    ax.set_title(f'{teacher} teacher, {row["pairs"]} pairs')
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def section(result: Dict[str, Any], machine: Dict[str, str], command: str, plot_rel: str,
            checks: Sequence[Dict[str, Any]]) -> str:
  peak = result['machine_peak']
  sizes = result.get('sizes', {})
  models = ', '.join(f'{k}: {v["architecture"]} {v["layers"]}x{v["hidden"]}'
                     for k, v in result['models'].items())
  lines = [f'## Speed{" (--quick)" if result["quick"] else ""}', '',
           *machine_lib.provenance_lines(command, machine),
           f'Models: {models}; wall {result["wall_seconds"] / 60:.1f} min  ',
           f'fp32 matmul peak: {peak["peak_gflops"]:.1f} GFLOP/s (' + ', '.join(
               f'{k}: {v:.1f}' for k, v in peak['gflops_by_shape'].items()) + ')',
           '', f'Pairs/s (corpus size / wall seconds, start-up included), median of '
           f'{sizes.get("repeats", "?")} (loops) or {sizes.get("beam_repeats", "?")} (Beam runs) '
           'repeats; Cranfield queries x BM25 top-30 documents:', '',
           throughput_table(result), '', f'![pseudo-labelling throughput]({plot_rel})', '',
           flops_table(result), '', wins_table(result), '', profile_table(result), '',
           other_tables(result), '',
           '| target | value | threshold | met |', '|---|---|---|---|']
  for c in checks:
    lines.append(f'| {c["target"]} | {c["value"]} | {c["threshold"]} | '
                 f'{"yes" if c["met"] else "**no**"} |')
  return '\n'.join(lines) + '\n'


def summary(result: Dict[str, Any], checks: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
  lat = result['latency']
  mem = result['memory']
  out = {
      'benchmark': 'speed', 'quick': result['quick'],
      'pairs_per_s': {TEACHERS[k]: {m: round(v[m], 1) for m in METHODS}
                      for k, v in result['throughput'].items()},
      'peak_gflops': round(result['machine_peak']['peak_gflops'], 1),
      'fraction_of_peak': {TEACHERS[k]: round(v['fraction_of_peak'], 3)
                           for k, v in result['flops'].items()},
      'student_speedup': round(lat['S (student)']['pairs_per_s_batch64']
                               / lat["T' (teacher)"]['pairs_per_s_batch64'], 2),
      'rss_ratio_10x': round(mem['10x']['peak_rss_mb'] / mem['1x']['peak_rss_mb'], 3),
      'crossover_pairs': result['scaling']['crossover_pairs'],
      'targets_met': sum(c['met'] for c in checks), 'targets': len(checks),
      'wall_seconds': round(result['wall_seconds'], 1)}
  assert tuple(out) == SUMMARY_KEYS
  return out
