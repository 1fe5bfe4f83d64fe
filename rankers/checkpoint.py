"""Import and export of HF-format BERT and MPNet checkpoints (config.json +
model.safetensors + vocab.txt, and for MPNet its special tokens in
tokenizer_config.json / special_tokens_map.json).

Pretrained encoders are the starting point of every ranker, and a silently
mis-mapped weight ruins a model without any error, so this module is strict:
the HF-name -> variable mapping lives in one place (`hf_variable_map`), every
expected tensor must be present with the expected shape (errors name the
tensor and the file), and unexpected tensors are logged. Weights are read
with safetensors' numpy reader, so no torch is needed.

Exported rankers carry their weights in the same format
(`write_hf_checkpoint`), so a trained model is itself a checkpoint: T'
warm-starts from its teacher, a student starts from a teacher's first k
layers, and HF tools can load it. A cross-encoder's scoring head is written
as BertForSequenceClassification's `classifier.weight` [1, H] /
`classifier.bias` [1], and read back into the head when present.
"""

import dataclasses
import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from absl import logging
import numpy as np
from safetensors import numpy as safetensors_numpy
import tensorflow as tf

from rankers import tokenization
from rankers import config as rconfig
from rankers.config import EncoderConfig, RankerConfig

CONFIG_FILE = 'config.json'
VOCAB_FILE = 'vocab.txt'
TOKENIZER_CONFIG_FILE = 'tokenizer_config.json'
SPECIAL_TOKENS_FILE = 'special_tokens_map.json'
# sentence-transformers' description of its pooling (a model's own choice
# of sentence embedding; see read_sentence_pooling).
SENTENCE_MODULES_FILE = 'modules.json'
_POOLING_MODES = {'pooling_mode_mean_tokens': 'mean',
                  'pooling_mode_cls_token': 'cls'}
WEIGHTS_FILE = 'model.safetensors'
WEIGHTS_INDEX_FILE = 'model.safetensors.index.json'

# Scoring head of a cross-encoder (HF BertForSequenceClassification names).
CLASSIFIER_WEIGHT = 'classifier.weight'
CLASSIFIER_BIAS = 'classifier.bias'
HEAD_TENSORS = (CLASSIFIER_WEIGHT, CLASSIFIER_BIAS)
# config.json entry describing the ranker that wrote the checkpoint.
RANKER_FIELD = 'ranker'

# Tensors of BERT and MPNet checkpoints that a ranker does not use.
IGNORED_TENSORS = (r'^embeddings\.position_ids$', r'^pooler\.')
# Prefix of the encoder's tensors when a head is saved beside them, by model_type.
_PREFIXES = {'bert': 'bert.', 'mpnet': 'mpnet.'}
_LAYER_RE = re.compile(r'^encoder\.layer\.(\d+)\.')


def _read_json(path: str) -> dict:
  with tf.io.gfile.GFile(path, 'r') as f:
    try:
      return json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f'{path}: not valid JSON: {e}') from e


def read_hf_config(checkpoint_dir: str) -> EncoderConfig:
  """Reads `<checkpoint_dir>/config.json` of a BERT or MPNet model (rules: config.encoder_from_hf)."""
  path = os.path.join(checkpoint_dir, CONFIG_FILE)
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(
        f'{path}: not found; an HF-format BERT checkpoint directory holds '
        f'{CONFIG_FILE}, {WEIGHTS_FILE} and {VOCAB_FILE}')
  return rconfig.encoder_from_hf(_read_json(path), path)


def resolve_ranker(config: RankerConfig) -> RankerConfig:
  """A validated copy of `config` with `encoder` and `vocab_file` filled in
  from its checkpoint (if any), after checking the files it names."""
  config.validate()
  encoder, vocab_file = config.encoder, config.vocab_file
  if config.checkpoint_dir is not None:
    encoder = _checkpoint_encoder(config)
    vocab_file = vocab_file or os.path.join(config.checkpoint_dir, VOCAB_FILE)
  config.check_encoder(encoder)
  # gfile: the vocabulary may sit in an artifact on object storage.
  if not tf.io.gfile.exists(vocab_file):
    raise FileNotFoundError(f'{vocab_file}: vocabulary file not found')
  with tf.io.gfile.GFile(vocab_file, 'r') as f:
    vocab_lines = sum(1 for _ in f)
  problem = rconfig.vocab_size_problem(vocab_lines, encoder.vocab_size)
  if problem:
    raise ValueError(f'{vocab_file}: {problem}')
  return dataclasses.replace(config, encoder=encoder, vocab_file=vocab_file)


