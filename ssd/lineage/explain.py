"""`ssd lineage explain <model>`: everything that made a model, from MLMD.

Answers, for one model: which teacher made its labels and that teacher's
teacher, round by round down to the pretrained checkpoint; which data
(labelled and unlabelled, with every property the ingest step recorded:
counts, and fingerprints where the store has them); which mode, noise,
pseudo-label selection and distillation settings; which metrics and blessing
decision; where it was pushed.

Nothing is recomputed at inspection time: values come from MLMD (artifact
and execution properties) or from the files a step wrote into its own
artifact (the exported model's `assets.extra/metadata.json`). A value the
store does not hold is reported as null with a note, never guessed.
"""

import json
import os
from typing import Any, Dict, List, Optional

from ml_metadata.proto import metadata_store_pb2

from pipelines import mlmd_store as S
from ssd.lineage import upstream as U

# Type names (TFX standard types and ours, see docs/architecture.md).
TRAINER_SUFFIX = 'Trainer'
EVALUATOR_SUFFIX = 'RankingEvaluator'
PSEUDO_LABELER_SUFFIX = 'PseudoLabeler'
PUSHER_SUFFIX = 'Pusher'
CHECKPOINT_TYPE = 'ssd.PretrainedCheckpoint'   # brought in by its own component (contracts)
MODEL_METADATA = ('Format-Serving', 'assets.extra', 'metadata.json')


def artifact_info(store, artifact: metadata_store_pb2.Artifact, names: S.Names,
                  with_props: bool = True) -> Dict[str, Any]:
  producer = S.producer(store, artifact.id)
  ctx = S.execution_contexts(store, producer.id, names) if producer else {}
  info = {
      'id': artifact.id, 'type': names.artifact_type.get(artifact.type_id, '?'),
      'uri': artifact.uri, 'state': metadata_store_pb2.Artifact.State.Name(artifact.state),
      'node': S.node_id_of(ctx[S.NODE_CONTEXT_TYPE]) if S.NODE_CONTEXT_TYPE in ctx else None,
      'run': ctx.get(S.PIPELINE_RUN_CONTEXT_TYPE),
      'execution_id': producer.id if producer else None,
  }
  if with_props:
    info['properties'] = dict(sorted(S.custom_props(artifact).items()))
  return info


def _type(names: S.Names, execution: metadata_store_pb2.Execution) -> str:
  return names.execution_type.get(execution.type_id, '')


def _json_prop(props: Dict[str, Any], key: str) -> Dict[str, Any]:
  try:
    return json.loads(props.get(key) or '{}')
  except ValueError:
    return {}


def recorded_model_metadata(model_uri: str) -> Optional[Dict[str, Any]]:
  """What the trainer wrote next to the SavedModel (local stores only)."""
  path = os.path.join(model_uri, *MODEL_METADATA)
  if '://' in model_uri or not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def checkpoint_of(store, trainer: metadata_store_pb2.Execution, model: metadata_store_pb2.Artifact,
                  custom_config: Dict[str, Any], names: S.Names) -> Dict[str, Any]:
  """Where a trained model's weights started.

  A `PretrainedCheckpoint` input artifact (with its sha256) when the store has
  one; otherwise what the trainer recorded: the configured checkpoint name or
  path (no sha256: this store never recorded one, and hashing today's files
  could describe different weights than the run used).
  """
  for key, arts in S.execution_io(store, trainer.id, 'input').items():
    for a in arts:
      if names.artifact_type.get(a.type_id) == CHECKPOINT_TYPE:
        props = S.custom_props(a)
        return {'source': props.get('source'), 'sha256': props.get('sha256'),
                'artifact': artifact_info(store, a, names), 'input_key': key,
                'recorded_by': 'PretrainedCheckpoint artifact'}
  recorded = recorded_model_metadata(model.uri) or {}
  model_cfg = recorded.get('model') or custom_config.get('model') or {}
  out = {'source': model_cfg.get('checkpoint'), 'sha256': None,
         'keep_layers': model_cfg.get('keep_layers'),
         'recorded_by': ('exported model metadata.json' if recorded else 'trainer custom_config'),
         'note': 'no PretrainedCheckpoint artifact in this store; sha256 not recorded'}
  if out['source'] is None:
    out['note'] = 'random initialisation (model.checkpoint: null)'
  if recorded.get('warm_start_from'):
    out['warm_start_from'] = recorded['warm_start_from']
  return out


