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

from components.pretrained_checkpoint import keys as CK
from components.pseudo_labeler import config as PL_CONFIG
from components.pseudo_labeler import keys as PL
from components.ranking_evaluator import keys as EV
from pipelines import mlmd_store as S
from ssd.lineage import upstream as U

# Kinds of step (S.Names.kind: the execution type locally, inferred on KFP).
TRAINER_SUFFIX = 'Trainer'
EVALUATOR_SUFFIX = 'RankingEvaluator'
PSEUDO_LABELER_SUFFIX = 'PseudoLabeler'
PUSHER_SUFFIX = 'Pusher'
CHECKPOINT_TYPE = CK.CHECKPOINT_TYPE_NAME
MODEL_TYPE = 'Model'
MODEL_METADATA = ('Format-Serving', 'assets.extra', 'metadata.json')
# Ids older local stores recorded before models were named by URI; read only
# where the URI is missing, and only in a TFX store (ids of a KFP container
# are hashes no store holds).
LEGACY_SOURCE_MODEL_ID = 'source_model_id'


def artifact_info(store, artifact: metadata_store_pb2.Artifact, names: S.Names,
                  with_props: bool = True) -> Dict[str, Any]:
  producer = S.producer(store, artifact.id)
  where = S.place(store, producer, names) if producer else {}
  info = {
      'id': artifact.id, 'type': names.artifact_type_of(artifact),
      'uri': artifact.uri, 'state': metadata_store_pb2.Artifact.State.Name(artifact.state),
      'node': where.get('node'), 'run': where.get('run'),
      'execution_id': producer.id if producer else None,
  }
  if with_props:
    info['properties'] = dict(sorted(names.artifact_props(artifact).items()))
  return info


def _type(names: S.Names, execution: metadata_store_pb2.Execution) -> str:
  return names.kind(execution)


def _json_prop(props: Dict[str, Any], key: str) -> Dict[str, Any]:
  value = props.get(key)
  if isinstance(value, dict):   # a KFP struct parameter
    return value
  try:
    loaded = json.loads(value or '{}')
  except (TypeError, ValueError):
    return {}
  return loaded if isinstance(loaded, dict) else {}