def _checkpoint_encoder(config: RankerConfig) -> EncoderConfig:
  """The encoder the checkpoint implies, cut to keep_layers, with the config's
  dropout and stochastic depth when it names an encoder (of the same shape)."""
  found = read_hf_config(config.checkpoint_dir)
  config_path = os.path.join(config.checkpoint_dir, CONFIG_FILE)
  if config.keep_layers is not None:
    if not 1 <= config.keep_layers <= found.num_layers:
      raise ValueError(
          f'RankerConfig.keep_layers ({config.keep_layers}) must be between 1 '
          f'and the checkpoint\'s {found.num_layers} layers ({config_path})')
    found = dataclasses.replace(found, num_layers=config.keep_layers)
  lower_case = read_hf_lower_case(config.checkpoint_dir)
  if lower_case is not None and lower_case != config.lower_case:
    raise ValueError(
        f'RankerConfig.lower_case is {config.lower_case} but the checkpoint\'s '
        f'tokenizer_config.json says do_lower_case={lower_case} '
        f'({config.checkpoint_dir})')
  if config.encoder is None:
    return found
  if config.encoder.shape_dict() != found.shape_dict():
    raise ValueError(
        f'RankerConfig.encoder shape {config.encoder.shape_dict()} does not '
        f'match the checkpoint {found.shape_dict()} ({config_path}); with a '
        f'checkpoint, encoder only sets dropout and stochastic depth')
  return dataclasses.replace(
      found, hidden_dropout=config.encoder.hidden_dropout,
      attention_dropout=config.encoder.attention_dropout,
      stochastic_depth=config.encoder.stochastic_depth)


def read_hf_lower_case(checkpoint_dir: str) -> Optional[bool]:
  """`do_lower_case` from tokenizer_config.json, or None if not stated."""
  path = os.path.join(checkpoint_dir, TOKENIZER_CONFIG_FILE)
  if not tf.io.gfile.exists(path):
    return None
  value = _read_json(path).get('do_lower_case')
  return None if value is None else bool(value)


def _token_content(value: Any) -> Optional[str]:
  """A special token as tokenizer files write it: a string or {"content": ...}."""
  if isinstance(value, dict):
    value = value.get('content')
  return value if isinstance(value, str) and value else None


def read_special_tokens(checkpoint_dir: str,
                        model_type: str) -> tokenization.SpecialTokens:
  """The checkpoint's special tokens: the model type's defaults, overridden by
  tokenizer_config.json, then special_tokens_map.json (as HF reads them)."""
  tokens = tokenization.DEFAULT_TOKENS[model_type]
  found = {}
  for name in (TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_FILE):
    path = os.path.join(checkpoint_dir, name)
    if not tf.io.gfile.exists(path):
      continue
    data = _read_json(path)
    for field in ('cls', 'sep', 'pad', 'mask', 'unk'):
      value = _token_content(data.get(f'{field}_token'))
      if value is not None:
        found[field] = value
  return dataclasses.replace(tokens, **found)


def read_sentence_pooling(checkpoint_dir: str) -> Optional[Tuple[Optional[str], bool]]:
  """(pooling, normalised?) of a sentence-transformers checkpoint, else None.

  Reads modules.json and its Pooling module's config.json: pooling is 'mean'
  or 'cls' (None for any other mode or mix), normalised says whether a
  Normalize module follows (unit-length embeddings: cosine similarity).
  """
  path = os.path.join(checkpoint_dir, SENTENCE_MODULES_FILE)
  if not tf.io.gfile.exists(path):
    return None
  modules = _read_json(path)
  kinds = [module.get('type', '').rsplit('.', 1)[-1] for module in modules]
  pooling = None
  for module, kind in zip(modules, kinds):
    if kind == 'Pooling':
      settings = _read_json(os.path.join(checkpoint_dir, module.get('path', ''),
                                         CONFIG_FILE))
      modes = [k for k, v in settings.items()
               if k.startswith('pooling_mode_') and v is True]
      pooling = _POOLING_MODES.get(modes[0]) if len(modes) == 1 else None
  return pooling, 'Normalize' in kinds


