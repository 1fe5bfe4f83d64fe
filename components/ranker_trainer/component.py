"""RankerTrainer: TFX's Trainer with one more input, the pretrained checkpoint.

The stock Trainer's inputs (examples, transform_graph, schema, base_model,
hyperparameters) have no slot for a pretrained encoder, and a path in
custom_config would bypass MLMD: lineage could not say which checkpoint a
model started from. This subclass adds an optional `checkpoint` input
(a PretrainedCheckpoint artifact); its executor hands the artifact's URI to
run_fn as custom_config['checkpoint_uri']. Everything else (run_fn, Model
and ModelRun outputs, caching) is the stock GenericExecutor's.
"""

import json
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.trainer import component as trainer_component
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import json_utils

from components.pretrained_checkpoint import spec as ckpt_spec

CHECKPOINT_KEY = 'checkpoint'
# custom_config key under which run_fn finds the checkpoint artifact's URI.
CHECKPOINT_URI_CONFIG_KEY = 'checkpoint_uri'


class RankerTrainerSpec(specs.TrainerSpec):
  INPUTS = dict(specs.TrainerSpec.INPUTS, **{
      CHECKPOINT_KEY: ChannelParameter(type=ckpt_spec.PretrainedCheckpoint, optional=True)})


class Executor(trainer_executor.GenericExecutor):
  """GenericExecutor that passes the checkpoint artifact's URI to run_fn."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    checkpoints = input_dict.get(CHECKPOINT_KEY) or []
    if checkpoints:
      exec_properties = dict(exec_properties)
      custom_config = json_utils.loads(exec_properties.get(specs.CUSTOM_CONFIG_KEY) or 'null') or {}
      custom_config[CHECKPOINT_URI_CONFIG_KEY] = artifact_utils.get_single_uri(checkpoints)
      exec_properties[specs.CUSTOM_CONFIG_KEY] = json.dumps(custom_config, sort_keys=True)
    super().Do({k: v for k, v in input_dict.items() if k != CHECKPOINT_KEY},
               output_dict, exec_properties)


class RankerTrainer(trainer_component.Trainer):
  """A Trainer with `run_fn` (an import path) and an optional `checkpoint` input."""

  SPEC_CLASS = RankerTrainerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(self, run_fn: str, examples: types.BaseChannel,
               train_args: trainer_pb2.TrainArgs, eval_args: trainer_pb2.EvalArgs,
               custom_config: Dict[str, Any],
               base_model: Optional[types.BaseChannel] = None,
               checkpoint: Optional[types.BaseChannel] = None):
    spec = RankerTrainerSpec(
        examples=examples, base_model=base_model, checkpoint=checkpoint,
        train_args=train_args, eval_args=eval_args, run_fn=run_fn,
        custom_config=json_utils.dumps(custom_config),
        model=types.Channel(type=standard_artifacts.Model),
        model_run=types.Channel(type=standard_artifacts.ModelRun))
    # Trainer.__init__ builds a plain TrainerSpec; build ours and skip it.
    base_component.BaseComponent.__init__(self, spec=spec)  # pylint: disable=non-parent-init-called
