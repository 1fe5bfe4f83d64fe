"""`ssd lineage diff <A> <B>`: what changed between two runs or two models.

Both sides become the same view: per pipeline node, the parameters of the
execution (config JSON flattened to `a.b.c` keys) and its input artifacts;
the ingested data's recorded properties (counts, fingerprints); the metrics
and blessing decisions of the evaluators. A run's view holds the executions
of that pipeline run (cache hits included: they carry the same parameters
and inputs); a model's view holds the executions above it (its lineage)
plus the evaluations and pushes of it.
"""

from typing import Any, Dict, List

from ml_metadata.proto import metadata_store_pb2

from ssd.lineage import explain as X
from ssd.lineage import resolve as R
from pipelines import mlmd_store as S
from ssd.lineage import upstream as U


def _node_view(store, execution: metadata_store_pb2.Execution, names: S.Names) -> Dict[str, Any]:
  ins = S.execution_io(store, execution.id, 'input')
  return {
      'execution_id': execution.id, 'state': S.state_name(execution),
      'parameters': S.flatten(names.exec_props(execution)),
      'inputs': {k: [S.artifact_ref(a, names) for a in v] for k, v in sorted(ins.items())},
  }


def _outcomes(store, executions, names: S.Names, view: Dict[str, Any]) -> None:
  """Fills metrics, decisions and data from the executions' outputs."""
  for e in executions:
    kind = names.kind(e)
    node = S.execution_node(store, e, names)
    outs = S.execution_io(store, e.id, 'output')
    if kind.endswith(X.EVALUATOR_SUFFIX):
      for evaluation in outs.get('evaluation', []):
        view['metrics'][node] = S.flatten(X.metrics_of(evaluation, names))
      for blessing in outs.get('blessing', []):
        props = names.artifact_props(blessing)
        view['decisions'][node] = {'blessed': bool(props.get('blessed')), 'reason': props.get('reason')}
    elif kind.endswith(X.PUSHER_SUFFIX):
      for pushed in outs.get('pushed_model', []):
        view['decisions'][node] = {'pushed': bool(names.artifact_props(pushed).get('pushed'))}
    elif not kind.endswith(X.PSEUDO_LABELER_SUFFIX):
      for examples in outs.get('examples', []):
        view['data'][f'{node}.examples'] = dict(sorted(names.artifact_props(examples).items()))


def _empty(label: str, ref: str) -> Dict[str, Any]:
  return {'label': label, 'ref': ref, 'nodes': {}, 'metrics': {}, 'decisions': {}, 'data': {}}


def run_view(store, ref: str, pipeline=None) -> Dict[str, Any]:
  names = S.Names(store)
  run = R.resolve_run(store, ref, pipeline)
  view = _empty(f'run {run.name}', ref)
  executions = S.steps_of(store, run, names)
  for e in executions:
    view['nodes'][S.execution_node(store, e, names)] = _node_view(store, e, names)
  _outcomes(store, executions, names, view)
  return view


def model_view(store, ref: str) -> Dict[str, Any]:
  names = S.Names(store)
  model = R.resolve_model(store, ref)
  view = _empty(f'model {S.artifact_ref(model, names)}', ref)
  graph = U.upstream(store, model.id, names)
  executions = [graph.executions[e] for e in sorted(graph.executions)]
  for e in executions:
    view['nodes'][graph.node_of[e.id]] = _node_view(store, e, names)
  _outcomes(store, executions, names, view)
  chain = X.teacher_chain(store, model, names)
  trained = next((s for s in chain if s['kind'] == 'trained'), None)
  subject = store.get_artifacts_by_id([trained['model']['id']])[0] if trained else model
  for ev in X.evaluations_of(store, subject, names)[-1:]:
    view['metrics'][ev['node']] = S.flatten(ev['metrics'])
    view['decisions'][ev['node']] = {'blessed': ev['blessed'], 'reason': ev['reason']}
  for push in X.pushes_of(store, subject, names)[-1:]:
    view['decisions'][push['node']] = {'pushed': push['pushed']}
  return view


def view_of(store, ref: str, pipeline=None) -> Dict[str, Any]:
  return run_view(store, ref, pipeline) if R.is_run_ref(ref) else model_view(store, ref)


def _changes(a: Dict[str, Any], b: Dict[str, Any], numeric: bool = False) -> List[Dict[str, Any]]:
  out = []
  for key in sorted(set(a) | set(b)):
    va, vb = a.get(key), b.get(key)
    if va != vb:
      row = {'key': key, 'a': va, 'b': vb}
      if numeric and isinstance(va, (int, float)) and isinstance(vb, (int, float)):
        row['delta'] = vb - va
      out.append(row)
  return out


def diff_views(a: Dict[str, Any], b: Dict[str, Any]) -> Dict[str, Any]:
  nodes_a, nodes_b = a['nodes'], b['nodes']
  common = sorted(set(nodes_a) & set(nodes_b))
  parameters, inputs, states = [], [], []
  for node in common:
    for row in _changes(nodes_a[node]['parameters'], nodes_b[node]['parameters']):
      parameters.append(dict(row, node=node))
    for row in _changes(nodes_a[node]['inputs'], nodes_b[node]['inputs']):
      inputs.append(dict(row, node=node))
    if nodes_a[node]['state'] != nodes_b[node]['state']:
      states.append({'node': node, 'a': nodes_a[node]['state'], 'b': nodes_b[node]['state']})
  metrics, decisions, data = [], [], []
  for node in sorted(set(a['metrics']) | set(b['metrics'])):
    for row in _changes(a['metrics'].get(node, {}), b['metrics'].get(node, {}), numeric=True):
      metrics.append(dict(row, node=node))
  for node in sorted(set(a['decisions']) | set(b['decisions'])):
    da, db = a['decisions'].get(node), b['decisions'].get(node)
    if da != db:
      decisions.append({'node': node, 'a': da, 'b': db})
  for node in sorted(set(a['data']) | set(b['data'])):
    for row in _changes(a['data'].get(node, {}), b['data'].get(node, {}), numeric=True):
      data.append(dict(row, node=node))
  return {
      'schema_version': S.SCHEMA_VERSION, 'kind': 'diff',
      'a': {'label': a['label'], 'ref': a['ref']}, 'b': {'label': b['label'], 'ref': b['ref']},
      'only_in_a': sorted(set(nodes_a) - set(nodes_b)),
      'only_in_b': sorted(set(nodes_b) - set(nodes_a)),
      'parameters': parameters, 'inputs': inputs, 'states': states,
      'data': data, 'metrics': metrics, 'decisions': decisions,
  }


def diff(store, ref_a: str, ref_b: str, pipeline=None) -> Dict[str, Any]:
  return diff_views(view_of(store, ref_a, pipeline), view_of(store, ref_b, pipeline))
