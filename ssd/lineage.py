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


def execution_node(store, execution_id: int) -> str:
  for ctx in store.get_contexts_by_execution(execution_id):
    if store.get_context_types_by_id([ctx.type_id])[0].name == NODE_CONTEXT_TYPE:
      return ctx.name.split('.', 1)[-1]
  return '?'


def producer(store, artifact_id: int) -> Optional[metadata_store_pb2.Execution]:
  """The execution that first wrote the artifact (cached executions re-emit outputs)."""
  events = [e for e in store.get_events_by_artifact_ids([artifact_id])
            if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)]
  if not events:
    return None
  first = min(events, key=lambda e: e.execution_id)
  return store.get_executions_by_id([first.execution_id])[0]


def upstream(store, artifact_id: int):
  """The lineage DAG above an artifact: (artifacts, executions, edges).

  Edges are (source, target) with 'a<id>' for artifacts and 'e<id>' for
  executions: input artifact → execution → output artifact.
  """
  artifacts: Dict[int, metadata_store_pb2.Artifact] = {}
  executions: Dict[int, metadata_store_pb2.Execution] = {}
  edges = set()
  todo = [artifact_id]
  while todo:
    aid = todo.pop()
    if aid in artifacts:
      continue
    artifacts[aid] = store.get_artifacts_by_id([aid])[0]
    execution = producer(store, aid)
    if execution is None:
      continue
    edges.add((f'e{execution.id}', f'a{aid}'))
    if execution.id in executions:
      continue
    executions[execution.id] = execution
    for arts in execution_io(store, execution.id, 'input').values():
      for a in arts:
        edges.add((f'a{a.id}', f'e{execution.id}'))
        todo.append(a.id)
  return artifacts, executions, sorted(edges)


def describe(store, artifact_id: int) -> List[str]:
  """Answers "which teacher, which corpus, which round made this model?"."""
  artifacts, executions, edges = upstream(store, artifact_id)
  atypes = {t.id: t.name for t in store.get_artifact_types()}
  inputs_of: Dict[int, List[int]] = collections.defaultdict(list)
  for src, dst in edges:
    if src.startswith('a') and dst.startswith('e'):
      inputs_of[int(dst[1:])].append(int(src[1:]))
  made_by = {int(dst[1:]): int(src[1:]) for src, dst in edges if src.startswith('e')}

  def name(aid: int) -> str:
    a = artifacts[aid]
    eid = made_by.get(aid)
    node = execution_node(store, eid) if eid else 'external'
    return f'{atypes.get(a.type_id, "?")}#{aid} ({node})'

  lines = [f'lineage of {name(artifact_id)}:']
  for eid in sorted(executions, reverse=True):
    node = execution_node(store, eid)
    ins = ', '.join(name(a) for a in sorted(inputs_of[eid]))
    lines.append(f'  {node} (execution #{eid}) <- {ins or "no inputs"}')
    if 'pseudo_labeler' in node or node == 'transfer_labeler':
      for a in sorted(inputs_of[eid]):
        art = artifacts[a]
        kind = atypes.get(art.type_id)
        props = custom_props(art)
        if kind == 'Model':
          lines.append(f'      teacher: {name(a)}')
        elif kind == 'Examples':
          lines.append(f'      corpus: {name(a)} data={props.get("data_path")} '
                       f'fingerprint={props.get("data_fingerprint")}')
  return lines


def draw(store, artifact_id: int, path: str) -> str:
  """Draws the lineage DAG as a PNG (layered by depth, matplotlib only)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  artifacts, executions, edges = upstream(store, artifact_id)
  atypes = {t.id: t.name for t in store.get_artifact_types()}
  parents: Dict[str, List[str]] = collections.defaultdict(list)
  for src, dst in edges:
    parents[dst].append(src)
  depth: Dict[str, int] = {}

  def level(n: str) -> int:
    if n not in depth:
      depth[n] = 0
      depth[n] = 1 + max((level(p) for p in parents.get(n, [])), default=-1)
    return depth[n]

  nodes = [f'a{a}' for a in artifacts] + [f'e{e}' for e in executions]
  for n in nodes:
    level(n)
  by_level: Dict[int, List[str]] = collections.defaultdict(list)
  for n in sorted(nodes):
    by_level[depth[n]].append(n)
  pos = {}
  for lv, ns in by_level.items():
    for i, n in enumerate(ns):
      pos[n] = (i - (len(ns) - 1) / 2.0, -lv)
  width = max(len(ns) for ns in by_level.values())
  fig, ax = plt.subplots(figsize=(max(8, 2.6 * width), max(6, 1.1 * len(by_level))))
  for src, dst in edges:
    (x0, y0), (x1, y1) = pos[src], pos[dst]
    ax.annotate('', xy=(x1, y1 + 0.15), xytext=(x0, y0 - 0.15),
                arrowprops=dict(arrowstyle='->', color='0.5', lw=0.8))
  for n, (x, y) in pos.items():
    if n.startswith('e'):
      label, style = execution_node(store, int(n[1:])), dict(boxstyle='round', fc='#cfe2ff')
    else:
      a = artifacts[int(n[1:])]
      label, style = f'{atypes.get(a.type_id, "?")}#{a.id}', dict(boxstyle='square', fc='#fff3cd')
    ax.text(x, y, label, ha='center', va='center', fontsize=7, bbox=style)
  ax.set_xlim(-width / 2.0 - 0.6, width / 2.0 + 0.6)
  ax.set_ylim(-max(by_level) - 0.6, 0.6)
  ax.set_axis_off()
  ax.set_title(f'Lineage of artifact #{artifact_id} (blue: executions, yellow: artifacts)')
  fig.savefig(path, dpi=110, bbox_inches='tight')
  plt.close(fig)
  return path
