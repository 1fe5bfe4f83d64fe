"""Configuration of BERT rankers, validated up front and stored as JSON.

A ranker is fully described by a `RankerConfig`: the pipeline writes it next
to every exported model (assets.extra/ranker_config.json), so a config has to
round-trip through plain JSON and fail early, with a message naming the field,
rather than deep inside graph construction.

When `checkpoint_dir` is set the encoder shape and the vocabulary come from
the HF-format checkpoint; `rankers.checkpoint.resolve_ranker` reads the files
and fills them in. This module reads no file and imports no TensorFlow: the
HF config.json rules (`encoder_from_hf`) and the vocabulary rule
(`vocab_size_problem`) live here so that `ssd validate` applies exactly the
rules the loader does.
"""

import dataclasses
from typing import Any, Dict, Optional

ARCHITECTURES = ('cross_encoder', 'bi_encoder')
# Encoder families: 'bert' (rankers/encoder.py) and 'mpnet' (rankers/mpnet.py,
# BERT's layers plus a shared relative-position attention bias).
MODEL_TYPES = ('bert', 'mpnet')
POOLINGS = ('mean', 'cls')
SIMILARITIES = ('cosine', 'dot')
# Names of rankers/losses.py's registries (LOSSES, SOFT_LOSSES), here so that
# configs can be checked without importing TensorFlow; a test keeps them equal.
HARD_LOSSES = ('listwise_softmax_ce', 'pointwise_mse', 'pointwise_sigmoid_ce')
SOFT_LOSSES = ('listwise_kl', 'margin_mse', 'mse')
# rankers/losses.py's EMBEDDING_LOSSES (student vs teacher text embeddings).
EMBEDDING_LOSSES = ('cosine', 'mse')
# No embedding loss (the embeddings may still serve in-batch negatives).
EMBEDDING_LOSS_OFF = 'none'

# Training defaults, one definition each: rankers.training (train_ranker,
# Objective) and the user-facing schema (runconfig.config: TrainConfig,
# ObjectiveConfig) both take them from here, since runconfig may not import
# rankers.training (it imports TensorFlow; `ssd validate` must not).
DEFAULT_HARD_LOSS = 'listwise_softmax_ce'   # in HARD_LOSSES
DEFAULT_SOFT_LOSS = 'listwise_kl'           # in SOFT_LOSSES
DEFAULT_WARMUP_FRACTION = 0.1
DEFAULT_LOG_EVERY = 10   # steps between training log lines

# Fields of EncoderConfig that describe the network's shape (they must match
# a checkpoint); the others (dropout, stochastic depth) are free to change.
_SHAPE_FIELDS = ('vocab_size', 'hidden_size', 'num_layers', 'num_heads',
                 'intermediate_size', 'max_position_embeddings',
                 'type_vocab_size')
# MPNet's shape fields beyond BERT's (see EncoderConfig).
_MPNET_SHAPE_FIELDS = ('relative_attention_num_buckets', 'pad_token_id')


def _check_fields(cls, data: Dict[str, Any]) -> None:
  known = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(data) - known)
  if unknown:
    raise ValueError(f'unknown {cls.__name__} field(s) {unknown}; '
                     f'known fields: {sorted(known)}')


def _check_rate(owner: str, name: str, value: float) -> None:
  if not 0.0 <= value < 1.0:
    raise ValueError(f'{owner}.{name} must be in [0, 1), got {value}')


