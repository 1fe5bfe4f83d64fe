"""Connecting to an ML Metadata store, and the small queries everything else uses.

Any store MLMD supports: a SQLite file (what `ssd run` writes under the
pipeline root) or a MySQL server (what Kubeflow Pipelines uses). Everything
goes through the MLMD API (executions, events, contexts, lineage subgraphs),
never through SQL.

A store comes in one of two dialects, and `Names` (read once per query)
hides which, so the rest of `ssd lineage` never branches on it:

  tfx  TFX's own orchestration (LocalDagRunner; tfx/orchestration/portable/
       mlmd/context_lib.py): contexts `pipeline`, `pipeline_run` and
       `node` (`<pipeline>.<node id>`); execution types named by component
       class (`...RankingEvaluator`); artifact types `Model`, `Examples`, ...
       and ours (`ssd.PretrainedCheckpoint`); execution parameters are the
       execution's custom properties; artifact properties and custom
       properties are kept apart, ints stay ints.
  kfp  Kubeflow Pipelines v2's driver and launcher (KFP 2.0-2.5,
       backend/src/v2/metadata/client.go): contexts `system.Pipeline` and
       `system.PipelineRun` (the run's parent is the pipeline), no node
       context; executions `system.ContainerExecution` (one per task, the
       node id in `task_name`, the parameters in the struct `inputs`),
       `system.DAGExecution` (the root DAG, no step), `system.ImporterExecution`;
       artifact types named by schema title (`tfx.Model`, `ssd.PseudoLabelReport`);
       artifact custom properties hold what TFX's container entrypoint wrote:
       properties and custom properties flattened together (a custom one that
       clashes with a property is prefixed `custom:`), every int a double.

Normalised, for both: artifact types without the `tfx.` prefix; an
execution's node, run and pipeline; its parameters (`exec_props`); an
artifact's properties (`artifact_props`: properties, then custom properties,
`custom:` on a clash, KFP's own bookkeeping left out); what kind of step an
execution is (`Names.kind`: the execution type locally, inferred from the
types it wrote on KFP, where every task has the same type). Numbers are
compared as numbers (a KFP `blessed` is 1.0, and 1.0 == 1).
"""

import collections
import json
import os
from typing import Any, Dict, Iterable, List, Optional, Union

from google.protobuf import json_format
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

# Context types TFX writes (tfx/orchestration/portable/mlmd/context_lib.py).
PIPELINE_CONTEXT_TYPE = 'pipeline'
PIPELINE_RUN_CONTEXT_TYPE = 'pipeline_run'
NODE_CONTEXT_TYPE = 'node'
# What KFP v2 writes (backend/src/v2/metadata/client.go).
KFP_PIPELINE_CONTEXT_TYPE = 'system.Pipeline'
KFP_RUN_CONTEXT_TYPE = 'system.PipelineRun'
KFP_CONTAINER_EXECUTION_TYPE = 'system.ContainerExecution'
KFP_DAG_EXECUTION_TYPE = 'system.DAGExecution'
KFP_IMPORTER_EXECUTION_TYPE = 'system.ImporterExecution'
KFP_TASK_NAME = 'task_name'     # = the TFX node id
KFP_INPUTS = 'inputs'           # struct: the task's input parameter values
KFP_TYPE_PREFIX = 'tfx.'        # schema titles of TFX's standard artifact types
CUSTOM_PREFIX = 'custom:'       # tfx.types.artifact.CUSTOM_PROPERTIES_PREFIX
PIPELINE_CONTEXT_TYPES = (PIPELINE_CONTEXT_TYPE, KFP_PIPELINE_CONTEXT_TYPE)
RUN_CONTEXT_TYPES = (PIPELINE_RUN_CONTEXT_TYPE, KFP_RUN_CONTEXT_TYPE)
TFX, KFP = 'tfx', 'kfp'
# KFP's bookkeeping on executions and artifacts: not parameters or properties
# of the step (they differ between identical runs).
_KFP_EXECUTION_BOOKKEEPING = frozenset({
    'display_name', KFP_TASK_NAME, 'parent_dag_id', 'pod_name', 'pod_uid', 'namespace',
    'cache_fingerprint', 'cached_execution_id', KFP_INPUTS, 'outputs', 'iteration_index',
    'iteration_count', 'total_dag_tasks', 'artifact_uris'})
