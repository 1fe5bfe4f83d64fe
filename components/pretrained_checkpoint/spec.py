"""Keys and the artifact type of the PretrainedCheckpoint component."""

from tfx import types
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.common import code_version
from components.pretrained_checkpoint import keys

# Parameters.
SOURCE_KEY = 'source'        # what the config named: `minilm-l6`, a path or a URI
CACHE_DIR_KEY = 'cache_dir'  # where named checkpoints live ('' when the source is a path)
# Outputs.
CHECKPOINT_KEY = 'checkpoint'

# Custom properties of the output artifact.
SHA256_PROPERTY = 'sha256'   # components.common.fileio.sha256_files over the copied files
SOURCE_PROPERTY = 'source'
NUM_LAYERS_PROPERTY = 'num_layers'
HIDDEN_SIZE_PROPERTY = 'hidden_size'

# Node id: `pretrained_checkpoint`, or `pretrained_checkpoint_<slug>` when a
# config names several distinct checkpoints.
NODE_ID = 'pretrained_checkpoint'


class PretrainedCheckpoint(types.Artifact):
  """A Hugging Face-format BERT directory: config.json, vocab.txt, model.safetensors."""
  TYPE_NAME = keys.CHECKPOINT_TYPE_NAME


class PretrainedCheckpointSpec(types.ComponentSpec):
  PARAMETERS = {
      SOURCE_KEY: ExecutionParameter(type=str),
      CACHE_DIR_KEY: ExecutionParameter(type=str),
      code_version.CODE_FINGERPRINT_KEY: code_version.parameter(),
  }
  INPUTS = {}
  OUTPUTS = {CHECKPOINT_KEY: ChannelParameter(type=PretrainedCheckpoint)}