@dataclasses.dataclass
class EncoderConfig:
  """Shape and regularisation of a post-LayerNorm BERT encoder."""
  vocab_size: int
  hidden_size: int
  num_layers: int
  num_heads: int
  intermediate_size: int
  max_position_embeddings: int = 512
  type_vocab_size: int = 2
  hidden_dropout: float = 0.1
  attention_dropout: float = 0.1
  layer_norm_eps: float = 1e-12
  # Highest per-layer drop probability (reached by the last layer); the rate
  # rises linearly with depth. 0 disables stochastic depth.
  stochastic_depth: float = 0.0
  # One of MODEL_TYPES. The fields below are MPNet's only (BERT ignores them):
  # buckets of the relative-position attention bias, and the padding index
  # that offsets position ids (real tokens take positions pad_token_id + 1,
  # pad_token_id + 2, ...; padding takes pad_token_id), as in HF's MPNet.
  model_type: str = 'bert'
  relative_attention_num_buckets: int = 32
  pad_token_id: int = 1

  def validate(self) -> 'EncoderConfig':
    """Raises ValueError naming the offending field; returns self."""
    for name in _SHAPE_FIELDS:
      value = getattr(self, name)
      if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(
            f'EncoderConfig.{name} must be a positive integer, got {value!r}')
    if self.hidden_size % self.num_heads:
      raise ValueError(
          f'EncoderConfig.hidden_size ({self.hidden_size}) must be divisible '
          f'by num_heads ({self.num_heads})')
    _check_rate('EncoderConfig', 'hidden_dropout', self.hidden_dropout)
    _check_rate('EncoderConfig', 'attention_dropout', self.attention_dropout)
    _check_rate('EncoderConfig', 'stochastic_depth', self.stochastic_depth)
    if not self.layer_norm_eps > 0:
      raise ValueError(
          f'EncoderConfig.layer_norm_eps must be > 0, got '
          f'{self.layer_norm_eps}')
    if self.model_type not in MODEL_TYPES:
      raise ValueError(f'EncoderConfig.model_type must be one of '
                       f'{MODEL_TYPES}, got {self.model_type!r}')
    if self.model_type == 'mpnet':
      self._validate_mpnet()
    return self

  def _validate_mpnet(self) -> None:
    buckets = self.relative_attention_num_buckets
    if not isinstance(buckets, int) or buckets < 4 or buckets % 4:
      raise ValueError(f'EncoderConfig.relative_attention_num_buckets must be '
                       f'a positive multiple of 4, got {buckets!r}')
    if not isinstance(self.pad_token_id, int) or self.pad_token_id < 0:
      raise ValueError(f'EncoderConfig.pad_token_id must be >= 0, got '
                       f'{self.pad_token_id!r}')
    if self.max_tokens < 1:
      raise ValueError(
          f'EncoderConfig.max_position_embeddings '
          f'({self.max_position_embeddings}) leaves no position after '
          f'pad_token_id + 1 ({self.pad_token_id + 1})')

  @property
  def max_tokens(self) -> int:
    """Longest input the position table allows (MPNet's starts at pad + 1)."""
    if self.model_type == 'mpnet':
      return self.max_position_embeddings - self.pad_token_id - 1
    return self.max_position_embeddings

  @property
  def head_size(self) -> int:
    return self.hidden_size // self.num_heads

  def shape_dict(self) -> Dict[str, Any]:
    """The fields that must match a checkpoint."""
    shape = {name: getattr(self, name) for name in _SHAPE_FIELDS}
    if self.model_type != 'bert':
      shape['model_type'] = self.model_type
      shape.update({name: getattr(self, name) for name in _MPNET_SHAPE_FIELDS})
    return shape

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, data: Dict[str, Any]) -> 'EncoderConfig':
    _check_fields(cls, data)
    return cls(**data)


@dataclasses.dataclass
class RankerConfig:
  """A cross-encoder or bi-encoder ranker.

  Either give `encoder` and `vocab_file` (random initialisation), or
  `checkpoint_dir` (an HF-format BERT directory: config.json,
  model.safetensors, vocab.txt). With a checkpoint, `keep_layers` keeps only
  the first k transformer layers, and a given `encoder` contributes only its
  dropout / stochastic-depth settings (its shape must match the checkpoint).
  """
  architecture: str
  encoder: Optional[EncoderConfig] = None
  vocab_file: Optional[str] = None
  checkpoint_dir: Optional[str] = None
  keep_layers: Optional[int] = None
  max_length: int = 128          # tokens of [CLS] q [SEP] d [SEP] (or of a doc)
  query_max_length: int = 32     # [CLS] q [SEP] tokens, bi-encoder queries
  pooling: str = 'mean'
  similarity: str = 'cosine'     # bi-encoder only
  cosine_scale: float = 20.0     # bi-encoder only, multiplies the cosine
  lower_case: bool = True

  @property
  def is_bi_encoder(self) -> bool:
    return self.architecture == 'bi_encoder'

  def validate(self) -> 'RankerConfig':
    """Checks every field; returns self. The checkpoint's files are checked
    where they are read (rankers.checkpoint.resolve_ranker)."""
    if self.architecture not in ARCHITECTURES:
      raise ValueError(f'RankerConfig.architecture must be one of '
                       f'{ARCHITECTURES}, got {self.architecture!r}')
    if self.pooling not in POOLINGS:
      raise ValueError(f'RankerConfig.pooling must be one of {POOLINGS}, '
                       f'got {self.pooling!r}')
    if self.similarity not in SIMILARITIES:
      raise ValueError(f'RankerConfig.similarity must be one of '
                       f'{SIMILARITIES}, got {self.similarity!r}')
    if not self.cosine_scale > 0:
      raise ValueError(
          f'RankerConfig.cosine_scale must be > 0, got {self.cosine_scale}')
    if self.max_length < 4:
      raise ValueError(
          f'RankerConfig.max_length must be >= 4, got {self.max_length}')
    if self.query_max_length < 3:
      raise ValueError(f'RankerConfig.query_max_length must be >= 3, got '
                       f'{self.query_max_length}')
    if self.checkpoint_dir is None:
      if self.keep_layers is not None:
        raise ValueError('RankerConfig.keep_layers needs checkpoint_dir '
                         '(it truncates a pretrained encoder)')
      if self.encoder is None or self.vocab_file is None:
        raise ValueError('RankerConfig needs either checkpoint_dir, or both '
                         'encoder and vocab_file')
      self.check_encoder(self.encoder)
    return self

  def check_encoder(self, encoder: EncoderConfig) -> None:
    """The (resolved) encoder is valid and takes this config's longest input."""
    encoder.validate()
    longest = max(self.max_length, self.query_max_length)
    if longest > encoder.max_tokens:
      raise ValueError(
          f'RankerConfig.max_length/query_max_length ({longest}) exceed the '
          f'{encoder.max_tokens} tokens the encoder\'s '
          f'max_position_embeddings ({encoder.max_position_embeddings}) allow')

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, data: Dict[str, Any]) -> 'RankerConfig':
    _check_fields(cls, data)
    data = dict(data)
    if isinstance(data.get('encoder'), dict):
      data['encoder'] = EncoderConfig.from_dict(data['encoder'])
    return cls(**data)


