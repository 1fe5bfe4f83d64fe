"""`ssd schedule`: upload a compiled pipeline to Kubeflow Pipelines and run it on a cron.

Through `kfp.Client` (the KFP v2beta1 REST API), in this order:

  1. GET  /apis/v2beta1/healthz                        (kfp.Client() itself)
  2. GET  /apis/v2beta1/pipelines?filter=<name>         is the pipeline there?
  3. new pipeline:       POST /apis/v2beta1/pipelines/upload?name=<name>
                         GET  /apis/v2beta1/pipelines/<id>/versions   (its first version)
     existing pipeline:  GET  /apis/v2beta1/pipelines/<id>/versions?filter=<version>
                         POST /apis/v2beta1/pipelines/upload_version  (unless that version exists)
  4. GET  /apis/v2beta1/experiments?filter=<experiment>; POST /apis/v2beta1/experiments if missing
  5. POST /apis/v2beta1/recurringruns

A version is named `<pipeline>-<sha256 of the spec, 12 hex>`, so scheduling
the same spec twice reuses its version and a changed spec adds one. What is
uploaded is the PipelineSpec inside the compiled PipelineJob (KFP's upload
takes a spec, not a job), with the job's pipeline root as its
`defaultPipelineRoot`; the recurring run also names that root.
"""

import dataclasses
import hashlib
import json
import os
import tempfile
from typing import Any, Callable, Dict, List, Optional

from google.protobuf import json_format
import yaml

from pipelines import kubeflow_spec
from ssd import cron

DEFAULT_EXPERIMENT = 'Default'
API = '/apis/v2beta1'


class ScheduleError(Exception):
  """Scheduling failed on the server side or could not reach it (exit code 1)."""


@dataclasses.dataclass
class Plan:
  """Everything `ssd schedule` will send, decided before any request."""
  host: str
  pipeline_name: str
  version_name: str
  experiment: str
  job_name: str
  cron: str
  max_concurrency: int
  pipeline_root: str
  spec: Dict[str, Any]     # the PipelineSpec that is uploaded (JSON dict)
  num_tasks: int


def make_plan(host: str, pipeline_path: str, cron_expr: str,
              experiment: str = DEFAULT_EXPERIMENT, max_concurrency: int = 1,
              job_name: Optional[str] = None) -> Plan:
  """Validates every input (spec, cron, numbers) without touching the network.

  Raises kubeflow_spec.SpecError or cron.CronError or ValueError.
  """
  cron_expr = cron.validate(cron_expr)
  if max_concurrency < 1:
    raise ValueError(f'--max_concurrency must be >= 1, got {max_concurrency}')
  if not host.startswith(('http://', 'https://')):
    raise ValueError(f'--host must be an http(s):// URL of the KFP API, got {host!r}')
  if not experiment.strip():
    raise ValueError('--experiment must not be empty')
  job = kubeflow_spec.load_job(pipeline_path)
  spec = kubeflow_spec.pipeline_spec(job, pipeline_path)
  spec_dict = json_format.MessageToDict(spec)
  digest = hashlib.sha256(json.dumps(spec_dict, sort_keys=True).encode()).hexdigest()[:12]
  name = spec.pipeline_info.name
  return Plan(host=host.rstrip('/'), pipeline_name=name, version_name=f'{name}-{digest}',
              experiment=experiment, job_name=job_name or f'{name} @ {cron_expr}',
              cron=cron_expr, max_concurrency=max_concurrency,
              pipeline_root=spec.default_pipeline_root, spec=spec_dict,
              num_tasks=len(spec.root.dag.tasks))


def recurring_run_body(plan: Plan, experiment_id: str, pipeline_id: str,
                       version_id: str):
  """The V2beta1RecurringRun that kfp.Client.create_recurring_run sends for `plan`."""
  import kfp_server_api  # pylint: disable=g-import-not-at-top
  return kfp_server_api.V2beta1RecurringRun(
      experiment_id=experiment_id, display_name=plan.job_name,
      mode=kfp_server_api.RecurringRunMode.ENABLE,
      pipeline_version_reference=kfp_server_api.V2beta1PipelineVersionReference(
          pipeline_id=pipeline_id, pipeline_version_id=version_id),
      runtime_config=kfp_server_api.V2beta1RuntimeConfig(
          pipeline_root=plan.pipeline_root or None, parameters={}),
      trigger=kfp_server_api.V2beta1Trigger(
          cron_schedule=kfp_server_api.V2beta1CronSchedule(cron=plan.cron)),
      max_concurrency=plan.max_concurrency, no_catchup=True)


def _wire(model) -> Dict[str, Any]:
  """A kfp_server_api model as the client serialises it onto the wire."""
  import kfp_server_api  # pylint: disable=g-import-not-at-top
  return kfp_server_api.ApiClient().sanitize_for_serialization(model)


