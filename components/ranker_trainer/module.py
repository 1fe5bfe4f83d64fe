"""Trainer module for the stock TFX `Trainer`: `run_fn` trains and exports a ranker.

Wired as `Trainer(run_fn='components.ranker_trainer.module.run_fn', ...)`:
the project is installed in the runtime environment (venv or container
image), so an import path is used rather than `module_file`, which would make
TFX package this folder into a wheel at every run.

`custom_config` (plain JSON):
  model:     ssd.config.ModelConfig fields
  train:     ssd.config.TrainConfig fields
  cache_dir: where named checkpoints (e.g. `minilm-l6`) live
  role:      a name recorded with the exported model (e.g. `teacher`)
"""

import json
import os
import time
from typing import Any, Dict

from absl import logging
import numpy as np

from components import example_io
from rankdata import features as F
from ssd import config as C
from ssd import weights


def ranker_config_from(model: C.ModelConfig, cache_dir: str):
  """ModelConfig (user-facing) → rankers.config.RankerConfig (library)."""
  from rankers import config as RC  # pylint: disable=g-import-not-at-top
  checkpoint = weights.resolve_checkpoint(model.checkpoint, cache_dir)
  encoder = None
  if checkpoint is None:
    if not model.vocab_file:
      raise C.ConfigError('a randomly initialised model needs model.vocab_file')
    vocab_size = sum(1 for _ in open(model.vocab_file, encoding='utf-8'))
    e = model.encoder
    encoder = RC.EncoderConfig(
        vocab_size=vocab_size, hidden_size=e.hidden_size, num_layers=e.num_layers,
        num_heads=e.num_heads, intermediate_size=e.intermediate_size,
        hidden_dropout=e.hidden_dropout, attention_dropout=e.attention_dropout)
  cfg = RC.RankerConfig(
      architecture=model.architecture, encoder=encoder,
      vocab_file=model.vocab_file if checkpoint is None else None,
      checkpoint_dir=checkpoint, keep_layers=model.keep_layers,
      max_length=model.max_length, query_max_length=model.query_max_length,
      pooling=model.pooling, similarity=model.similarity, cosine_scale=model.cosine_scale)
  cfg.validate()
  return cfg


def parse_custom_config(custom_config: Dict[str, Any]):
  model = C.from_dict(C.ModelConfig, custom_config.get('model', {}), prefix='model')
  train = C.from_dict(C.TrainConfig, custom_config.get('train', {}), prefix='train')
  cache_dir = custom_config.get('cache_dir', C.PipelineConfig.cache_dir)
  role = custom_config.get('role', 'model')
  return model, train, cache_dir, role


def run_fn(fn_args) -> None:
  """TFX Trainer entry point."""
  from rankers import export as rexport  # pylint: disable=g-import-not-at-top
  from rankers import models as rmodels
  from rankers import training as rtraining

  model_cfg, train_cfg, cache_dir, role = parse_custom_config(fn_args.custom_config or {})
  ranker_cfg = ranker_config_from(model_cfg, cache_dir)
  logging.info('[%s] building %s (checkpoint=%s, keep_layers=%s)', role,
               ranker_cfg.architecture, ranker_cfg.checkpoint_dir, ranker_cfg.keep_layers)
  ranker = rmodels.build_ranker(ranker_cfg)

  history: Dict[str, Any] = {'epochs': train_cfg.epochs}
  if train_cfg.epochs > 0:
    t0 = time.time()
    train_examples = [ex for ex in example_io.read_files(fn_args.train_files)
                      if ex.get(F.LABEL) is not None]
    if not train_examples:
      raise ValueError(f'no labelled examples in train files {fn_args.train_files}')
    data = rtraining.group_into_lists(train_examples, list_size=train_cfg.list_size,
                                      seed=train_cfg.seed)
    logging.info('[%s] %d labelled pairs in %d lists (read in %.1fs)', role,
                 len(train_examples), len(data.query), time.time() - t0)
    history = rtraining.train_ranker(
        ranker, data, loss=train_cfg.loss, epochs=train_cfg.epochs,
        batch_lists=train_cfg.batch_lists, learning_rate=train_cfg.learning_rate,
        warmup_fraction=train_cfg.warmup_fraction, seed=train_cfg.seed,
        log_every=train_cfg.log_every,
        tensorboard_dir=os.path.join(fn_args.model_run_dir, 'tensorboard'))
    history = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in history.items()}
  else:
    logging.info('[%s] epochs=0: exporting the initial model without training', role)

  metadata = {'role': role, 'model': C.to_dict(model_cfg), 'train': C.to_dict(train_cfg),
              'history': history}
  rexport.export_ranker(ranker, fn_args.serving_model_dir, extra_metadata=metadata)
  os.makedirs(fn_args.model_run_dir, exist_ok=True)
  with open(os.path.join(fn_args.model_run_dir, 'training_summary.json'), 'w') as f:
    json.dump(metadata, f, indent=1, default=str)
  logging.info('[%s] exported SavedModel to %s', role, fn_args.serving_model_dir)
