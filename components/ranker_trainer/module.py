"""Trainer module for the stock TFX `Trainer`: `run_fn` trains and exports a ranker.

Wired as `RankerTrainer(run_fn='components.ranker_trainer.module.run_fn', ...)`
(components/ranker_trainer/component.py, the stock Trainer plus a
`checkpoint` input):
the project is installed in the runtime environment (venv or container
image), so an import path is used rather than `module_file`, which would make
TFX package this folder into a wheel at every run.

One module serves every role (teacher, T' of each round, student, supervised
student); `custom_config` (plain JSON, built by pipelines/pipeline.py) says
which:
  model:      runconfig.config.ModelConfig fields
  train:      runconfig.config.TrainConfig fields
  objective:  runconfig.config.ObjectiveConfig fields (hard loss on labels, soft
              loss on pseudo-labels, see training_targets); absent = hard
              loss `train.loss` only
  noise:      runconfig.config.NoiseConfig fields, resolved (no nulls); absent = none
  warm_start: start from the `base_model` input's weights (same architecture)
  hybrid:     fit w in score + w * first_stage_score on the eval split (the
              calibration split: never trained on, never used for a
              decision) and export it with the model
  candidates_k: the first stage's K; the hybrid fit reranks the top-K only,
              as the evaluator does (dev lists also hold judged documents
              from outside the top-K)
  checkpoint_uri: the PretrainedCheckpoint input artifact's URI (added by
              the RankerTrainer executor, not by the pipeline): where the
              weights of a model with `model.checkpoint` set are read from
  check_size_against_base: T' only; fail unless the model is at least as
              deep and wide as the `base_model` input (its teacher), when the
              pipeline could not check this without reading checkpoints
  role:       recorded with the exported model (e.g. `teacher_prime_r1`)
  embedding_teacher: {examples_uri, teacher_uri, teacher_fingerprint}, added
              by the RankerTrainer executor (not by the pipeline) when
              objective.embedding_loss is on: the teacher embeddings to
              learn (components/common/teacher_embeddings.py) and whose they are,
              recorded in training_summary.json and the export's metadata
"""

import dataclasses
import json
import os
import time
from typing import Any, Dict, List, Optional

from absl import logging
import numpy as np
import tensorflow as tf

from components.common import example_io
from components.common import fileio
from components.common import teacher_embeddings as TE
from components.pseudo_labeler import keys as pl_keys
from rankdata import features as F
from runconfig import config as C



def ranker_config_from(model: C.ModelConfig, checkpoint_uri: Optional[str],
                       noise: Optional[C.NoiseConfig] = None,
                       checkpoint_override: Optional[str] = None):
  """ModelConfig (user-facing) → rankers.config.RankerConfig (library).

  `checkpoint_uri` is the PretrainedCheckpoint artifact's directory; it is
  required when `model.checkpoint` is set (weights never come from a local
  cache here). `checkpoint_override` (warm start) wins over both.
  """
  from rankers import checkpoint as rcheckpoint  # pylint: disable=g-import-not-at-top
  from rankers import config as RC
  checkpoint = checkpoint_override
  if checkpoint is None and model.checkpoint:
    if not checkpoint_uri:
      raise ValueError(f'model.checkpoint is {model.checkpoint!r} but the trainer has no '
                       'checkpoint input artifact (pipelines/pipeline.py wires one)')
    checkpoint = checkpoint_uri
  e = model.encoder
  if checkpoint is None:
    if not model.vocab_file:
      raise C.ConfigError('a randomly initialised model needs model.vocab_file')
    with tf.io.gfile.GFile(model.vocab_file, 'r') as f:
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
  role: str
  checkpoint_uri: Optional[str] = None
  check_size_against_base: bool = False
  embedding_teacher: Optional[Dict[str, str]] = None


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
      role=cc.get('role', 'model'),
      checkpoint_uri=cc.get('checkpoint_uri'),
      check_size_against_base=bool(cc.get('check_size_against_base', False)),
      embedding_teacher=cc.get('embedding_teacher'))