def _trained_step(store, execution, model, names) -> Dict[str, Any]:
  props = S.exec_props(execution)
  cc = _json_prop(props, 'custom_config')
  ins = S.execution_io(store, execution.id, 'input')
  info = artifact_info(store, model, names, with_props=False)
  step: Dict[str, Any] = {
      'kind': 'trained', 'model': info, 'role': cc.get('role'), 'round': U.round_of(info['node'] or ''),
      'mode': cc.get('mode'), 'epochs': (cc.get('train') or {}).get('epochs'),
      'architecture': (cc.get('model') or {}).get('architecture'),
      'objective': cc.get('objective'), 'noise': cc.get('noise'),
      'warm_start': cc.get('warm_start'), 'hybrid': cc.get('hybrid'),
      'code_fingerprint': cc.get('code_fingerprint'),
      'checkpoint': checkpoint_of(store, execution, model, cc, names),
  }
  base = ins.get('base_model') or []
  step['base_model_id'] = base[0].id if base else None
  examples = (ins.get('examples') or [None])[0]
  step['examples'] = artifact_info(store, examples, names, with_props=False) if examples else None
  step['teacher_model_id'] = None
  if examples is not None:
    labeler = S.producer(store, examples.id)
    if labeler is not None and _type(names, labeler).endswith(PSEUDO_LABELER_SUFFIX):
      lab_props = S.exec_props(labeler)
      teacher = (S.execution_io(store, labeler.id, 'input').get('model') or [None])[0]
      ex_props = S.custom_props(examples)
      step['labels'] = {
          'source': 'teacher', 'node': S.execution_node(store, labeler.id),
          'execution_id': labeler.id, 'selection': _json_prop(lab_props, 'config_json'),
          'teacher_fingerprint': ex_props.get('teacher_fingerprint'),
          'counts': {k: v for k, v in sorted(ex_props.items()) if k.startswith('total_')},
          'skipped': bool(ex_props.get('skipped', 0)),
      }
      step['teacher_model_id'] = teacher.id if teacher is not None else None
    else:
      step['labels'] = {'source': 'true labels', 'node': step['examples']['node']}
  return step


def teacher_chain(store, model: metadata_store_pb2.Artifact, names: S.Names) -> List[Dict[str, Any]]:
  """From the model down to the pretrained checkpoint, one step per artifact.

  Steps: `selected` (an evaluator's copy of the better model: followed to its
  source), `pushed` (followed to the pushed model) and `trained` (a Trainer;
  when its examples were pseudo-labelled, the chain goes on to their teacher).
  """
  steps: List[Dict[str, Any]] = []
  current: Optional[metadata_store_pb2.Artifact] = model
  seen = set()
  while current is not None and current.id not in seen:
    seen.add(current.id)
    execution = S.producer(store, current.id)
    if execution is None:
      steps.append({'kind': 'external', 'model': artifact_info(store, current, names, False)})
      break
    kind = _type(names, execution)
    if kind.endswith(EVALUATOR_SUFFIX):
      props = S.custom_props(current)
      candidate = (S.execution_io(store, execution.id, 'input').get('model') or [None])[0]
      steps.append({'kind': 'selected', 'model': artifact_info(store, current, names, False),
                    'selected_role': props.get('selected_role'),
                    'source_model_id': props.get('source_model_id'),
                    'candidate_model_id': candidate.id if candidate is not None else None,
                    'reason': props.get('selection_reason')})
      source = props.get('source_model_id')
      current = store.get_artifacts_by_id([source])[0] if source else None
    elif kind.endswith(PUSHER_SUFFIX):
      steps.append({'kind': 'pushed', 'model': artifact_info(store, current, names, False)})
      current = (S.execution_io(store, execution.id, 'input').get('model') or [None])[0]
    elif kind.endswith(TRAINER_SUFFIX):
      step = _trained_step(store, execution, current, names)
      steps.append(step)
      teacher = step['teacher_model_id']
      current = store.get_artifacts_by_id([teacher])[0] if teacher else None
    else:
      steps.append({'kind': 'other', 'model': artifact_info(store, current, names, False),
                    'execution_type': kind})
      break
  return steps