def _normalise_name(name: str) -> str:
  """Strips an optional 'bert.'/'mpnet.' prefix; maps old LayerNorm gamma/beta."""
  for prefix in _PREFIXES.values():
    if name.startswith(prefix):
      name = name[len(prefix):]
      break
  if name.endswith('LayerNorm.gamma'):
    name = name[:-len('gamma')] + 'weight'
  elif name.endswith('LayerNorm.beta'):
    name = name[:-len('beta')] + 'bias'
  return name


def weights_path(checkpoint_dir: str) -> str:
  """The weights file (or shard index) of a checkpoint directory."""
  for name in (WEIGHTS_FILE, WEIGHTS_INDEX_FILE):
    path = os.path.join(checkpoint_dir, name)
    if tf.io.gfile.exists(path):
      return path
  present = sorted(tf.io.gfile.listdir(checkpoint_dir)) if tf.io.gfile.isdir(
      checkpoint_dir) else []
  raise FileNotFoundError(
      f'{os.path.join(checkpoint_dir, WEIGHTS_FILE)}: not found (directory '
      f'holds {present}); convert PyTorch/TF weights to safetensors first')


def load_hf_weights(checkpoint_dir: str) -> Dict[str, np.ndarray]:
  """Reads all tensors of a checkpoint, names without the 'bert.' prefix."""
  path = weights_path(checkpoint_dir)
  if path.endswith('.json'):
    shards = sorted(set(_read_json(path).get('weight_map', {}).values()))
    files = [os.path.join(checkpoint_dir, shard) for shard in shards]
  else:
    files = [path]
  weights = {}
  for file in files:
    # Read through gfile (the checkpoint may be an artifact on object storage).
    with tf.io.gfile.GFile(file, 'rb') as f:
      tensors = safetensors_numpy.load(f.read())
    for name, value in tensors.items():
      weights[_normalise_name(name)] = value
  return weights


def _dense(prefix: str, layer) -> List[Tuple[str, tf.Variable, bool]]:
  return [(prefix + '.weight', layer.kernel, True),
          (prefix + '.bias', layer.bias, False)]


def _norm(prefix: str, layer) -> List[Tuple[str, tf.Variable, bool]]:
  return [(prefix + '.weight', layer.gamma, False),
          (prefix + '.bias', layer.beta, False)]


def hf_variable_map(encoder) -> List[Tuple[str, tf.Variable, bool]]:
  """(HF tensor name, encoder variable, transpose?) for every variable.

  The single place that knows how `rankers.encoder.BertEncoder` lays out BERT
  and `rankers.mpnet.MPNetEncoder` lays out MPNet: HF Linear weights are
  [out, in] and Keras Dense kernels [in, out], hence the transpose flag.
  """
  if not encoder.built:
    raise ValueError('encoder must be built (called once) before its '
                     'weights can be mapped')
  if encoder.config.model_type == 'mpnet':
    return _mpnet_variable_map(encoder)
  emb = encoder.embeddings
  mapping = [
      ('embeddings.word_embeddings.weight',
       emb.word_embeddings.embeddings, False),
      ('embeddings.position_embeddings.weight',
       emb.position_embeddings, False),
      ('embeddings.token_type_embeddings.weight',
       emb.token_type_embeddings.embeddings, False),
      ('embeddings.LayerNorm.weight', emb.layer_norm.gamma, False),
      ('embeddings.LayerNorm.bias', emb.layer_norm.beta, False),
  ]

  for i, layer in enumerate(encoder.transformer_layers):
    p = f'encoder.layer.{i}.'
    mapping += _dense(p + 'attention.self.query', layer.query)
    mapping += _dense(p + 'attention.self.key', layer.key)
    mapping += _dense(p + 'attention.self.value', layer.value)
    mapping += _dense(p + 'attention.output.dense', layer.attention_output)
    mapping += _norm(p + 'attention.output.LayerNorm',
                     layer.attention_layer_norm)
    mapping += _dense(p + 'intermediate.dense', layer.intermediate)
    mapping += _dense(p + 'output.dense', layer.output_dense)
    mapping += _norm(p + 'output.LayerNorm', layer.output_layer_norm)
  return mapping


