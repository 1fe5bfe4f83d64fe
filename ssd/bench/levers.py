"""`ssd bench quality --levers` / `--variant=larger_teacher`: what each lever
of the recipe buys, one seed.

Each lever is one config change on top of the dataset's full-run config (the
sizes of the main table), run as a real pipeline with the first seed. The runs
share the main table's pipeline root and name, so T, its pseudo-labels and
every step a lever leaves alone come from TFX's cache. Each row shows T' and
S on dev (where a user would choose) and on test (reported, never used to
choose), and the difference to the baseline: the `ssd` variant of the main
table with the same seed. One seed: a difference under the main table's
seed std is noise.
"""

import dataclasses
from typing import Any, Callable, Dict, List, Optional, Sequence

from runconfig import config as C
from ssd.bench import quality as Q

BASELINE = 'baseline (the ssd variant)'
ROLES = ("T'", 'S')


@dataclasses.dataclass
class Lever:
  name: str
  # Config overrides, given the run's base config (so sizes can follow it).
  overrides: Callable[[C.PipelineConfig], List[str]]


def _cross_encoder_tp(cfg: C.PipelineConfig) -> List[str]:
  """T' as a cross-encoder of T's size; its input holds T's query and document."""
  t = cfg.teacher.model
  return [f'teacher_prime.model={{architecture: cross_encoder, checkpoint: {t.checkpoint}, '
          f'max_length: {t.max_length + t.query_max_length}}}']


# In the order they run, cheapest first, so an interrupted study has measured
# the most levers: the student levers reuse the baseline's T' from TFX's cache
# (only S retrains), then the T' levers (T' and S retrain), the largest last.
LEVERS = (
    Lever('S sees 3x the transfer lists',
          lambda cfg: [f'student.objective.max_soft_lists='
                       f'{3 * cfg.student.objective.max_soft_lists}']),
    Lever('S trains 2 epochs', lambda cfg: [f'student.train.epochs={2 * cfg.student.train.epochs}']),
    Lever("T' warm-started from T", lambda cfg: ['teacher_prime.warm_start=true']),
    Lever("cross-encoder T' (from the bi-encoder T's labels)", _cross_encoder_tp),
    Lever("2 rounds (T' round 1 labels round 2)", lambda cfg: ['teacher_prime.rounds=2']),
    Lever("T' sees 5x the pseudo-labelled lists",
          lambda cfg: [f'teacher_prime.objective.max_soft_lists='
                       f'{5 * cfg.teacher_prime.objective.max_soft_lists}']),
)


def _mpnet_tp(cfg: C.PipelineConfig) -> List[str]:
  """T' = MPNet (all-mpnet-base-v2, 12 x 768: 5x T's MiniLM-L6), a bi-encoder
  with T's input lengths, trained on T's pseudo-labels (teacher_prime.model
  whole: a dotted override would leave its lengths at the defaults)."""
  t = cfg.teacher.model
  return [f'teacher_prime.model={{architecture: bi_encoder, checkpoint: mpnet-base, '
          f'max_length: {t.max_length}, query_max_length: {t.query_max_length}, '
          f'similarity: {t.similarity}}}']


_EMBEDDING_TARGETS = ['student.objective.embedding_loss=mse']

# `--variant=larger_teacher` (issue 21): a T' larger than T, and students fed
# with the teacher's text embeddings beside its scores. Student-only rows
# first (they reuse the baseline's T' from TFX's cache), MPNet's last.
LARGER_TEACHER = (
    Lever("S with embedding targets (mse, from MiniLM T')", lambda cfg: list(_EMBEDDING_TARGETS)),
    Lever("T' = MPNet (S from T'(MPNet))", _mpnet_tp),
    Lever("T' = MPNet, S with embedding targets (384 -> 768 projection)",
          lambda cfg: _mpnet_tp(cfg) + _EMBEDDING_TARGETS),
)
_FUSED_TRANSFER = ['student.transfer.fuse_first_stage=true']

