"""The compiled Kubeflow pipeline: a KFP v2 `PipelineJob` JSON, parsed strictly.

`ssd compile` writes what TFX's `KubeflowV2DagRunner` returns: a PipelineJob
whose `pipelineSpec` is the pipeline IR and whose `runtimeConfig` holds the
pipeline root. Both `ssd compile` (before writing) and `ssd schedule` (before
uploading) read it through here, so a file that would not load on the cluster
fails on this machine, with the file and the offending field named. No TFX
import: `ssd schedule` stays fast.
"""

import json
from typing import Any, Dict

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2


class SpecError(ValueError):
  """The file is not a KFP v2 PipelineJob that a cluster would accept."""


def parse_job(job: Dict[str, Any], source: str = 'pipeline') -> pipeline_spec_pb2.PipelineJob:
  """Parses a PipelineJob dict; unknown fields anywhere are errors (no ignore_unknown_fields)."""
  if not isinstance(job, dict):
    raise SpecError(f'{source}: expected a JSON object (a KFP PipelineJob), got {type(job).__name__}')
  try:
    parsed = json_format.ParseDict(job, pipeline_spec_pb2.PipelineJob())
  except json_format.ParseError as e:
    raise SpecError(f'{source}: not a KFP PipelineJob: {e}') from None
  spec = pipeline_spec(parsed, source)
  if not spec.pipeline_info.name:
    raise SpecError(f'{source}: pipelineSpec.pipelineInfo.name is empty')
  if not spec.root.dag.tasks:
    raise SpecError(f'{source}: pipelineSpec.root.dag has no tasks')
  # deploymentSpec is a Struct in PipelineSpec; KFP's driver reads it as a
  # PipelineDeploymentConfig, so parse it as one too (strictly).
  try:
    deployment = json_format.ParseDict(json_format.MessageToDict(spec.deployment_spec),
                                       pipeline_spec_pb2.PipelineDeploymentConfig())
  except json_format.ParseError as e:
    raise SpecError(f'{source}: pipelineSpec.deploymentSpec is not a KFP '
                    f'PipelineDeploymentConfig: {e}') from None
  executors = set(deployment.executors)
  for name, component in spec.components.items():
    if component.executor_label and component.executor_label not in executors:
      raise SpecError(f'{source}: component {name} names executor {component.executor_label!r}, '
                      'which deploymentSpec does not define')
  return parsed


def pipeline_spec(job: pipeline_spec_pb2.PipelineJob,
                  source: str = 'pipeline') -> pipeline_spec_pb2.PipelineSpec:
  """The job's IR as a typed PipelineSpec (a Struct inside PipelineJob), parsed strictly.

  The pipeline root moves into `defaultPipelineRoot`, so the spec alone (what
  KFP uploads) still knows where its artifacts go.
  """
  if not job.HasField('pipeline_spec'):
    raise SpecError(f'{source}: no pipelineSpec')
  try:
    spec = json_format.ParseDict(json_format.MessageToDict(job.pipeline_spec),
                                 pipeline_spec_pb2.PipelineSpec())
  except json_format.ParseError as e:
    raise SpecError(f'{source}: pipelineSpec is not a KFP PipelineSpec: {e}') from None
  if not spec.default_pipeline_root and job.runtime_config.gcs_output_directory:
    spec.default_pipeline_root = job.runtime_config.gcs_output_directory
  return spec


def load_job(path: str) -> pipeline_spec_pb2.PipelineJob:
  """Reads and strictly parses the JSON that `ssd compile` wrote."""
  try:
    with open(path, encoding='utf-8') as f:
      text = f.read()
  except OSError as e:
    raise SpecError(f'{path}: cannot read: {e.strerror or e}') from None
  try:
    job = json.loads(text)
  except json.JSONDecodeError as e:
    raise SpecError(f'{path}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}') from None
  return parse_job(job, path)


def container_commands(spec: pipeline_spec_pb2.PipelineSpec) -> Dict[str, Dict[str, Any]]:
  """executor label -> its container (image, command, args, resources) as a dict."""
  executors = json_format.MessageToDict(spec.deployment_spec).get('executors', {})
  return {label: ex['container'] for label, ex in executors.items() if 'container' in ex}