def _mpnet_variable_map(encoder) -> List[Tuple[str, tf.Variable, bool]]:
  """HF MPNetModel's names: attention.attn.{q,k,v,o}, attention.LayerNorm, and
  one encoder.relative_attention_bias [buckets, heads] shared by all layers."""
  emb = encoder.embeddings
  mapping = [
      ('embeddings.word_embeddings.weight',
       emb.word_embeddings.embeddings, False),
      ('embeddings.position_embeddings.weight',
       emb.position_embeddings, False),
      ('embeddings.LayerNorm.weight', emb.layer_norm.gamma, False),
      ('embeddings.LayerNorm.bias', emb.layer_norm.beta, False),
      ('encoder.relative_attention_bias.weight',
       encoder.relative_attention_bias.embeddings, False),
  ]
  for i, layer in enumerate(encoder.transformer_layers):
    p = f'encoder.layer.{i}.'
    mapping += _dense(p + 'attention.attn.q', layer.query)
    mapping += _dense(p + 'attention.attn.k', layer.key)
    mapping += _dense(p + 'attention.attn.v', layer.value)
    mapping += _dense(p + 'attention.attn.o', layer.attention_output)
    mapping += _norm(p + 'attention.LayerNorm', layer.attention_layer_norm)
    mapping += _dense(p + 'intermediate.dense', layer.intermediate)
    mapping += _dense(p + 'output.dense', layer.output_dense)
    mapping += _norm(p + 'output.LayerNorm', layer.output_layer_norm)
  return mapping


def assign_hf_weights(encoder, weights: Dict[str, np.ndarray],
                      keep_layers: Optional[int] = None,
                      source: str = '<weights>') -> None:
  """Copies HF BERT tensors into a built `BertEncoder`.

  Args:
    encoder: a built rankers.encoder.BertEncoder.
    weights: tensors by HF name, without the 'bert.' prefix.
    keep_layers: layers the encoder is expected to have (the checkpoint's
      first `keep_layers` are used); None means the encoder's own count.
    source: file the weights came from, named in error messages.

  Raises:
    ValueError: a tensor is missing or has the wrong shape.
  """
  num_layers = len(encoder.transformer_layers)
  if keep_layers is not None and keep_layers != num_layers:
    raise ValueError(f'keep_layers={keep_layers} but the encoder has '
                     f'{num_layers} layers')
  mapping = hf_variable_map(encoder)
  missing = [name for name, _, _ in mapping if name not in weights]
  if missing:
    raise ValueError(f'{source}: missing {len(missing)} tensor(s) the encoder '
                     f'needs, e.g. {missing[:5]}')
  values = []
  for name, variable, transpose in mapping:
    value = weights[name]
    expected = tuple(variable.shape)
    if transpose:
      expected = expected[::-1]
    if tuple(value.shape) != expected:
      raise ValueError(f'{source}: tensor {name} has shape {tuple(value.shape)}'
                       f', the encoder expects {expected}')
    values.append(value.T if transpose else value)
  for (_, variable, _), value in zip(mapping, values):
    variable.assign(value.astype(variable.dtype.as_numpy_dtype))

  used = {name for name, _, _ in mapping}
  dropped, unused = [], []
  for name in sorted(set(weights) - used):
    if any(re.search(pattern, name) for pattern in IGNORED_TENSORS):
      continue
    match = _LAYER_RE.match(name)
    if match and int(match.group(1)) >= num_layers:
      dropped.append(name)
    else:
      unused.append(name)
  if dropped:
    logging.info('%s: %d tensors of layers >= %d not used (keep_layers)',
                 source, len(dropped), num_layers)
  if unused:
    logging.warning('%s: %d tensor(s) not used by the encoder: %s', source,
                    len(unused), unused)
  logging.info('Loaded %d tensors from %s into a %d-layer encoder',
               len(mapping), source, num_layers)


def assign_hf_head(head, weights: Dict[str, np.ndarray],
                   source: str = '<weights>') -> None:
  """Copies `classifier.weight` [1, H] / `classifier.bias` [1] into a built
  Dense(1) scoring head (kernel [H, 1], bias [1])."""
  missing = [name for name in HEAD_TENSORS if name not in weights]
  if missing:
    raise ValueError(f'{source}: has {sorted(set(HEAD_TENSORS) - set(missing))}'
                     f' but not {missing}')
  kernel, bias = weights[CLASSIFIER_WEIGHT], weights[CLASSIFIER_BIAS]
  hidden = int(head.kernel.shape[0])
  if tuple(kernel.shape) != (1, hidden) or tuple(bias.shape) != (1,):
    raise ValueError(
        f'{source}: {CLASSIFIER_WEIGHT} {tuple(kernel.shape)} / '
        f'{CLASSIFIER_BIAS} {tuple(bias.shape)}, a ranker\'s scoring head '
        f'needs (1, {hidden}) / (1,) (a one-label classifier)')
  head.kernel.assign(kernel.T.astype(np.float32))
  head.bias.assign(bias.astype(np.float32))


