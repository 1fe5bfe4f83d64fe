"""Runs a compiled KFP v2 PipelineJob task by task, as open-source Kubeflow Pipelines does.

A test utility, not product code: no cluster, no containers, but every task
goes through what KFP's v2 driver and launcher do for it
(kubeflow/pipelines backend/src/v2: driver, component/launcher_v2.go,
metadata/client.go, cacheutils/cache.go):

- the root DAG's tasks run in dependency order (`dependentTasks` and the
  producers of their input artifacts), up to `parallelism` at a time;
- each container task gets an ExecutorInput built as the driver builds it:
  `inputs.parameterValues` (spec 2.1: `runtimeValue.constant`, or the run's
  parameter for `componentInputParameter`), `inputs.artifacts` from upstream
  outputs (RuntimeArtifact `name` = the MLMD artifact id, `type` from the
  component's input definition, `uri`, `metadata` = the artifact's custom
  properties), output artifacts provisioned at
  `<pipeline root>/<pipeline>/<run>/<task>/<output key>`, and an
  `outputFile`;
- the container's command + args run in a subprocess, with `{{$}}` replaced
  by the ExecutorInput JSON and `python` by this interpreter (the image holds
  the same lock and project as this venv), in an empty working directory
  under an empty HOME, so nothing of this machine's home or checkout leaks in.
  With `preload` (modules) or a running `zygote` (tests/zygote.py), a
  `python -m` command runs in a child forked from a zygote that imported
  those third-party modules once, itself in an empty directory under an
  empty HOME: the same module, arguments, environment, directory and exit
  status, without paying the entrypoint's ~7 CPU-s of imports per task.
  Without either (the default), every task is a fresh interpreter;
- the launcher's bookkeeping lands in an ML Metadata store with KFP's names:
  contexts `system.Pipeline` and `system.PipelineRun`, executions
  `system.DAGExecution` / `system.ContainerExecution` /
  `system.ImporterExecution` with `task_name`, `display_name`, `inputs`,
  `cache_fingerprint`, artifacts typed by schema title with `display_name`
  and the executor output's metadata as custom properties (numbers become
  doubles, as protobuf Struct numbers are), INPUT/OUTPUT events keyed by name;
- caching: a task whose cache is enabled and whose fingerprint (the CacheKey
  of cacheutils: input artifact names, parameter values, output specs,
  image and command) matches a COMPLETE execution of the same pipeline is
  recorded CACHED with that execution's outputs, and its command does not run;
- importers create (or, without `reimport`, reuse) an artifact for a URI.
"""

import collections
import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
import yaml

from tests import zygote as zygote_lib

PIPELINE_CONTEXT = 'system.Pipeline'
RUN_CONTEXT = 'system.PipelineRun'
DAG_EXECUTION = 'system.DAGExecution'
CONTAINER_EXECUTION = 'system.ContainerExecution'
IMPORTER_EXECUTION = 'system.ImporterExecution'
IMPORTER_OUTPUT_KEY = 'artifact'
OUTPUT_FILE = 'output_metadata.json'
_STATE = metadata_store_pb2.Execution


# What the TFX KFP v2 entrypoint imports at its top (TFX, TensorFlow, Beam,
# TFMA): a zygote's preload for tasks whose command runs that entrypoint.
ENTRYPOINT_PRELOAD = ('tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor',)


class TaskFailed(RuntimeError):
  """A task's command exited non-zero; the message holds the log's tail."""


@dataclasses.dataclass
class TaskResult:
  name: str
  state: str                      # COMPLETE | CACHED
  execution_id: int
  outputs: Dict[str, List[metadata_store_pb2.Artifact]]
  seconds: float = 0.0
  log: Optional[str] = None       # the command's stdout + stderr (None when cached)


def _string(value: str) -> metadata_store_pb2.Value:
  return metadata_store_pb2.Value(string_value=value)


def _mlmd_value(value: Any) -> metadata_store_pb2.Value:
  """A metadata field as KFP's launcher stores it (Struct numbers are doubles)."""
  if isinstance(value, bool):
    return metadata_store_pb2.Value(bool_value=value)
  if isinstance(value, (int, float)):
    return metadata_store_pb2.Value(double_value=float(value))
  if isinstance(value, str):
    return _string(value)
  out = metadata_store_pb2.Value()
  out.struct_value.update(value if isinstance(value, dict) else {'list': value})
  return out


def _json_value(value: metadata_store_pb2.Value) -> Any:
  kind = value.WhichOneof('value')
  if kind == 'struct_value':
    return json_format.MessageToDict(value.struct_value)
  return getattr(value, kind) if kind else None