def check_not_smaller_than_base(ranker_cfg, base_model: Optional[str], role: str) -> None:
  """T' must be at least as deep and wide as its teacher (the base model).

  Checked here when the pipeline could not check it at build time (a
  checkpoint's size is only known once it has been read).
  """
  from rankers import checkpoint as rcheckpoint  # pylint: disable=g-import-not-at-top
  from rankers import export as rexport
  if not base_model:
    raise ValueError(f'[{role}] check_size_against_base needs a base_model input')
  base = rcheckpoint.read_hf_config(rexport.checkpoint_dir_of(base_model))
  mine = ranker_cfg.encoder
  problem = C.teacher_prime_size_problem((base.num_layers, base.hidden_size),
                                         (mine.num_layers, mine.hidden_size))
  if problem:
    raise C.ConfigError(f'[{role}] teacher_prime.model is {problem}')


def sample_soft_lists(examples: List[Dict[str, Any]], max_lists: Optional[int], seed: int):
  """Keeps every labelled pair and a seeded sample of `max_lists` unlabelled queries."""
  if max_lists is None:
    return examples
  def pseudo(ex):  # no true label (training_targets may have given it a hard pseudo-label)
    return ex.get(PSEUDO_KEY, ex.get(F.LABEL) is None)
  unlabelled = sorted({ex[F.QUERY_ID] for ex in examples if pseudo(ex)})
  if len(unlabelled) <= max_lists:
    return examples
  rng = np.random.default_rng(seed)
  keep = set(rng.choice(unlabelled, size=max_lists, replace=False).tolist())
  logging.info('sampling %d of %d pseudo-labelled queries (seed %d)', max_lists, len(unlabelled), seed)
  return [ex for ex in examples if not pseudo(ex) or ex[F.QUERY_ID] in keep]


# Floor for soft labels before the log: the pseudo-labeller's float32 softmax
# can underflow to 0 for far-behind candidates of long lists.
MIN_SOFT_LABEL = 1e-30
# Key the trainer writes its soft-loss target under (see training_targets).
TARGET_KEY = 'soft_target'
WEIGHT_KEY = 'list_weight'
PSEUDO_KEY = 'is_pseudo_labelled'   # True: the pair had no true label


def training_targets(examples: List[Dict[str, Any]], objective: C.ObjectiveConfig
                     ) -> List[Dict[str, Any]]:
  """What each pair is learnt from: the one definition of the trainers' targets.

  * True labels (LABEL) always feed the hard loss.
  * Pseudo-labelled pairs, `pseudo_targets: soft`: for listwise_kl the target
    is the pseudo-labeller's SOFT_LABEL, softmax(teacher_score / T) over the
    query's scored list. Passing log(soft_label) as the teacher logits at
    temperature 1 makes the loss's softmax renormalise it over each training
    list (a subset of the scored list): p_i / sum_j p_j = softmax(score / T)
    restricted to the list, so the pseudo-labeller's T is the only
    temperature. mse / margin_mse regress the raw TEACHER_SCORE.
  * `pseudo_targets: hard`: unlabelled pairs take HARD_LABEL as their label
    and join the hard loss (the soft loss still reaches labelled pairs that
    carry a teacher score when soft_on_labelled).
  * `confidence_weighting`: a list's weight is its CONFIDENCE (pairs with a
    true label weigh 1).
  """
  soft_from_labels = objective.soft_loss == 'listwise_kl'
  out = []
  for ex in examples:
    row = dict(ex)
    unlabelled = row.get(F.LABEL) is None
    row[PSEUDO_KEY] = unlabelled
    if soft_from_labels:
      p = row.get(F.SOFT_LABEL)
      row[TARGET_KEY] = None if p is None else float(np.log(max(float(p), MIN_SOFT_LABEL)))
    else:
      row[TARGET_KEY] = row.get(F.TEACHER_SCORE)
    if unlabelled and objective.pseudo_targets == 'hard':
      if row.get(F.HARD_LABEL) is None:
        raise ValueError(f'pseudo_targets=hard but pair ({row.get(F.QUERY_ID)}, '
                         f'{row.get(F.DOC_ID)}) has no {F.HARD_LABEL}')
      row[F.LABEL] = float(row[F.HARD_LABEL])
      row[TARGET_KEY] = None
    weight = 1.0
    if objective.confidence_weighting and unlabelled and row.get(F.CONFIDENCE) is not None:
      weight = float(row[F.CONFIDENCE])
    row[WEIGHT_KEY] = weight
    out.append(row)
  return out