_KFP_ARTIFACT_BOOKKEEPING = frozenset({'display_name', 'store_session_info'})
# On KFP every task is a system.ContainerExecution: what kind of step it was
# shows in the artifact types it wrote (first match). The kinds end as the
# local execution type names do (`...RankerTrainer`, `...RankingEvaluator`).
KFP_KINDS = (
    ({'PushedModel'}, 'Pusher'),
    ({'ModelBlessing', 'Model'}, 'RankingEvaluator'),   # blessing + selected_model
    ({'ModelBlessing'}, 'Evaluator'),
    ({'ssd.PseudoLabelReport'}, 'PseudoLabeler'),
    ({'Model', 'ModelRun'}, 'Trainer'),
    ({'ssd.PretrainedCheckpoint'}, 'PretrainedCheckpoint'),
    ({'ExampleStatistics'}, 'StatisticsGen'),
    ({'Schema'}, 'SchemaGen'),
    ({'ExampleAnomalies'}, 'ExampleValidator'),
    ({'Examples'}, 'ExampleGen'),
)

# Version of the JSON that `ssd lineage ... --format=json` prints
# (docs/lineage.md). Bump it when a field changes meaning or disappears;
# adding a field does not need a bump.
SCHEMA_VERSION = 1

_STATE = metadata_store_pb2.Execution.State
_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
_INPUT_EVENTS = (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)


def sqlite_config(path: str, read_only: bool = True) -> metadata_store_pb2.ConnectionConfig:
  cfg = metadata_store_pb2.ConnectionConfig()
  cfg.sqlite.filename_uri = path
  cfg.sqlite.connection_mode = (metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
                                if read_only else
                                metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE)
  return cfg


def mysql_config(host: str, port: int, database: str, user: str = '',
                 password: str = '') -> metadata_store_pb2.ConnectionConfig:
  """A MySQL-backed store (e.g. the one Kubeflow Pipelines runs)."""
  cfg = metadata_store_pb2.ConnectionConfig()
  cfg.mysql.host = host
  cfg.mysql.port = int(port)
  cfg.mysql.database = database
  if user:
    cfg.mysql.user = user
  if password:
    cfg.mysql.password = password
  # Inspection must never create a database that is not there.
  cfg.mysql.skip_db_creation = True
  return cfg


def connect(config: metadata_store_pb2.ConnectionConfig) -> metadata_store.MetadataStore:
  """Connects to the store `config` names.

  A process killed in the middle of a write (SIGKILL, OOM, a lost machine)
  leaves a hot rollback journal (`<store>-journal`) beside a SQLite store.
  SQLite must roll it back before anyone can read, and a read-only connection
  may not, so it fails with "attempt to write a readonly database". Reading a
  crashed store is exactly when lineage is wanted, so in that one case the
  store is opened read-write (never created): SQLite rolls the half-written
  transaction back, which is what the next `ssd run` would do anyway.
  """
  try:
    return metadata_store.MetadataStore(config)
  except RuntimeError as e:
    sqlite = config.sqlite if config.WhichOneof('config') == 'sqlite' else None
    if (sqlite is None or sqlite.connection_mode != sqlite.READONLY
        or 'readonly database' not in str(e)
        or not os.path.exists(sqlite.filename_uri + '-journal')):
      raise
    recover = metadata_store_pb2.ConnectionConfig()
    recover.CopyFrom(config)
    recover.sqlite.connection_mode = sqlite.READWRITE
    return metadata_store.MetadataStore(recover)


def open_store(sqlite_path: str, read_only: bool = True) -> metadata_store.MetadataStore:
  return connect(sqlite_config(sqlite_path, read_only))


def state_name(execution: metadata_store_pb2.Execution) -> str:
  return _STATE.Name(execution.last_known_state)


def value_of(v: metadata_store_pb2.Value) -> Any:
  kind = v.WhichOneof('value')
  if kind is None:
    return None
  if kind == 'proto_value':
    return str(v.proto_value)
  if kind == 'struct_value':
    return json_format.MessageToDict(v.struct_value)
  return getattr(v, kind)


