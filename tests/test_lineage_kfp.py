"""`ssd lineage` on a Kubeflow Pipelines v2 store.

The store is built with the real MLMD API (SQLite in tmp_path) in the shapes
KFP 2.0-2.5's driver and launcher write (backend/src/v2/metadata/client.go):
contexts `system.Pipeline` / `system.PipelineRun` (the run's parent is the
pipeline), executions `system.DAGExecution` (the root DAG, task_name '') and
`system.ContainerExecution` (task_name = node id, `inputs` = the parameter
values), artifacts typed by schema title (`tfx.Model`, `ssd.PseudoLabelReport`)
whose custom properties are the metadata TFX's container entrypoint wrote,
every int a double, plus `display_name` and `store_session_info`; events
keyed by input/output name only.

  run-1  ranking_example_gen -> teacher_trainer -> teacher_evaluator
         -> transfer_labeler -> student_trainer -> student_evaluator
         -> student_pusher (pushes to serving/100)
  run-2  the same: the first five CACHED (outputs: run-1's artifacts), the
         evaluator (never cached) compares the student with the model in
         production, serving/100, and the pusher pushes it to serving/200
  run-3  ranking_example_gen CACHED, teacher_trainer FAILED
"""

import json
import os

from absl import flags
from ml_metadata.proto import metadata_store_pb2 as pb
import pytest

from pipelines import mlmd_store as S
from ssd import cli

PIPELINE = 'ssd-kfp'
CODE = 'c0de' * 4
DATA = '/data/cranfield'
EVALUATOR_CONFIG = {'decision_metric': 'ndcg@10'}


def _value(v):
  """A metadata value as KFP's launcher stores it: numbers as doubles."""
  if isinstance(v, bool):
    return pb.Value(bool_value=v)
  if isinstance(v, (int, float)):
    return pb.Value(double_value=float(v))
  if isinstance(v, str):
    return pb.Value(string_value=v)
  out = pb.Value()
  out.struct_value.update(v)
  return out


