"""PretrainedCheckpoint executor: resolve the source, copy it in, fingerprint it.

The source is resolved here, at run time, on the machine that runs the
component: `minilm-l6` or `mpnet-base` names a checkpoint `ssd weights` put
in the local weights cache (a convenience of local runs), anything else is a
directory path or URI read through tf.io.gfile. The files a BERT or MPNet
import needs are copied into the artifact, so trainers read weights from the
pipeline root, and a removed or changed source does not change a model
already trained.
"""

import json
import os
from typing import Any, Dict, List

from absl import logging
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from components.common import fileio
from components.pretrained_checkpoint import spec as S
from rankers import checkpoint as rcheckpoint
from runconfig import config as C
from runconfig import checkpoints as weights

REQUIRED = (rcheckpoint.CONFIG_FILE, rcheckpoint.VOCAB_FILE)
# MPNet's special tokens live in these (rankers.checkpoint.read_special_tokens).
OPTIONAL = (rcheckpoint.TOKENIZER_CONFIG_FILE, rcheckpoint.SPECIAL_TOKENS_FILE)


def resolve_source(source: str, cache_dir: str) -> str:
  """`minilm-l6`, `mpnet-base` -> its directory in the local weights cache; else `source`."""
  if weights.is_named(source):
    try:
      return weights.resolve_checkpoint(source, cache_dir or C.PipelineConfig.cache_dir)
    except weights.WeightsError as e:
      raise weights.WeightsError(
          f'{e}. Off this machine (e.g. on Kubeflow), set model.checkpoint to the URI of a '
          'copy of the checkpoint directory instead of the name') from None
  return source


def checkpoint_files(directory: str) -> List[str]:
  """Names of the files of an HF BERT directory that a ranker reads."""
  names = []
  for name in REQUIRED:
    if not tf.io.gfile.exists(os.path.join(directory, name)):
      raise FileNotFoundError(
          f'checkpoint {directory} has no {name}; expected a Hugging Face-format BERT '
          f'directory ({", ".join(REQUIRED)}, {rcheckpoint.WEIGHTS_FILE})')
    names.append(name)
  names += [n for n in OPTIONAL if tf.io.gfile.exists(os.path.join(directory, n))]
  weights_path = rcheckpoint.weights_path(directory)
  names.append(os.path.basename(weights_path))
  if weights_path.endswith('.json'):
    with tf.io.gfile.GFile(weights_path) as f:
      names += sorted(set(json.load(f).get('weight_map', {}).values()))
  return sorted(set(names))


class Executor(base_executor.BaseExecutor):
  """Copies a pretrained checkpoint into the `checkpoint` output artifact."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    del input_dict
    source = exec_properties[S.SOURCE_KEY]
    directory = resolve_source(source, exec_properties.get(S.CACHE_DIR_KEY) or '')
    out = artifact_utils.get_single_instance(output_dict[S.CHECKPOINT_KEY])
    names = checkpoint_files(directory)
    for name in names:
      target = os.path.join(out.uri, name)
      tf.io.gfile.makedirs(os.path.dirname(target))
      tf.io.gfile.copy(os.path.join(directory, name), target, overwrite=True)
    digest = fileio.sha256_files(out.uri, names)
    encoder = rcheckpoint.read_hf_config(out.uri)
    out.set_string_custom_property(S.SHA256_PROPERTY, digest)
    out.set_string_custom_property(S.SOURCE_PROPERTY, source)
    out.set_int_custom_property(S.NUM_LAYERS_PROPERTY, encoder.num_layers)
    out.set_int_custom_property(S.HIDDEN_SIZE_PROPERTY, encoder.hidden_size)
    logging.info('checkpoint %s (%s): %d files, %d layers x %d hidden, sha256 %s -> %s',
                 source, directory, len(names), encoder.num_layers, encoder.hidden_size,
                 digest, out.uri)
