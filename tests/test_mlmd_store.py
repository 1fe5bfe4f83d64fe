"""pipelines/mlmd_store.py: the layer that reads TFX's and KFP's stores alike.

Small stores built with the real MLMD API (SQLite in tmp_path).
"""

from ml_metadata.proto import metadata_store_pb2 as pb

from pipelines import mlmd_store as S


def _store(tmp_path, name='mlmd.sqlite'):
  return S.open_store(str(tmp_path / name), read_only=False)


def _produce(store, execution_type, outputs, contexts=(), state=pb.Execution.COMPLETE, **props):
  """One execution writing `outputs` ({key: artifact}); returns (execution id, artifact ids)."""
  e = pb.Execution(type_id=execution_type, last_known_state=state)
  for k, v in props.items():
    e.custom_properties[k].CopyFrom(v)
  pairs = []
  for key, artifact in outputs.items():
    event = pb.Event(type=pb.Event.OUTPUT)
    event.path.steps.add().key = key
    pairs.append((artifact, event))
  execution_id, artifact_ids, _ = store.put_execution(e, pairs, list(contexts))
  return execution_id, artifact_ids


def test_artifact_by_uri_takes_the_earliest_producer_of_the_type(tmp_path):
  store = _store(tmp_path)
  model_t = store.put_artifact_type(pb.ArtifactType(name='Model'))
  other_t = store.put_artifact_type(pb.ArtifactType(name='Examples'))
  trainer_t = store.put_execution_type(pb.ExecutionType(name='x.Trainer'))
  uri = '/root/trainer/model/7'
  (orphan,) = store.put_artifacts([pb.Artifact(type_id=model_t, uri=uri)])   # lowest id, no producer
  _, (other,) = _produce(store, trainer_t, {'examples': pb.Artifact(type_id=other_t, uri=uri)})
  first_exec, (first,) = _produce(store, trainer_t, {'model': pb.Artifact(type_id=model_t, uri=uri)})
  _, (second,) = _produce(store, trainer_t, {'model': pb.Artifact(type_id=model_t, uri=uri)})
  found = S.artifact_by_uri(store, uri + '/', 'Model')
  assert found.id == first and S.producer(store, found.id).id == first_exec
  assert S.artifact_by_uri(store, uri).id == other        # no type: the earliest producer of any
  assert S.artifact_by_uri(store, '/root/elsewhere', 'Model') is None
  # Without any producer, the lowest id.
  store.put_artifacts([pb.Artifact(type_id=model_t, uri='/root/imported')] * 2)
  assert S.artifact_by_uri(store, '/root/imported').id == second + 1
  assert orphan < first < second


def test_a_local_store_reads_as_tfx(tmp_path):
  store = _store(tmp_path)
  run_t = store.put_context_type(pb.ContextType(name=S.PIPELINE_RUN_CONTEXT_TYPE))
  node_t = store.put_context_type(pb.ContextType(name=S.NODE_CONTEXT_TYPE))
  examples_t = store.put_artifact_type(pb.ArtifactType(
      name='Examples', properties={'split_names': pb.STRING, 'span': pb.INT}))
  gen_t = store.put_execution_type(pb.ExecutionType(name='components.x.component.RankingExampleGen'))
  run = pb.Context(type_id=run_t, name='2026-12-01T10:00:00')
  node = pb.Context(type_id=node_t, name='ssd.ranking_example_gen')
  examples = pb.Artifact(type_id=examples_t, uri='/root/gen/examples/1')
  examples.properties['split_names'].string_value = '["train"]'
  examples.properties['span'].int_value = 0
  examples.custom_properties['train_queries'].int_value = 12
  examples.custom_properties['split_names'].string_value = 'custom value'   # clashes
  execution_id, _ = _produce(store, gen_t, {'examples': examples}, [run, node],
                             data_path=pb.Value(string_value='/data'))
  names = S.Names(store)
  assert names.dialect == S.TFX
  (artifact,) = store.get_artifacts()
  assert names.artifact_props(artifact) == {'split_names': '["train"]', 'span': 0, 'train_queries': 12,
                                            'custom:split_names': 'custom value'}
  execution = store.get_executions_by_id([execution_id])[0]
  assert names.kind(execution) == 'components.x.component.RankingExampleGen'
  assert names.exec_props(execution) == {'data_path': '/data'}
  assert S.place(store, execution, names) == {'pipeline': None, 'run': '2026-12-01T10:00:00',
                                               'node': 'ranking_example_gen'}