def model_named(store, props: Dict[str, Any], uri_key: str, names: S.Names,
                legacy_id_key: Optional[str] = None) -> Optional[metadata_store_pb2.Artifact]:
  """The Model a step named by URI in property `uri_key` (None when not in this store)."""
  uri = props.get(uri_key)
  if uri:
    return S.artifact_by_uri(store, uri, MODEL_TYPE, names)
  legacy = props.get(legacy_id_key) if legacy_id_key else None
  if isinstance(legacy, int) and names.dialect == S.TFX:
    found = store.get_artifacts_by_id([legacy])
    return found[0] if found else None
  return None


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
      if names.artifact_type_of(a) == CHECKPOINT_TYPE:
        props = names.artifact_props(a)
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
  props = names.exec_props(execution)
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
      lab_props = names.exec_props(labeler)
      ex_props = names.artifact_props(examples)
      # The labeller's input `model` is the teacher; its `teacher_uri` names
      # the same model where the input was not recorded.
      teacher = ((S.execution_io(store, labeler.id, 'input').get(PL.MODEL_KEY) or [None])[0]
                 or model_named(store, ex_props, PL.TEACHER_URI_PROPERTY, names))
      step['labels'] = {
          'source': 'teacher', 'node': S.execution_node(store, labeler, names),
          'execution_id': labeler.id, 'selection': _json_prop(lab_props, PL.CONFIG_KEY),
          'teacher_uri': ex_props.get(PL.TEACHER_URI_PROPERTY),
          'teacher_fingerprint': ex_props.get(PL.TEACHER_FINGERPRINT_PROPERTY),
          # fuse_first_stage: the targets are teacher + w x first stage.
          'first_stage_weight': ex_props.get(PL_CONFIG.FIRST_STAGE_WEIGHT_PROPERTY),
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
      props = names.artifact_props(current)
      candidate = (S.execution_io(store, execution.id, 'input').get(EV.MODEL_KEY) or [None])[0]
      source = model_named(store, props, EV.SOURCE_MODEL_PROPERTY, names, LEGACY_SOURCE_MODEL_ID)
      steps.append({'kind': 'selected', 'model': artifact_info(store, current, names, False),
                    'selected_role': props.get('selected_role'),
                    'source_model_id': source.id if source is not None else None,
                    'source_model_uri': props.get(EV.SOURCE_MODEL_PROPERTY),
                    'candidate_model_id': candidate.id if candidate is not None else None,
                    'reason': props.get('selection_reason')})
      current = source
    elif kind.endswith(PUSHER_SUFFIX):
      steps.append({'kind': 'pushed', 'model': artifact_info(store, current, names, False)})
      current = (S.execution_io(store, execution.id, 'input').get('model') or [None])[0]
    elif kind.endswith(TRAINER_SUFFIX):
      step = _trained_step(store, execution, current, names)
      steps.append(step)
      teacher = step['teacher_model_id']
      current = store.get_artifacts_by_id([teacher])[0] if teacher is not None else None
    else:
      steps.append({'kind': 'other', 'model': artifact_info(store, current, names, False),
                    'execution_type': kind})
      break
  return steps


def data_of(store, graph: U.Graph, names: S.Names) -> List[Dict[str, Any]]:
  """Ingested datasets above the model: every property the ingest step recorded."""
  out = []
  for aid, artifact in sorted(graph.artifacts.items()):
    if names.artifact_type_of(artifact) != 'Examples':
      continue
    eid = graph.made_by.get(aid)
    if eid is None or _type(names, graph.executions[eid]).endswith(PSEUDO_LABELER_SUFFIX):
      continue
    params = names.exec_props(graph.executions[eid])
    config = _json_prop(params, 'config_json')
    props = names.artifact_props(artifact)
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


def metrics_of(evaluation: metadata_store_pb2.Artifact,
               names: Optional[S.Names] = None) -> Dict[str, Dict[str, Dict[str, float]]]:
  """`<split>/<role>/<metric>` custom properties -> {split: {role: {metric: value}}}."""
  out: Dict[str, Dict[str, Dict[str, float]]] = {}
  props = names.artifact_props(evaluation) if names is not None else S.custom_props(evaluation)
  for key, value in sorted(props.items()):
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


def production_compared(store, blessing_props: Dict[str, Any], evaluator_params: Dict[str, Any],
                        names: S.Names) -> Optional[Dict[str, Any]]:
  """The model in production an evaluation compared the candidate with.

  The evaluator reads the newest push under its `production_dir` and
  records that version folder in the blessing (`last_blessed_model`). The
  folder leads back through this store: the PushedModel whose
  `pushed_destination` it is, the Pusher execution that wrote it, and that
  execution's input `model`. None when the evaluator does not compare with
  production.
  """
  directory = blessing_props.get(EV.LAST_BLESSED_PROPERTY)
  destination = _json_prop(evaluator_params, EV.CONFIG_KEY).get('production_dir')
  if not directory and not destination:
    return None
  out: Dict[str, Any] = {'push_destination': destination, 'directory': directory,
                         'model': None, 'pushed_model': None, 'pusher': None}
  if not directory:
    out['note'] = 'no model in production yet: nothing compared'
    return out
  pushed = S.pushes_to(store, directory, names)
  pusher = S.producer(store, pushed[0].id) if pushed else None
  if pusher is None:
    out['note'] = 'pushed by no execution in this store'
    return out
  where = S.place(store, pusher, names)
  model = (S.execution_io(store, pusher.id, 'input').get('model') or [None])[0]
  out.update(pushed_model=artifact_info(store, pushed[0], names, with_props=False),
             pusher={'node': where['node'], 'execution_id': pusher.id, 'run': where['run']},
             model=artifact_info(store, model, names, with_props=False) if model else None,
             note=None if model else 'its Pusher recorded no input model')
  return out


def evaluations_of(store, model: metadata_store_pb2.Artifact, names: S.Names) -> List[Dict[str, Any]]:
  """Each distinct evaluation of the model as a candidate (cache hits folded in).

  The candidate is the model the blessing names (`current_model`, a URI),
  not an input key: an evaluator reads a model under `model` as candidate,
  and may read the same model as baseline or teacher elsewhere.
  """
  out, seen = [], set()
  for execution in _consumers_by_key(store, model.id, None, EVALUATOR_SUFFIX, names):
    outs = S.execution_io(store, execution.id, 'output')
    blessing = (outs.get(EV.BLESSING_KEY) or [None])[0]
    evaluation = (outs.get(EV.EVALUATION_KEY) or [None])[0]
    if blessing is None or blessing.id in seen:
      continue
    bprops = names.artifact_props(blessing)
    if not S.same_location(bprops.get(EV.CURRENT_MODEL_PROPERTY), model.uri):
      continue
    seen.add(blessing.id)
    ins = S.execution_io(store, execution.id, 'input')
    where = S.place(store, execution, names)
    production = production_compared(store, bprops, names.exec_props(execution), names)
    compared = {k: [a.id for a in v] for k, v in sorted(ins.items())
                if k in (EV.BASELINE_MODEL_KEY, EV.TEACHER_MODEL_KEY)}
    if production and production['model']:
      compared['last_blessed_model'] = [production['model']['id']]
    out.append({
        'node': where['node'], 'execution_id': execution.id, 'run': where['run'],
        'blessed': bool(bprops.get(EV.BLESSED_PROPERTY)), 'reason': bprops.get('reason'),
        'blessing_id': blessing.id, 'evaluation_id': evaluation.id if evaluation else None,
        'compared_with': compared,
        'production': production,
        'metrics': metrics_of(evaluation, names) if evaluation else {},
    })
  return out


def pushes_of(store, model: metadata_store_pb2.Artifact, names: S.Names) -> List[Dict[str, Any]]:
  out, seen = [], set()
  for execution in _consumers_by_key(store, model.id, 'model', PUSHER_SUFFIX, names):
    for pushed in S.execution_io(store, execution.id, 'output').get('pushed_model', []):
      if pushed.id in seen:
        continue
      seen.add(pushed.id)
      props = names.artifact_props(pushed)
      where = S.place(store, execution, names)
      out.append({'node': where['node'], 'execution_id': execution.id, 'run': where['run'],
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
      cc = _json_prop(names.exec_props(execution), 'custom_config')
      mode = mode or cc.get('mode')
      rounds[f'round {U.round_of(node)}'] = {'node': node, 'mode': cc.get('mode'),
                                             'noise': cc.get('noise'), 'objective': cc.get('objective'),
                                             'warm_start': cc.get('warm_start')}
    elif kind.endswith(PSEUDO_LABELER_SUFFIX):
      selection[node] = _json_prop(names.exec_props(execution), PL.CONFIG_KEY)
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
