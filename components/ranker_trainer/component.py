"""RankerTrainer: TFX's Trainer with one more input, the pretrained checkpoint.

The stock Trainer's inputs (examples, transform_graph, schema, base_model,
hyperparameters) have no slot for a pretrained encoder, and a path in
custom_config would bypass MLMD: lineage could not say which checkpoint a
model started from. This subclass adds an optional `checkpoint` input
(a PretrainedCheckpoint artifact); its executor hands the artifact's URI to
run_fn as custom_config['checkpoint_uri']. When the objective learns the
teacher's embeddings, it also passes where they are and whose they are
(custom_config['embedding_teacher']) and records the teacher on the output
Model (`embedding_teacher_uri`, `embedding_teacher_fingerprint`). Everything else (run_fn, Model
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

from components.common import teacher_embeddings as TE
from components.pretrained_checkpoint import spec as ckpt_spec
from components.pseudo_labeler import spec as pl_spec
from runconfig import config as C

CHECKPOINT_KEY = 'checkpoint'
# custom_config key under which run_fn finds the checkpoint artifact's URI.
CHECKPOINT_URI_CONFIG_KEY = 'checkpoint_uri'
# custom_config key under which run_fn finds the teacher's embeddings
# ({EXAMPLES_URI: the examples artifact holding them, teacher_uri,
# teacher_fingerprint, soft_label_temperature}); set only when the objective
# uses them (embedding_loss or in_batch_negatives).
EMBEDDING_TEACHER_CONFIG_KEY = 'embedding_teacher'
EXAMPLES_URI = TE.EXAMPLES_URI_KEY
EMBEDDING_TEACHER_FIELDS = (pl_spec.TEACHER_URI_PROPERTY, pl_spec.TEACHER_FINGERPRINT_PROPERTY)


class RankerTrainerSpec(specs.TrainerSpec):
  INPUTS = dict(specs.TrainerSpec.INPUTS, **{
      CHECKPOINT_KEY: ChannelParameter(type=ckpt_spec.PretrainedCheckpoint, optional=True)})


def embedding_teacher(custom_config: Dict[str, Any],
                      examples: List[types.Artifact]) -> Optional[Dict[str, str]]:
  """Where the teacher's embeddings are and whose they are, when the
  objective uses them (embedding_loss or in_batch_negatives), else None.

  They are in the `examples` input (a PseudoLabeler's pseudo_labelled
  output, components/common/teacher_embeddings.py), whose teacher_uri and
  teacher_fingerprint properties name the teacher that wrote them.
  """
  objective = custom_config.get('objective')
  if not objective or not C.uses_teacher_embeddings(
      C.from_dict(C.ObjectiveConfig, objective, prefix='objective')):
    return None
  found = artifact_utils.get_single_instance(examples)
  out = {EXAMPLES_URI: found.uri,
         **{name: found.get_string_custom_property(name) for name in EMBEDDING_TEACHER_FIELDS}}
  if found.has_custom_property(pl_spec.TEMPERATURE_PROPERTY):
    out[pl_spec.TEMPERATURE_PROPERTY] = found.get_float_custom_property(
        pl_spec.TEMPERATURE_PROPERTY)
  return out


def record_embedding_teacher(model: types.Artifact, teacher: Dict[str, str]) -> None:
  """Lineage: the model's `embedding_teacher_uri` / `_fingerprint` properties."""
  for name in EMBEDDING_TEACHER_FIELDS:
    model.set_string_custom_property(f'embedding_{name}', teacher[name])


class Executor(trainer_executor.GenericExecutor):
  """GenericExecutor that passes the checkpoint artifact's URI to run_fn, and
  the teacher's embeddings when the objective learns them."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    checkpoints = input_dict.get(CHECKPOINT_KEY) or []
    custom_config = json_utils.loads(exec_properties.get(specs.CUSTOM_CONFIG_KEY) or 'null') or {}
    teacher = embedding_teacher(custom_config, input_dict[specs.EXAMPLES_KEY])
    if checkpoints or teacher:
      exec_properties = dict(exec_properties)
      if checkpoints:
        custom_config[CHECKPOINT_URI_CONFIG_KEY] = artifact_utils.get_single_uri(checkpoints)
      if teacher:
        custom_config[EMBEDDING_TEACHER_CONFIG_KEY] = teacher
      exec_properties[specs.CUSTOM_CONFIG_KEY] = json.dumps(custom_config, sort_keys=True)
    super().Do({k: v for k, v in input_dict.items() if k != CHECKPOINT_KEY},
               output_dict, exec_properties)
    if teacher and TE.exists(teacher[EXAMPLES_URI]):   # none: a skipped round
      record_embedding_teacher(artifact_utils.get_single_instance(
          output_dict[specs.MODEL_KEY]), teacher)


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
