"""Typed pipeline configuration, read once at the entry point.

A run is described by one YAML file (see configs/). It is parsed into the
dataclasses below; command-line overrides (`--set a.b=value`) are applied to
the raw dict before parsing, so unknown keys and wrong types fail in one place
with a message naming the key. Components receive their slice of the config
serialised once as JSON (`to_json`), never as loose flags.
"""

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Tuple, Type, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from rankdata import splits as rsplits
from rankers import config as RC

T = TypeVar('T')

# Name that resolves to the offline MiniLM-L6 checkpoint in the weights cache.
MINILM_CHECKPOINT = 'minilm-l6'


class ConfigError(ValueError):
  """A configuration value is missing, unknown or of the wrong type."""


@dataclasses.dataclass
class DataConfig:
  """Where the ranking dataset comes from."""
  format: str = 'cranfield'   # cranfield | beir | trec | pairs
  path: str = '../shared/datasets/cranfield'
  # Keep a seeded random subset of this many source queries (tests, smoke runs).
  max_queries: Optional[int] = None
  # Extra unlabelled corpus of (query, doc) pairs as JSONL, added to `unlabelled`.
  unlabelled_pairs: Optional[str] = None


# The `splits:` section is parsed straight into the one split schema, which
# lives with the code that applies it (defaults included: one place per fact).
# `splits.bm25` is rankdata.bm25.BM25Params (k1, b, method, stemmer, stopwords).
SplitsConfig = rsplits.SplitConfig


@dataclasses.dataclass
class EncoderSizeConfig:
  """Sizes of a randomly initialised encoder (ignored with a checkpoint)."""
  num_layers: int = 2
  hidden_size: int = 128
  num_heads: int = 2
  intermediate_size: int = 512
  hidden_dropout: float = 0.1
  attention_dropout: float = 0.1


@dataclasses.dataclass
class ModelConfig:
  """One ranker: architecture, initialisation and input sizes."""
  architecture: str = 'bi_encoder'   # bi_encoder | cross_encoder
  # `minilm-l6` (the offline checkpoint in the weights cache), a path to any
  # Hugging Face-format BERT directory, or null for random initialisation.
  checkpoint: Optional[str] = MINILM_CHECKPOINT
  keep_layers: Optional[int] = None
  # Vocabulary for random initialisation; defaults to the checkpoint's.
  vocab_file: Optional[str] = None
  encoder: EncoderSizeConfig = dataclasses.field(default_factory=EncoderSizeConfig)
  max_length: int = 128
  query_max_length: int = 32
  pooling: str = 'mean'
  similarity: str = 'cosine'
  cosine_scale: float = 20.0


@dataclasses.dataclass
class TrainConfig:
  epochs: int = 1
  loss: str = RC.DEFAULT_HARD_LOSS
  list_size: int = 16
  batch_lists: int = 2
  learning_rate: float = 2e-5
  warmup_fraction: float = RC.DEFAULT_WARMUP_FRACTION
  seed: int = 42
  log_every: int = RC.DEFAULT_LOG_EVERY
  freeze_word_embeddings: bool = False   # the word-piece table stays as loaded


@dataclasses.dataclass
class TeacherConfig:
  model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
  train: TrainConfig = dataclasses.field(default_factory=TrainConfig)


@dataclasses.dataclass
class NoiseConfig:
  """Noisy Student noise. `null` = the mode's default (see NOISY_STUDENT_NOISE).

  Input noise works on the text of training pairs; model noise on the encoder.
  Noise is only ever active in training, never in exported serving graphs.
  """
  token_dropout: Optional[float] = None    # drop word pieces of the document
  mask_prob: Optional[float] = None        # replace word pieces with [MASK]
  shuffle_window: Optional[int] = None     # move words at most this far
  hidden_dropout: Optional[float] = None   # overrides the model's dropout
  attention_dropout: Optional[float] = None
  stochastic_depth: Optional[float] = None  # layer drop, rising with depth to this rate


# Defaults per mode: `ssd` trains without noise (dropout off too, as in the
# SSD recipe); `noisy_student` turns every kind on.
SSD_NOISE = NoiseConfig(token_dropout=0.0, mask_prob=0.0, shuffle_window=0,
                        hidden_dropout=0.0, attention_dropout=0.0, stochastic_depth=0.0)
NOISY_STUDENT_NOISE = NoiseConfig(token_dropout=0.1, mask_prob=0.1, shuffle_window=3,
                                  hidden_dropout=0.1, attention_dropout=0.1, stochastic_depth=0.1)