def embedding_distillation(objective: C.ObjectiveConfig, teacher: Optional[Dict[str, str]],
                           examples: List[Dict[str, Any]], role: str):
  """The teacher's embeddings of the training texts (`examples`), as a
  rankers.training.EmbeddingDistillation, or None when the objective
  does not learn them. Raises when it does and there are none."""
  from rankers import training as rtraining  # pylint: disable=g-import-not-at-top
  if not C.uses_teacher_embeddings(objective):
    return None
  if not teacher or not TE.exists(teacher[TE.EXAMPLES_URI_KEY]):
    raise ValueError(f'[{role}] objective.embedding_loss is {objective.embedding_loss!r} and '
                     f'in_batch_negatives {objective.in_batch_negatives}, but '
                     f'the input Examples hold no teacher embeddings ({teacher}); the '
                     'pseudo-labeller writes them for bi-encoder teachers (emit_embeddings)')
  wanted = {TE.QUERY: {ex[F.QUERY] for ex in examples},
            TE.DOCUMENT: {ex[F.DOC] for ex in examples}}
  table = TE.read(teacher[TE.EXAMPLES_URI_KEY], wanted)
  logging.info('[%s] teacher %s embeddings for %d of %d query and %d of %d document texts',
               role, teacher.get('teacher_fingerprint'), len(table[TE.QUERY]),
               len(wanted[TE.QUERY]), len(table[TE.DOCUMENT]), len(wanted[TE.DOCUMENT]))
  if not table[TE.QUERY] and not table[TE.DOCUMENT]:
    raise ValueError(f'[{role}] none of the training texts has a teacher embedding')
  similarity, logit_scale = teacher_logits(teacher) if objective.in_batch_negatives else (
      'cosine', 1.0)
  return rtraining.EmbeddingDistillation(
      loss=objective.embedding_loss, weight=objective.embedding_weight,
      queries=table[TE.QUERY], documents=table[TE.DOCUMENT],
      in_batch=objective.in_batch_negatives, teacher_similarity=similarity,
      teacher_logit_scale=logit_scale)


def teacher_logits(teacher: Dict[str, Any]):
  """(similarity, scale): the teacher scores a pair from its embeddings as
  similarity x its cosine scale (1 for dot), and its soft labels are
  softmax(score / T); so logits comparable with them are similarity x
  scale / T. Read from the teacher's export and the pseudo-labelled
  artifact's temperature (1 where an older artifact records none)."""
  from rankers import export as rexport  # pylint: disable=g-import-not-at-top
  from tfx.utils import path_utils  # pylint: disable=g-import-not-at-top
  config = rexport.read_ranker_config(path_utils.serving_model_path(teacher['teacher_uri']))
  temperature = float(teacher.get(pl_keys.TEMPERATURE_PROPERTY, 1.0))
  scale = config.cosine_scale if config.similarity == 'cosine' else 1.0
  return config.similarity, scale / temperature


def embedding_lineage(teacher: Dict[str, str], embedding) -> Dict[str, Any]:
  """What training_summary.json and the export record of the embeddings learnt."""
  return {'teacher_uri': teacher.get('teacher_uri'),
          'teacher_fingerprint': teacher.get('teacher_fingerprint'),
          'examples_uri': teacher.get(TE.EXAMPLES_URI_KEY), 'loss': embedding.loss,
          'weight': embedding.weight, 'query_texts': len(embedding.queries),
          'document_texts': len(embedding.documents), 'teacher_dim': embedding.teacher_dim,
          'projection': embedding.projection is not None, 'in_batch': embedding.in_batch,
          'teacher_logit_scale': embedding.teacher_logit_scale if embedding.in_batch else None}


