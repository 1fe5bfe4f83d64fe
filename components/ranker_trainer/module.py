"""Trainer module for the stock TFX `Trainer`: `run_fn` trains and exports a ranker.

Wired as `Trainer(run_fn='components.ranker_trainer.module.run_fn', ...)`:
the project is installed in the runtime environment (venv or container
image), so an import path is used rather than `module_file`, which would make
TFX package this folder into a wheel at every run.

One module serves every role (teacher, T' of each round, student, supervised
student); `custom_config` (plain JSON, built by pipelines/pipeline.py) says
which:
  model:      ssd.config.ModelConfig fields
  train:      ssd.config.TrainConfig fields
  objective:  ssd.config.ObjectiveConfig fields (hard loss on labels, soft
              loss on teacher scores); absent = hard loss `train.loss` only
  noise:      ssd.config.NoiseConfig fields, resolved (no nulls); absent = none
  warm_start: start from the `base_model` input's weights (same architecture)
  hybrid:     fit w in score + w * first_stage_score on the eval split (dev)
              and export it with the model
  candidates_k: the first stage's K; the hybrid fit reranks the top-K only,
              as the evaluator does (dev lists also hold judged documents
              from outside the top-K)
  cache_dir:  where named checkpoints (e.g. `minilm-l6`) live
  role:       recorded with the exported model (e.g. `teacher_prime_r1`)
"""

import dataclasses
import json
import os
import shutil
import time
from typing import Any, Dict, List, Optional

from absl import logging
import numpy as np

from components import example_io
from rankdata import features as F
from ssd import config as C
from ssd import weights

# Grid for the hybrid fusion weight (score + w * first-stage score).
HYBRID_WEIGHTS = tuple(np.round(np.concatenate([[0.0], np.geomspace(0.01, 10.0, 31)]), 4))


def ranker_config_from(model: C.ModelConfig, cache_dir: str,
                       noise: Optional[C.NoiseConfig] = None,
                       checkpoint_override: Optional[str] = None):
  """ModelConfig (user-facing) → rankers.config.RankerConfig (library)."""
  from rankers import checkpoint as rcheckpoint  # pylint: disable=g-import-not-at-top
  from rankers import config as RC
  checkpoint = checkpoint_override or weights.resolve_checkpoint(model.checkpoint, cache_dir)
  e = model.encoder
  if checkpoint is None:
    if not model.vocab_file:
      raise C.ConfigError('a randomly initialised model needs model.vocab_file')
    with open(model.vocab_file, encoding='utf-8') as f:
      vocab_size = sum(1 for _ in f)
    encoder = RC.EncoderConfig(
        vocab_size=vocab_size, hidden_size=e.hidden_size, num_layers=e.num_layers,
        num_heads=e.num_heads, intermediate_size=e.intermediate_size,
        hidden_dropout=e.hidden_dropout, attention_dropout=e.attention_dropout)
  else:
    encoder = rcheckpoint.read_hf_config(checkpoint)
    if model.keep_layers:
      encoder = dataclasses.replace(encoder, num_layers=model.keep_layers)
  if noise is not None:
    encoder = dataclasses.replace(
        encoder, hidden_dropout=noise.hidden_dropout, attention_dropout=noise.attention_dropout,
        stochastic_depth=noise.stochastic_depth)
  cfg = RC.RankerConfig(
      architecture=model.architecture, encoder=encoder,
      vocab_file=model.vocab_file if checkpoint is None else None,
      checkpoint_dir=checkpoint, keep_layers=model.keep_layers if checkpoint else None,
      max_length=model.max_length, query_max_length=model.query_max_length,
      pooling=model.pooling, similarity=model.similarity, cosine_scale=model.cosine_scale)
  cfg.validate()
  return cfg


@dataclasses.dataclass
class TrainerArgs:
  model: C.ModelConfig
  train: C.TrainConfig
  objective: Optional[C.ObjectiveConfig]
  noise: Optional[C.NoiseConfig]
  warm_start: bool
  hybrid: bool
  candidates_k: Optional[int]
  cache_dir: str
  role: str


def parse_custom_config(custom_config: Dict[str, Any]) -> TrainerArgs:
  cc = dict(custom_config or {})
  return TrainerArgs(
      model=C.from_dict(C.ModelConfig, cc.get('model', {}), prefix='model'),
      train=C.from_dict(C.TrainConfig, cc.get('train', {}), prefix='train'),
      objective=(C.from_dict(C.ObjectiveConfig, cc['objective'], prefix='objective')
                 if cc.get('objective') else None),
      noise=C.from_dict(C.NoiseConfig, cc['noise'], prefix='noise') if cc.get('noise') else None,
      warm_start=bool(cc.get('warm_start', False)),
      hybrid=bool(cc.get('hybrid', False)),
      candidates_k=cc.get('candidates_k'),
      cache_dir=cc.get('cache_dir', C.PipelineConfig.cache_dir),
      role=cc.get('role', 'model'))


