"""The lineage DAG above an artifact, from MLMD's lineage subgraph query.

`get_lineage_subgraph(UPSTREAM)` returns every execution with an OUTPUT
event to an artifact in the graph, so an artifact reused from the cache is
reached from its producer and from every CACHED execution that re-emitted
it. Those CACHED executions made no files; the graph keeps, per artifact,
the execution that first wrote it (`store.producer`), which is what a reader
means by "made by".
"""

import collections
import dataclasses
import re
from typing import Dict, List, Optional, Set, Tuple

from ml_metadata.proto import metadata_store_pb2

from pipelines import mlmd_store as S

# Deep enough for many rounds (each round adds ~6 hops); MLMD caps the query.
MAX_HOPS = 100
_ROUND = re.compile(r'_r(\d+)$')


@dataclasses.dataclass
class Graph:
  """Artifacts and the executions that made them; edges 'a<id>'/'e<id>'."""
  root: int
  artifacts: Dict[int, metadata_store_pb2.Artifact]
  executions: Dict[int, metadata_store_pb2.Execution]
  edges: List[Tuple[str, str]]
  node_of: Dict[int, str]          # execution id -> pipeline node id
  run_of: Dict[int, str]           # execution id -> pipeline run id
  made_by: Dict[int, int]          # artifact id -> producing execution id
  inputs_of: Dict[int, Dict[str, List[int]]]  # execution id -> key -> artifact ids


def round_of(node_id: str) -> Optional[int]:
  m = _ROUND.search(node_id)
  return int(m.group(1)) if m else None


def upstream(store, artifact_id: int, names: Optional[S.Names] = None) -> Graph:
  """The lineage DAG above `artifact_id` (the artifact included)."""
  names = names or S.Names(store)
  opts = metadata_store_pb2.LineageSubgraphQueryOptions(
      starting_artifacts=metadata_store_pb2.LineageSubgraphQueryOptions.StartingNodes(
          filter_query=f'id = {int(artifact_id)}'),
      max_num_hops=MAX_HOPS,
      direction=metadata_store_pb2.LineageSubgraphQueryOptions.UPSTREAM)
  sub = store.get_lineage_subgraph(opts)
  artifacts = {a.id: a for a in sub.artifacts}
  if artifact_id not in artifacts:
    found = store.get_artifacts_by_id([artifact_id])
    if not found:
      raise KeyError(f'no artifact #{artifact_id} in the store')
    artifacts[artifact_id] = found[0]
  executions = {e.id: e for e in sub.executions}
  contexts = {c.id: c for c in sub.contexts}
  node_context: Dict[int, str] = {}
  run_of: Dict[int, str] = {}
  for assoc in sub.associations:
    ctx = contexts.get(assoc.context_id)
    if ctx is None:
      continue
    kind = names.context_type_of(ctx)
    if kind == S.NODE_CONTEXT_TYPE:
      node_context[assoc.execution_id] = ctx.name
    elif kind in S.RUN_CONTEXT_TYPES:
      run_of[assoc.execution_id] = ctx.name
  node_of = {eid: names.node_of(e, node_context.get(eid)) for eid, e in executions.items()}

  made_by: Dict[int, int] = {}
  inputs: Dict[int, Dict[str, List[int]]] = collections.defaultdict(lambda: collections.defaultdict(list))
  for ev in sorted(sub.events, key=lambda e: e.execution_id):
    key = ev.path.steps[0].key if ev.path.steps else ''
    if ev.type in S._OUTPUT_EVENTS:  # pylint: disable=protected-access
      made_by.setdefault(ev.artifact_id, ev.execution_id)
    elif ev.type in S._INPUT_EVENTS:  # pylint: disable=protected-access
      inputs[ev.execution_id][key].append(ev.artifact_id)

  # Keep what is reachable from the root through producers only.
  keep_a: Set[int] = set()
  keep_e: Set[int] = set()
  edges = set()
  todo = [artifact_id]
  while todo:
    aid = todo.pop()
    if aid in keep_a:
      continue
    keep_a.add(aid)
    eid = made_by.get(aid)
    if eid is None or eid not in executions:
      continue
    edges.add((f'e{eid}', f'a{aid}'))
    if eid in keep_e:
      continue
    keep_e.add(eid)
    for ids in inputs.get(eid, {}).values():
      for a in ids:
        if a in artifacts:
          edges.add((f'a{a}', f'e{eid}'))
          todo.append(a)
  return Graph(
      root=artifact_id,
      artifacts={a: artifacts[a] for a in keep_a},
      executions={e: executions[e] for e in keep_e},
      edges=sorted(edges),
      node_of={e: node_of.get(e, '?') for e in keep_e},
      run_of={e: run_of.get(e, '') for e in keep_e},
      made_by={a: e for a, e in made_by.items() if a in keep_a and e in keep_e},
      inputs_of={e: {k: list(v) for k, v in inputs.get(e, {}).items()} for e in keep_e})


def describe(store, artifact_id: int) -> List[str]:
  """Short text: every execution above a model with its inputs (`ssd lineage`).

  For each pseudo-labelling step it names the teacher and the corpus, so the
  round is the node name. `ssd lineage explain` answers in more depth.
  """
  names = S.Names(store)
  g = upstream(store, artifact_id, names)

  def name(aid: int) -> str:
    eid = g.made_by.get(aid)
    node = g.node_of[eid] if eid else 'external'
    return f'{S.artifact_ref(g.artifacts[aid], names)} ({node})'

  lines = [f'lineage of {name(artifact_id)}:']
  for eid in sorted(g.executions, reverse=True):
    node = g.node_of[eid]
    ins = sorted(a for ids in g.inputs_of[eid].values() for a in ids if a in g.artifacts)
    lines.append(f'  {node} (execution #{eid}) <- {", ".join(name(a) for a in ins) or "no inputs"}')
    if 'pseudo_labeler' in node or 'transfer_labeler' in node:
      for a in ins:
        art = g.artifacts[a]
        kind = names.artifact_type_of(art)
        props = names.artifact_props(art)
        if kind == 'Model':
          lines.append(f'      teacher: {name(a)}')
        elif kind == 'Examples':
          lines.append(f'      corpus: {name(a)} data={props.get("data_path")} '
                       f'fingerprint={props.get("data_fingerprint")}')
  return lines