def data_of(store, graph: U.Graph, names: S.Names) -> List[Dict[str, Any]]:
  """Ingested datasets above the model: every property the ingest step recorded."""
  out = []
  for aid, artifact in sorted(graph.artifacts.items()):
    if names.artifact_type.get(artifact.type_id) != 'Examples':
      continue
    eid = graph.made_by.get(aid)
    if eid is None or _type(names, graph.executions[eid]).endswith(PSEUDO_LABELER_SUFFIX):
      continue
    params = S.exec_props(graph.executions[eid])
    config = _json_prop(params, 'config_json')
    props = S.custom_props(artifact)
    data_cfg = config.get('data') or {}
    out.append({
        'examples': artifact_info(store, artifact, names),
        'parameters': {k: v for k, v in sorted(params.items()) if k != 'config_json'},
        'config': config,
        'unlabelled': {
            'title_queries': (config.get('splits') or {}).get('title_queries'),
            'pairs_file': data_cfg.get('unlabelled_pairs'),
            'fingerprint': props.get('unlabelled_fingerprint'),
            'counts': {k: v for k, v in sorted(props.items())
                       if k.startswith('unlabelled_') and isinstance(v, (int, float))},
        },
    })
  return out


def metrics_of(evaluation: metadata_store_pb2.Artifact) -> Dict[str, Dict[str, Dict[str, float]]]:
  """`<split>/<role>/<metric>` custom properties -> {split: {role: {metric: value}}}."""
  out: Dict[str, Dict[str, Dict[str, float]]] = {}
  for key, value in sorted(S.custom_props(evaluation).items()):
    parts = key.split('/')
    if len(parts) == 3:
      out.setdefault(parts[0], {}).setdefault(parts[1], {})[parts[2]] = value
  return out


def _consumers_by_key(store, artifact_id: int, key: Optional[str], type_suffix: str, names: S.Names):
  """Executions of a type that read the artifact (under input `key`, or any key when None)."""
  ids = sorted({e.execution_id for e in store.get_events_by_artifact_ids([artifact_id])
                if e.type in S._INPUT_EVENTS and e.path.steps  # pylint: disable=protected-access
                and (key is None or e.path.steps[0].key == key)})
  return [e for e in (store.get_executions_by_id(ids) if ids else [])
          if _type(names, e).endswith(type_suffix)]


def evaluations_of(store, model: metadata_store_pb2.Artifact, names: S.Names) -> List[Dict[str, Any]]:
  """Each distinct evaluation of the model as a candidate (cache hits folded in).

  The candidate is read from the blessing's `current_model_id`, not from the
  input key: MLMD keeps one INPUT event per (execution, artifact), so a model
  that is both the candidate and the last blessed model (a rerun) is
  recorded under one key only.
  """
  out, seen = [], set()
  for execution in _consumers_by_key(store, model.id, None, EVALUATOR_SUFFIX, names):
    outs = S.execution_io(store, execution.id, 'output')
    blessing = (outs.get('blessing') or [None])[0]
    evaluation = (outs.get('evaluation') or [None])[0]
    if (blessing is None or blessing.id in seen
        or S.custom_props(blessing).get('current_model_id') != model.id):
      continue
    seen.add(blessing.id)
    bprops = S.custom_props(blessing)
    ins = S.execution_io(store, execution.id, 'input')
    out.append({
        'node': S.execution_node(store, execution.id), 'execution_id': execution.id,
        'run': S.execution_contexts(store, execution.id, names).get(S.PIPELINE_RUN_CONTEXT_TYPE),
        'blessed': bool(bprops.get('blessed')), 'reason': bprops.get('reason'),
        'blessing_id': blessing.id, 'evaluation_id': evaluation.id if evaluation else None,
        'compared_with': {k: [a.id for a in v] for k, v in sorted(ins.items())
                          if k in ('baseline_model', 'teacher_model', 'last_blessed_model')},
        'metrics': metrics_of(evaluation) if evaluation else {},
    })
  return out


