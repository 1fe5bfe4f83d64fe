"""`create_pipeline(config)`: the pure factory for the SSD ranker pipeline.

It only wires components; runners (local_runner.py, kubeflow_runner.py)
bind an environment: metadata store, Beam arguments, pipeline root.

Paths are passed as the config gives them (a path or a URI such as
gs://bucket/root): the factory reads no data and resolves no path against
this machine, so the same pipeline compiles for a cluster. Runners that
bind a local environment make local relative paths absolute first
(local_runner.localize). The one thing it reads is the project's own
source, to compute the code fingerprint when none is given
(pipelines/code_fingerprint.py).

DAG:
  PretrainedCheckpoint[pretrained_checkpoint(_<slug>)]  each distinct checkpoint → artifact
  RankingExampleGen ─┬─ StatisticsGen → SchemaGen → ExampleValidator [→ AnomaliesGate]
                     ├─ SplitsGate (SSD runs: stops on an empty unlabelled split)
                     ├─ Trainer[teacher_trainer]      fine-tune T from the checkpoint
                     ├─ Trainer[teacher_pretrained]   the checkpoint untrained (baseline)
                     └─ RankingEvaluator[teacher_evaluator] → selected T (teacher of round 1)
  for r in 1..rounds:
     PseudoLabeler[pseudo_labeler_r{r}]          teacher scores train + unlabelled
     Trainer[teacher_prime_trainer_r{r}]         T'_r on labelled + pseudo-labelled
     RankingEvaluator[teacher_prime_evaluator_r{r}]
        dev: T'_r vs its teacher → blessing; selected = the better (next teacher)
        gated by round r-1's blessing: a round that did not beat its teacher ends
        the iteration (later rounds pass the best teacher through, untrained)
  PseudoLabeler[transfer_labeler]     best teacher scores the transfer set
  Trainer[student_trainer]            S distilled from the best teacher
  Trainer[student_supervised]         S_sup: same architecture, labels only
  RankingEvaluator[student_evaluator] S vs S_sup, BM25, retention x teacher, and the
                                      model in production (newest push under the
                                      Pusher's destination); never cached
  Pusher[student_pusher]              pushes S when blessed
"""

import dataclasses
import json
import os
import re
from typing import Any, Dict, List, Optional

# The modules, not `from tfx import v1` (which imports google-cloud-aiplatform).
from tfx import components as tfx_components
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import pusher_pb2
from tfx.proto import trainer_pb2

from components.pretrained_checkpoint import spec as ckpt_spec
from components.pretrained_checkpoint.component import PretrainedCheckpointComponent
from components.common import code_version
from components.anomalies_gate.component import AnomaliesGate
from components.splits_gate.component import SplitsGate
from components.pseudo_labeler import spec as pl_spec
from components.pseudo_labeler.component import PseudoLabeler
from components.ranker_trainer.component import RankerTrainer
from components.ranking_evaluator import spec as eval_spec
from components.ranking_evaluator.component import RankingEvaluator
from components.ranking_example_gen import spec as eg_spec
from components.ranking_example_gen.component import RankingExampleGen
from pipelines import code_fingerprint as code_fp
from pipelines import stage_configs
from pipelines import validation
from rankdata import features as F
from runconfig import checkpoints
from runconfig import config as C

TRAINER_RUN_FN = 'components.ranker_trainer.module.run_fn'

# Node ids, used by reports and lineage queries.
EXAMPLE_GEN = 'ranking_example_gen'
STATISTICS_GEN = 'statistics_gen'
SCHEMA_GEN = 'schema_gen'
EXAMPLE_VALIDATOR = 'example_validator'
ANOMALIES_GATE = 'anomalies_gate'
SPLITS_GATE = 'splits_gate'
TEACHER_TRAINER = 'teacher_trainer'
TEACHER_PRETRAINED = 'teacher_pretrained'
TEACHER_EVALUATOR = 'teacher_evaluator'
TRANSFER_LABELER = 'transfer_labeler'
STUDENT_TRAINER = 'student_trainer'
STUDENT_SUPERVISED = 'student_supervised'
STUDENT_EVALUATOR = 'student_evaluator'
STUDENT_PUSHER = 'student_pusher'



def pseudo_labeler_id(r: int) -> str:
  return f'pseudo_labeler_r{r}'


