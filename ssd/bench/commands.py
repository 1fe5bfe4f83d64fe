"""`ssd bench quality | speed | all`: runs benchmarks, writes docs/benchmarks.md.

`all` runs quality, then speed. `quality --levers` runs the lever study
(one config change per row, one seed) instead of the main table;
`quality --variant=larger_teacher` runs the larger-T' study the same way
(T' = MPNet, embedding targets for S), in its own section, and
`--variant=distill_target` the fused distillation target (teacher + w x BM25).

The last line printed is a JSON summary, for scripts.
"""

import json
import os
import shlex
import sys
from typing import Any, Dict, List, Sequence

from ssd.bench import machine as machine_lib
from ssd.bench import quality as Q
from ssd.bench import report
from ssd.bench import speed_report

PLOT_DIR = 'img'   # beside the report: docs/img/


def _save_and_print(work_dir: str, name: str, result: Dict[str, Any],
                    checks: List[Dict[str, Any]], machine: Dict[str, Any], table: str) -> None:
  """Writes `<work_dir>/<name>.json` (result, targets, machine); prints the table and targets."""
  with open(os.path.join(work_dir, f'{name}.json'), 'w') as f:
    json.dump({**result, 'targets': checks, 'machine': machine}, f, indent=1, default=str)
  print(table)
  for c in checks:
    print(f'target {c["target"]}: {c["value"]} vs {c["threshold"]} -> '
          f'{"met" if c["met"] else "MISSED"}')


def run_quality(datasets: Sequence[str], seeds: int, quick: bool, work_dir: str,
                report_path: str, overrides: Sequence[str], argv: Sequence[str],
                budgets: Sequence[float] = Q.BUDGET_FRACTIONS) -> Dict[str, Any]:
  """Runs `datasets`, writes their report sections, returns the JSON summary."""
  machine = machine_lib.describe()
  command = ' '.join(shlex.quote(a) for a in ['ssd'] + list(argv[1:]))
  summary: Dict[str, Any] = {'benchmark': 'quality', 'quick': quick, 'datasets': {}}
  from ssd.bench import speed  # pylint: disable=g-import-not-at-top  (TF import)
  for dataset in datasets:
    # This machine's speed swings by up to ~25 % within a day (the same
    # models' pairs/s, 2026-11-30): a matmul probe before and after the run
    # says how fast it was while this run took its wall time.
    before = speed.matmul_peak(repeats=3)['peak_gflops']
    result = Q.run_dataset(dataset, list(range(seeds)), quick, work_dir, extra=overrides,
                           budgets=budgets)
    result['matmul_gflops'] = {'before': round(before, 1),
                               'after': round(speed.matmul_peak(repeats=3)['peak_gflops'], 1)}
    checks = Q.targets(result)
    name = f'quality-{dataset}{"-quick" if quick else ""}'
    plot_rel = f'{PLOT_DIR}/{name}.png'
    report.plot(result, os.path.join(os.path.dirname(os.path.abspath(report_path)), plot_rel))
    report.replace_section(report_path, name,
                           report.section(result, machine, command, plot_rel, checks))
    _save_and_print(work_dir, name, result, checks, machine, report.table(result))
    summary['datasets'][dataset] = {
        'ndcg@10': {row: round(r['ndcg@10']['mean'], 4) for row, r in result['rows'].items()},
        'targets_met': sum(c['met'] for c in checks), 'targets': len(checks),
        'wall_seconds': result['wall_seconds']}
  return summary


def run_levers(datasets: Sequence[str], work_dir: str, report_path: str,
               overrides: Sequence[str], argv: Sequence[str],
               study: str = 'levers') -> Dict[str, Any]:
  """Runs a lever study (levers.STUDIES) of `datasets`; rewrites its report
  section after every pipeline run; returns the JSON summary."""
  from ssd.bench import levers  # pylint: disable=g-import-not-at-top
  suffix, heading, study_levers = levers.STUDIES[study]
  machine = machine_lib.describe()
  command = ' '.join(shlex.quote(a) for a in ['ssd'] + list(argv[1:]))
  summary: Dict[str, Any] = {'benchmark': study, 'datasets': {}}
  for dataset in datasets:
    name = f'quality-{dataset}-{suffix}'
    base = list(Q.FULL_OVERRIDES.get(dataset, ())) + list(overrides)

    def on_row(rows, lever_overrides, walls, dataset=dataset, name=name, base=base):
      body = '\n'.join([
          f'## {heading}: {dataset} (one seed)', '',
          *machine_lib.provenance_lines(command, machine, versions=False),
          f'Config: `{Q.DATASET_CONFIGS[dataset]}`, seed 0, overrides of every row: '
          + (', '.join(f'`{o}`' for o in base) or 'none'), '',
          'nDCG@10, plain scores. Dev decides, test is reported; in brackets the '
          'difference to the baseline (the main table\'s `ssd` variant, same seed). '
          'One seed: differences below the main table\'s seed std are noise.', '',
          levers.table(rows, lever_overrides), '',
          'Wall minutes per run (cache hits included): '
          + '; '.join(f'{row} {seconds / 60:.1f}' for row, seconds in walls.items()), ''])
      report.replace_section(report_path, name, body)

    result = levers.run(dataset, 0, work_dir, overrides, on_row, levers=study_levers)
    with open(os.path.join(work_dir, f'{name}.json'), 'w') as f:
      json.dump({**result, 'machine': machine}, f, indent=1, default=str)
    print(levers.table(result['rows'], result['overrides']))
    summary['datasets'][dataset] = {
        lever: {role: r[role]['test'] for role in levers.ROLES}
        for lever, r in result['rows'].items()}
  return summary