def schema_title(type_schema: Dict[str, Any]) -> str:
  """The artifact type's title: `schemaTitle`, or the title of an `instanceSchema` YAML."""
  if 'schemaTitle' in type_schema:
    return type_schema['schemaTitle']
  return yaml.safe_load(type_schema['instanceSchema'])['title']


def fingerprint(inputs: Dict[str, Any], outputs: Dict[str, Any], image: str,
                cmd_args: List[str]) -> str:
  """sha256 of the CacheKey JSON, as cacheutils.GenerateCacheKey/GenerateFingerPrint build it."""
  key = {
      'inputArtifactNames': {k: {'artifactNames': [a['name'] for a in v['artifacts']]}
                             for k, v in inputs.get('artifacts', {}).items()},
      'inputParameterValues': inputs.get('parameterValues', {}),
      'outputArtifactsSpec': {k: {'name': v['artifacts'][0].get('name', ''),
                                  'type': v['artifacts'][0]['type'],
                                  'metadata': v['artifacts'][0].get('metadata', {})}
                              for k, v in outputs.get('artifacts', {}).items()},
      'outputParametersSpec': {},
      'containerSpec': {'image': image, 'cmdArgs': cmd_args},
  }
  return hashlib.sha256(json.dumps(key, sort_keys=True).encode('utf-8')).hexdigest()