def test_a_kfp_store_reads_like_a_local_one(tmp_path):
  store = _store(tmp_path)
  pipeline_t = store.put_context_type(pb.ContextType(name=S.KFP_PIPELINE_CONTEXT_TYPE))
  run_t = store.put_context_type(pb.ContextType(name=S.KFP_RUN_CONTEXT_TYPE))
  [pipeline_id, run_id] = store.put_contexts([pb.Context(type_id=pipeline_t, name='ssd'),
                                              pb.Context(type_id=run_t, name='run-7')])
  store.put_parent_contexts([pb.ParentContext(child_id=run_id, parent_id=pipeline_id)])
  pipeline, run = store.get_contexts_by_id([pipeline_id, run_id])
  container_t = store.put_execution_type(pb.ExecutionType(name=S.KFP_CONTAINER_EXECUTION_TYPE))
  dag_t = store.put_execution_type(pb.ExecutionType(name=S.KFP_DAG_EXECUTION_TYPE))
  model_t = store.put_artifact_type(pb.ArtifactType(name='tfx.Model'))
  model_run_t = store.put_artifact_type(pb.ArtifactType(name='tfx.ModelRun'))
  pushed_t = store.put_artifact_type(pb.ArtifactType(name='tfx.PushedModel'))
  dag_id, _ = _produce(store, dag_t, {}, [pipeline, run], task_name=pb.Value(string_value=''))
  inputs = pb.Value()
  inputs.struct_value.update({'custom_config': '{"role": "student"}', 'num_steps': 3})
  model = pb.Artifact(type_id=model_t, uri='gs://b/ssd/run-7/student_trainer/model')
  model.custom_properties['display_name'].string_value = 'model'
  model.custom_properties['store_session_info'].string_value = '{}'
  model.custom_properties['epochs'].double_value = 2.0
  trainer_id, _ = _produce(
      store, container_t, {'model': model, 'model_run': pb.Artifact(type_id=model_run_t, uri='gs://r')},
      [pipeline, run], task_name=pb.Value(string_value='student_trainer'),
      display_name=pb.Value(string_value='student_trainer'), inputs=inputs,
      image=pb.Value(string_value='img:1'), pod_name=pb.Value(string_value='pod-1'),
      cache_fingerprint=pb.Value(string_value='abc'))
  pushed = pb.Artifact(type_id=pushed_t, uri='gs://b/ssd/run-7/student_pusher/pushed_model')
  pushed.custom_properties['pushed'].double_value = 1.0
  pushed.custom_properties['pushed_destination'].string_value = 'gs://b/serving/1700000000'
  pusher_id, _ = _produce(store, container_t, {'pushed_model': pushed}, [pipeline, run],
                          task_name=pb.Value(string_value='student_pusher'))
  failed_id, _ = _produce(store, container_t, {}, [pipeline, run], state=pb.Execution.FAILED,
                          task_name=pb.Value(string_value='student_evaluator'))

  names = S.Names(store)
  assert names.dialect == S.KFP
  by_id = {e.id: e for e in store.get_executions()}
  trainer, pusher, failed, dag = (by_id[i] for i in (trainer_id, pusher_id, failed_id, dag_id))
  assert (names.kind(trainer), names.kind(pusher), names.kind(failed)) == (
      'Trainer', 'Pusher', S.KFP_CONTAINER_EXECUTION_TYPE)
  assert names.exec_props(trainer) == {'custom_config': '{"role": "student"}', 'num_steps': 3,
                                       'image': 'img:1'}
  assert S.place(store, trainer, names) == {'pipeline': 'ssd', 'run': 'run-7', 'node': 'student_trainer'}
  assert not names.is_step(dag) and names.is_step(trainer)
  assert [e.id for e in S.steps_of(store, run, names)] == [trainer_id, pusher_id, failed_id]
  assert S.run_pipeline(store, run, names) == 'ssd' and S.pipeline_names(store) == ['ssd']
  assert [c.name for c in S.run_contexts(store)] == ['run-7']
  (stored_model,) = S.artifacts_of_type(store, 'Model', names)
  assert names.artifact_type_of(stored_model) == 'Model'
  assert names.artifact_props(stored_model) == {'epochs': 2.0}
  assert S.artifact_by_uri(store, stored_model.uri, 'Model', names).id == stored_model.id
  (found,) = S.pushes_to(store, 'gs://b/serving/1700000000/', names)
  assert names.artifact_props(found)['pushed'] == 1
  assert S.latest_output(store, 'ssd', 'student_trainer', 'model').id == stored_model.id
  assert S.latest_execution(store, 'ssd', 'student_evaluator') is None   # FAILED only


def test_same_location_ignores_trailing_slashes_and_dots():
  assert S.same_location('/a/serving/1/', '/a/./serving/1')
  assert S.same_location('gs://b/serving/1/', 'gs://b/serving/1')
  assert not S.same_location('/a/serving/1', '/a/serving/10')
  assert not S.same_location(None, '/a')