def run_speed(quick: bool, work_dir: str, report_path: str, argv: Sequence[str],
              log=print) -> Dict[str, Any]:
  """Runs `ssd bench speed`, writes its report section, returns the JSON summary."""
  from ssd.bench import speed_run  # pylint: disable=g-import-not-at-top
  machine = machine_lib.describe()
  command = ' '.join(shlex.quote(a) for a in ['ssd'] + list(argv[1:]))
  result = speed_run.run(os.path.join(work_dir, 'speed'), quick, log=log)
  checks = speed_report.targets(result)
  name = f'speed{"-quick" if quick else ""}'
  plot_rel = f'{PLOT_DIR}/{name}.png'
  speed_report.plot(result, os.path.join(os.path.dirname(os.path.abspath(report_path)),
                                         plot_rel))
  report.replace_section(report_path, name,
                         speed_report.section(result, machine, command, plot_rel, checks))
  _save_and_print(work_dir, name, result, checks, machine, speed_report.throughput_table(result))
  return speed_report.summary(result, checks)


def seeds_for(quick: bool, given) -> int:
  """Seeds of `ssd bench quality`: --seeds when given, else 2 (--quick) or 3."""
  if given is not None:
    return given
  return Q.QUICK_SEEDS if quick else Q.FULL_SEEDS


def _fractions(values: Sequence[str]):
  """['0.1', '0.25'] -> [0.1, 0.25]; None unless every value is in (0, 1]."""
  try:
    out = [float(v) for v in values]
  except ValueError:
    return None
  return out if all(0 < v <= 1 for v in out) else None


def main(args: List[str], flags) -> int:
  if not args or args[0] not in ('quality', 'speed', 'all'):
    print('usage: ssd bench quality|speed|all [--dataset=cranfield|nfcorpus] [--seeds=3] '
          '[--quick] [--levers | --variant=larger_teacher|distill_target] [--budgets=0.1,0.25] [--work_dir=DIR] [--report=docs/benchmarks.md] [--set=key=value ...]',
          file=sys.stderr)
    return 2
  if flags.levers and (args[0] != 'quality' or flags.quick):
    print('error: --levers goes with `ssd bench quality` (full sizes, not --quick)',
          file=sys.stderr)
    return 2
  if flags.variant is not None and (args[0] != 'quality' or flags.quick or flags.levers):
    print('error: --variant goes with `ssd bench quality` (full sizes, not --quick '
          'or --levers)', file=sys.stderr)
    return 2
  os.makedirs(flags.work_dir, exist_ok=True)
  if args[0] == 'speed':
    summary = run_speed(flags.quick, flags.work_dir, flags.report, sys.argv)
    print(json.dumps(summary, sort_keys=True))
    return 0
  datasets = [flags.dataset] if flags.dataset else (['cranfield'] if flags.quick
                                                    else list(Q.DATASET_CONFIGS))
  for d in datasets:
    if d not in Q.DATASET_CONFIGS:
      print(f'error: unknown dataset {d!r}; known: {", ".join(Q.DATASET_CONFIGS)}',
            file=sys.stderr)
      return 2
  if flags.levers or flags.variant is not None:
    summary = run_levers(datasets, flags.work_dir, flags.report, list(flags.set), sys.argv,
                         study=flags.variant or 'levers')
    print(json.dumps(summary, sort_keys=True))
    return 0
  budgets = Q.BUDGET_FRACTIONS if flags.budgets is None else _fractions(flags.budgets)
  if budgets is None:
    print(f'error: --budgets takes fractions in (0, 1], got {",".join(flags.budgets)}',
          file=sys.stderr)
    return 2
  seeds = seeds_for(flags.quick, flags.seeds)
  summary = run_quality(datasets, seeds, flags.quick, flags.work_dir, flags.report,
                        list(flags.set), sys.argv, budgets=budgets)
  if args[0] == 'all':
    summary = {'quality': summary,
               'speed': run_speed(flags.quick, flags.work_dir, flags.report, sys.argv)}
  print(json.dumps(summary, sort_keys=True))
  return 0