class KfpStore:
  """Writes executions, artifacts and events as KFP v2 does."""

  def __init__(self, path):
    self.store = S.open_store(path, read_only=False)
    self.pipeline = self._context('system.Pipeline', PIPELINE, {})
    self.runs = {}
    self.root = os.path.join(os.path.dirname(path), 'root')

  def _type(self, kind, name):
    cls = {'context': pb.ContextType, 'execution': pb.ExecutionType, 'artifact': pb.ArtifactType}[kind]
    return getattr(self.store, f'put_{kind}_type')(cls(name=name))

  def _context(self, type_name, name, props):
    ctx = pb.Context(type_id=self._type('context', type_name), name=name)
    for k, v in props.items():
      ctx.custom_properties[k].string_value = v
    ctx.id = self.store.put_contexts([ctx])[0]
    return ctx

  def start_run(self, run_id):
    run = self._context('system.PipelineRun', run_id, {
        'pipeline_root': f'{self.root}/{PIPELINE}/{run_id}', 'namespace': 'kubeflow',
        'resource_name': f'{PIPELINE}-{run_id}', 'store_session_info': '{"Provider": "minio"}'})
    self.store.put_parent_contexts([pb.ParentContext(child_id=run.id, parent_id=self.pipeline.id)])
    dag = self._execution('system.DAGExecution', '', 0, pb.Execution.RUNNING, {})
    dag.id = self._put(dag, run, {}, {})
    self.runs[run_id] = (run, dag)
    return run

  def end_run(self, run_id, state=pb.Execution.COMPLETE):
    run, dag = self.runs[run_id]
    dag.last_known_state = state
    self._put(dag, run, {}, {})

  def _execution(self, type_name, task, dag_id, state, props):
    e = pb.Execution(type_id=self._type('execution', type_name), last_known_state=state)
    e.custom_properties['display_name'].string_value = task
    e.custom_properties['task_name'].string_value = task
    if dag_id:
      e.custom_properties['parent_dag_id'].int_value = dag_id
    for k, v in props.items():
      e.custom_properties[k].CopyFrom(v)
    return e

  def _put(self, execution, run, inputs, outputs):
    pairs = []
    for kind, by_key in ((pb.Event.INPUT, inputs), (pb.Event.OUTPUT, outputs)):
      for key, artifact in by_key.items():
        event = pb.Event(type=kind)
        event.path.steps.add().key = key
        pairs.append((artifact, event))
    execution_id, artifact_ids, _ = self.store.put_execution(
        execution, pairs, [self.pipeline, run], reuse_context_if_already_exist=True)
    for (artifact, _), aid in zip(pairs, artifact_ids):
      artifact.id = aid
    return execution_id

  def artifact(self, run_id, task, key, type_title, metadata):
    a = pb.Artifact(type_id=self._type('artifact', type_title), state=pb.Artifact.LIVE,
                    uri=f'{self.root}/{PIPELINE}/{run_id}/{task}/{key}')
    a.custom_properties['display_name'].string_value = key
    a.custom_properties['store_session_info'].string_value = '{"Provider": "minio"}'
    for k, v in metadata.items():
      a.custom_properties[k].CopyFrom(_value(v))
    return a

  def task(self, run_id, task, params, inputs, outputs, state=pb.Execution.COMPLETE,
           cached_from=None):
    """One container task; `outputs` are new artifacts, or a cache hit's (`cached_from`)."""
    run, dag = self.runs[run_id]
    props = {'image': _value('registry.example.com/ssd-rankers:1'),
             'pod_name': _value(f'{PIPELINE}-{run_id}-{task}'),
             'cache_fingerprint': _value(f'fp-{task}'), 'inputs': _value(params)}
    if cached_from is not None:
      props['cached_execution_id'] = _value(str(cached_from))
      state = pb.Execution.CACHED
    execution = self._execution('system.ContainerExecution', task, dag.id, state, props)
    execution.id = self._put(execution, run, inputs, outputs)
    return execution.id


def _trainer_params(role, code=CODE):
  return {'custom_config': json.dumps({'role': role, 'code_fingerprint': code,
                                       'model': {'architecture': 'bi_encoder', 'checkpoint': None},
                                       'train': {'epochs': 1}}),
          'run_fn': 'components.ranker_trainer.module.run_fn', 'train_args': '{}', 'eval_args': '{}'}