MODES = ('ssd', 'noisy_student')
# teacher_prime.selection: which teacher goes on after each round.
#   dev:    T'_r only when it is blessed on dev (beats its teacher), else the
#           teacher stays; later rounds are skipped once one is not blessed.
#   always: T'_r teaches the next round and the student whatever dev says
#           (the SSD paper's recipe; `ssd bench quality` uses it so that
#           "S from T'" really learns from T'). Dev still records the blessing.
SELECTION_DEV, SELECTION_ALWAYS = 'dev', 'always'
SELECTIONS = (SELECTION_DEV, SELECTION_ALWAYS)
PSEUDO_TARGETS = ('soft', 'hard')
# ObjectiveConfig.embedding_loss: off, or a name in rankers.config.EMBEDDING_LOSSES.
EMBEDDING_LOSS_OFF = RC.EMBEDDING_LOSS_OFF


def uses_teacher_embeddings(objective: Optional['ObjectiveConfig']) -> bool:
  """Whether a trainer with this objective learns the teacher's embeddings
  (so its pseudo-labeller must write them)."""
  return objective is not None and (objective.embedding_loss != EMBEDDING_LOSS_OFF
                                    or objective.in_batch_negatives)


def teacher_prime_size_problem(teacher: Tuple[int, int],
                               teacher_prime: Tuple[int, int]) -> Optional[str]:
  """The T' >= T rule, on (layers, hidden size): why T' is too small, or None.

  One rule for the config check (pipelines/validation.py, sizes known before
  a run) and the T' trainer (components/ranker_trainer/module.py, sizes only
  known once a checkpoint has been read).
  """
  if teacher_prime[0] < teacher[0] or teacher_prime[1] < teacher[1]:
    return (f'smaller than teacher.model: {teacher_prime[0]} layers x {teacher_prime[1]} '
            f'hidden < {teacher[0]} x {teacher[1]}; T\' must be equal or larger (use student '
            'for smaller models)')
  return None


def resolve_noise(mode: str, noise: NoiseConfig) -> NoiseConfig:
  """Fills unset noise fields with the mode's defaults."""
  if mode not in MODES:
    raise ConfigError(f'teacher_prime.mode: expected one of {MODES}, got {mode!r}')
  base = NOISY_STUDENT_NOISE if mode == 'noisy_student' else SSD_NOISE
  return NoiseConfig(**{f.name: (getattr(noise, f.name) if getattr(noise, f.name) is not None
                                 else getattr(base, f.name)) for f in dataclasses.fields(NoiseConfig)})


@dataclasses.dataclass
class ObjectiveConfig:
  """What a retrained or distilled model learns from.

  hard: loss on true labels (labelled pairs); soft: loss on teacher scores
  (pseudo-labelled / transfer pairs). Pairs with both get both, weighted.
  """
  hard_loss: str = RC.DEFAULT_HARD_LOSS
  hard_weight: float = 1.0
  soft_loss: str = RC.DEFAULT_SOFT_LOSS     # listwise_kl | mse | margin_mse
  soft_weight: float = 1.0
  # What pseudo-labelled (unlabelled) pairs are learnt from:
  #   soft: the pseudo-labeller's soft label, softmax(teacher_score / T) with
  #     T = its `temperature` (the stage's one temperature), renormalised
  #     over each training list, under `soft_loss` listwise_kl; mse and
  #     margin_mse regress the raw teacher score instead (no temperature);
  #   hard: its hard label (1 for the teacher's top-k, else 0) under
  #     `hard_loss`, like a true label: Noisy Student's hard-label variant.
  pseudo_targets: str = 'soft'
  # Weight each pseudo-labelled list by the teacher's confidence in it
  # (the pseudo-labeller's `confidence`); lists with true labels weigh 1.
  confidence_weighting: bool = False
  # Also apply the soft loss to pairs that have a true label (distillation:
  # yes, the teacher's scores are the transfer signal; T' retraining: no).
  soft_on_labelled: bool = False
  # Cap on the pseudo-labelled lists a trainer samples (seeded) per run: the
  # unlabelled corpus is many times the labelled set, the CPU budget is not.
  max_soft_lists: Optional[int] = None
  # Embedding-level pseudo-labels (bi-encoder teacher and student only):
  # `none` (off), `mse` (||p(s) - t||^2) or `cosine` (1 - cos(p(s), t))
  # between the student's pooled embedding s of each query and document in
  # its training lists and the teacher's embedding t of the same text, which
  # the pseudo-labeller then writes (EMBEDDING_LOSS_OFF: it writes none).
  # p is a linear projection, trained with the model and never exported,
  # when the two widths differ (the identity otherwise).
  embedding_loss: str = 'none'
  # Weight of that term beside the hard and soft losses.
  embedding_weight: float = 1.0
  # In-batch negatives (bi-encoder teacher and student only): each query of a
  # training batch is also scored against the other lists' documents, and a
  # listwise KL to the teacher's scores of those pairs (from its embeddings,
  # which the pseudo-labeller then writes) is added with `soft_weight`.
  in_batch_negatives: bool = False