def custom_props(obj) -> Dict[str, Any]:
  """Custom properties of an artifact or execution as plain Python values, as stored.

  For what a step recorded in either dialect use `artifact_props` and
  `exec_props`.
  """
  return {k: value_of(v) for k, v in obj.custom_properties.items()}


def artifact_type_name(stored: str) -> str:
  """`tfx.Model` (KFP: the schema title) -> `Model` (TFX's type name); others unchanged."""
  return stored[len(KFP_TYPE_PREFIX):] if stored.startswith(KFP_TYPE_PREFIX) else stored


class Names:
  """Type and context names of a store, read once, and its dialect.

  `dialect` is `kfp` when the store has KFP's run context type, else `tfx`.
  Types registered after this was built are read when first met.
  """

  def __init__(self, store: metadata_store.MetadataStore):
    self.store = store
    self._kinds: Dict[int, str] = {}
    self.refresh()

  def refresh(self) -> None:
    """Reads the type names again (types registered since are then known)."""
    artifact_types = self.store.get_artifact_types()
    self.stored_artifact_type = {t.id: t.name for t in artifact_types}
    self.artifact_type = {t.id: artifact_type_name(t.name) for t in artifact_types}
    self.artifact_type_properties = {t.id: set(t.properties) for t in artifact_types}
    self.execution_type = {t.id: t.name for t in self.store.get_execution_types()}
    self.context_type = {t.id: t.name for t in self.store.get_context_types()}
    self.dialect = KFP if KFP_RUN_CONTEXT_TYPE in self.context_type.values() else TFX

  def _lookup(self, table: str, type_id: int) -> str:
    if type_id not in getattr(self, table):
      self.refresh()
    return getattr(self, table).get(type_id, '?')

  def artifact_type_of(self, artifact: metadata_store_pb2.Artifact) -> str:
    """The artifact's type name, normalised (`Model`, `Examples`, `ssd.PretrainedCheckpoint`)."""
    return self._lookup('artifact_type', artifact.type_id)

  def execution_type_of(self, execution: metadata_store_pb2.Execution) -> str:
    return self._lookup('execution_type', execution.type_id)

  def context_type_of(self, context: metadata_store_pb2.Context) -> str:
    return self._lookup('context_type', context.type_id)

  def is_kfp_execution(self, execution: metadata_store_pb2.Execution) -> bool:
    return self.execution_type_of(execution).startswith('system.')

  def is_step(self, execution: metadata_store_pb2.Execution) -> bool:
    """False for KFP's DAG executions (the run itself, not a step of it)."""
    return self.execution_type_of(execution) != KFP_DAG_EXECUTION_TYPE

  def kind(self, execution: metadata_store_pb2.Execution) -> str:
    """What kind of step: the execution type locally (`...RankingEvaluator`);
    on KFP, inferred from the artifact types it wrote (KFP_KINDS), or the KFP
    type where it wrote none (a failed task, a task without outputs)."""
    stored = self.execution_type_of(execution)
    if stored != KFP_CONTAINER_EXECUTION_TYPE:
      return stored
    if execution.id not in self._kinds:
      wrote = {self.artifact_type_of(a)
               for arts in execution_io(self.store, execution.id, 'output').values() for a in arts}
      self._kinds[execution.id] = next((kind for needs, kind in KFP_KINDS if needs <= wrote), stored)
    return self._kinds[execution.id]

  def node_of(self, execution: metadata_store_pb2.Execution,
              node_context: Optional[str] = None) -> str:
    """The pipeline node id: KFP's `task_name`, else the node context's name."""
    if self.is_kfp_execution(execution):
      task = execution.custom_properties.get(KFP_TASK_NAME)
      return task.string_value if task is not None and task.string_value else '?'
    return node_id_of(node_context) if node_context else '?'

  def exec_props(self, execution: metadata_store_pb2.Execution) -> Dict[str, Any]:
    """A step's parameters: TFX's execution properties (local: custom
    properties and properties; KFP: the `inputs` struct, plus any custom
    property that is not KFP's bookkeeping, e.g. `image`)."""
    if not self.is_kfp_execution(execution):
      out = custom_props(execution)
      out.update({k: value_of(v) for k, v in execution.properties.items()})
      return out
    out = {k: value_of(v) for k, v in execution.custom_properties.items()
           if k not in _KFP_EXECUTION_BOOKKEEPING}
    inputs = execution.custom_properties.get(KFP_INPUTS)
    if inputs is not None and isinstance(value_of(inputs), dict):
      out.update(value_of(inputs))
    return out

  def artifact_props(self, artifact: metadata_store_pb2.Artifact) -> Dict[str, Any]:
    """Properties and custom properties in one dict, keyed as KFP's metadata
    keys them: a custom property that clashes with a declared property is
    `custom:<name>`. On KFP they are already one set (numbers as doubles)."""
    out = {k: value_of(v) for k, v in artifact.properties.items()}
    if self.dialect == KFP:
      out.update({k: value_of(v) for k, v in artifact.custom_properties.items()
                  if k not in _KFP_ARTIFACT_BOOKKEEPING})
      return out
    if artifact.type_id not in self.artifact_type_properties:
      self.refresh()
    declared = self.artifact_type_properties.get(artifact.type_id, set()) | set(out)
    for k, v in artifact.custom_properties.items():
      out[CUSTOM_PREFIX + k if k in declared else k] = value_of(v)
    return out