# --- Hugging Face config.json: the one parser (no file I/O here) -------------

_HF_REQUIRED = ('vocab_size', 'hidden_size', 'num_hidden_layers', 'num_attention_heads',
                'intermediate_size')


def encoder_from_hf(data: Dict[str, Any], source: str) -> EncoderConfig:
  """The encoder a BERT or MPNet config.json (`data`) describes; errors name `source`.

  Pure: rankers/checkpoint.py reads the file (any filesystem) and
  pipelines/validation.py (local files, before a run) both parse with this.
  """
  model_type = data.get('model_type', 'bert')
  if model_type not in MODEL_TYPES:
    raise ValueError(f'{source}: model_type is {model_type!r}, only BERT '
                     f'("bert") and MPNet ("mpnet") checkpoints are supported')
  missing = [key for key in _HF_REQUIRED if key not in data]
  if missing:
    raise ValueError(f'{source}: not a {model_type} config, missing {missing}')
  activation = data.get('hidden_act', 'gelu')
  if activation != 'gelu':
    raise ValueError(f'{source}: hidden_act {activation!r} is not supported '
                     f'(only exact "gelu")')
  position_type = data.get('position_embedding_type', 'absolute')
  if position_type != 'absolute':
    raise ValueError(f'{source}: position_embedding_type {position_type!r} is '
                     f'not supported (only "absolute")')
  config = EncoderConfig(
      vocab_size=data['vocab_size'],
      hidden_size=data['hidden_size'],
      num_layers=data['num_hidden_layers'],
      num_heads=data['num_attention_heads'],
      intermediate_size=data['intermediate_size'],
      max_position_embeddings=data.get('max_position_embeddings', 512),
      type_vocab_size=data.get('type_vocab_size', 2),
      hidden_dropout=data.get('hidden_dropout_prob', 0.1),
      attention_dropout=data.get('attention_probs_dropout_prob', 0.1),
      layer_norm_eps=data.get('layer_norm_eps', 1e-12))
  if model_type == 'mpnet':
    # MPNet has no token types (1: one type, unused) and HF's MPNetConfig
    # defaults: 32 buckets, padding index 1, LayerNorm eps 1e-12.
    config = dataclasses.replace(
        config, model_type='mpnet', type_vocab_size=1,
        relative_attention_num_buckets=data.get('relative_attention_num_buckets', 32),
        pad_token_id=data.get('pad_token_id', 1))
  return config


def vocab_size_problem(vocab_lines: int, vocab_size: int) -> Optional[str]:
  """Why a vocabulary of `vocab_lines` tokens cannot serve an embedding table
  of `vocab_size` rows, or None. Fewer tokens is fine (a padded table, as
  many checkpoints ship); more would index past the table."""
  if vocab_lines > vocab_size:
    return (f'{vocab_lines} tokens, more than the encoder\'s vocab_size ({vocab_size})')
  return None