def load_checkpoint(encoder, checkpoint_dir: str,
                    keep_layers: Optional[int] = None,
                    head=None) -> bool:
  """Reads a checkpoint directory's weights into a built encoder.

  Args:
    encoder: a built rankers.encoder.BertEncoder.
    checkpoint_dir: HF-format checkpoint directory.
    keep_layers: see assign_hf_weights.
    head: a built Dense(1) scoring head to load `classifier.*` into, if the
      checkpoint has them (a cross-encoder); None to ignore them.

  Returns:
    Whether the head was loaded.
  """
  source = weights_path(checkpoint_dir)
  weights = load_hf_weights(checkpoint_dir)
  head_weights = {name: weights.pop(name) for name in HEAD_TENSORS
                  if name in weights}
  assign_hf_weights(encoder, weights, keep_layers, source=source)
  if head is None:
    if head_weights:
      logging.info('%s: classifier not used (no scoring head to load)',
                   source)
    return False
  if not head_weights:
    logging.info('%s: no %s, the scoring head starts from random weights',
                 source, CLASSIFIER_WEIGHT)
    return False
  assign_hf_head(head, head_weights, source)
  logging.info('Loaded the scoring head from %s', source)
  return True


def read_ranker_fields(checkpoint_dir: str) -> Dict[str, Any]:
  """The config.json entry `ranker` written by write_hf_checkpoint, or {}."""
  path = os.path.join(checkpoint_dir, CONFIG_FILE)
  if not tf.io.gfile.exists(path):
    return {}
  value = _read_json(path).get(RANKER_FIELD)
  return value if isinstance(value, dict) else {}


# Export.


def hf_config_dict(config: EncoderConfig,
                   classifier: bool = False) -> Dict[str, Any]:
  """config.json of a BertModel (or one-label BertForSequenceClassification),
  or of an MPNetModel."""
  if config.model_type == 'mpnet':
    return _mpnet_config_dict(config)
  data = {
      'model_type': 'bert',
      'architectures': ['BertForSequenceClassification' if classifier
                        else 'BertModel'],
      'vocab_size': config.vocab_size,
      'hidden_size': config.hidden_size,
      'num_hidden_layers': config.num_layers,
      'num_attention_heads': config.num_heads,
      'intermediate_size': config.intermediate_size,
      'max_position_embeddings': config.max_position_embeddings,
      'type_vocab_size': config.type_vocab_size,
      'layer_norm_eps': config.layer_norm_eps,
      'hidden_act': 'gelu',
      'position_embedding_type': 'absolute',
      'hidden_dropout_prob': config.hidden_dropout,
      'attention_probs_dropout_prob': config.attention_dropout,
      'initializer_range': 0.02,
  }
  if classifier:
    data.update(num_labels=1, id2label={'0': 'LABEL_0'},
                label2id={'LABEL_0': 0})
  return data


def _mpnet_config_dict(config: EncoderConfig) -> Dict[str, Any]:
  """config.json of an MPNetModel. A cross-encoder's head is the rankers'
  one-label `classifier.*` (not HF MPNetForSequenceClassification's
  two-layer head), so the architecture stays MPNetModel."""
  return {
      'model_type': 'mpnet',
      'architectures': ['MPNetModel'],
      'vocab_size': config.vocab_size,
      'hidden_size': config.hidden_size,
      'num_hidden_layers': config.num_layers,
      'num_attention_heads': config.num_heads,
      'intermediate_size': config.intermediate_size,
      'max_position_embeddings': config.max_position_embeddings,
      'relative_attention_num_buckets': config.relative_attention_num_buckets,
      'pad_token_id': config.pad_token_id,
      'layer_norm_eps': config.layer_norm_eps,
      'hidden_act': 'gelu',
      'hidden_dropout_prob': config.hidden_dropout,
      'attention_probs_dropout_prob': config.attention_dropout,
      'initializer_range': 0.02,
  }


