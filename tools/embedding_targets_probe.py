"""Does a student with embedding targets beat one without? A reduced-budget probe.

  PYTHONPATH=. python tools/embedding_targets_probe.py label --workdir=/tmp/probe
  PYTHONPATH=. python tools/embedding_targets_probe.py train --workdir=/tmp/probe \
      --name=none --embedding_loss=none --max_soft_lists=120
  PYTHONPATH=. python tools/embedding_targets_probe.py train --workdir=/tmp/probe \
      --name=mse --embedding_loss=mse --embedding_weight=1.0 --max_soft_lists=120

The demo config's semantics (configs/cranfield_demo.yaml, or a Cranfield --config),
outside the pipeline, with the project's own pieces:
  label: the config's splits (rankdata.splits.build_examples) written as an
    Examples folder; the teacher is the config's teacher checkpoint as a
    bi-encoder, NOT fine-tuned (the demo's dev split chooses between it and
    a fine-tuned T; this probe skips that stage); the PseudoLabeler executor
    (Beam, the config's beam args) labels train + unlabelled + calibration
    with `student.transfer` and emit_embeddings.
  train: the Trainer's run_fn as the demo's student_trainer (hybrid off:
    decisions compare plain scores), with objective.embedding_loss /
    embedding_weight / max_soft_lists / train.seed overridden; then dev and
    test nDCG@10 reranking the first stage's top-K (trec_eval -c, as the
    evaluator computes it). Appends one JSON line to <workdir>/results.jsonl.
Needs the config's checkpoints in its cache_dir (`ssd weights`).
"""

import argparse
import json
import os
import sys
import time
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# pylint: disable=g-import-not-at-top,wrong-import-position
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.common import example_io
from components.common import scoring
from components.pseudo_labeler import executor as E
from components.pseudo_labeler import spec as S
from components.ranker_trainer import component as RT
from components.ranker_trainer import module
from components.ranking_example_gen import executor as example_gen
from components.ranking_evaluator import executor as EV
from rankdata import cranfield
from rankdata import features as F
from rankdata import metrics
from rankdata import splits as rsplits
from rankers import config as RC
from rankers import export
from rankers import models
from runconfig import checkpoints
from runconfig import config as C

LABEL_SPLITS = [F.SPLIT_TRAIN, F.SPLIT_UNLABELLED, F.SPLIT_CALIBRATION]


def checkpoint_dir(cfg: C.PipelineConfig, model: C.ModelConfig) -> str:
  """The model's checkpoint directory, as the PretrainedCheckpoint step resolves it."""
  return checkpoints.resolve_checkpoint(model.checkpoint, cfg.cache_dir)


def label(cfg: C.PipelineConfig, workdir: str) -> None:
  ds = cranfield.load_cranfield(cfg.data.path)
  if cfg.data.max_queries:   # as RankingExampleGen does
    ds = example_gen.subset_queries(ds, cfg.data.max_queries, cfg.splits.seed)
  result = rsplits.build_examples(ds, cfg.splits)
  examples = standard_artifacts.Examples()
  examples.uri = os.path.join(workdir, 'examples')
  for split, rows in result.examples.items():
    example_io.write_split(examples.uri, split, rows)
  examples.split_names = artifact_utils.encode_split_names(list(result.examples))
  with open(os.path.join(workdir, 'qrels.json'), 'w') as f:
    json.dump(result.qrels, f)
  teacher = standard_artifacts.Model()
  teacher.uri = os.path.join(workdir, 'teacher')
  m = cfg.teacher.model
  ranker_cfg = RC.RankerConfig('bi_encoder', checkpoint_dir=checkpoint_dir(cfg, m),
                               max_length=m.max_length, query_max_length=m.query_max_length)
  export.export_ranker(models.build_ranker(ranker_cfg, seed=cfg.teacher.train.seed),
                       path_utils.serving_model_path(teacher.uri))
  out, report = standard_artifacts.Examples(), S.PseudoLabelReport()
  out.uri, report.uri = os.path.join(workdir, 'pseudo_labelled'), os.path.join(workdir, 'report')
  for artifact in (out, report):
    os.makedirs(artifact.uri, exist_ok=True)
  pl_cfg = C.from_dict(S.PseudoLabelConfig, dict(
      cfg.student.transfer, splits=LABEL_SPLITS, teacher_role='best_teacher',
      emit_embeddings=True))
  context = base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=cfg.beam.pipeline_args(), tmp_dir=os.path.join(workdir, 'tmp'),
      unique_id='probe')
  t0 = time.time()
  E.Executor(context).Do({S.EXAMPLES_KEY: [examples], S.MODEL_KEY: [teacher]},
                         {S.PSEUDO_LABELLED_KEY: [out], S.REPORT_KEY: [report]},
                         {S.CONFIG_KEY: C.to_json(pl_cfg)})
  with open(os.path.join(report.uri, S.COUNTS_FILE)) as f:
    payload = json.load(f)
  print(f'labelled in {time.time() - t0:.0f}s: pairs {payload["counts"]["total"]}, '
        f'texts {payload["embeddings"]}')
  with open(os.path.join(workdir, 'teacher.json'), 'w') as f:
    json.dump({RT.EXAMPLES_URI: out.uri, **{k: out.get_string_custom_property(k)
                                             for k in RT.EMBEDDING_TEACHER_FIELDS}}, f)