def _name_filter(name: str) -> str:
  # As kfp.Client writes its own lookups: the Filter proto as JSON, EQUALS by enum number.
  return json.dumps({'predicates': [{'operation': 1, 'key': 'display_name',
                                     'stringValue': name}]})


def dry_run_requests(plan: Plan) -> List[Dict[str, Any]]:
  """The requests `schedule` sends when neither pipeline nor experiment exists yet.

  Ids the server would assign appear as <pipeline_id>, <version_id>, <experiment_id>.
  """
  import kfp_server_api  # pylint: disable=g-import-not-at-top
  experiment = kfp_server_api.V2beta1Experiment(display_name=plan.experiment, namespace='')
  return [
      {'method': 'GET', 'path': f'{API}/healthz'},
      {'method': 'GET', 'path': f'{API}/pipelines', 'query': {'filter': _name_filter(plan.pipeline_name)}},
      {'method': 'POST', 'path': f'{API}/pipelines/upload', 'query': {'name': plan.pipeline_name},
       'file': f'{plan.pipeline_name}.yaml', 'spec': plan.spec},
      {'method': 'GET', 'path': f'{API}/pipelines/<pipeline_id>/versions'},
      {'method': 'GET', 'path': f'{API}/experiments', 'query': {'filter': _name_filter(plan.experiment)}},
      {'method': 'POST', 'path': f'{API}/experiments', 'body': _wire(experiment)},
      {'method': 'POST', 'path': f'{API}/recurringruns',
       'body': _wire(recurring_run_body(plan, '<experiment_id>', '<pipeline_id>', '<version_id>'))},
  ]


def _write_spec(plan: Plan, directory: str) -> str:
  # KFP's upload takes YAML (by file name); a JSON document is valid YAML.
  path = os.path.join(directory, f'{plan.pipeline_name}.yaml')
  with open(path, 'w', encoding='utf-8') as f:
    yaml.safe_dump(plan.spec, f, sort_keys=True)
  return path


def _pipeline_version(client, plan: Plan, spec_path: str):
  """Uploads the pipeline or a new version of it; returns (pipeline_id, version_id)."""
  pipeline_id = client.get_pipeline_id(plan.pipeline_name)
  if pipeline_id is None:
    pipeline_id = client.upload_pipeline(spec_path, pipeline_name=plan.pipeline_name).pipeline_id
    versions = client.list_pipeline_versions(pipeline_id, page_size=1).pipeline_versions or []
    if not versions:
      raise ScheduleError(f'KFP created pipeline {pipeline_id} but lists no version of it')
    return pipeline_id, versions[0].pipeline_version_id
  existing = client.list_pipeline_versions(
      pipeline_id, page_size=1, filter=_name_filter(plan.version_name)).pipeline_versions or []
  if existing:
    return pipeline_id, existing[0].pipeline_version_id
  version = client.upload_pipeline_version(spec_path, plan.version_name, pipeline_id=pipeline_id)
  return pipeline_id, version.pipeline_version_id


def schedule(plan: Plan, client_factory: Optional[Callable[..., Any]] = None) -> Dict[str, str]:
  """Sends the requests; returns the ids. Raises ScheduleError with a readable reason."""
  import kfp  # pylint: disable=g-import-not-at-top
  import kfp_server_api  # pylint: disable=g-import-not-at-top
  import urllib3  # pylint: disable=g-import-not-at-top
  client_factory = client_factory or kfp.Client
  try:
    client = client_factory(host=plan.host)
    with tempfile.TemporaryDirectory() as tmp:
      pipeline_id, version_id = _pipeline_version(client, plan, _write_spec(plan, tmp))
    experiment_id = client.create_experiment(plan.experiment).experiment_id
    run = client.create_recurring_run(
        experiment_id=experiment_id, job_name=plan.job_name, cron_expression=plan.cron,
        max_concurrency=plan.max_concurrency, no_catchup=True, pipeline_id=pipeline_id,
        version_id=version_id, pipeline_root=plan.pipeline_root or None)
  except urllib3.exceptions.HTTPError as e:
    reason = getattr(e, 'reason', None) or e
    raise ScheduleError(f'cannot reach Kubeflow Pipelines at {plan.host}: {reason}') from None
  except kfp_server_api.ApiException as e:
    body = e.body.decode('utf-8', 'replace') if isinstance(e.body, bytes) else e.body
    raise ScheduleError(f'Kubeflow Pipelines at {plan.host} answered {e.status} {e.reason}: '
                        f'{body}') from None
  except TimeoutError as e:  # kfp.Client's healthz retries give up this way
    raise ScheduleError(f'Kubeflow Pipelines at {plan.host} did not answer: {e}') from None
  return {'pipeline_id': pipeline_id, 'pipeline_version_id': version_id,
          'experiment_id': experiment_id, 'recurring_run_id': run.recurring_run_id}