def teacher_prime_trainer_id(r: int) -> str:
  return f'teacher_prime_trainer_r{r}'


def teacher_prime_evaluator_id(r: int) -> str:
  return f'teacher_prime_evaluator_r{r}'


def teacher_prime_role(r: int) -> str:
  return f'teacher_prime_r{r}'

# Roles in reports and the metrics JSON.
ROLE_BM25 = 'bm25'
ROLE_TEACHER = 'teacher'
ROLE_TEACHER_FINETUNED = 'teacher_finetuned'
ROLE_TEACHER_PRETRAINED = 'teacher_pretrained'
ROLE_STUDENT = 'student'
ROLE_STUDENT_SUPERVISED = 'student_supervised'
ROLE_BEST_TEACHER = 'best_teacher'
ROLE_LAST_BLESSED_STUDENT = 'last_blessed_student'


def serving_dir(cfg: C.PipelineConfig) -> str:
  """The Pusher's destination: where the model in production lives."""
  return cfg.push.serving_dir or os.path.join(cfg.pipeline_root, 'serving')


def compares_with_production(cfg: C.PipelineConfig) -> bool:
  """Whether the student evaluator compares S with the model now in production."""
  return cfg.semi_supervised and cfg.student.enabled and cfg.blessing.compare_last_blessed


def uncached_nodes(cfg: C.PipelineConfig) -> List[str]:
  """Nodes that must never come from the cache.

  The student evaluator reads the model now in production from the push
  destination, which is not among its inputs: a cached result could compare
  S with a model that is no longer there. Runners apply this
  (local_runner.py: the IR's caching options; kubeflow_runner.py: the
  task's cachingOptions).
  """
  return [STUDENT_EVALUATOR] if compares_with_production(cfg) else []


def trainer_custom_config(model: C.ModelConfig, train: C.TrainConfig,
                          role: str, objective: Optional[C.ObjectiveConfig] = None,
                          noise: Optional[C.NoiseConfig] = None, warm_start: bool = False,
                          hybrid: bool = False, candidates_k: Optional[int] = None,
                          check_size_against_base: bool = False,
                          mode: Optional[str] = None) -> dict:
  """The Trainer's custom_config (plain JSON; parsed by the module's run_fn).

  No weights location: a model with a checkpoint reads it from the trainer's
  `checkpoint` input artifact. `mode` (T' only) is recorded for lineage;
  run_fn reads the resolved noise.
  """
  out = {'model': C.to_dict(model), 'train': C.to_dict(train), 'role': role,
         'warm_start': warm_start, 'hybrid': hybrid, 'candidates_k': candidates_k}
  if check_size_against_base:
    out['check_size_against_base'] = True
  if objective is not None:
    out['objective'] = C.to_dict(objective)
  if noise is not None:
    out['noise'] = C.to_dict(noise)
  if mode is not None:
    out['mode'] = mode
  return out


def ranker_trainer(node_id: str, examples, custom_config: dict, train_splits: List[str],
                   eval_split: str, fps: code_fp.NodeFingerprints, base_model=None,
                   checkpoint=None):
  """The Trainer running our run_fn; every ranker in the DAG is one of these.

  `checkpoint`: the PretrainedCheckpoint channel the model starts from (None
  for random initialisation or a warm start from `base_model`).
  The fingerprint of the code run_fn and the trainer's executor reach goes
  into custom_config: TFX's cache key sees the run_fn import path only, not
  the code behind it (pipelines/code_fingerprint.py).
  """
  return RankerTrainer(
      run_fn=TRAINER_RUN_FN, examples=examples, base_model=base_model, checkpoint=checkpoint,
      train_args=trainer_pb2.TrainArgs(splits=train_splits),
      eval_args=trainer_pb2.EvalArgs(splits=[eval_split]),
      custom_config=dict(custom_config, **{
          code_version.CODE_FINGERPRINT_KEY: trainer_fingerprint(fps)})
  ).with_id(node_id)


def trainer_fingerprint(fps: code_fp.NodeFingerprints) -> str:
  """Of run_fn's module and of the executor that calls it (which passes it
  the checkpoint and the teacher's embeddings): both run in a trainer."""
  return fps.of_modules((TRAINER_RUN_FN.rsplit('.', 1)[0],
                         RankerTrainer.EXECUTOR_SPEC.executor_class.__module__))


