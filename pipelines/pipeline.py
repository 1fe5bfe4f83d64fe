"""`create_pipeline(config)`: the pure factory for the SSD ranker pipeline.

It only wires components; runners (local_runner.py, later Kubeflow) bind an
environment: metadata store, Beam arguments, pipeline root.

DAG (this stage of the project):
  RankingExampleGen ─┬─ StatisticsGen → SchemaGen → ExampleValidator
                     ├─ Trainer[teacher_trainer]     (fine-tune from the checkpoint)
                     ├─ Trainer[teacher_pretrained]  (the checkpoint, untrained: baseline)
                     └─ RankingEvaluator[teacher_evaluator]
                          dev: fine-tuned vs pretrained → blessing + selected teacher
                          test: selected teacher and BM25, for the report only
"""

import dataclasses
import json
import os
from typing import List, Optional

from tfx import v1 as tfx

from components.ranking_evaluator import spec as eval_spec
from components.ranking_evaluator.component import RankingEvaluator
from components.ranking_example_gen.component import RankingExampleGen
from rankdata import features as F
from ssd import config as C

TRAINER_RUN_FN = 'components.ranker_trainer.module.run_fn'

# Node ids, used by reports and lineage queries.
EXAMPLE_GEN = 'ranking_example_gen'
STATISTICS_GEN = 'statistics_gen'
SCHEMA_GEN = 'schema_gen'
EXAMPLE_VALIDATOR = 'example_validator'
TEACHER_TRAINER = 'teacher_trainer'
TEACHER_PRETRAINED = 'teacher_pretrained'
TEACHER_EVALUATOR = 'teacher_evaluator'

# Roles in reports and the metrics JSON.
ROLE_BM25 = 'bm25'
ROLE_TEACHER = 'teacher'
ROLE_TEACHER_FINETUNED = 'teacher_finetuned'
ROLE_TEACHER_PRETRAINED = 'teacher_pretrained'


def trainer_custom_config(model: C.ModelConfig, train: C.TrainConfig, cache_dir: str,
                          role: str) -> dict:
  return {'model': C.to_dict(model), 'train': C.to_dict(train),
          'cache_dir': os.path.expanduser(cache_dir), 'role': role}


def create_pipeline(cfg: C.PipelineConfig,
                    metadata_connection_config=None,
                    beam_pipeline_args: Optional[List[str]] = None) -> tfx.dsl.Pipeline:
  """Builds the TFX pipeline described by `cfg`."""
  components = []
  example_gen = RankingExampleGen(
      data_format=cfg.data.format, data_path=cfg.data.path,
      config_json=json.dumps({'data': C.to_dict(cfg.data), 'splits': C.to_dict(cfg.splits)},
                               sort_keys=True)).with_id(EXAMPLE_GEN)
  examples = example_gen.outputs['examples']
  components.append(example_gen)

  if cfg.data_validation:
    statistics_gen = tfx.components.StatisticsGen(examples=examples).with_id(STATISTICS_GEN)
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs['statistics'],
        infer_feature_shape=True).with_id(SCHEMA_GEN)
    validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs['statistics'],
        schema=schema_gen.outputs['schema']).with_id(EXAMPLE_VALIDATOR)
    components += [statistics_gen, schema_gen, validator]

  teacher = cfg.teacher
  trainer = tfx.components.Trainer(
      run_fn=TRAINER_RUN_FN, examples=examples,
      train_args=tfx.proto.TrainArgs(splits=[F.SPLIT_TRAIN]),
      eval_args=tfx.proto.EvalArgs(splits=[F.SPLIT_DEV]),
      custom_config=trainer_custom_config(teacher.model, teacher.train, cfg.cache_dir,
                                          ROLE_TEACHER_FINETUNED)).with_id(TEACHER_TRAINER)
  pretrained = tfx.components.Trainer(
      run_fn=TRAINER_RUN_FN, examples=examples,
      train_args=tfx.proto.TrainArgs(splits=[F.SPLIT_TRAIN]),
      eval_args=tfx.proto.EvalArgs(splits=[F.SPLIT_DEV]),
      custom_config=trainer_custom_config(
          teacher.model, dataclasses.replace(teacher.train, epochs=0), cfg.cache_dir,
          ROLE_TEACHER_PRETRAINED)).with_id(TEACHER_PRETRAINED)
  evaluator = RankingEvaluator(
      examples=examples, model=trainer.outputs['model'],
      baseline_model=pretrained.outputs['model'],
      config_json=C.to_json(eval_spec.EvaluatorConfig(
          candidate_role=ROLE_TEACHER_FINETUNED, baseline_role=ROLE_TEACHER_PRETRAINED,
          selected_role=ROLE_TEACHER, first_stage_role=ROLE_BM25,
          decision_split=F.SPLIT_DEV, report_splits=[F.SPLIT_TEST],
          decision_metric=cfg.evaluation.decision_metric,
          min_improvement=cfg.evaluation.min_improvement,
          batch_size=cfg.evaluation.batch_size))).with_id(TEACHER_EVALUATOR)
  components += [trainer, pretrained, evaluator]

  return tfx.dsl.Pipeline(
      pipeline_name=cfg.pipeline_name,
      pipeline_root=os.path.abspath(cfg.pipeline_root),
      components=components,
      enable_cache=cfg.enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args or cfg.beam.pipeline_args())