# rankers.training.Objective fields the trainer sets itself instead of copying
# runconfig's ObjectiveConfig field of the same name (see library_objective).
# temperature: the pseudo-labeller owns the stage's one temperature; its soft
# labels arrive already softened (training_targets), so the loss takes them
# at temperature 1.
OBJECTIVE_OVERRIDES: Dict[str, Any] = {'temperature': 1.0}
# rankers.training.TextNoise fields not copied from runconfig's NoiseConfig
# (none: every text-noise setting has the same name and meaning there).
TEXT_NOISE_OVERRIDES: Dict[str, Any] = {}


def fields_from(library_type, settings, overrides: Dict[str, Any]):
  """`library_type` built from the user-facing `settings` dataclass: each
  field of `library_type` takes the settings field of the same name, except
  those in `overrides`, which take the given value. One mapping for every
  layer crossing, so a setting is defined (and defaulted) once, in runconfig
  (tests/test_ranker_trainer_module.py checks that every field is covered)."""
  given = {f.name for f in dataclasses.fields(settings)}
  values = {}
  for field in dataclasses.fields(library_type):
    if field.name in overrides:
      values[field.name] = overrides[field.name]
    elif field.name in given:
      values[field.name] = getattr(settings, field.name)
    else:
      raise TypeError(f'{library_type.__name__}.{field.name} has no field of that name in '
                      f'{type(settings).__name__} and no override')
  return library_type(**values)


def library_objective(objective: C.ObjectiveConfig):
  """runconfig's objective as the rankers.training.Objective of the score losses."""
  from rankers import training as rtraining  # pylint: disable=g-import-not-at-top
  return fields_from(rtraining.Objective, objective, OBJECTIVE_OVERRIDES)


def library_text_noise(noise: Optional[C.NoiseConfig]):
  """runconfig's (resolved) noise as rankers.training.TextNoise; None: no noise."""
  from rankers import training as rtraining  # pylint: disable=g-import-not-at-top
  if noise is None:
    return None
  return fields_from(rtraining.TextNoise, noise, TEXT_NOISE_OVERRIDES)


def fit_hybrid_weight(scorer, rows: List[Dict[str, Any]], candidates_k: Optional[int],
                      batch_size: int = 64) -> Dict[str, Any]:
  """Fits w in score + w * first_stage on the calibration rows (components/common/hybrid.py)."""
  from components.common import hybrid  # pylint: disable=g-import-not-at-top
  from components.common import scoring
  scored, qrels = hybrid.calibration_rows(rows, candidates_k)
  if not scored:
    raise ValueError('hybrid scoring needs labelled rows with first-stage scores in the '
                     'calibration split (splits.calibration_queries > 0)')
  scores = scoring.score_pairs(scorer, [r[F.QUERY] for r in scored], [r[F.DOC] for r in scored],
                               batch_size=batch_size)
  fit = hybrid.fit_weight(scored, scores, qrels)
  logging.info('hybrid weight %.4f (calibration nDCG@10 %.4f; model only %.4f; %d queries)',
               fit['weight'], fit['calibration_ndcg@10'], fit['calibration_ndcg@10_model_only'],
               fit['calibration_queries'])
  return fit