def evaluate(cfg: C.PipelineConfig, workdir: str, model_dir: str) -> dict:
  scorer = export.load_scorer(model_dir)
  with open(os.path.join(workdir, 'qrels.json')) as f:
    qrels = json.load(f)
  out = {}
  for split in (F.SPLIT_DEV, F.SPLIT_TEST):
    rows = EV.read_candidates(os.path.join(workdir, 'examples'), split, cfg.splits.candidates_k)
    scores = scoring.score_pairs(scorer, [r[F.QUERY] for r in rows], [r[F.DOC] for r in rows])
    for name, run in (('', EV.run_of(rows, scores)), ('_bm25', EV.first_stage_run(rows))):
      out[split + name] = metrics.evaluate_run(run, qrels[split], complete=True)['ndcg@10']
  return out


def trainer_config(cfg: C.PipelineConfig, args) -> dict:
  st = cfg.student
  objective = C.from_dict(C.ObjectiveConfig, dict(
      C.to_dict(st.objective), embedding_loss=args.embedding_loss,
      embedding_weight=args.embedding_weight,
      max_soft_lists=args.max_soft_lists or st.objective.max_soft_lists))
  train = C.from_dict(C.TrainConfig, dict(C.to_dict(st.train), seed=args.seed, log_every=50))
  custom = {'model': C.to_dict(st.model), 'train': C.to_dict(train),
            'objective': C.to_dict(objective), 'noise': C.to_dict(C.SSD_NOISE),
            'role': 'student', 'checkpoint_uri': checkpoint_dir(cfg, st.model)}
  if C.uses_teacher_embeddings(objective):
    with open(os.path.join(args.workdir, 'teacher.json')) as f:
      custom[RT.EMBEDDING_TEACHER_CONFIG_KEY] = json.load(f)
  return custom


def train(cfg: C.PipelineConfig, args) -> None:
  custom = trainer_config(cfg, args)
  d = os.path.join(args.workdir, args.name)
  labelled = os.path.join(args.workdir, 'pseudo_labelled')
  fn_args = types.SimpleNamespace(
      train_files=[os.path.join(example_io.split_dir(labelled, s), '*')
                   for s in (F.SPLIT_TRAIN, F.SPLIT_UNLABELLED)],
      eval_files=[], serving_model_dir=os.path.join(d, 'model'),
      model_run_dir=os.path.join(d, 'run'), base_model=None, custom_config=custom)
  t0 = time.time()
  module.run_fn(fn_args)
  seconds = time.time() - t0
  with open(os.path.join(d, 'run', 'training_summary.json')) as f:
    history = json.load(f)['history']
  result = dict(evaluate(cfg, args.workdir, fn_args.serving_model_dir), name=args.name,
                objective=custom['objective'], seed=args.seed, train_seconds=round(seconds))
  for key in ('soft_loss', 'embedding_loss'):   # mean of the first and last fifth of steps
    values = history.get(key) or []
    fifth = max(len(values) // 5, 1)
    if values:
      result[key] = [sum(values[:fifth]) / fifth, sum(values[-fifth:]) / fifth]
  print(json.dumps(result))
  with open(os.path.join(args.workdir, 'results.jsonl'), 'a') as f:
    f.write(json.dumps(result) + '\n')


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  parser.add_argument('stage', choices=['label', 'train'])
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--config', default=os.path.join(ROOT, 'configs', 'cranfield_demo.yaml'))
  parser.add_argument('--data_path', default=None, help='default: the config\'s, else '
                      'cranfield.default_cranfield_dir()')
  parser.add_argument('--name', default='student')
  parser.add_argument('--embedding_loss', default=C.EMBEDDING_LOSS_OFF)
  parser.add_argument('--embedding_weight', type=float, default=1.0)
  parser.add_argument('--max_soft_lists', type=int, default=None,
                      help='default: the config\'s student.objective.max_soft_lists')
  parser.add_argument('--seed', type=int, default=42)
  args = parser.parse_args()
  cfg = C.load_config(args.config)
  cfg.data.path = args.data_path or (cfg.data.path if os.path.isdir(cfg.data.path)
                                     else cranfield.default_cranfield_dir())
  os.makedirs(args.workdir, exist_ok=True)
  if args.stage == 'label':
    label(cfg, args.workdir)
  else:
    train(cfg, args)


if __name__ == '__main__':
  main()