def hf_tensors(encoder, head=None) -> Dict[str, np.ndarray]:
  """The encoder's (and head's) weights by HF name, C-contiguous float32.

  Encoder names get the 'bert.' ('mpnet.') prefix when a head is written (the
  layout of BertForSequenceClassification), none otherwise (BertModel's).
  """
  prefix = _PREFIXES[encoder.config.model_type] if head is not None else ''
  # np.ascontiguousarray: safetensors writes a transposed view's raw buffer,
  # i.e. silently scrambles it.
  tensors = {
      prefix + name: np.ascontiguousarray(
          variable.numpy().T if transpose else variable.numpy(), np.float32)
      for name, variable, transpose in hf_variable_map(encoder)}
  if head is not None:
    if tuple(head.kernel.shape) != (encoder.config.hidden_size, 1):
      raise ValueError(f'scoring head kernel has shape '
                       f'{tuple(head.kernel.shape)}, expected '
                       f'({encoder.config.hidden_size}, 1)')
    tensors[CLASSIFIER_WEIGHT] = np.ascontiguousarray(
        head.kernel.numpy().T, np.float32)
    tensors[CLASSIFIER_BIAS] = np.ascontiguousarray(head.bias.numpy(),
                                                    np.float32)
  return tensors


def _tokenizer_config(encoder, lower_case: bool,
                      special_tokens: Optional[tokenization.SpecialTokens]
                      ) -> Dict[str, Any]:
  """tokenizer_config.json; MPNet's also names its special tokens."""
  config = {
      'do_lower_case': bool(lower_case), 'tokenizer_class': 'BertTokenizer',
      'model_max_length': encoder.config.max_tokens}
  if encoder.config.model_type == 'mpnet':
    tokens = special_tokens or tokenization.MPNET_TOKENS
    config['tokenizer_class'] = 'MPNetTokenizer'
    config.update({f'{field}_token': getattr(tokens, field)
                   for field in ('cls', 'sep', 'pad', 'mask', 'unk')})
    config.update(bos_token=tokens.cls, eos_token=tokens.sep)
  return config


def write_hf_checkpoint(directory: str, encoder, vocab_file: str,
                        lower_case: bool, head=None,
                        ranker_fields: Optional[Dict[str, Any]] = None,
                        special_tokens: Optional[
                            tokenization.SpecialTokens] = None) -> str:
  """Writes config.json, model.safetensors, vocab.txt, tokenizer_config.json.

  Args:
    directory: created if needed; files in it are overwritten.
    encoder: a built rankers.encoder.BertEncoder or rankers.mpnet.MPNetEncoder.
    vocab_file: the vocabulary the encoder was trained with.
    lower_case: the tokenizer's lower casing (tokenizer_config.json).
    head: a cross-encoder's Dense(1) scoring head, or None.
    ranker_fields: recorded in config.json under `ranker` (e.g. pooling),
      so that a loader can tell what the head was trained on.
    special_tokens: the tokenizer's special tokens, written to
      tokenizer_config.json for MPNet (BERT's are fixed); None: MPNet's
      defaults.

  Returns:
    directory.
  """
  tf.io.gfile.makedirs(directory)
  config = hf_config_dict(encoder.config, classifier=head is not None)
  if ranker_fields:
    config[RANKER_FIELD] = dict(ranker_fields)
  with tf.io.gfile.GFile(os.path.join(directory, CONFIG_FILE), 'w') as f:
    f.write(json.dumps(config, indent=2, sort_keys=True))
  # format=pt: transformers refuses safetensors files without it.
  data = safetensors_numpy.save(hf_tensors(encoder, head),
                                metadata={'format': 'pt'})
  with tf.io.gfile.GFile(os.path.join(directory, WEIGHTS_FILE), 'wb') as f:
    f.write(data)
  tf.io.gfile.copy(vocab_file, os.path.join(directory, VOCAB_FILE),
                   overwrite=True)
  tokenizer_config = _tokenizer_config(encoder, lower_case, special_tokens)
  with tf.io.gfile.GFile(os.path.join(directory, TOKENIZER_CONFIG_FILE),
                         'w') as f:
    f.write(json.dumps(tokenizer_config, indent=2, sort_keys=True))
  return directory
