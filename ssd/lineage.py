"""Reading ML Metadata: latest executions per node, their artifacts, lineage.

Used by reports (`ssd run` prints metrics from the store, not from memory) and
by `ssd lineage`. Works on the SQLite store of a local run.
"""

import collections
from typing import Dict, List, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

NODE_CONTEXT_TYPE = 'node'
PIPELINE_RUN_CONTEXT_TYPE = 'pipeline_run'

_STATE = metadata_store_pb2.Execution.State


def open_store(sqlite_path: str, read_only: bool = True) -> metadata_store.MetadataStore:
  cfg = metadata_store_pb2.ConnectionConfig()
  cfg.sqlite.filename_uri = sqlite_path
  cfg.sqlite.connection_mode = (metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
                                if read_only else
                                metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE)
  return metadata_store.MetadataStore(cfg)


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
  wanted = ({metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT}
            if kind == 'output' else
            {metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT})
  events = [e for e in store.get_events_by_execution_ids([execution_id]) if e.type in wanted]
  arts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
  out: Dict[str, List[metadata_store_pb2.Artifact]] = collections.defaultdict(list)
  for e in events:
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


def custom_props(obj) -> Dict[str, object]:
  out = {}
  for k, v in obj.custom_properties.items():
    kind = v.WhichOneof('value')
    out[k] = getattr(v, kind) if kind else None
  return out


def execution_table(store, pipeline_name: str) -> List[Dict[str, object]]:
  """One row per execution of the pipeline: node, state, inputs, outputs."""
  types = {t.id: t.name for t in store.get_execution_types()}
  atypes = {t.id: t.name for t in store.get_artifact_types()}
  rows = []
  for ctx in store.get_contexts_by_type(NODE_CONTEXT_TYPE):
    if not ctx.name.startswith(pipeline_name + '.'):
      continue
    node = ctx.name[len(pipeline_name) + 1:]
    for e in store.get_executions_by_context(ctx.id):
      outs = execution_io(store, e.id, 'output')
      ins = execution_io(store, e.id, 'input')
      rows.append({
          'execution_id': e.id, 'node': node, 'type': types.get(e.type_id, '?'),
          'state': _STATE.Name(e.last_known_state),
          'inputs': {k: [f'{atypes.get(a.type_id, "?")}#{a.id}' for a in v] for k, v in ins.items()},
          'outputs': {k: [f'{atypes.get(a.type_id, "?")}#{a.id}' for a in v] for k, v in outs.items()},
      })
  return sorted(rows, key=lambda r: r['execution_id'])