@dataclasses.dataclass
class TeacherPrimeConfig:
  """T': retrained on labelled + pseudo-labelled data, `rounds` times."""
  mode: str = 'ssd'   # ssd | noisy_student
  rounds: int = 1
  # null = same as the teacher's model (T' must be equal or larger).
  model: Optional[ModelConfig] = None
  train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
  objective: ObjectiveConfig = dataclasses.field(default_factory=ObjectiveConfig)
  noise: NoiseConfig = dataclasses.field(default_factory=NoiseConfig)
  warm_start: bool = False   # start from the round's teacher weights (same architecture)
  selection: str = SELECTION_DEV   # dev | always (SELECTIONS above)
  # PseudoLabeler config (components/pseudo_labeler/spec.py: PseudoLabelConfig).
  pseudo_label: Dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class StudentConfig:
  """S: the small production ranker distilled from the final teacher."""
  model: ModelConfig = dataclasses.field(default_factory=lambda: ModelConfig(keep_layers=2))
  train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
  objective: ObjectiveConfig = dataclasses.field(
      default_factory=lambda: ObjectiveConfig(hard_weight=0.0, soft_on_labelled=True))
  # false: the pipeline ends after the T' rounds (e.g. a benchmark row that
  # only needs T'); no transfer labelling, student, evaluation or push.
  enabled: bool = True
  # Same architecture trained on labels only, to measure what SSD bought.
  supervised_baseline: bool = True
  # Fuse with the first-stage score: s = model + w * first_stage, w fitted on
  # the calibration split (needs splits.calibration_queries > 0).
  hybrid: bool = False
  # Transfer-set scoring by the final teacher (PseudoLabelConfig fields).
  transfer: Dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class BlessingConfig:
  """When a student is blessed (all on the dev split, decision_metric)."""
  # S must beat S_sup by more than this (negative values loosen the rule, for smoke tests).
  min_improvement: float = 0.0
  retention: float = 0.9            # student keeps >= retention x best teacher (dev nDCG@10)
  must_beat_first_stage: bool = True
  compare_last_blessed: bool = True


@dataclasses.dataclass
class PushConfig:
  enabled: bool = True
  # Where the Pusher copies blessed students; default <pipeline_root>/serving.
  serving_dir: Optional[str] = None


@dataclasses.dataclass
class EvaluationConfig:
  # Metric that decides between models; measured on the dev split only.
  decision_metric: str = 'ndcg@10'
  # plain | hybrid: which scores the blessing rules compare, like with like
  # (components/ranking_evaluator/rules.py). Hybrid weights are fitted on the
  # calibration split, never on dev.
  decision_score: str = 'plain'
  # A fine-tuned teacher must beat its un-fine-tuned start by this much.
  min_improvement: float = 0.0
  batch_size: int = 64


# Beam options that tell TFX the workers already have their code
# (tfx.utils.dependency_utils.make_beam_dependency_flags). When none is set,
# every Beam executor (ExampleGen, StatisticsGen, the PseudoLabeler, ...)
# copies the installed TFX (49 MB) into a new temp directory, builds an sdist
# of it (~4 s) and passes it as --extra_package for the runner to stage; the
# directory is never deleted. The DirectRunner stages nothing (its workers are
# this process or subprocesses of the same Python), so for it the package is
# pure cost: a day of local benchmark runs here left 634 such directories,
# 27 GB of /tmp. For the DirectRunner, `pipeline_args` therefore sets
# `--sdk_container_image` to a value no container runtime can pull (it fails
# loudly if anything ever tried); any other runner gets nothing, and TFX
# builds the package for it as before (or the user's own flag stands).
TFX_DEPENDENCY_FLAGS = ('--extra_package', '--extra_packages', '--setup_file',
                        '--requirements_file', '--worker_harness_container_image',
                        '--sdk_container_image')
DIRECT_RUNNER_STAGES_NOTHING = '--sdk_container_image=unused:the-direct-runner-stages-nothing'