def build(path, production_dir=None):
  """The three runs above; returns {name: artifact or execution id}."""
  k = KfpStore(path)
  serving = os.path.join(k.root, 'serving')
  production_dir = production_dir or f'{serving}/100'
  out = {'serving': serving}
  k.start_run('run-1')
  split_names = json.dumps(['train', 'dev', 'unlabelled', 'test'])
  ingest_params = {'data_format': 'cranfield', 'data_path': DATA, 'code_fingerprint': CODE,
                   'config_json': json.dumps({'data': {'path': DATA}, 'splits': {'title_queries': True}})}
  examples = k.artifact('run-1', 'ranking_example_gen', 'examples', 'tfx.Examples', {
      'split_names': split_names, 'span': 0, 'version': 0, 'train_queries': 12, 'train_pairs': 153,
      'unlabelled_title_queries': 30, 'data_fingerprint': 'd' * 16})
  out['ingest'] = k.task('run-1', 'ranking_example_gen', ingest_params, {}, {'examples': examples})
  teacher = k.artifact('run-1', 'teacher_trainer', 'model', 'tfx.Model', {})
  teacher_run = k.artifact('run-1', 'teacher_trainer', 'model_run', 'tfx.ModelRun', {})
  out['teacher_trainer'] = k.task('run-1', 'teacher_trainer', _trainer_params('teacher_finetuned'),
                                  {'examples': examples}, {'model': teacher, 'model_run': teacher_run})
  t_blessing = k.artifact('run-1', 'teacher_evaluator', 'blessing', 'tfx.ModelBlessing', {
      'blessed': 1, 'current_model': teacher.uri, 'reason': 'teacher beats bm25 -> blessed'})
  t_evaluation = k.artifact('run-1', 'teacher_evaluator', 'evaluation', 'tfx.ModelEvaluation', {
      'dev/teacher_finetuned/ndcg@10': 0.4, 'decision': 'teacher beats bm25 -> blessed'})
  selected = k.artifact('run-1', 'teacher_evaluator', 'selected_model', 'tfx.Model', {
      'selected_role': 'teacher_finetuned', 'source_model': teacher.uri,
      'selection_reason': 'teacher beats bm25 -> blessed'})
  eval_params = {'config_json': json.dumps(EVALUATOR_CONFIG), 'code_fingerprint': CODE}
  out['teacher_evaluator'] = k.task('run-1', 'teacher_evaluator', eval_params,
                                    {'examples': examples, 'model': teacher},
                                    {'blessing': t_blessing, 'evaluation': t_evaluation,
                                     'selected_model': selected})
  labelled = k.artifact('run-1', 'transfer_labeler', 'pseudo_labelled', 'tfx.Examples', {
      'split_names': json.dumps(['train']), 'span': 0, 'version': 0, 'total_kept': 50,
      'total_pairs_in': 60, 'skipped': 0, 'teacher_uri': selected.uri, 'teacher_fingerprint': 'f' * 16,
      'teacher_role': 'teacher'})
  report = k.artifact('run-1', 'transfer_labeler', 'report', 'ssd.PseudoLabelReport', {'total_kept': 50})
  out['labeler'] = k.task('run-1', 'transfer_labeler',
                          {'config_json': json.dumps({'hard_top_k': 1}), 'code_fingerprint': CODE},
                          {'examples': examples, 'model': selected},
                          {'pseudo_labelled': labelled, 'report': report})
  student = k.artifact('run-1', 'student_trainer', 'model', 'tfx.Model', {})
  student_run = k.artifact('run-1', 'student_trainer', 'model_run', 'tfx.ModelRun', {})
  out['student_trainer'] = k.task('run-1', 'student_trainer', _trainer_params('student'),
                                  {'examples': labelled}, {'model': student, 'model_run': student_run})
  student_params = {'config_json': json.dumps(dict(EVALUATOR_CONFIG, production_dir=serving)),
                    'code_fingerprint': CODE}

  def evaluate_and_push(run_id, production, version):
    props = {'blessed': 1, 'current_model': student.uri, 'reason': f'student blessed ({run_id})'}
    metrics = {'dev/student/ndcg@10': 0.37, 'dev/best_teacher/ndcg@10': 0.4}
    if production:
      props['last_blessed_model'] = production
      metrics['dev/last_blessed_student/ndcg@10'] = 0.37
    blessing = k.artifact(run_id, 'student_evaluator', 'blessing', 'tfx.ModelBlessing', props)
    evaluation = k.artifact(run_id, 'student_evaluator', 'evaluation', 'tfx.ModelEvaluation', metrics)
    chosen = k.artifact(run_id, 'student_evaluator', 'selected_model', 'tfx.Model', {
        'selected_role': 'student', 'source_model': student.uri, 'selection_reason': 'blessed'})
    evaluator = k.task(run_id, 'student_evaluator', student_params,
                       {'examples': examples, 'model': student, 'teacher_model': selected},
                       {'blessing': blessing, 'evaluation': evaluation, 'selected_model': chosen})
    pushed = k.artifact(run_id, 'student_pusher', 'pushed_model', 'tfx.PushedModel', {
        'pushed': 1, 'pushed_destination': f'{serving}/{version}', 'pushed_version': str(version)})
    pusher = k.task(run_id, 'student_pusher',
                    {'push_destination': json.dumps({'filesystem': {'base_directory': serving}}),
                     'custom_config': 'null'},
                    {'model': student, 'model_blessing': blessing}, {'pushed_model': pushed})
    return evaluator, pusher, blessing

  out['evaluator_1'], out['pusher_1'], out['blessing_1'] = evaluate_and_push('run-1', None, 100)
  k.end_run('run-1')

  k.start_run('run-2')
  out['cached_ingest'] = k.task('run-2', 'ranking_example_gen', ingest_params, {},
                                {'examples': examples}, cached_from=out['ingest'])
  k.task('run-2', 'teacher_trainer', _trainer_params('teacher_finetuned'), {'examples': examples},
         {'model': teacher, 'model_run': teacher_run}, cached_from=out['teacher_trainer'])
  k.task('run-2', 'teacher_evaluator', eval_params, {'examples': examples, 'model': teacher},
         {'blessing': t_blessing, 'evaluation': t_evaluation, 'selected_model': selected},
         cached_from=out['teacher_evaluator'])
  k.task('run-2', 'transfer_labeler',
         {'config_json': json.dumps({'hard_top_k': 1}), 'code_fingerprint': CODE},
         {'examples': examples, 'model': selected}, {'pseudo_labelled': labelled, 'report': report},
         cached_from=out['labeler'])
  k.task('run-2', 'student_trainer', _trainer_params('student'), {'examples': labelled},
         {'model': student, 'model_run': student_run}, cached_from=out['student_trainer'])
  out['evaluator_2'], out['pusher_2'], out['blessing_2'] = evaluate_and_push('run-2', production_dir, 200)
  k.end_run('run-2')

  k.start_run('run-3')
  out['cached_ingest_3'] = k.task('run-3', 'ranking_example_gen', ingest_params, {},
                                  {'examples': examples}, cached_from=out['ingest'])
  k.task('run-3', 'teacher_trainer', _trainer_params('teacher_finetuned', code='beef' * 4),
         {'examples': examples}, {}, state=pb.Execution.FAILED)
  k.end_run('run-3', pb.Execution.FAILED)
  out.update(teacher=teacher, selected=selected, student=student, examples=examples,
             labelled=labelled, report=report, production_dir=production_dir)
  return out