def pushes_of(store, model: metadata_store_pb2.Artifact, names: S.Names) -> List[Dict[str, Any]]:
  out, seen = [], set()
  for execution in _consumers_by_key(store, model.id, 'model', PUSHER_SUFFIX, names):
    for pushed in S.execution_io(store, execution.id, 'output').get('pushed_model', []):
      if pushed.id in seen:
        continue
      seen.add(pushed.id)
      props = S.custom_props(pushed)
      out.append({'node': S.execution_node(store, execution.id), 'execution_id': execution.id,
                  'pushed_model_id': pushed.id, 'pushed': bool(props.get('pushed')),
                  'destination': props.get('pushed_destination'),
                  'version': props.get('pushed_version')})
  return out


def settings_of(store, graph: U.Graph, chain: List[Dict[str, Any]], names: S.Names) -> Dict[str, Any]:
  """Mode, noise, selection and distillation settings of every step above the model.

  Read from all trainers and pseudo-labellers in the lineage graph, not only
  the teacher chain: a round whose T' lost to its teacher is not in the chain
  but did run with the mode and noise a reader asks about.
  """
  rounds: Dict[str, Any] = {}
  mode = None
  selection: Dict[str, Any] = {}
  for eid in sorted(graph.executions):
    execution, node = graph.executions[eid], graph.node_of[eid]
    kind = _type(names, execution)
    if kind.endswith(TRAINER_SUFFIX) and U.round_of(node):
      cc = _json_prop(S.exec_props(execution), 'custom_config')
      mode = mode or cc.get('mode')
      rounds[f'round {U.round_of(node)}'] = {'node': node, 'mode': cc.get('mode'),
                                             'noise': cc.get('noise'), 'objective': cc.get('objective'),
                                             'warm_start': cc.get('warm_start')}
    elif kind.endswith(PSEUDO_LABELER_SUFFIX):
      selection[node] = _json_prop(S.exec_props(execution), 'config_json')
  final = next((s for s in chain if s['kind'] == 'trained'), None)
  return {
      'mode': mode, 'rounds': rounds, 'pseudo_label_selection': selection,
      'objective': {'role': final.get('role'), **(final.get('objective') or {})} if final else None,
  }


def explain(store, model: metadata_store_pb2.Artifact) -> Dict[str, Any]:
  names = S.Names(store)
  chain = teacher_chain(store, model, names)
  trained = next((s for s in chain if s['kind'] == 'trained'), None)
  subject = store.get_artifacts_by_id([trained['model']['id']])[0] if trained else model
  graph = U.upstream(store, model.id, names)
  return {
      'schema_version': S.SCHEMA_VERSION, 'kind': 'explain',
      'model': artifact_info(store, model, names),
      'trained_model_id': subject.id,
      'teacher_chain': chain,
      'checkpoint': next((s['checkpoint'] for s in reversed(chain) if s['kind'] == 'trained'), None),
      'data': data_of(store, graph, names),
      'settings': settings_of(store, graph, chain, names),
      'evaluations': evaluations_of(store, subject, names),
      'pushes': pushes_of(store, subject, names),
  }
