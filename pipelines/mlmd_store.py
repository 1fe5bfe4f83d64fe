"""Connecting to an ML Metadata store and the small queries everything else uses.

Any store MLMD supports: a SQLite file (what `ssd run` writes under the
pipeline root) or a MySQL server (what Kubeflow Pipelines uses). Everything
goes through the MLMD API (executions, events, contexts, lineage subgraphs),
never through SQL, so the schema version of the store does not matter.
"""

import collections
import json
import os
from typing import Any, Dict, Iterable, List, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

# Context types TFX writes (tfx/orchestration/portable/mlmd/context_lib.py).
PIPELINE_CONTEXT_TYPE = 'pipeline'
PIPELINE_RUN_CONTEXT_TYPE = 'pipeline_run'
NODE_CONTEXT_TYPE = 'node'

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
    return json.loads(json.dumps(dict(v.struct_value)))
  return getattr(v, kind)


def custom_props(obj) -> Dict[str, Any]:
  """Custom properties of an artifact or execution as plain Python values."""
  return {k: value_of(v) for k, v in obj.custom_properties.items()}


def exec_props(execution: metadata_store_pb2.Execution) -> Dict[str, Any]:
  """An execution's parameters (TFX stores them as custom properties)."""
  out = custom_props(execution)
  out.update({k: value_of(v) for k, v in execution.properties.items()})
  return out


class Names:
  """Type and node names of a store, read once."""

  def __init__(self, store: metadata_store.MetadataStore):
    self.artifact_type = {t.id: t.name for t in store.get_artifact_types()}
    self.execution_type = {t.id: t.name for t in store.get_execution_types()}
    self.context_type = {t.id: t.name for t in store.get_context_types()}


def node_executions(store, pipeline_name: str, node_id: str) -> List[metadata_store_pb2.Execution]:
  ctx = store.get_context_by_type_and_name(NODE_CONTEXT_TYPE, f'{pipeline_name}.{node_id}')
  if ctx is None:
    return []
  return sorted(store.get_executions_by_context(ctx.id), key=lambda e: e.id)


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


def execution_contexts(store, execution_id: int, names: Optional[Names] = None) -> Dict[str, str]:
  """{context type: context name} of an execution (pipeline, pipeline_run, node)."""
  names = names or Names(store)
  out = {}
  for ctx in store.get_contexts_by_execution(execution_id):
    kind = names.context_type.get(ctx.type_id)
    if kind in (PIPELINE_CONTEXT_TYPE, PIPELINE_RUN_CONTEXT_TYPE, NODE_CONTEXT_TYPE):
      out[kind] = ctx.name
  return out


def node_id_of(node_context_name: str) -> str:
  """'<pipeline>.<node>' -> '<node>' (pipeline names may not contain dots)."""
  return node_context_name.split('.', 1)[-1]


def execution_node(store, execution_id: int) -> str:
  node = execution_contexts(store, execution_id).get(NODE_CONTEXT_TYPE)
  return node_id_of(node) if node else '?'


def producer(store, artifact_id: int) -> Optional[metadata_store_pb2.Execution]:
  """The execution that first wrote the artifact.

  A CACHED execution re-emits its cache hit's outputs (OUTPUT events to the
  same artifacts); the first OUTPUT event is the one that made the files.
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


def artifact_ref(artifact: metadata_store_pb2.Artifact, names: Names) -> str:
  return f'{names.artifact_type.get(artifact.type_id, "?")}#{artifact.id}'


def execution_table(store, pipeline_name: str) -> List[Dict[str, object]]:
  """One row per execution of the pipeline: node, state, inputs, outputs."""
  names = Names(store)
  rows = []
  for ctx in store.get_contexts_by_type(NODE_CONTEXT_TYPE):
    if not ctx.name.startswith(pipeline_name + '.'):
      continue
    node = node_id_of(ctx.name)
    for e in store.get_executions_by_context(ctx.id):
      outs = execution_io(store, e.id, 'output')
      ins = execution_io(store, e.id, 'input')
      rows.append({
          'execution_id': e.id, 'node': node,
          'type': names.execution_type.get(e.type_id, '?'), 'state': state_name(e),
          'inputs': {k: [artifact_ref(a, names) for a in v] for k, v in ins.items()},
          'outputs': {k: [artifact_ref(a, names) for a in v] for k, v in outs.items()},
      })
  return sorted(rows, key=lambda r: r['execution_id'])


def pipeline_names(store) -> List[str]:
  return sorted(c.name for c in store.get_contexts_by_type(PIPELINE_CONTEXT_TYPE))


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