@pytest.fixture
def kfp(tmp_path):
  path = str(tmp_path / 'mlmd.sqlite')
  return path, build(path)


def _cli(argv, path, capsys, *extra):
  flags.FLAGS.unparse_flags()
  flags.FLAGS(['ssd', f'--metadata={path}', *extra])
  capsys.readouterr()
  rc = cli.main(['ssd'] + argv)
  captured = capsys.readouterr()
  assert rc == 0, captured.err
  return captured.out


def _json(argv, path, capsys, *extra):
  doc = json.loads(_cli(argv, path, capsys, '--format=json', *extra))
  assert doc['schema_version'] == S.SCHEMA_VERSION
  return doc


def test_runs_on_a_kfp_store(kfp, capsys):
  path, ids = kfp
  doc = _json(['lineage', 'runs'], path, capsys)
  runs = doc['runs']
  assert [(r['index'], r['run_id'], r['pipeline'], r['status']) for r in runs] == [
      (1, 'run-1', PIPELINE, 'complete'), (2, 'run-2', PIPELINE, 'complete'),
      (3, 'run-3', PIPELINE, 'failed')]
  first, second, third = runs
  tasks = ['ranking_example_gen', 'student_evaluator', 'student_pusher', 'student_trainer',
           'teacher_evaluator', 'teacher_trainer', 'transfer_labeler']
  # The root DAG execution is the run, not a step.
  assert first['steps'] == {'COMPLETE': 7} and first['executed'] == tasks and first['cached'] == []
  assert second['steps'] == {'CACHED': 5, 'COMPLETE': 2}
  assert second['executed'] == ['student_evaluator', 'student_pusher']
  assert second['cached'] == ['ranking_example_gen', 'student_trainer', 'teacher_evaluator',
                              'teacher_trainer', 'transfer_labeler']
  assert third['steps'] == {'CACHED': 1, 'FAILED': 1} and third['unfinished'] == ['teacher_trainer']
  # Parameters come from the tasks' `inputs` struct.
  assert second['config'] == {'data': f'cranfield:{DATA}', 'rounds': 0,
                              'teacher': 'bi_encoder(random)', 'student': 'bi_encoder(random)',
                              'code_fingerprint': CODE}
  assert second['final_decision'] == {
      'node': 'student_evaluator', 'blessed': True, 'reason': 'student blessed (run-2)',
      'pushed': True, 'destination': f'{ids["serving"]}/200', 'production': f'{ids["serving"]}/100'}
  assert first['final_decision']['production'] is None
  text = _cli(['lineage', 'runs'], path, capsys)
  assert f'#2 run-2  {PIPELINE}  ' in text and 'COMPLETE  (5 cached, 2 complete)' in text
  assert 'executed: student_evaluator, student_pusher' in text
  assert 'FAILED  (1 cached, 1 failed)' in text and 'unfinished: teacher_trainer' in text
  assert 'BLESSED · pushed' in text


