"""Import of HF-format BERT checkpoints (config.json + model.safetensors).

Pretrained encoders are the starting point of every ranker, and a silently
mis-mapped weight ruins a model without any error, so this module is strict:
the HF-name -> variable mapping lives in one place (`hf_variable_map`), every
expected tensor must be present with the expected shape (errors name the
tensor and the file), and unexpected tensors are logged. Weights are read
with safetensors' numpy reader, so no torch is needed.
"""

import json
import os
import re
from typing import Dict, List, Optional, Tuple

from absl import logging
import numpy as np
from safetensors import numpy as safetensors_numpy
import tensorflow as tf

from rankers.config import EncoderConfig

CONFIG_FILE = 'config.json'
VOCAB_FILE = 'vocab.txt'
TOKENIZER_CONFIG_FILE = 'tokenizer_config.json'
WEIGHTS_FILE = 'model.safetensors'
WEIGHTS_INDEX_FILE = 'model.safetensors.index.json'

# Tensors of BERT checkpoints that a ranker does not use.
IGNORED_TENSORS = (r'^embeddings\.position_ids$', r'^pooler\.')
_PREFIX = 'bert.'
_LAYER_RE = re.compile(r'^encoder\.layer\.(\d+)\.')


def _read_json(path: str) -> dict:
  with open(path, encoding='utf-8') as f:
    try:
      return json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f'{path}: not valid JSON: {e}') from e


def read_hf_config(checkpoint_dir: str) -> EncoderConfig:
  """Reads `<checkpoint_dir>/config.json` of a BERT model."""
  path = os.path.join(checkpoint_dir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(
        f'{path}: not found; an HF-format BERT checkpoint directory holds '
        f'{CONFIG_FILE}, {WEIGHTS_FILE} and {VOCAB_FILE}')
  data = _read_json(path)
  model_type = data.get('model_type', 'bert')
  if model_type != 'bert':
    raise ValueError(f'{path}: model_type is {model_type!r}, only BERT '
                     f'("bert") checkpoints are supported')
  required = ('vocab_size', 'hidden_size', 'num_hidden_layers',
              'num_attention_heads', 'intermediate_size')
  missing = [key for key in required if key not in data]
  if missing:
    raise ValueError(f'{path}: not a BERT config, missing {missing}')
  activation = data.get('hidden_act', 'gelu')
  if activation != 'gelu':
    raise ValueError(f'{path}: hidden_act {activation!r} is not supported '
                     f'(only exact "gelu")')
  position_type = data.get('position_embedding_type', 'absolute')
  if position_type != 'absolute':
    raise ValueError(f'{path}: position_embedding_type {position_type!r} is '
                     f'not supported (only "absolute")')
  return EncoderConfig(
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


def read_hf_lower_case(checkpoint_dir: str) -> Optional[bool]:
  """`do_lower_case` from tokenizer_config.json, or None if not stated."""
  path = os.path.join(checkpoint_dir, TOKENIZER_CONFIG_FILE)
  if not os.path.exists(path):
    return None
  value = _read_json(path).get('do_lower_case')
  return None if value is None else bool(value)


def _normalise_name(name: str) -> str:
  """Strips the optional 'bert.' prefix; maps old LayerNorm gamma/beta."""
  if name.startswith(_PREFIX):
    name = name[len(_PREFIX):]
  if name.endswith('LayerNorm.gamma'):
    name = name[:-len('gamma')] + 'weight'
  elif name.endswith('LayerNorm.beta'):
    name = name[:-len('beta')] + 'bias'
  return name


def weights_path(checkpoint_dir: str) -> str:
  """The weights file (or shard index) of a checkpoint directory."""
  for name in (WEIGHTS_FILE, WEIGHTS_INDEX_FILE):
    path = os.path.join(checkpoint_dir, name)
    if os.path.exists(path):
      return path
  present = sorted(os.listdir(checkpoint_dir)) if os.path.isdir(
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
    for name, value in safetensors_numpy.load_file(file).items():
      weights[_normalise_name(name)] = value
  return weights


def hf_variable_map(encoder) -> List[Tuple[str, tf.Variable, bool]]:
  """(HF tensor name, encoder variable, transpose?) for every variable.

  The single place that knows how `rankers.encoder.BertEncoder` lays out BERT:
  HF Linear weights are [out, in] and Keras Dense kernels [in, out], hence the
  transpose flag.
  """
  if not encoder.built:
    raise ValueError('encoder must be built (called once) before its '
                     'weights can be mapped')
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

  def dense(prefix, layer):
    return [(prefix + '.weight', layer.kernel, True),
            (prefix + '.bias', layer.bias, False)]

  def norm(prefix, layer):
    return [(prefix + '.weight', layer.gamma, False),
            (prefix + '.bias', layer.beta, False)]

  for i, layer in enumerate(encoder.transformer_layers):
    p = f'encoder.layer.{i}.'
    mapping += dense(p + 'attention.self.query', layer.query)
    mapping += dense(p + 'attention.self.key', layer.key)
    mapping += dense(p + 'attention.self.value', layer.value)
    mapping += dense(p + 'attention.output.dense', layer.attention_output)
    mapping += norm(p + 'attention.output.LayerNorm',
                    layer.attention_layer_norm)
    mapping += dense(p + 'intermediate.dense', layer.intermediate)
    mapping += dense(p + 'output.dense', layer.output_dense)
    mapping += norm(p + 'output.LayerNorm', layer.output_layer_norm)
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


def load_checkpoint(encoder, checkpoint_dir: str,
                    keep_layers: Optional[int] = None) -> None:
  """Reads a checkpoint directory's weights into a built encoder."""
  assign_hf_weights(encoder, load_hf_weights(checkpoint_dir), keep_layers,
                    source=weights_path(checkpoint_dir))