def exec_props(execution: metadata_store_pb2.Execution, names: Optional[Names] = None) -> Dict[str, Any]:
  """A step's parameters (see Names.exec_props); without `names`, a local store's."""
  if names is not None:
    return names.exec_props(execution)
  out = custom_props(execution)
  out.update({k: value_of(v) for k, v in execution.properties.items()})
  return out


def node_id_of(node_context_name: str) -> str:
  """'<pipeline>.<node>' -> '<node>' (pipeline names may not contain dots)."""
  return node_context_name.split('.', 1)[-1]


def _execution(store, execution: Union[int, metadata_store_pb2.Execution]) -> metadata_store_pb2.Execution:
  if isinstance(execution, metadata_store_pb2.Execution):
    return execution
  return store.get_executions_by_id([int(execution)])[0]


def place(store, execution: Union[int, metadata_store_pb2.Execution],
          names: Optional[Names] = None) -> Dict[str, Optional[str]]:
  """{'pipeline', 'run', 'node'} of an execution, in either dialect (None where unknown)."""
  names = names or Names(store)
  execution = _execution(store, execution)
  out: Dict[str, Optional[str]] = {'pipeline': None, 'run': None, 'node': None}
  node_context = None
  for ctx in store.get_contexts_by_execution(execution.id):
    kind = names.context_type_of(ctx)
    if kind in PIPELINE_CONTEXT_TYPES:
      out['pipeline'] = ctx.name
    elif kind in RUN_CONTEXT_TYPES:
      out['run'] = ctx.name
    elif kind == NODE_CONTEXT_TYPE:
      node_context = ctx.name
  node = names.node_of(execution, node_context)
  out['node'] = None if node == '?' else node
  return out


def execution_node(store, execution_id: Union[int, metadata_store_pb2.Execution],
                   names: Optional[Names] = None) -> str:
  return place(store, execution_id, names)['node'] or '?'


def contexts_of_type(store, type_names: Iterable[str]) -> List[metadata_store_pb2.Context]:
  out = []
  for name in type_names:
    out += store.get_contexts_by_type(name)
  return out


def run_contexts(store) -> List[metadata_store_pb2.Context]:
  """Pipeline runs (TFX `pipeline_run`, KFP `system.PipelineRun`), oldest first."""
  return sorted(contexts_of_type(store, RUN_CONTEXT_TYPES),
                key=lambda c: (c.create_time_since_epoch, c.id))


def run_pipeline(store, run: metadata_store_pb2.Context, names: Optional[Names] = None) -> Optional[str]:
  """The pipeline a run belongs to (TFX and KFP make the pipeline context its parent)."""
  names = names or Names(store)
  for parent in store.get_parent_contexts_by_context(run.id):
    if names.context_type_of(parent) in PIPELINE_CONTEXT_TYPES:
      return parent.name
  executions = store.get_executions_by_context(run.id)
  return place(store, executions[0], names)['pipeline'] if executions else None


def pipeline_names(store) -> List[str]:
  return sorted({c.name for c in contexts_of_type(store, PIPELINE_CONTEXT_TYPES)})