def test_explain_latest_blessed_on_a_kfp_store(kfp, capsys):
  path, ids = kfp
  student, teacher, selected = ids['student'], ids['teacher'], ids['selected']
  doc = _json(['lineage', 'explain', 'latest-blessed'], path, capsys)
  model = doc['model']
  assert (model['id'], model['type'], model['node'], model['run'], model['uri']) == (
      student.id, 'Model', 'student_trainer', 'run-1', student.uri)
  assert model['execution_id'] == ids['student_trainer']
  assert 'display_name' not in model['properties']   # KFP's bookkeeping is not the model's
  trained, chosen, first = doc['teacher_chain']
  assert trained['kind'] == 'trained' and trained['role'] == 'student'
  assert trained['labels']['source'] == 'teacher' and trained['labels']['node'] == 'transfer_labeler'
  assert trained['labels']['teacher_uri'] == selected.uri
  assert trained['labels']['teacher_fingerprint'] == 'f' * 16
  assert trained['labels']['counts'] == {'total_kept': 50, 'total_pairs_in': 60}
  assert trained['labels']['selection'] == {'hard_top_k': 1}
  assert trained['teacher_model_id'] == selected.id and trained['code_fingerprint'] == CODE
  assert chosen['kind'] == 'selected' and chosen['model']['id'] == selected.id
  assert chosen['model']['node'] == 'teacher_evaluator'
  assert (chosen['source_model_id'], chosen['source_model_uri']) == (teacher.id, teacher.uri)
  assert chosen['candidate_model_id'] == teacher.id and chosen['selected_role'] == 'teacher_finetuned'
  assert first['kind'] == 'trained' and first['model']['id'] == teacher.id
  assert first['labels'] == {'source': 'true labels', 'node': 'ranking_example_gen'}
  assert doc['checkpoint']['source'] is None and doc['checkpoint']['sha256'] is None
  (data,) = doc['data']
  props = data['examples']['properties']
  assert data['examples']['id'] == ids['examples'].id and data['examples']['node'] == 'ranking_example_gen'
  assert props['train_queries'] == 12 and props['split_names'] == '["train", "dev", "unlabelled", "test"]'
  assert 'store_session_info' not in props
  assert data['parameters'] == {'code_fingerprint': CODE, 'data_format': 'cranfield',
                                'data_path': DATA, 'image': 'registry.example.com/ssd-rankers:1'}
  assert data['unlabelled']['counts'] == {'unlabelled_title_queries': 30}
  assert doc['settings']['pseudo_label_selection'] == {'transfer_labeler': {'hard_top_k': 1}}

  # Two evaluations of the student: run-1 (nothing in production yet) and run-2.
  before, after = doc['evaluations']
  assert (before['run'], before['execution_id'], before['blessing_id']) == (
      'run-1', ids['evaluator_1'], ids['blessing_1'].id)
  assert before['production'] == {
      'push_destination': ids['serving'], 'directory': None, 'model': None, 'pushed_model': None,
      'pusher': None, 'note': 'no model in production yet: nothing compared'}
  assert before['compared_with'] == {'teacher_model': [selected.id]}
  assert (after['run'], after['execution_id'], after['node']) == ('run-2', ids['evaluator_2'],
                                                                 'student_evaluator')
  production = after['production']
  assert production['directory'] == f'{ids["serving"]}/100'
  assert production['pusher'] == {'node': 'student_pusher', 'execution_id': ids['pusher_1'], 'run': 'run-1'}
  assert production['model']['id'] == student.id and production['model']['run'] == 'run-1'
  assert production['pushed_model']['node'] == 'student_pusher' and production['note'] is None
  assert after['compared_with'] == {'teacher_model': [selected.id], 'last_blessed_model': [student.id]}
  assert after['metrics'] == {'dev': {'best_teacher': {'ndcg@10': 0.4},
                                      'last_blessed_student': {'ndcg@10': 0.37},
                                      'student': {'ndcg@10': 0.37}}}
  assert after['blessed'] and after['reason'] == 'student blessed (run-2)'
  assert [(p['run'], p['destination'], p['version'], p['pushed']) for p in doc['pushes']] == [
      ('run-1', f'{ids["serving"]}/100', '100', True), ('run-2', f'{ids["serving"]}/200', '200', True)]

  text = _cli(['lineage', 'explain', 'latest-blessed'], path, capsys)
  assert f'model Model#{student.id} (student_trainer, run run-1)' in text
  assert f'labels: pseudo-labels by transfer_labeler from teacher Model#{selected.id}' in text
  assert (f'Model#{selected.id} = teacher_finetuned Model#{teacher.id}, selected by teacher_evaluator'
          in text)
  assert (f'compared with the model in production: Model#{student.id} (student_trainer, run run-1), '
          f'pushed by student_pusher (execution #{ids["pusher_1"]}, run run-1) to '
          f'{ids["serving"]}/100') in text
  assert 'train: pairs=153, queries=12' in text   # KFP's doubles shown as the ints they were