@dataclasses.dataclass
class BeamConfig:
  """Beam runner and options of every Beam step (pseudo-labelling, statistics).

  `runner` names any Beam runner (DirectRunner, DataflowRunner, FlinkRunner,
  SparkRunner, PortableRunner, ...); `args` are its options, passed as they
  are. The direct_* fields apply to the DirectRunner only.
  """
  direct_num_workers: int = 1
  direct_running_mode: str = 'in_memory'   # in_memory | multi_threading | multi_processing
  extra_args: List[str] = dataclasses.field(default_factory=list)   # appended after `args`
  runner: str = 'DirectRunner'
  args: List[str] = dataclasses.field(default_factory=list)

  def pipeline_args(self) -> List[str]:
    out = [f'--runner={self.runner}']
    user = list(self.args) + list(self.extra_args)
    if self.runner == 'DirectRunner':
      out += [f'--direct_num_workers={self.direct_num_workers}',
              f'--direct_running_mode={self.direct_running_mode}']
      if not any(a.split('=', 1)[0] in TFX_DEPENDENCY_FLAGS for a in user):
        out.append(DIRECT_RUNNER_STAGES_NOTHING)
    return out + user


@dataclasses.dataclass
class PipelineConfig:
  pipeline_name: str = 'ssd-cranfield'
  pipeline_root: str = 'outputs/cranfield'
  # SQLite ML Metadata store; defaults to <pipeline_root>/metadata.sqlite.
  metadata_path: Optional[str] = None
  # Where `ssd weights` puts pretrained checkpoints.
  cache_dir: str = '~/.cache/ssd-rankers'
  enable_cache: bool = True
  data_validation: bool = True
  data: DataConfig = dataclasses.field(default_factory=DataConfig)
  splits: SplitsConfig = dataclasses.field(default_factory=SplitsConfig)
  teacher: TeacherConfig = dataclasses.field(default_factory=TeacherConfig)
  # Stages after the teacher; `semi_supervised: false` stops after the teacher.
  semi_supervised: bool = True
  teacher_prime: TeacherPrimeConfig = dataclasses.field(default_factory=TeacherPrimeConfig)
  student: StudentConfig = dataclasses.field(default_factory=StudentConfig)
  blessing: BlessingConfig = dataclasses.field(default_factory=BlessingConfig)
  push: PushConfig = dataclasses.field(default_factory=PushConfig)
  evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
  beam: BeamConfig = dataclasses.field(default_factory=BeamConfig)
  kubeflow: 'KubeflowConfig' = dataclasses.field(default_factory=lambda: KubeflowConfig())
  # Data validation (with `data_validation: true`): `warn` prints
  # ExampleValidator's anomalies in the run summary; `fail` stops the run
  # before any model is trained. `data_validation_schema` names a
  # schema.pbtxt (path or URI) to check against instead of one SchemaGen
  # infers from the very statistics it is then checked against.
  data_validation_mode: str = 'warn'   # warn | fail
  data_validation_schema: Optional[str] = None

  @property
  def metadata_sqlite(self) -> str:
    return self.metadata_path or os.path.join(self.pipeline_root, 'metadata.sqlite')


def _coerce(value: Any, tp: Any, key: str) -> Any:
  """Converts a YAML/JSON value to the annotated type, or raises ConfigError."""
  origin = get_origin(tp)
  if origin is Union:  # Optional[X]
    args = [a for a in get_args(tp) if a is not type(None)]
    if value is None:
      return None
    return _coerce(value, args[0], key)
  if origin in (dict, Dict):
    if not isinstance(value, dict):
      raise ConfigError(f'{key}: expected a mapping, got {value!r}')
    value_tp = get_args(tp)[1] if get_args(tp) else Any
    if dataclasses.is_dataclass(value_tp):  # e.g. kubeflow.resources: {node_id: ResourcesConfig}
      return {str(k): _coerce(v, value_tp, f'{key}.{k}') for k, v in value.items()}
    return dict(value)
  if dataclasses.is_dataclass(tp):
    if not isinstance(value, dict):
      raise ConfigError(f'{key}: expected a mapping, got {value!r}')
    return from_dict(tp, value, prefix=key)
  if origin in (list, List):
    if not isinstance(value, list):
      raise ConfigError(f'{key}: expected a list, got {value!r}')
    (item_tp,) = get_args(tp)
    return [_coerce(v, item_tp, f'{key}[{i}]') for i, v in enumerate(value)]
  if tp is bool:
    if isinstance(value, bool):
      return value
    if isinstance(value, str) and value.lower() in ('true', 'false'):
      return value.lower() == 'true'
    raise ConfigError(f'{key}: expected true/false, got {value!r}')
  if tp is int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
      raise ConfigError(f'{key}: expected an integer, got {value!r}')
    try:
      return int(value)
    except ValueError:
      raise ConfigError(f'{key}: expected an integer, got {value!r}') from None
  if tp is float:
    if isinstance(value, bool):
      raise ConfigError(f'{key}: expected a number, got {value!r}')
    try:
      return float(value)
    except (TypeError, ValueError):
      raise ConfigError(f'{key}: expected a number, got {value!r}') from None
  if tp is str:
    if not isinstance(value, (str, int, float)):
      raise ConfigError(f'{key}: expected a string, got {value!r}')
    return str(value)
  return value