class KfpHarness:
  """Runs one compiled PipelineJob (the JSON `ssd compile` writes) against one MLMD store."""

  def __init__(self, job: Dict[str, Any], metadata_path: str, work_dir: str,
               pipeline_root: Optional[str] = None, parallelism: int = 2,
               parameter_values: Optional[Dict[str, Any]] = None,
               env: Optional[Dict[str, str]] = None, preload: Sequence[str] = (),
               zygote: Optional[zygote_lib.Zygote] = None):
    json_format.ParseDict(job, pipeline_spec_pb2.PipelineJob())   # strict: a cluster would refuse
    self.job = job
    self.spec = job['pipelineSpec']
    self.pipeline_name = self.spec['pipelineInfo']['name']
    self.root = (pipeline_root or job.get('runtimeConfig', {}).get('gcsOutputDirectory')
                 or self.spec.get('defaultPipelineRoot'))
    assert self.root, 'no pipeline root: pass pipeline_root or compile with one'
    self.tasks = self.spec['root']['dag']['tasks']
    self.executors = self.spec['deploymentSpec']['executors']
    self.parallelism = parallelism
    self.parameter_values = dict(job.get('runtimeConfig', {}).get('parameterValues', {}))
    self.parameter_values.update(parameter_values or {})
    self.work_dir = work_dir
    self.env = env
    self.preload = tuple(preload)
    # A zygote passed in is the caller's (it must have imported what the
    # tasks' entrypoint imports); one started from `preload` is closed here.
    self._zygote: Optional[zygote_lib.Zygote] = zygote
    self._owns_zygote = False
    cfg = metadata_store_pb2.ConnectionConfig()
    self.store_path = metadata_path
    cfg.sqlite.filename_uri = metadata_path
    cfg.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    self.store = metadata_store.MetadataStore(cfg)

  def close(self) -> None:
    """Stops the zygote, if this harness started one."""
    if self._owns_zygote:
      self._zygote.close()
      self._zygote, self._owns_zygote = None, False

  def _launcher(self):
    """How a task's command runs: a fresh subprocess, or a fork of the zygote."""
    if self._zygote is None:
      if not self.preload:
        return _run_command
      self._zygote = zygote_lib.Zygote(self.preload, os.path.join(self.work_dir, 'zygote'),
                                       self.env)
      self._owns_zygote = True
    return functools.partial(_run_forked, self._zygote)

  # --- MLMD bookkeeping (metadata/client.go) -------------------------------

  def _type_id(self, kind: str, name: str) -> int:
    put = {'context': (self.store.put_context_type, metadata_store_pb2.ContextType),
           'execution': (self.store.put_execution_type, metadata_store_pb2.ExecutionType),
           'artifact': (self.store.put_artifact_type, metadata_store_pb2.ArtifactType)}[kind]
    return put[0](put[1](name=name))

  def _context(self, type_name: str, name: str, props: Dict[str, str]) -> metadata_store_pb2.Context:
    found = self.store.get_context_by_type_and_name(type_name, name)
    if found is not None:
      return found
    ctx = metadata_store_pb2.Context(type_id=self._type_id('context', type_name), name=name)
    for k, v in props.items():
      ctx.custom_properties[k].CopyFrom(_string(v))
    ctx.id = self.store.put_contexts([ctx])[0]
    return ctx

  def _put_execution(self, execution, contexts, inputs=None, outputs=None) -> int:
    pairs = []
    for direction, by_key in ((metadata_store_pb2.Event.INPUT, inputs or {}),
                              (metadata_store_pb2.Event.OUTPUT, outputs or {})):
      for key, artifacts in by_key.items():
        for artifact in artifacts:
          event = metadata_store_pb2.Event(type=direction)
          event.path.steps.add().key = key
          pairs.append((artifact, event))
    execution_id, _, _ = self.store.put_execution(execution, pairs, contexts)
    return execution_id

  def _new_execution(self, type_name: str, task: str, dag_id: int,
                     props: Dict[str, metadata_store_pb2.Value]) -> metadata_store_pb2.Execution:
    e = metadata_store_pb2.Execution(type_id=self._type_id('execution', type_name),
                                     last_known_state=_STATE.RUNNING)
    e.custom_properties['display_name'].CopyFrom(_string(task))
    e.custom_properties['task_name'].CopyFrom(_string(task))
    if dag_id:
      e.custom_properties['parent_dag_id'].int_value = dag_id
    for k, v in props.items():
      e.custom_properties[k].CopyFrom(v)
    return e

  def _artifact(self, runtime: Dict[str, Any], output_key: str) -> metadata_store_pb2.Artifact:
    a = metadata_store_pb2.Artifact(
        type_id=self._type_id('artifact', schema_title(runtime['type'])), uri=runtime['uri'],
        state=metadata_store_pb2.Artifact.LIVE)
    a.custom_properties['display_name'].CopyFrom(_string(output_key))
    a.custom_properties['store_session_info'].CopyFrom(_string('{}'))
    for k, v in runtime.get('metadata', {}).items():
      a.custom_properties[k].CopyFrom(_mlmd_value(v))
    return a

  def _runtime_artifact(self, artifact: metadata_store_pb2.Artifact,
                        type_schema: Dict[str, Any]) -> Dict[str, Any]:
    """An MLMD artifact as the driver hands it to a task (metadata/client.go toRuntimeArtifact)."""
    return {'name': str(artifact.id), 'type': type_schema, 'uri': artifact.uri,
            'metadata': {k: _json_value(v) for k, v in artifact.custom_properties.items()}}

  # --- the DAG -------------------------------------------------------------

  def order(self) -> List[str]:
    """Task names in a dependency order (ties by name, so runs are repeatable)."""
    deps = {name: self.upstream(name) for name in self.tasks}
    done: List[str] = []
    while len(done) < len(deps):
      ready = sorted(n for n, d in deps.items() if n not in done and d <= set(done))
      assert ready, f'cycle among {sorted(set(deps) - set(done))}'
      done.append(ready[0])
    return done

  def upstream(self, name: str) -> set:
    task = self.tasks[name]
    producers = {a['taskOutputArtifact']['producerTask']
                 for a in task.get('inputs', {}).get('artifacts', {}).values()
                 if 'taskOutputArtifact' in a}
    return set(task.get('dependentTasks', [])) | producers

  def _component(self, name: str) -> Dict[str, Any]:
    return self.spec['components'][self.tasks[name]['componentRef']['name']]

  def _parameter_values(self, name: str) -> Dict[str, Any]:
    out = {}
    for key, p in self.tasks[name].get('inputs', {}).get('parameters', {}).items():
      if 'runtimeValue' in p:
        value = p['runtimeValue']
        if 'constant' not in value:
          raise ValueError(f'{name}.{key}: runtimeValue without `constant` (a spec-2.0 '
                           f'`constantValue` is not filled by the KFP v2 launcher): {value}')
        out[key] = value['constant']
      elif 'componentInputParameter' in p:
        out[key] = self.parameter_values[p['componentInputParameter']]
      else:
        raise ValueError(f'{name}.{key}: unsupported parameter source {sorted(p)}')
    return out

  def run(self, run_id: str, only: Optional[List[str]] = None) -> Dict[str, TaskResult]:
    """Runs the root DAG's tasks (`only` these, whose upstream must be among them).

    Raises TaskFailed on the first failure.
    """
    pipeline_ctx = self._context(PIPELINE_CONTEXT, self.pipeline_name, {})
    run_root = f'{self.root.rstrip("/")}/{self.pipeline_name}/{run_id}'
    run_ctx = self._context(RUN_CONTEXT, run_id, {'pipeline_root': run_root, 'namespace': '',
                                                  'resource_name': run_id,
                                                  'store_session_info': '{}'})
    self.store.put_parent_contexts([metadata_store_pb2.ParentContext(
        child_id=run_ctx.id, parent_id=pipeline_ctx.id)])
    contexts = [pipeline_ctx, run_ctx]
    dag = self._new_execution(DAG_EXECUTION, '', 0, {})
    dag.id = self._put_execution(dag, contexts)
    results: Dict[str, TaskResult] = {}
    pending = [name for name in self.order() if only is None or name in only]
    outside = {u for name in pending for u in self.upstream(name)} - set(pending)
    assert not outside, f'tasks {sorted(outside)} are upstream of {only} but not in it'
    running: Dict[concurrent.futures.Future, tuple] = {}
    with concurrent.futures.ThreadPoolExecutor(self.parallelism) as pool:
      try:
        while pending or running:
          for name in [n for n in pending if self.upstream(n) <= set(results)]:
            if len(running) >= self.parallelism:
              break
            pending.remove(name)
            started = self._start(name, run_root, contexts, dag.id, results)
            if isinstance(started, TaskResult):
              results[name] = started
            else:
              running[pool.submit(self._launcher(), *started[1])] = (name,) + started
          if running:
            finished, _ = concurrent.futures.wait(
                running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
              name, execution, command_args, provisioned = running.pop(future)
              results[name] = self._finish(name, execution, contexts, provisioned,
                                           future.result(), command_args)
      except BaseException:
        dag.last_known_state = _STATE.FAILED
        self._put_execution(dag, contexts)
        raise
    dag.last_known_state = _STATE.COMPLETE
    self._put_execution(dag, contexts)
    return results

  # --- one task ------------------------------------------------------------

  def _inputs(self, name: str, results: Dict[str, TaskResult]):
    """(ExecutorInput.inputs, {key: [MLMD artifact]}) of a task."""
    definitions = self._component(name).get('inputDefinitions', {}).get('artifacts', {})
    runtime, mlmd = {}, {}
    for key, source in self.tasks[name].get('inputs', {}).get('artifacts', {}).items():
      ref = source['taskOutputArtifact']
      artifacts = results[ref['producerTask']].outputs[ref['outputArtifactKey']]
      mlmd[key] = artifacts
      runtime[key] = {'artifacts': [self._runtime_artifact(a, definitions[key]['artifactType'])
                                    for a in artifacts]}
    return {'parameterValues': self._parameter_values(name), 'artifacts': runtime}, mlmd

  def _start(self, name, run_root, contexts, dag_id, results):
    executor = self.executors[self._component(name)['executorLabel']]
    if 'importer' in executor:
      return self._import(name, executor['importer'], contexts, dag_id)
    if 'container' not in executor:
      raise ValueError(f'{name}: executor {sorted(executor)} is neither a container nor an '
                       'importer; open-source KFP cannot run it')
    container = executor['container']
    inputs, input_artifacts = self._inputs(name, results)
    task_dir = os.path.join(self.work_dir, run_root.rsplit('/', 1)[-1], name)
    outputs = {
        'artifacts': {key: {'artifacts': [{'type': d['artifactType'], 'uri': f'{run_root}/{name}/{key}',
                                           'metadata': {}}]}
                      for key, d in self._component(name).get('outputDefinitions', {})
                      .get('artifacts', {}).items()},
        'outputFile': os.path.join(task_dir, 'kfp_outputs', OUTPUT_FILE),
    }
    cmd_args = list(container.get('command', [])) + list(container.get('args', []))
    fp = fingerprint(inputs, outputs, container.get('image', ''), cmd_args)
    props = {'image': _string(container.get('image', '')), 'pod_name': _string(f'{run_root}-{name}'),
             'cache_fingerprint': _string(fp)}
    props['inputs'] = metadata_store_pb2.Value()
    props['inputs'].struct_value.update(inputs['parameterValues'])
    execution = self._new_execution(CONTAINER_EXECUTION, name, dag_id, props)
    cached = (self._cache_hit(fp, contexts[0].id)
              if self.tasks[name].get('cachingOptions', {}).get('enableCache') else None)
    if cached is not None:
      execution.last_known_state = _STATE.CACHED
      execution.custom_properties['cached_execution_id'].CopyFrom(_string(str(cached.id)))
      outs = self._outputs_of(cached.id)
      execution_id = self._put_execution(execution, contexts, input_artifacts, outs)
      return TaskResult(name, 'CACHED', execution_id, outs)
    execution.id = self._put_execution(execution, contexts, input_artifacts)
    executor_input = json.dumps({'inputs': inputs, 'outputs': outputs})
    command = [sys.executable if i == 0 and part == 'python' else
               part.replace('{{$}}', executor_input) for i, part in enumerate(cmd_args)]
    unresolved = [part for part in command if '{{$' in part]
    if unresolved:
      raise ValueError(f'{name}: placeholders this harness does not resolve: {unresolved}')
    return execution, (command, task_dir, self.env), outputs

  def _finish(self, name, execution, contexts, provisioned, ran, command_args) -> TaskResult:
    returncode, seconds, log = ran
    if returncode != 0:
      execution.last_known_state = _STATE.FAILED
      self._put_execution(execution, contexts)
      raise TaskFailed(f'{name}: exit {returncode} after {seconds:.0f}s running '
                       f'{" ".join(command_args[0][:4])} ...\n{log[-6000:]}')
    with open(provisioned['outputFile'], encoding='utf-8') as f:
      written = json.load(f).get('artifacts', {})
    outs = {}
    for key, spec in provisioned['artifacts'].items():
      runtime = dict(spec['artifacts'][0])
      produced = written.get(key, {}).get('artifacts', [{}])[0]
      runtime['uri'] = produced.get('uri') or runtime['uri']
      runtime['metadata'] = dict(runtime.get('metadata', {}), **produced.get('metadata', {}))
      outs[key] = [self._artifact(runtime, key)]
    execution.last_known_state = _STATE.COMPLETE
    self._put_execution(execution, contexts, None, outs)
    return TaskResult(name, 'COMPLETE', execution.id, self._outputs_of(execution.id), seconds, log)

  def _import(self, name, importer, contexts, dag_id) -> TaskResult:
    source = importer['artifactUri']
    uri = (source['constant'] if 'constant' in source
           else self.parameter_values[source['runtimeParameter']])
    runtime = {'type': importer['typeSchema'], 'uri': uri, 'metadata': importer.get('metadata', {})}
    artifact = self._artifact(runtime, IMPORTER_OUTPUT_KEY)
    if not importer.get('reimport'):
      same = [a for a in self.store.get_artifacts_by_uri(uri) if a.type_id == artifact.type_id]
      artifact = same[0] if same else artifact
    execution = self._new_execution(IMPORTER_EXECUTION, name, dag_id, {})
    execution.last_known_state = _STATE.COMPLETE
    execution_id = self._put_execution(execution, contexts, None, {IMPORTER_OUTPUT_KEY: [artifact]})
    return TaskResult(name, 'COMPLETE', execution_id, self._outputs_of(execution_id))

  def _cache_hit(self, fp: str, pipeline_ctx_id: int) -> Optional[metadata_store_pb2.Execution]:
    done = [e for e in self.store.get_executions_by_context(pipeline_ctx_id)
            if e.last_known_state == _STATE.COMPLETE
            and e.custom_properties.get('cache_fingerprint', _string('')).string_value == fp]
    return max(done, key=lambda e: e.id) if done else None

  def _outputs_of(self, execution_id: int) -> Dict[str, List[metadata_store_pb2.Artifact]]:
    events = [e for e in self.store.get_events_by_execution_ids([execution_id])
              if e.type == metadata_store_pb2.Event.OUTPUT]
    by_id = {a.id: a for a in self.store.get_artifacts_by_id([e.artifact_id for e in events])}
    out = collections.defaultdict(list)
    for e in events:
      out[e.path.steps[0].key].append(by_id[e.artifact_id])
    return dict(out)


def _run_command(command: List[str], task_dir: str, env: Optional[Dict[str, str]]):
  """Runs a task's command in an empty directory under an empty HOME; (code, seconds, log)."""
  home, log_path = _task_dirs(task_dir)
  run_env = dict(os.environ if env is None else env, HOME=home)
  t0 = time.time()
  proc = subprocess.run(command, cwd=home, env=run_env, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True, check=False)
  with open(log_path, 'w', encoding='utf-8') as f:
    f.write(proc.stdout)
  return proc.returncode, time.time() - t0, proc.stdout


def _task_dirs(task_dir: str):
  """(the task's empty HOME and working directory, its log file)."""
  home = os.path.join(task_dir, 'home')
  os.makedirs(home, exist_ok=True)
  os.makedirs(os.path.join(task_dir, 'kfp_outputs'), exist_ok=True)
  return home, os.path.join(task_dir, 'log.txt')


def _run_forked(zygote: zygote_lib.Zygote, command: List[str], task_dir: str,
                env: Optional[Dict[str, str]]):
  """As _run_command, in a child of the zygote when the command is `python -m ...`."""
  if not zygote_lib.forkable(command):
    return _run_command(command, task_dir, env)
  home, log_path = _task_dirs(task_dir)
  return zygote.run(command, home, dict(os.environ if env is None else env, HOME=home), log_path)