def steps_of(store, context: metadata_store_pb2.Context,
             names: Optional[Names] = None) -> List[metadata_store_pb2.Execution]:
  """Executions of a run or pipeline context that are steps (not KFP's DAGs), oldest first."""
  names = names or Names(store)
  return sorted((e for e in store.get_executions_by_context(context.id) if names.is_step(e)),
                key=lambda e: e.id)


def node_executions(store, pipeline_name: str, node_id: str,
                    names: Optional[Names] = None) -> List[metadata_store_pb2.Execution]:
  """Every execution of one pipeline node, oldest first (either dialect)."""
  out = []
  ctx = store.get_context_by_type_and_name(NODE_CONTEXT_TYPE, f'{pipeline_name}.{node_id}')
  if ctx is not None:
    out += store.get_executions_by_context(ctx.id)
  pipeline = store.get_context_by_type_and_name(KFP_PIPELINE_CONTEXT_TYPE, pipeline_name)
  if pipeline is not None:
    names = names or Names(store)
    out += [e for e in store.get_executions_by_context(pipeline.id)
            if names.is_kfp_execution(e) and names.node_of(e) == node_id]
  return sorted(out, key=lambda e: e.id)


def latest_execution(store, pipeline_name: str, node_id: str) -> Optional[metadata_store_pb2.Execution]:
  done = [e for e in node_executions(store, pipeline_name, node_id)
          if e.last_known_state in (_STATE.COMPLETE, _STATE.CACHED)]
  return done[-1] if done else None


def execution_io(store, execution_id: int, kind: str = 'output') -> Dict[str, List[metadata_store_pb2.Artifact]]:
  """Artifacts of an execution by input/output key."""
  wanted = _OUTPUT_EVENTS if kind == 'output' else _INPUT_EVENTS
  events = [e for e in store.get_events_by_execution_ids([execution_id]) if e.type in wanted]
  arts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
  out: Dict[str, List[metadata_store_pb2.Artifact]] = collections.defaultdict(list)
  for e in sorted(events, key=lambda e: (e.path.steps[1].index if len(e.path.steps) > 1 else 0)):
    key = e.path.steps[0].key if e.path.steps else ''
    if e.artifact_id in arts:
      out[key].append(arts[e.artifact_id])
  return dict(out)


def latest_output(store, pipeline_name: str, node_id: str, key: str) -> Optional[metadata_store_pb2.Artifact]:
  execution = latest_execution(store, pipeline_name, node_id)
  if execution is None:
    return None
  arts = execution_io(store, execution.id).get(key, [])
  return arts[-1] if arts else None


def producer(store, artifact_id: int) -> Optional[metadata_store_pb2.Execution]:
  """The execution that first wrote the artifact.

  A CACHED execution re-emits its cache hit's outputs (OUTPUT events to the
  same artifacts, locally and on KFP); the first OUTPUT event is the one
  that made the files.
  """
  events = [e for e in store.get_events_by_artifact_ids([artifact_id]) if e.type in _OUTPUT_EVENTS]
  if not events:
    return None
  first = min(events, key=lambda e: e.execution_id)
  return store.get_executions_by_id([first.execution_id])[0]


def consumers(store, artifact_id: int) -> List[metadata_store_pb2.Execution]:
  """Executions that read the artifact, oldest first."""
  ids = sorted({e.execution_id for e in store.get_events_by_artifact_ids([artifact_id])
                if e.type in _INPUT_EVENTS})
  return store.get_executions_by_id(ids) if ids else []


def artifacts_of_type(store, type_name: str, names: Optional[Names] = None) -> List[metadata_store_pb2.Artifact]:
  """Artifacts of a (normalised) type in either dialect, oldest first."""
  if names is None:
    names = Names(store)
  else:
    names.refresh()  # types registered since it was built
  out = []
  for stored in sorted({s for i, s in names.stored_artifact_type.items()
                        if names.artifact_type[i] == type_name}):
    out += store.get_artifacts_by_type(stored)
  return sorted(out, key=lambda a: a.id)


def same_location(a: Optional[str], b: Optional[str]) -> bool:
  """Two recorded paths or URIs name the same folder (trailing slashes, `.` parts aside)."""
  if not a or not b:
    return False
  return _location(a) == _location(b)