def test_production_pushed_by_no_execution_of_the_store(tmp_path, capsys):
  path = str(tmp_path / 'mlmd.sqlite')
  elsewhere = str(tmp_path / 'other-pipeline' / 'serving' / '7')
  ids = build(path, production_dir=elsewhere)
  doc = _json(['lineage', 'explain', 'latest-blessed'], path, capsys)
  production = doc['evaluations'][-1]['production']
  assert production == {'push_destination': ids['serving'], 'directory': elsewhere, 'model': None,
                        'pushed_model': None, 'pusher': None,
                        'note': 'pushed by no execution in this store'}
  assert 'last_blessed_model' not in doc['evaluations'][-1]['compared_with']
  text = _cli(['lineage', 'explain', 'latest-blessed'], path, capsys)
  assert f'compared with the model in production: {elsewhere} (pushed by no execution in this store)' in text


def test_other_references_diff_and_graph_on_a_kfp_store(kfp, capsys, tmp_path, monkeypatch):
  path, ids = kfp
  student = ids['student']
  for ref in ('latest-pushed', str(student.id), student.uri, f'{ids["serving"]}/200'):
    assert _json(['lineage', 'explain', ref], path, capsys)['model']['id'] == student.id, ref
  doc = _json(['lineage', 'diff', 'run:1', 'run:2'], path, capsys)
  assert doc['only_in_a'] == [] and doc['only_in_b'] == [] and doc['parameters'] == []
  assert doc['states'] == [{'node': n, 'a': 'COMPLETE', 'b': 'CACHED'} for n in (
      'ranking_example_gen', 'student_trainer', 'teacher_evaluator', 'teacher_trainer',
      'transfer_labeler')]
  # Only the pusher read a new artifact (run-2's blessing); the evaluator's inputs are the same.
  assert [(r['node'], r['key']) for r in doc['inputs']] == [('student_pusher', 'model_blessing')]
  assert [(r['node'], r['key'], r['a'], r['b']) for r in doc['metrics']] == [
      ('student_evaluator', 'dev.last_blessed_student.ndcg@10', None, 0.37)]
  failed = _json(['lineage', 'diff', 'run:2', 'run:3'], path, capsys)
  assert {'node': 'teacher_trainer', 'a': 'CACHED', 'b': 'FAILED'} in failed['states']
  assert [(r['node'], r['key'], r['b']) for r in failed['parameters']] == [
      ('teacher_trainer', 'custom_config.code_fingerprint', 'beef' * 4)]
  monkeypatch.setenv('PATH', '/nonexistent')   # DOT only: no graphviz needed
  out = tmp_path / 'g.dot'
  graph = _json(['lineage', 'graph', 'latest-blessed'], path, capsys, f'--output={out}')
  dot = out.read_text()
  assert graph['model_id'] == student.id and graph['renderer'] == 'none'
  assert 'role: student' in dot and 'role: teacher_finetuned' in dot
  assert f'selected: teacher_finetuned (#{ids["teacher"].id})' in dot
  assert 'transfer_labeler' in dot and 'kept 50 of 60 pairs' in dot