# `--variant=distill_target` (issue 21, the teacher-ensemble lever): the
# distillation target is T' fused with the first stage (BM25) at the weight
# fitted on the calibration split, the hybrid that beats T' and BM25 alone.
# Student-only first (T' from TFX's cache), then T' learning fused targets too.
DISTILL_TARGET = (
    Lever("S distilled from T' + w x BM25 (w fitted on calibration)",
          lambda cfg: list(_FUSED_TRANSFER)),
    Lever("T' and S both learn teacher + w x BM25",
          lambda cfg: ['teacher_prime.pseudo_label.fuse_first_stage=true'] + _FUSED_TRANSFER),
)
# Study name -> (report section suffix, heading, levers).
STUDIES = {
    'levers': ('levers', 'Levers', LEVERS),
    'larger_teacher': ('larger-teacher', "Larger T' and embedding targets", LARGER_TEACHER),
    'distill_target': ('distill-target', 'The distillation target: a teacher fused with BM25',
                       DISTILL_TARGET),
}


def row(summary: Dict[str, Any], cfg: C.PipelineConfig) -> Dict[str, Any]:
  """Dev and test nDCG@10 of T' (the last round) and S in one run's summary,
  and the teacher S was distilled from (the dev split's choice)."""
  roles = {"T'": Q.teacher_prime_role(cfg), 'S': 'student'}
  out: Dict[str, Any] = {}
  for name, role in roles.items():
    out[name] = {split: (metrics.get(role) or {}).get('ndcg@10')
                 for split, metrics in (('dev', summary['dev_metrics']),
                                        ('test', summary['metrics']))}
  out['S distilled from'] = Q.distilled_from(summary, cfg)
  return out


def table(rows: Dict[str, Dict[str, Any]], overrides: Dict[str, List[str]]) -> str:
  """Markdown: each lever's T' and S on dev and test, and Δ to the baseline."""
  base = rows.get(BASELINE)

  def cell(value: Optional[float], ref: Optional[float]) -> str:
    if value is None:
      return '–'
    if ref is None or value is ref:
      return f'{value:.4f}'
    return f'{value:.4f} ({value - ref:+.4f})'

  lines = ["| lever | overrides | T' dev | T' test | S dev | S test | S distilled from |",
           '|---|---|---|---|---|---|---|']
  for name, r in rows.items():
    cells = []
    for role in ROLES:
      for split in ('dev', 'test'):
        ref = base[role][split] if base and name != BASELINE else None
        cells.append(cell(r[role][split], ref))
    over = ', '.join(f'`{o}`' for o in overrides.get(name, ())) or '–'
    lines.append(f'| {name} | {over} | ' + ' | '.join(cells)
                 + f' | {r.get("S distilled from") or "–"} |')
  return '\n'.join(lines)


def run(dataset: str, seed: int, work_dir: str, extra: Sequence[str],
        on_row: Callable[[Dict[str, Any], Dict[str, List[str]], Dict[str, float]], None],
        config_path: Optional[str] = None,
        levers: Sequence[Lever] = LEVERS) -> Dict[str, Any]:
  """Runs the baseline and each lever; calls `on_row(rows, overrides, walls)`
  after each run, so an interrupted bench has reported what it measured."""
  config_path = config_path or Q.DATASET_CONFIGS[dataset]
  extra = list(Q.FULL_OVERRIDES.get(dataset, ())) + list(extra)
  base_cfg = C.load_config(config_path, list(extra))
  rows: Dict[str, Dict[str, Any]] = {}
  overrides: Dict[str, List[str]] = {}
  walls: Dict[str, float] = {}
  plan = [(BASELINE, [])] + [(lever.name, lever.overrides(base_cfg)) for lever in levers]
  for name, lever_overrides in plan:
    variant = Q.Variant(name, ['teacher_prime.mode=ssd'] + lever_overrides, {})
    out = Q.run_variant(config_path, dataset, variant, seed, work_dir, extra)
    rows[name] = row(out['summary'], out['cfg'])
    overrides[name] = lever_overrides
    walls[name] = round(out['wall_seconds'], 1)
    on_row(rows, overrides, walls)
  return {'dataset': dataset, 'seed': seed, 'rows': rows, 'overrides': overrides,
          'base_overrides': extra, 'variant_wall_seconds': walls}