def _location(path: str) -> str:
  path = str(path).rstrip('/')
  return path if '://' in path else os.path.normpath(path)


def artifact_by_uri(store, uri: str, type_name: Optional[str] = None,
                    names: Optional[Names] = None) -> Optional[metadata_store_pb2.Artifact]:
  """The artifact at `uri` (of a normalised `type_name` when given), or None.

  Models are named by URI, not MLMD id: TFX in a Kubeflow container gives
  artifacts hashed ids that exist in no store. When several artifacts share
  a URI (an importer that re-imports; two pipelines writing one folder), the
  one with the earliest producing execution made the files and is chosen;
  artifacts without a producer come last; ties go to the lowest id.
  """
  if not uri:
    return None
  names = names or Names(store)
  stripped = str(uri).rstrip('/')
  found = {a.id: a for u in dict.fromkeys([str(uri), stripped, stripped + '/'])
           for a in store.get_artifacts_by_uri(u)}
  found = [a for a in found.values() if type_name is None or names.artifact_type_of(a) == type_name]
  if not found:
    return None

  def order(artifact):
    made = producer(store, artifact.id)
    return (made is None, made.id if made is not None else 0, artifact.id)
  return min(found, key=order)


def pushes_to(store, directory: str, names: Optional[Names] = None) -> List[metadata_store_pb2.Artifact]:
  """PushedModel artifacts whose `pushed_destination` is `directory`, earliest first."""
  names = names or Names(store)
  found = [p for p in artifacts_of_type(store, 'PushedModel', names)
           if same_location(names.artifact_props(p).get('pushed_destination'), directory)]

  def order(artifact):
    made = producer(store, artifact.id)
    return (made is None, made.id if made is not None else 0, artifact.id)
  return sorted(found, key=order)


def artifact_ref(artifact: metadata_store_pb2.Artifact, names: Names) -> str:
  return f'{names.artifact_type_of(artifact)}#{artifact.id}'


def execution_table(store, pipeline_name: str) -> List[Dict[str, object]]:
  """One row per execution (step) of the pipeline: node, state, inputs, outputs."""
  names = Names(store)
  executions = []
  for ctx in store.get_contexts_by_type(NODE_CONTEXT_TYPE):
    if ctx.name.startswith(pipeline_name + '.'):
      executions += [(e, ctx.name) for e in store.get_executions_by_context(ctx.id)]
  pipeline = store.get_context_by_type_and_name(KFP_PIPELINE_CONTEXT_TYPE, pipeline_name)
  if pipeline is not None:
    executions += [(e, None) for e in steps_of(store, pipeline, names) if names.is_kfp_execution(e)]
  rows = []
  for e, node_context in executions:
    outs = execution_io(store, e.id, 'output')
    ins = execution_io(store, e.id, 'input')
    rows.append({
        'execution_id': e.id, 'node': names.node_of(e, node_context),
        'type': names.kind(e), 'state': state_name(e),
        'inputs': {k: [artifact_ref(a, names) for a in v] for k, v in ins.items()},
        'outputs': {k: [artifact_ref(a, names) for a in v] for k, v in outs.items()},
    })
  return sorted(rows, key=lambda r: r['execution_id'])


def flatten(value: Any, prefix: str = '') -> Dict[str, Any]:
  """Nested dicts (and JSON strings holding dicts) -> {'a.b.c': leaf}."""
  if isinstance(value, str) and value[:1] == '{':
    try:
      value = json.loads(value)
    except ValueError:
      pass
  if isinstance(value, dict):
    out: Dict[str, Any] = {}
    for k in sorted(value):
      out.update(flatten(value[k], f'{prefix}.{k}' if prefix else str(k)))
    return out
  if isinstance(value, list):
    value = json.dumps(value, sort_keys=True)
  return {prefix: value}


def iso_time(ms_since_epoch: int) -> str:
  import datetime  # pylint: disable=g-import-not-at-top
  return datetime.datetime.fromtimestamp(ms_since_epoch / 1000.0, datetime.timezone.utc).strftime(
      '%Y-%m-%dT%H:%M:%SZ')


def unique(items: Iterable[Any]) -> List[Any]:
  seen, out = set(), []
  for item in items:
    if item not in seen:
      seen.add(item)
      out.append(item)
  return out
