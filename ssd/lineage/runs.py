"""`ssd lineage runs`: the pipeline runs in a store, oldest first.

Status of a run, from its executions' MLMD states:
  failed       some execution FAILED (the runner stopped there);
  running      some execution is NEW/RUNNING and no later run of the pipeline
               exists;
  interrupted  some execution is NEW/RUNNING but a later run of the pipeline
               started: the process died (e.g. SIGKILL) and LocalDagRunner
               never recorded an end. MLMD alone cannot tell a live run from
               a dead one; a later run is the evidence;
  complete     every execution COMPLETE or CACHED.
A run killed between two steps has no unfinished execution; it shows as
complete with fewer steps (compare the `steps` counts).
"""

import collections
from typing import Any, Dict, List, Optional

from ml_metadata.proto import metadata_store_pb2

from ssd.lineage import explain as X
from ssd.lineage import resolve as R
from pipelines import mlmd_store as S

_STATE = metadata_store_pb2.Execution.State
_UNFINISHED = (_STATE.NEW, _STATE.RUNNING)


def _final_decision(store, executions, names: S.Names) -> Optional[Dict[str, Any]]:
  """The last evaluator's blessing in the run and the push that followed."""
  decision = None
  for e in sorted(executions, key=lambda e: e.id):
    if e.last_known_state not in (_STATE.COMPLETE, _STATE.CACHED):
      continue
    kind = names.kind(e)
    if kind.endswith(X.EVALUATOR_SUFFIX):
      blessing = (S.execution_io(store, e.id, 'output').get('blessing') or [None])[0]
      if blessing is not None:
        props = names.artifact_props(blessing)
        decision = {'node': S.execution_node(store, e, names), 'blessed': bool(props.get('blessed')),
                    'reason': props.get('reason'), 'pushed': None,
                    # The model in production it was compared with (a version folder).
                    'production': props.get(X.EV.LAST_BLESSED_PROPERTY)}
    elif kind.endswith(X.PUSHER_SUFFIX) and decision is not None:
      for p in S.execution_io(store, e.id, 'output').get('pushed_model', []):
        props = names.artifact_props(p)
        decision['pushed'] = bool(props.get('pushed'))
        decision['destination'] = props.get('pushed_destination')
  return decision


def _config_summary(executions_by_node: Dict[str, metadata_store_pb2.Execution],
                    names: S.Names) -> Dict[str, Any]:
  """A few settings that tell runs apart (full parameters: `ssd lineage diff`)."""
  out: Dict[str, Any] = {}
  ingest = executions_by_node.get('ranking_example_gen')
  if ingest is not None:
    p = names.exec_props(ingest)
    out['data'] = f'{p.get("data_format")}:{p.get("data_path")}'
  rounds = sorted(n for n in executions_by_node if n.startswith('teacher_prime_trainer_r'))
  out['rounds'] = len(rounds)
  for node, label in (('teacher_trainer', 'teacher'), (rounds[-1] if rounds else '', 'teacher_prime'),
                      ('student_trainer', 'student')):
    e = executions_by_node.get(node)
    if e is None:
      continue
    cc = X._json_prop(names.exec_props(e), 'custom_config')  # pylint: disable=protected-access
    model = cc.get('model') or {}
    text = f'{model.get("architecture")}({model.get("checkpoint") or "random"}'
    text += f', {model["keep_layers"]} layers)' if model.get('keep_layers') else ')'
    out[label] = text
    if label == 'teacher_prime' and cc.get('mode'):
      out['mode'] = cc['mode']
    out.setdefault('code_fingerprint', cc.get('code_fingerprint'))
  return out


def list_runs(store, pipeline: Optional[str] = None) -> Dict[str, Any]:
  names = S.Names(store)
  contexts = R.runs_of(store, pipeline)
  pipelines = [S.run_pipeline(store, c, names) for c in contexts]
  rows: List[Dict[str, Any]] = []
  for i, (ctx, pipe) in enumerate(zip(contexts, pipelines), 1):
    executions = S.steps_of(store, ctx, names)
    states = collections.Counter(S.state_name(e) for e in executions)
    by_node = {}
    nodes = {}
    for e in executions:
      node = S.execution_node(store, e, names)
      by_node[node] = e
      nodes[node] = S.state_name(e)
    later = any(p == pipe for p in pipelines[i:])
    if states.get('FAILED'):
      status = 'failed'
    elif any(e.last_known_state in _UNFINISHED for e in executions):
      status = 'interrupted' if later else 'running'
    else:
      status = 'complete'
    ended = max((e.last_update_time_since_epoch for e in executions), default=ctx.create_time_since_epoch)
    rows.append({
        'index': i, 'run_id': ctx.name, 'pipeline': pipe,
        'started': S.iso_time(ctx.create_time_since_epoch), 'ended': S.iso_time(ended),
        'status': status, 'steps': dict(sorted(states.items())),
        'unfinished': sorted(n for n, s in nodes.items() if s in ('NEW', 'RUNNING', 'FAILED')),
        'executed': sorted(n for n, s in nodes.items() if s == 'COMPLETE'),
        'cached': sorted(n for n, s in nodes.items() if s == 'CACHED'),
        'config': _config_summary(by_node, names),
        'final_decision': _final_decision(store, executions, names),
    })
  return {'schema_version': S.SCHEMA_VERSION, 'kind': 'runs', 'runs': rows}