def from_dict(cls: Type[T], raw: Dict[str, Any], prefix: str = '') -> T:
  """Builds dataclass `cls` from a dict; unknown keys are errors."""
  hints = get_type_hints(cls)
  names = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(raw) - names)
  if unknown:
    where = f'{prefix}.' if prefix else ''
    raise ConfigError(f'unknown config key(s): {", ".join(where + u for u in unknown)}; '
                      f'known: {", ".join(sorted(names))}')
  kwargs = {}
  for name, value in raw.items():
    key = f'{prefix}.{name}' if prefix else name
    kwargs[name] = _coerce(value, hints[name], key)
  try:
    return cls(**kwargs)
  except ValueError as e:  # a dataclass's own check (__post_init__)
    raise ConfigError(f'{prefix or cls.__name__}: {e}') from None


def to_dict(obj: Any) -> Dict[str, Any]:
  return dataclasses.asdict(obj)


def to_json(obj: Any) -> str:
  """The one serialisation used to hand a config slice to a component."""
  return json.dumps(to_dict(obj), sort_keys=True)


def from_json(cls: Type[T], text: str) -> T:
  return from_dict(cls, json.loads(text))


def apply_overrides(raw: Dict[str, Any], overrides: List[str]) -> Dict[str, Any]:
  """Applies `a.b.c=value` overrides (value parsed as YAML) to a raw dict."""
  for item in overrides:
    if '=' not in item:
      raise ConfigError(f'override {item!r}: expected key.path=value')
    path, text = item.split('=', 1)
    keys = path.strip().split('.')
    node = raw
    for k in keys[:-1]:
      node = node.setdefault(k, {})
      if not isinstance(node, dict):
        raise ConfigError(f'override {item!r}: {k} is not a mapping')
    node[keys[-1]] = yaml.safe_load(text)
  return raw


def load_config(path: Optional[str], overrides: Optional[List[str]] = None) -> PipelineConfig:
  """Reads a YAML config (or the defaults when `path` is None)."""
  raw: Dict[str, Any] = {}
  if path:
    try:
      with open(path) as f:
        raw = yaml.safe_load(f) or {}
    except FileNotFoundError:
      raise ConfigError(f'config file not found: {path}') from None
    except yaml.YAMLError as e:
      raise ConfigError(f'{path}: not valid YAML: {e}') from None
    if not isinstance(raw, dict):
      raise ConfigError(f'{path}: expected a mapping at the top level')
  raw = apply_overrides(raw, overrides or [])
  try:
    return from_dict(PipelineConfig, raw)
  except ConfigError as e:
    raise ConfigError(f'{path or "config"}: {e}') from None


@dataclasses.dataclass
class ResourcesConfig:
  """One container's resources on Kubeflow (KFP's ResourceSpec); null = not set.

  Memory is in GB, as KFP's `memory_limit`. `accelerator` is what the cluster
  calls it: a Kubernetes resource name on Kubeflow (`nvidia.com/gpu`), an
  accelerator type on Vertex AI (`NVIDIA_TESLA_T4`).
  """
  cpu: Optional[float] = None
  memory_gb: Optional[float] = None
  cpu_request: Optional[float] = None
  memory_request_gb: Optional[float] = None
  accelerator: Optional[str] = None
  accelerator_count: Optional[int] = None


@dataclasses.dataclass
class KubeflowConfig:
  """How `ssd compile` binds the pipeline to Kubeflow Pipelines (KFP v2)."""
  # Container image that runs every component (see Dockerfile); `--image` overrides.
  image: str = 'ssd-rankers:latest'
  # Pipeline root on the cluster (e.g. gs://bucket/ssd); null = `pipeline_root`.
  pipeline_root: Optional[str] = None
  # Beam arguments inside the components; null = the local run's (`beam`).
  beam_args: Optional[List[str]] = None
  # Applied to every component; `resources` overrides it per node id, field by field.
  default_resources: ResourcesConfig = dataclasses.field(default_factory=ResourcesConfig)
  resources: Dict[str, ResourcesConfig] = dataclasses.field(default_factory=dict)