def _count_truncated(ranker, examples: List[Dict[str, Any]], role: str) -> Dict[str, int]:
  """Counts training inputs longer than the model takes (they are cut, not
  dropped) and warns when there are any; recorded in training_summary.json."""
  from rankers import tokenization  # pylint: disable=g-import-not-at-top
  cfg = ranker.config
  counts = tokenization.count_truncated(
      ranker.tokenizer, [ex[F.QUERY] for ex in examples], [ex[F.DOC] for ex in examples],
      cfg.max_length, cfg.query_max_length if cfg.is_bi_encoder else None)
  if cfg.is_bi_encoder:
    what = (f"{counts['truncated_docs']} documents over max_length={cfg.max_length} and "
            f"{counts['truncated_queries']} queries over query_max_length="
            f"{cfg.query_max_length}")
    cut = counts['truncated_docs'] + counts['truncated_queries']
  else:
    what = f"{counts['truncated_pairs']} pairs over max_length={cfg.max_length}"
    cut = counts['truncated_pairs']
  if cut:
    logging.warning('[%s] %d training pairs: %s are truncated (longest document or pair: %d '
                    'word pieces)', role, counts['items'], what, counts['longest_pieces'])
  return counts


def run_fn(fn_args) -> None:
  """TFX Trainer entry point."""
  args = parse_custom_config(fn_args.custom_config)
  role = args.role
  t0 = time.time()
  objective = args.objective or C.ObjectiveConfig(hard_loss=args.train.loss, soft_weight=0.0)
  usable = read_training_pairs(fn_args.train_files, args.train.epochs, objective)
  if args.train.epochs > 0 and not usable:
    pass_base_model_through(fn_args, role)
    return

  ranker, warm_from = build_model(args, fn_args.base_model)
  trained: Dict[str, Any] = {'history': {'epochs': args.train.epochs}}
  if args.train.epochs > 0:
    trained = train_model(ranker, usable, objective, args, fn_args.model_run_dir, t0)
  else:
    logging.info('[%s] epochs=0: exporting the initial model without training', role)

  metadata: Dict[str, Any] = {
      'role': role, 'model': C.to_dict(args.model), 'train': C.to_dict(args.train),
      'objective': C.to_dict(objective), 'noise': C.to_dict(args.noise) if args.noise else None,
      'warm_start_from': warm_from, 'checkpoint_uri': args.checkpoint_uri,
      'history': trained['history']}
  if args.train.epochs > 0:
    metadata['truncation'] = trained['truncation']
    if trained['embedding'] is not None:
      metadata['embedding_teacher'] = embedding_lineage(args.embedding_teacher,
                                                        trained['embedding'])
  export_model(ranker, args, fn_args, metadata)
  logging.info('[%s] exported SavedModel to %s (%.0fs)', role, fn_args.serving_model_dir,
               time.time() - t0)


def read_training_pairs(train_files, epochs: int, objective: C.ObjectiveConfig
                        ) -> List[Dict[str, Any]]:
  """The training pairs with their targets (training_targets), keeping those
  with something to learn from: a label or a teacher target."""
  examples = example_io.read_files(train_files) if epochs > 0 else []
  examples = training_targets(examples, objective)
  return [ex for ex in examples
          if ex.get(F.LABEL) is not None or ex.get(TARGET_KEY) is not None]


def pass_base_model_through(fn_args, role: str) -> None:
  """A skipped round (its pseudo-labeller was gated off): no training data,
  so the teacher (base model) is exported unchanged."""
  if not fn_args.base_model:
    raise ValueError(f'[{role}] no labelled or pseudo-labelled examples in {fn_args.train_files}')
  logging.info('[%s] no training data (round skipped): exporting base model %s unchanged',
               role, fn_args.base_model)
  fileio.copy_tree(fn_args.base_model, fn_args.serving_model_dir)