def checkpoint_slug(source: str) -> str:
  """A node-id-safe name for a checkpoint source (its last path part)."""
  base = source.rstrip('/').rsplit('/', 1)[-1]
  return re.sub(r'[^a-z0-9]+', '_', base.lower()).strip('_') or 'checkpoint'


def checkpoint_models(cfg: C.PipelineConfig) -> List[C.ModelConfig]:
  """The models the DAG builds from a pretrained checkpoint (in DAG order)."""
  models = [cfg.teacher.model]
  if cfg.semi_supervised:
    if cfg.teacher_prime.rounds > 0 and not cfg.teacher_prime.warm_start:
      models.append(teacher_prime_model(cfg))
    if cfg.student.enabled:
      models.append(cfg.student.model)
  return [m for m in models if m.checkpoint]


def checkpoint_nodes(cfg: C.PipelineConfig, fps: code_fp.NodeFingerprints
                     ) -> Dict[str, PretrainedCheckpointComponent]:
  """One PretrainedCheckpoint node per distinct checkpoint source, by source.

  The first source in DAG order (the teacher's, when it has one) is node
  `pretrained_checkpoint`; every other one `pretrained_checkpoint_<slug>`
  (slugs made unique by a counter). So giving T' or S a checkpoint of its
  own adds a node and leaves the first one's id, and with it the cache of
  everything built from it (T, S_sup), unchanged.
  """
  sources = list(dict.fromkeys(m.checkpoint for m in checkpoint_models(cfg)))
  nodes: Dict[str, PretrainedCheckpointComponent] = {}
  used = set()
  for index, source in enumerate(sources):
    node_id = ckpt_spec.NODE_ID
    if index:
      node_id = f'{ckpt_spec.NODE_ID}_{checkpoint_slug(source)}'
      base, n = node_id, 2
      while node_id in used:
        node_id, n = f'{base}_{n}', n + 1
    used.add(node_id)
    # The weights cache only matters for the name it resolves (local runs).
    cache_dir = cfg.cache_dir if checkpoints.is_named(source) else ''
    nodes[source] = PretrainedCheckpointComponent(
        source=source, cache_dir=cache_dir,
        code_fingerprint=fps.of_component(PretrainedCheckpointComponent)).with_id(node_id)
  return nodes


def teacher_prime_model(cfg: C.PipelineConfig) -> C.ModelConfig:
  return cfg.teacher_prime.model or cfg.teacher.model


def check_size_at_run_time(cfg: C.PipelineConfig) -> bool:
  """Whether T' trainers must check T' >= T once they have read the checkpoints
  (custom_config `check_size_against_base`): the config alone does not size
  both (a checkpoint directory or URI). The rule itself is
  runconfig.config.teacher_prime_size_problem, applied by validation.py
  whenever both sizes are known before the run.
  """
  t, tp = cfg.teacher.model, teacher_prime_model(cfg)
  if t.checkpoint and t.checkpoint == tp.checkpoint:
    # The same checkpoint: T' is no smaller unless it keeps fewer layers.
    if tp.keep_layers is None or (t.keep_layers is not None and tp.keep_layers >= t.keep_layers):
      return False
  return validation.static_size(t, cfg.cache_dir) is None or validation.static_size(
      tp, cfg.cache_dir) is None


def required_splits(cfg: C.PipelineConfig) -> List[str]:
  """Splits ingestion must not leave empty: labelled data for the teacher and
  its selection.

  The same in every mode, so that `semi_supervised: false` and `true` share
  the ingest step and the whole teacher stage from the cache. What only SSD
  needs is checked by the SplitsGate (gated_splits), before the teacher.
  """
  del cfg
  return [F.SPLIT_TRAIN, F.SPLIT_DEV]


def gated_splits(cfg: C.PipelineConfig) -> List[str]:
  """Splits the SplitsGate requires right after ingestion (none: no gate)."""
  return [F.SPLIT_UNLABELLED] if cfg.semi_supervised else []