def sample_soft_lists(examples: List[Dict[str, Any]], max_lists: Optional[int], seed: int):
  """Keeps every labelled pair and a seeded sample of `max_lists` unlabelled queries."""
  if max_lists is None:
    return examples
  unlabelled = sorted({ex[F.QUERY_ID] for ex in examples if ex.get(F.LABEL) is None})
  if len(unlabelled) <= max_lists:
    return examples
  rng = np.random.default_rng(seed)
  keep = set(rng.choice(unlabelled, size=max_lists, replace=False).tolist())
  logging.info('sampling %d of %d pseudo-labelled queries (seed %d)', max_lists, len(unlabelled), seed)
  return [ex for ex in examples if ex.get(F.LABEL) is not None or ex[F.QUERY_ID] in keep]


def fit_hybrid_weight(scorer, rows: List[Dict[str, Any]], candidates_k: Optional[int],
                      batch_size: int = 64) -> Dict[str, Any]:
  """Grid-searches w in score + w * first_stage on labelled rows (dev) by nDCG@10.

  Like the evaluator: every labelled row counts for the ideal DCG (the
  query's judgements), but only the first stage's top-K are reranked.
  """
  from components import scoring  # pylint: disable=g-import-not-at-top
  from rankdata import metrics as M
  labelled = [r for r in rows if r.get(F.LABEL) is not None]
  qrels: Dict[str, Dict[str, int]] = {}
  for r in labelled:
    qrels.setdefault(r[F.QUERY_ID], {})[r[F.DOC_ID]] = int(round(r[F.LABEL]))
  rows = [r for r in labelled if r.get(F.FIRST_STAGE_SCORE) is not None
          and (candidates_k is None or 1 <= (r.get(F.FIRST_STAGE_RANK) or 0) <= candidates_k)]
  if not rows:
    raise ValueError('hybrid scoring needs labelled rows with first-stage scores in the eval split')
  scores = scoring.score_pairs(scorer, [r[F.QUERY] for r in rows], [r[F.DOC] for r in rows],
                               batch_size=batch_size)
  fs = np.array([r[F.FIRST_STAGE_SCORE] for r in rows], np.float32)
  results = {}
  for w in HYBRID_WEIGHTS:
    run: Dict[str, Dict[str, float]] = {}
    for r, s in zip(rows, scores + w * fs):
      run.setdefault(r[F.QUERY_ID], {})[r[F.DOC_ID]] = float(s)
    results[float(w)] = M.evaluate_run(run, qrels)['ndcg@10']
  best = max(results, key=lambda w: (results[w], -w))
  logging.info('hybrid weight %.4f (dev nDCG@10 %.4f; model only %.4f)', best, results[best],
               results[0.0])
  return {'weight': best, 'dev_ndcg@10': results[best], 'dev_ndcg@10_model_only': results[0.0],
          'grid': results}


def _count_truncated(ranker, examples: List[Dict[str, Any]], role: str) -> Dict[str, int]:
  """Counts training inputs longer than the model takes (they are cut, not
  dropped) and warns when there are any; recorded in training_summary.json."""
  from rankers import tokenization  # pylint: disable=g-import-not-at-top
  cfg = ranker.config
  counts = tokenization.count_truncated(
      ranker.tokenizer, [ex[F.QUERY] for ex in examples], [ex[F.DOC] for ex in examples],
      cfg.max_length, cfg.query_max_length if cfg.is_bi_encoder else None)
  cut = counts['truncated_pairs'] + counts['truncated_docs'] + counts['truncated_queries']
  if cut:
    logging.warning('[%s] %d of %d training inputs exceed max_length=%d (query_max_length=%d) '
                    'and are truncated (longest: %d word pieces): %s', role, cut,
                    counts['items'], cfg.max_length, cfg.query_max_length,
                    counts['longest_pieces'], counts)
  return counts


