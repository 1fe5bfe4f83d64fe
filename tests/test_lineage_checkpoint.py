"""`explain` on a store that records a PretrainedCheckpoint and data fingerprints.

The pipeline on this branch does not write those yet (another branch adds
the checkpoint component and the ingest fingerprints), so this builds the
lineage those runs will record, through the MLMD API, in an in-memory store:
ingest -> Examples, PretrainedCheckpoint -> Trainer -> Model.
"""

import json

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb

from components.pretrained_checkpoint.spec import PretrainedCheckpoint
from ssd.lineage import explain
from pipelines import mlmd_store as S

SHA = 'ab' * 32


def _type(store, kind, name):
  t = getattr(pb, f'{kind}Type')(name=name)
  return getattr(store, f'put_{kind.lower()}_type')(t)


def _artifact(store, type_id, uri, **props):
  a = pb.Artifact(type_id=type_id, uri=uri, state=pb.Artifact.LIVE)
  for k, v in props.items():
    if isinstance(v, int):
      a.custom_properties[k].int_value = v
    else:
      a.custom_properties[k].string_value = v
  return a


def _event(kind, key):
  e = pb.Event(type=kind)
  e.path.steps.add().key = key
  e.path.steps.add().index = 0
  return e


def _execution(store, type_id, node, inputs, outputs, **props):
  e = pb.Execution(type_id=type_id, last_known_state=pb.Execution.COMPLETE)
  for k, v in props.items():
    e.custom_properties[k].string_value = v
  node_type = _type(store, 'Context', S.NODE_CONTEXT_TYPE)
  ctx = pb.Context(type_id=node_type, name=f'ssd.{node}')
  existing = store.get_context_by_type_and_name(S.NODE_CONTEXT_TYPE, f'ssd.{node}')
  pairs = [(a, _event(pb.Event.INPUT, k)) for k, a in inputs.items()]
  pairs += [(a, _event(pb.Event.OUTPUT, k)) for k, a in outputs.items()]
  _, artifact_ids, _ = store.put_execution(e, pairs, [existing or ctx])
  return artifact_ids


def test_explain_reports_the_checkpoint_artifact_and_every_examples_property():
  cfg = pb.ConnectionConfig()
  cfg.fake_database.SetInParent()
  store = metadata_store.MetadataStore(cfg)
  examples_t = _type(store, 'Artifact', 'Examples')
  ckpt_t = _type(store, 'Artifact', PretrainedCheckpoint.TYPE_NAME)
  model_t = _type(store, 'Artifact', 'Model')
  ingest_t = _type(store, 'Execution', 'components.ranking_example_gen.component.RankingExampleGen')
  import_t = _type(store, 'Execution', 'components.pretrained_checkpoint.component.PretrainedCheckpoint')
  trainer_t = _type(store, 'Execution', 'tfx.components.trainer.component.Trainer')

  (examples_id,) = _execution(
      store, ingest_t, 'ranking_example_gen', {},
      {'examples': _artifact(store, examples_t, '/x/examples', data_fingerprint='d' * 64,
                             unlabelled_fingerprint='u' * 64, unlabelled_pairs=320, train_queries=12)},
      data_format='pairs', data_path='/data', config_json=json.dumps(
          {'data': {'unlabelled_pairs': '/data/unlabelled.jsonl'}, 'splits': {'title_queries': False}}))
  (ckpt_id,) = _execution(store, import_t, 'pretrained_checkpoint', {},
                          {'checkpoint': _artifact(store, ckpt_t, '/x/ckpt', sha256=SHA,
                                                   source='minilm-l6')})
  examples, ckpt = store.get_artifacts_by_id([examples_id, ckpt_id])
  cc = {'role': 'teacher_finetuned', 'model': {'architecture': 'bi_encoder', 'checkpoint': 'minilm-l6'},
        'train': {'epochs': 1}, 'code_fingerprint': 'c' * 16}
  ids = _execution(store, trainer_t, 'teacher_trainer', {'examples': examples, 'checkpoint': ckpt},
                   {'model': _artifact(store, model_t, '/x/model')}, custom_config=json.dumps(cc))
  (model,) = store.get_artifacts_by_id([ids[-1]])

  doc = explain.explain(store, model)
  assert doc['checkpoint']['sha256'] == SHA and doc['checkpoint']['source'] == 'minilm-l6'
  assert doc['checkpoint']['artifact']['id'] == ckpt.id
  (step,) = doc['teacher_chain']
  assert step['role'] == 'teacher_finetuned' and step['labels']['source'] == 'true labels'
  assert step['code_fingerprint'] == 'c' * 16
  (data,) = doc['data']
  props = data['examples']['properties']
  assert props['data_fingerprint'] == 'd' * 64 and props['train_queries'] == 12
  assert data['unlabelled']['fingerprint'] == 'u' * 64
  assert data['unlabelled']['pairs_file'] == '/data/unlabelled.jsonl'
  assert data['unlabelled']['counts'] == {'unlabelled_pairs': 320}