@dataclasses.dataclass
class _Wiring:
  """What every stage builder needs: the config, fingerprints, checkpoints, the examples."""
  cfg: C.PipelineConfig
  fps: code_fp.NodeFingerprints
  checkpoints: Dict[str, PretrainedCheckpointComponent]
  examples: Any = None

  def checkpoint_of(self, model: C.ModelConfig):
    """The PretrainedCheckpoint channel a model starts from (None: random init)."""
    return (self.checkpoints[model.checkpoint].outputs[ckpt_spec.CHECKPOINT_KEY]
            if model.checkpoint else None)

  def trainer(self, node_id: str, examples, custom_config: dict, train_splits: List[str],
              eval_split: str, model: Optional[C.ModelConfig], base_model=None):
    return ranker_trainer(node_id, examples, custom_config, train_splits, eval_split, self.fps,
                          base_model=base_model,
                          checkpoint=self.checkpoint_of(model) if model else None)

  def evaluator(self, node_id: str, config_json: str, **channels):
    return RankingEvaluator(
        examples=self.examples, config_json=config_json,
        code_fingerprint=self.fps.of_component(RankingEvaluator), **channels).with_id(node_id)

  def labeller(self, node_id: str, model, pl_cfg: dict, **channels):
    return PseudoLabeler(
        examples=self.examples, model=model,
        config_json=C.to_json(C.from_dict(pl_spec.PseudoLabelConfig, pl_cfg)),
        code_fingerprint=self.fps.of_component(PseudoLabeler), **channels).with_id(node_id)


def create_pipeline(cfg: C.PipelineConfig,
                    metadata_connection_config=None,
                    beam_pipeline_args: Optional[List[str]] = None,
                    code_fingerprint: Optional[str] = None,
                    code_root: Optional[str] = None) -> tfx_pipeline.Pipeline:
  """Builds the TFX pipeline described by `cfg`.

  Every execution that runs project code gets the fingerprint of the code
  it can reach (pipelines/code_fingerprint.py), so a change to that code,
  and only to it, misses the cache. `code_fingerprint` pins one value for
  every node; `code_root` hashes another copy of the sources (tests).
  """
  # The config's own rules (the ones `ssd validate` applies), not this
  # machine's files: the pipeline may be built for a cluster.
  validation.validate(cfg, files=False)
  fps = code_fp.NodeFingerprints(fixed=code_fingerprint, root=code_root)
  w = _Wiring(cfg, fps, checkpoint_nodes(cfg, fps))
  components = list(w.checkpoints.values())
  ingest, gates = ingestion(w)
  teacher, teacher_evaluator = teacher_stage(w, gates)
  components += ingest + teacher
  if cfg.semi_supervised:
    components += semi_supervised_stages(w, teacher_evaluator)
  return tfx_pipeline.Pipeline(
      pipeline_name=cfg.pipeline_name,
      pipeline_root=cfg.pipeline_root,
      components=components,
      enable_cache=cfg.enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args or cfg.beam.pipeline_args())


def ingestion(w: _Wiring):
  """(nodes, gates): ingestion, then the checks that must pass before any training."""
  cfg = w.cfg
  example_gen = RankingExampleGen(
      data_format=cfg.data.format, data_path=cfg.data.path,
      config_json=json.dumps({'data': C.to_dict(cfg.data), 'splits': C.to_dict(cfg.splits),
                              eg_spec.REQUIRED_SPLITS_CONFIG_KEY: required_splits(cfg)},
                             sort_keys=True),
      code_fingerprint=w.fps.of_component(RankingExampleGen)).with_id(EXAMPLE_GEN)
  w.examples = example_gen.outputs['examples']
  nodes, gates = [example_gen], []
  if gated_splits(cfg):
    # An SSD run without unlabelled data stops here, before any training.
    gates.append(SplitsGate(examples=w.examples, required_splits=','.join(gated_splits(cfg)),
                            code_fingerprint=w.fps.of_component(SplitsGate)).with_id(SPLITS_GATE))
    nodes.append(gates[-1])
  if cfg.data_validation:
    checks, gate = data_validation(w)
    nodes += checks
    gates += [gate] if gate else []
  return nodes, gates