def run_fn(fn_args) -> None:
  """TFX Trainer entry point."""
  from rankers import export as rexport  # pylint: disable=g-import-not-at-top
  from rankers import models as rmodels
  from rankers import training as rtraining

  args = parse_custom_config(fn_args.custom_config)
  role = args.role
  t0 = time.time()
  train_examples = example_io.read_files(fn_args.train_files) if args.train.epochs > 0 else []
  objective = args.objective or C.ObjectiveConfig(hard_loss=args.train.loss, soft_weight=0.0)
  usable = [ex for ex in train_examples
            if ex.get(F.LABEL) is not None or ex.get(F.TEACHER_SCORE) is not None]

  if args.train.epochs > 0 and not usable:
    if not fn_args.base_model:
      raise ValueError(f'[{role}] no labelled or pseudo-labelled examples in {fn_args.train_files}')
    # A skipped round (its pseudo-labeller was gated off): pass the teacher through.
    logging.info('[%s] no training data (round skipped): exporting base model %s unchanged',
                 role, fn_args.base_model)
    shutil.copytree(fn_args.base_model, fn_args.serving_model_dir, dirs_exist_ok=True)
    return

  warm_from = None
  if args.warm_start:
    if not fn_args.base_model:
      raise ValueError(f'[{role}] warm_start needs a base_model input')
    warm_from = rexport.checkpoint_dir_of(fn_args.base_model)
  ranker_cfg = ranker_config_from(args.model, args.cache_dir, args.noise, checkpoint_override=warm_from)
  logging.info('[%s] building %s (checkpoint=%s, keep_layers=%s, noise=%s)', role,
               ranker_cfg.architecture, ranker_cfg.checkpoint_dir, ranker_cfg.keep_layers, args.noise)
  # Seeded: initial weights (random init, a fresh head) are part of what the
  # seed must fix for two runs of one config to give the same model.
  ranker = rmodels.build_ranker(ranker_cfg, seed=args.train.seed)

  history: Dict[str, Any] = {'epochs': args.train.epochs}
  if args.train.epochs > 0:
    # A fixed order, whatever order the (Beam-written, sharded) files came in:
    # grouping and the seeded shuffles then see the same sequence every run.
    usable.sort(key=lambda ex: (str(ex.get(F.QUERY_ID)), str(ex.get(F.DOC_ID))))
    usable = sample_soft_lists(usable, objective.max_soft_lists, args.train.seed)
    truncation = _count_truncated(ranker, usable, role)
    data = rtraining.group_into_lists(usable, list_size=args.train.list_size, seed=args.train.seed)
    logging.info('[%s] %d pairs (%d labelled, %d with teacher scores) in %d lists (read in %.1fs)',
                 role, len(usable), sum(ex.get(F.LABEL) is not None for ex in usable),
                 sum(ex.get(F.TEACHER_SCORE) is not None for ex in usable), len(data),
                 time.time() - t0)
    history = rtraining.train_ranker(
        ranker, data, loss=objective.hard_loss, epochs=args.train.epochs,
        batch_lists=args.train.batch_lists, learning_rate=args.train.learning_rate,
        warmup_fraction=args.train.warmup_fraction, seed=args.train.seed,
        log_every=args.train.log_every,
        tensorboard_dir=os.path.join(fn_args.model_run_dir, 'tensorboard'),
        objective=rtraining.Objective(
            hard_loss=objective.hard_loss, hard_weight=objective.hard_weight,
            soft_loss=objective.soft_loss, soft_weight=objective.soft_weight,
            temperature=objective.temperature, soft_on_labelled=objective.soft_on_labelled),
        text_noise=None if args.noise is None else rtraining.TextNoise(
            token_dropout=args.noise.token_dropout, mask_prob=args.noise.mask_prob,
            shuffle_window=args.noise.shuffle_window))
    history = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in history.items()}
  else:
    logging.info('[%s] epochs=0: exporting the initial model without training', role)

  metadata: Dict[str, Any] = {
      'role': role, 'model': C.to_dict(args.model), 'train': C.to_dict(args.train),
      'objective': C.to_dict(objective), 'noise': C.to_dict(args.noise) if args.noise else None,
      'warm_start_from': warm_from, 'history': history}
  if args.train.epochs > 0:
    metadata['truncation'] = truncation
  if args.hybrid:
    os.makedirs(fn_args.model_run_dir, exist_ok=True)
    plain_dir = os.path.join(fn_args.model_run_dir, 'plain_model')
    rexport.export_ranker(ranker, plain_dir)
    fit = fit_hybrid_weight(rexport.load_scorer(plain_dir), example_io.read_files(fn_args.eval_files),
                            args.candidates_k)
    metadata['hybrid'] = fit
    rexport.export_ranker(ranker, fn_args.serving_model_dir, extra_metadata=metadata,
                          hybrid_weight=fit['weight'])
  else:
    rexport.export_ranker(ranker, fn_args.serving_model_dir, extra_metadata=metadata)
  os.makedirs(fn_args.model_run_dir, exist_ok=True)
  with open(os.path.join(fn_args.model_run_dir, 'training_summary.json'), 'w') as f:
    json.dump(metadata, f, indent=1, default=str)
  logging.info('[%s] exported SavedModel to %s (%.0fs)', role, fn_args.serving_model_dir,
               time.time() - t0)