def build_model(args: TrainerArgs, base_model: Optional[str]):
  """The ranker to train, seeded, and the checkpoint it warm-starts from (or None)."""
  from rankers import export as rexport  # pylint: disable=g-import-not-at-top
  from rankers import models as rmodels
  role = args.role
  warm_from = None
  if args.warm_start:
    if not base_model:
      raise ValueError(f'[{role}] warm_start needs a base_model input')
    warm_from = rexport.checkpoint_dir_of(base_model)
  ranker_cfg = ranker_config_from(args.model, args.checkpoint_uri, args.noise,
                                  checkpoint_override=warm_from)
  if args.check_size_against_base:
    check_not_smaller_than_base(ranker_cfg, base_model, role)
  logging.info('[%s] building %s (checkpoint=%s, keep_layers=%s, noise=%s)', role,
               ranker_cfg.architecture, ranker_cfg.checkpoint_dir, ranker_cfg.keep_layers, args.noise)
  # Seeded: initial weights (random init, a fresh head) are part of what the
  # seed must fix for two runs of one config to give the same model.
  return rmodels.build_ranker(ranker_cfg, seed=args.train.seed), warm_from


def train_model(ranker, usable: List[Dict[str, Any]], objective: C.ObjectiveConfig,
          args: TrainerArgs, model_run_dir: str, t0: float) -> Dict[str, Any]:
  """Trains `ranker` in place on lists of `usable` pairs; returns
  {history, truncation (counts), embedding (the distillation or None)}."""
  from rankers import training as rtraining  # pylint: disable=g-import-not-at-top
  role, train_cfg = args.role, args.train
  # A fixed order, whatever order the (Beam-written, sharded) files came in:
  # grouping and the seeded shuffles then see the same sequence every run.
  usable = sorted(usable, key=lambda ex: (str(ex.get(F.QUERY_ID)), str(ex.get(F.DOC_ID))))
  usable = sample_soft_lists(usable, objective.max_soft_lists, train_cfg.seed)
  truncation = _count_truncated(ranker, usable, role)
  embedding = embedding_distillation(objective, args.embedding_teacher, usable, role)
  data = rtraining.group_into_lists(usable, list_size=train_cfg.list_size, seed=train_cfg.seed,
                                    teacher_key=TARGET_KEY, weight_key=WEIGHT_KEY)
  logging.info('[%s] %d pairs (%d labelled, %d with teacher targets) in %d lists (read in %.1fs)',
               role, len(usable), sum(ex.get(F.LABEL) is not None for ex in usable),
               sum(ex.get(TARGET_KEY) is not None for ex in usable), len(data),
               time.time() - t0)
  history = rtraining.train_ranker(
      ranker, data, loss=objective.hard_loss, epochs=train_cfg.epochs,
      batch_lists=train_cfg.batch_lists, learning_rate=train_cfg.learning_rate,
      warmup_fraction=train_cfg.warmup_fraction, seed=train_cfg.seed,
      log_every=train_cfg.log_every,
      tensorboard_dir=os.path.join(model_run_dir, 'tensorboard'),
      objective=library_objective(objective), text_noise=library_text_noise(args.noise),
      embedding=embedding, freeze_word_embeddings=train_cfg.freeze_word_embeddings)
  history = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in history.items()}
  return {'history': history, 'truncation': truncation, 'embedding': embedding}


def export_model(ranker, args: TrainerArgs, fn_args, metadata: Dict[str, Any]) -> None:
  """Exports the SavedModel (with the hybrid weight, fitted here, when
  args.hybrid; metadata['hybrid'] records the fit) and writes
  training_summary.json."""
  from rankers import export as rexport  # pylint: disable=g-import-not-at-top
  if args.hybrid:
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    plain_dir = os.path.join(fn_args.model_run_dir, 'plain_model')
    rexport.export_ranker(ranker, plain_dir)
    fit = fit_hybrid_weight(rexport.load_scorer(plain_dir), example_io.read_files(fn_args.eval_files),
                            args.candidates_k)
    metadata['hybrid'] = fit
    rexport.export_ranker(ranker, fn_args.serving_model_dir, extra_metadata=metadata,
                          hybrid_weight=fit['weight'])
  else:
    rexport.export_ranker(ranker, fn_args.serving_model_dir, extra_metadata=metadata)
  tf.io.gfile.makedirs(fn_args.model_run_dir)
  with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, 'training_summary.json'), 'w') as f:
    json.dump(metadata, f, indent=1, default=str)