def test_short_form_helpers_find_kfp_tasks_by_task_name(kfp):
  path, ids = kfp
  store = S.open_store(path)
  assert [e.id for e in S.node_executions(store, PIPELINE, 'ranking_example_gen')] == [
      ids['ingest'], ids['cached_ingest'], ids['cached_ingest_3']]
  latest = S.latest_output(store, PIPELINE, 'student_trainer', 'model')
  assert latest.id == ids['student'].id
  rows = S.execution_table(store, PIPELINE)
  assert len(rows) == 7 + 7 + 2    # steps only, the three DAG executions left out
  by_id = {r['execution_id']: r for r in rows}
  assert by_id[ids['pusher_1']]['type'] == 'Pusher'
  assert by_id[ids['evaluator_2']]['type'] == 'RankingEvaluator'
  assert by_id[ids['labeler']]['outputs'] == {'pseudo_labelled': [f'Examples#{ids["labelled"].id}'],
                                              'report': [f'ssd.PseudoLabelReport#{ids["report"].id}']}


def test_lineage_imports_no_tfx():
  """`ssd lineage` answers in well under a second: it names artifact types and
  properties from the components' TFX-free keys modules, never their specs."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  code = ('import sys; import ssd.lineage.runs, ssd.lineage.explain, ssd.lineage.graph, '
          'ssd.lineage.diff, ssd.lineage.resolve; '
          'print(sorted({m.split(".")[0] for m in sys.modules} & {"tfx", "tensorflow"}))')
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == '[]'


def test_keys_modules_are_what_the_specs_use():
  from components.pretrained_checkpoint import keys as CK  # pylint: disable=g-import-not-at-top
  from components.pretrained_checkpoint import spec as CS
  from components.ranking_evaluator import keys as EK
  from components.ranking_evaluator import spec as ES
  assert CS.PretrainedCheckpoint.TYPE_NAME == CK.CHECKPOINT_TYPE_NAME
  assert set(ES.RankingEvaluatorSpec.INPUTS) <= {v for k, v in vars(EK).items() if k.endswith('_KEY')}
  assert ES.LAST_BLESSED_PROPERTY is EK.LAST_BLESSED_PROPERTY