def data_validation(w: _Wiring):
  """(nodes, gate): TFX's statistics, schema and validator, and the AnomaliesGate in `fail` mode."""
  cfg = w.cfg
  statistics_gen = tfx_components.StatisticsGen(examples=w.examples).with_id(STATISTICS_GEN)
  if cfg.data_validation_schema:
    # A curated (or frozen) schema: checking the data against a schema
    # inferred from that same data finds little.
    schema_gen = ImportSchemaGen(
        schema_file=cfg.data_validation_schema).with_id(SCHEMA_GEN)
  else:
    schema_gen = tfx_components.SchemaGen(
        statistics=statistics_gen.outputs['statistics'],
        infer_feature_shape=True).with_id(SCHEMA_GEN)
  validator = tfx_components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_gen.outputs['schema']).with_id(EXAMPLE_VALIDATOR)
  gate = None
  if cfg.data_validation_mode == 'fail':
    gate = AnomaliesGate(anomalies=validator.outputs['anomalies'],
                         code_fingerprint=w.fps.of_component(AnomaliesGate)).with_id(ANOMALIES_GATE)
  return [statistics_gen, schema_gen, validator] + ([gate] if gate else []), gate


def teacher_stage(w: _Wiring, gates: list):
  """(nodes, evaluator): T fine-tuned, the untrained checkpoint, and the selection between them."""
  teacher = w.cfg.teacher
  trainer = w.trainer(
      TEACHER_TRAINER, w.examples,
      trainer_custom_config(teacher.model, teacher.train, ROLE_TEACHER_FINETUNED),
      [F.SPLIT_TRAIN], F.SPLIT_DEV, teacher.model)
  pretrained = w.trainer(
      TEACHER_PRETRAINED, w.examples,
      trainer_custom_config(teacher.model, dataclasses.replace(teacher.train, epochs=0),
                            ROLE_TEACHER_PRETRAINED),
      [F.SPLIT_TRAIN], F.SPLIT_DEV, teacher.model)
  evaluator = w.evaluator(
      TEACHER_EVALUATOR,
      _evaluator_config(w.cfg, candidate_role=ROLE_TEACHER_FINETUNED,
                        baseline_role=ROLE_TEACHER_PRETRAINED, selected_role=ROLE_TEACHER,
                        min_improvement=w.cfg.evaluation.min_improvement),
      model=trainer.outputs['model'], baseline_model=pretrained.outputs['model'])
  for gate in gates:
    # Every later stage descends from these two, so a gate stops the run
    # before any training. Ordering only: not part of their cache keys.
    trainer.add_upstream_node(gate)
    pretrained.add_upstream_node(gate)
  return [trainer, pretrained, evaluator], evaluator


def _evaluator_config(cfg: C.PipelineConfig, **kwargs) -> str:
  return C.to_json(eval_spec.EvaluatorConfig(
      first_stage_role=ROLE_BM25, decision_split=F.SPLIT_DEV, report_splits=[F.SPLIT_TEST],
      decision_metric=cfg.evaluation.decision_metric, batch_size=cfg.evaluation.batch_size,
      decision_score=cfg.evaluation.decision_score, **kwargs))


def semi_supervised_stages(w: _Wiring, teacher_evaluator) -> list:
  """Rounds of pseudo-label → T', then distillation, evaluation and push."""
  nodes, teacher, prior = teacher_prime_rounds(w, teacher_evaluator)
  if w.cfg.student.enabled:
    nodes += student_stage(w, teacher, prior)
  return nodes


def teacher_prime_rounds(w: _Wiring, teacher_evaluator):
  """(nodes, best teacher, last evaluation): each round pseudo-labels, trains T'_r, selects.

  A round is gated by the previous round's blessing (selection: dev): the
  first T' that dev does not bless ends the iteration, and later rounds pass
  the best teacher through untrained. Each evaluator reuses the scores of the
  one before it (the teacher it compares against was scored there on the
  same rows; score_store.py).
  """
  cfg, tp = w.cfg, w.cfg.teacher_prime
  size_at_run_time = check_size_at_run_time(cfg)
  noise = C.resolve_noise(tp.mode, tp.noise)
  teacher, teacher_role = teacher_evaluator.outputs['selected_model'], ROLE_TEACHER
  prior, gate, nodes = teacher_evaluator.outputs['evaluation'], None, []
  for r in range(1, tp.rounds + 1):
    labeler = w.labeller(pseudo_labeler_id(r), teacher,
                         stage_configs.teacher_prime_labelling(cfg, teacher_role),
                         gate_blessing=gate)
    trainer = w.trainer(
        teacher_prime_trainer_id(r), labeler.outputs['pseudo_labelled'],
        trainer_custom_config(
            teacher_prime_model(cfg), tp.train, teacher_prime_role(r),
            objective=tp.objective, noise=noise, warm_start=tp.warm_start,
            check_size_against_base=size_at_run_time, mode=tp.mode),
        [F.SPLIT_TRAIN, F.SPLIT_UNLABELLED], F.SPLIT_TRAIN,
        None if tp.warm_start else teacher_prime_model(cfg), base_model=teacher)
    evaluator = w.evaluator(
        teacher_prime_evaluator_id(r),
        _evaluator_config(cfg, candidate_role=teacher_prime_role(r), baseline_role=teacher_role,
                          selected_role=f'teacher_after_r{r}', report_models=[eval_spec.CANDIDATE],
                          always_select_candidate=tp.selection == C.SELECTION_ALWAYS),
        model=trainer.outputs['model'], baseline_model=teacher, gate_blessing=gate,
        prior_evaluation=prior)
    nodes += [labeler, trainer, evaluator]
    teacher, teacher_role = evaluator.outputs['selected_model'], f'teacher_after_r{r}'
    prior = evaluator.outputs['evaluation']
    # selection: always goes on whatever dev says.
    gate = evaluator.outputs['blessing'] if tp.selection == C.SELECTION_DEV else None
  return nodes, teacher, prior


def student_stage(w: _Wiring, teacher, prior) -> list:
  """The best teacher labels the transfer set; S learns it, S_sup the labels; evaluate, push."""
  cfg, st = w.cfg, w.cfg.student
  # The trainers' eval split: where the hybrid weight is fitted (run_fn reads
  # it for nothing else).
  fit_split = F.SPLIT_CALIBRATION if st.hybrid else F.SPLIT_TRAIN
  transfer = w.labeller(TRANSFER_LABELER, teacher,
                        stage_configs.transfer_labelling(cfg, ROLE_BEST_TEACHER))
  student = w.trainer(
      STUDENT_TRAINER, transfer.outputs['pseudo_labelled'],
      trainer_custom_config(st.model, st.train, ROLE_STUDENT,
                            objective=st.objective, noise=C.SSD_NOISE, hybrid=st.hybrid,
                            candidates_k=cfg.splits.candidates_k),
      [F.SPLIT_TRAIN, F.SPLIT_UNLABELLED], fit_split, st.model)
  nodes, baseline = [transfer, student], None
  if st.supervised_baseline:
    supervised = w.trainer(
        STUDENT_SUPERVISED, w.examples,
        trainer_custom_config(
            st.model, st.train, ROLE_STUDENT_SUPERVISED,
            objective=C.ObjectiveConfig(hard_loss=st.objective.hard_loss, hard_weight=1.0,
                                        soft_weight=0.0),
            noise=C.SSD_NOISE, hybrid=st.hybrid, candidates_k=cfg.splits.candidates_k),
        [F.SPLIT_TRAIN], fit_split, st.model)
    nodes.append(supervised)
    baseline = supervised.outputs['model']
  # The model now in production is read from the push destination by the
  # evaluator itself (no resolver: open-source KFP cannot run one), so the
  # same model is found locally and on every Kubeflow backend.
  evaluator = w.evaluator(
      STUDENT_EVALUATOR,
      _evaluator_config(
          cfg, candidate_role=ROLE_STUDENT, baseline_role=ROLE_STUDENT_SUPERVISED,
          teacher_role=ROLE_BEST_TEACHER, last_blessed_role=ROLE_LAST_BLESSED_STUDENT,
          selected_role=ROLE_STUDENT, must_beat_first_stage=cfg.blessing.must_beat_first_stage,
          min_improvement=cfg.blessing.min_improvement, retention=cfg.blessing.retention,
          report_models=[eval_spec.CANDIDATE, eval_spec.BASELINE],
          production_dir=serving_dir(cfg) if compares_with_production(cfg) else None),
      model=student.outputs['model'], baseline_model=baseline, teacher_model=teacher,
      prior_evaluation=prior)
  nodes.append(evaluator)
  if cfg.push.enabled:
    nodes.append(tfx_components.Pusher(
        model=student.outputs['model'], model_blessing=evaluator.outputs['blessing'],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving_dir(cfg))),
    ).with_id(STUDENT_PUSHER))
  return nodes
