"""The KFP harness (tests/kfp_harness.py) on a two-task spec with an importer, no TFX.

The container command is a small script that records the ExecutorInput it
was given and writes an ExecutorOutput, so the test sees exactly what a task
receives from the harness and what the harness records from it.
"""

import json
import os
import textwrap

from ml_metadata.proto import metadata_store_pb2
import pytest

from tests import kfp_harness as H

SCRIPT = textwrap.dedent('''
    import json, os, sys
    ei = json.loads(sys.argv[-1])
    name = sys.argv[-2]
    with open(os.path.join(os.environ['SEEN_DIR'], name + '.json'), 'w') as f:
        json.dump({'executor_input': ei, 'cwd': os.getcwd(), 'home': os.environ['HOME']}, f)
    if name == 'fail':
        sys.exit(3)
    out = {}
    for key, arts in ei['outputs']['artifacts'].items():
        uri = arts['artifacts'][0]['uri']
        os.makedirs(uri, exist_ok=True)
        with open(os.path.join(uri, 'data.txt'), 'w') as f:
            f.write(ei['inputs']['parameterValues'].get('text', 'none'))
        out[key] = {'artifacts': [{'uri': uri, 'metadata': {'rows': 3, 'who': name}}]}
    os.makedirs(os.path.dirname(ei['outputs']['outputFile']), exist_ok=True)
    with open(ei['outputs']['outputFile'], 'w') as f:
        json.dump({'artifacts': out}, f)
''')
MODEL = {'instanceSchema': 'title: tfx.Model\ntype: object\n'}
EXAMPLES = {'schemaTitle': 'tfx.Examples', 'schemaVersion': '0.0.1'}


def _job(script, root, tasks=('make', 'use')):
  def container(name):
    return {'container': {'image': 'img:1', 'command': ['python', script],
                          'args': [name, '{{$}}']}}
  components = {
      'import_data': {'executorLabel': 'import_data_executor',
                      'outputDefinitions': {'artifacts': {'artifact': {'artifactType': EXAMPLES}}}},
      'make': {'executorLabel': 'make_executor',
               'inputDefinitions': {'artifacts': {'data': {'artifactType': EXAMPLES}},
                                    'parameters': {'text': {'parameterType': 'STRING'}}},
               'outputDefinitions': {'artifacts': {'model': {'artifactType': MODEL}}}},
      'use': {'executorLabel': 'use_executor',
              'inputDefinitions': {'artifacts': {'model': {'artifactType': MODEL}},
                                   'parameters': {'text': {'parameterType': 'STRING'}}},
              'outputDefinitions': {'artifacts': {'model': {'artifactType': MODEL}}}},
  }
  executors = {
      'import_data_executor': {'importer': {'artifactUri': {'constant': os.path.join(root, 'raw')},
                                            'typeSchema': EXAMPLES}},
      'make_executor': container('make'), 'use_executor': container(tasks[1])}
  dag = {
      'import_data': {'componentRef': {'name': 'import_data'}, 'taskInfo': {'name': 'import_data'}},
      'make': {'componentRef': {'name': 'make'}, 'taskInfo': {'name': 'make'},
               'cachingOptions': {'enableCache': True},
               'inputs': {'artifacts': {'data': {'taskOutputArtifact': {
                   'producerTask': 'import_data', 'outputArtifactKey': 'artifact'}}},
                          'parameters': {'text': {'runtimeValue': {'constant': 'hello'}}}}},
      'use': {'componentRef': {'name': 'use'}, 'taskInfo': {'name': 'use'},
              'cachingOptions': {'enableCache': False},
              'inputs': {'artifacts': {'model': {'taskOutputArtifact': {
                  'producerTask': 'make', 'outputArtifactKey': 'model'}}},
                         'parameters': {'text': {'componentInputParameter': 'greeting'}}}},
  }
  return {'displayName': 'toy', 'runtimeConfig': {'gcsOutputDirectory': root,
                                                  'parameterValues': {'greeting': 'hi'}},
          'pipelineSpec': {'pipelineInfo': {'name': 'toy'}, 'schemaVersion': '2.1.0',
                           'components': components, 'deploymentSpec': {'executors': executors},
                           'root': {'dag': {'tasks': dag}}}}


@pytest.fixture
def setup(tmp_path, monkeypatch):
  script = tmp_path / 'task.py'
  script.write_text(SCRIPT)
  seen = tmp_path / 'seen'
  seen.mkdir()
  monkeypatch.setenv('SEEN_DIR', str(seen))
  root = str(tmp_path / 'root')
  return script, seen, root, tmp_path


def _harness(job, tmp_path):
  return H.KfpHarness(job, str(tmp_path / 'mlmd.sqlite'), str(tmp_path / 'work'))


def _seen(seen, name):
  return json.loads((seen / f'{name}.json').read_text())


def test_a_run_builds_executor_inputs_as_the_driver_does(setup):
  script, seen, root, tmp = setup
  harness = _harness(_job(str(script), root), tmp)
  assert harness.order() == ['import_data', 'make', 'use']
  results = harness.run('run-1')
  assert {n: r.state for n, r in results.items()} == {
      'import_data': 'COMPLETE', 'make': 'COMPLETE', 'use': 'COMPLETE'}

  make = _seen(seen, 'make')['executor_input']
  # spec 2.1 constants arrive as parameterValues, never as `parameters`.
  assert make['inputs']['parameterValues'] == {'text': 'hello'}
  assert 'parameters' not in make['inputs']
  data = make['inputs']['artifacts']['data']['artifacts'][0]
  imported = results['import_data'].outputs['artifact'][0]
  assert data['name'] == str(imported.id) and data['uri'] == os.path.join(root, 'raw')
  assert data['type'] == EXAMPLES
  out = make['outputs']['artifacts']['model']['artifacts'][0]
  assert out['uri'] == f'{root}/toy/run-1/make/model' and out['type'] == MODEL
  assert make['outputs']['outputFile'].endswith('/make/kfp_outputs/output_metadata.json')

  use = _seen(seen, 'use')
  assert use['executor_input']['inputs']['parameterValues'] == {'text': 'hi'}  # the run's parameter
  model = use['executor_input']['inputs']['artifacts']['model']['artifacts'][0]
  made = results['make'].outputs['model'][0]
  assert model['name'] == str(made.id) and model['uri'] == out['uri']
  # The upstream executor's metadata comes back as custom properties; numbers as doubles.
  assert model['metadata']['rows'] == 3.0 and model['metadata']['who'] == 'make'
  assert model['metadata']['display_name'] == 'model'
  # The command ran in an empty directory under an empty HOME, not here.
  assert use['cwd'] == use['home'] and use['home'].startswith(str(tmp / 'work'))


def test_the_store_has_kfp_names_and_a_second_run_takes_the_cache(setup):
  script, seen, root, tmp = setup
  harness = _harness(_job(str(script), root), tmp)
  first = harness.run('run-1')
  (seen / 'make.json').unlink()
  second = harness.run('run-2')
  # make is cached (same inputs, parameters, command): its command did not run;
  # use has caching off and reruns; the importer reuses the artifact for its URI.
  assert {n: r.state for n, r in second.items()} == {
      'import_data': 'COMPLETE', 'make': 'CACHED', 'use': 'COMPLETE'}
  assert not (seen / 'make.json').exists()
  assert second['make'].outputs['model'][0].id == first['make'].outputs['model'][0].id
  assert (second['import_data'].outputs['artifact'][0].id
          == first['import_data'].outputs['artifact'][0].id)

  store = harness.store
  assert sorted(c.name for c in store.get_contexts_by_type(H.RUN_CONTEXT)) == ['run-1', 'run-2']
  assert [c.name for c in store.get_contexts_by_type(H.PIPELINE_CONTEXT)] == ['toy']
  containers = store.get_executions_by_type(H.CONTAINER_EXECUTION)
  by_state = sorted((e.custom_properties['task_name'].string_value,
                     metadata_store_pb2.Execution.State.Name(e.last_known_state))
                    for e in containers)
  assert by_state == [('make', 'CACHED'), ('make', 'COMPLETE'), ('use', 'COMPLETE'),
                      ('use', 'COMPLETE')]
  cached = [e for e in containers if e.last_known_state == metadata_store_pb2.Execution.CACHED][0]
  original = [e for e in containers if e.custom_properties['task_name'].string_value == 'make'
              and e.last_known_state == metadata_store_pb2.Execution.COMPLETE][0]
  assert cached.custom_properties['cached_execution_id'].string_value == str(original.id)
  assert (cached.custom_properties['cache_fingerprint'].string_value
          == original.custom_properties['cache_fingerprint'].string_value)
  assert len(store.get_executions_by_type(H.DAG_EXECUTION)) == 2
  assert {a.custom_properties['display_name'].string_value
          for a in store.get_artifacts_by_type('tfx.Model')} == {'model'}


def test_a_failing_task_fails_the_run_with_its_log(setup):
  script, _, root, tmp = setup
  harness = _harness(_job(str(script), root, tasks=('make', 'fail')), tmp)
  with pytest.raises(H.TaskFailed, match=r'use: exit 3'):
    harness.run('run-1')
  states = {e.custom_properties['task_name'].string_value: e.last_known_state
            for e in harness.store.get_executions_by_type(H.CONTAINER_EXECUTION)}
  assert states == {'make': metadata_store_pb2.Execution.COMPLETE,
                    'use': metadata_store_pb2.Execution.FAILED}


def test_a_spec_2_0_constant_is_refused(setup):
  script, _, root, tmp = setup
  job = _job(str(script), root)
  job['pipelineSpec']['root']['dag']['tasks']['make']['inputs']['parameters']['text'] = {
      'runtimeValue': {'constantValue': {'stringValue': 'hello'}}}
  with pytest.raises(ValueError, match='constantValue'):
    _harness(job, tmp).run('run-1')


MODULE_TASK = textwrap.dedent('''
    import json, os, sys
    ei = json.loads(sys.argv[-1])
    name = sys.argv[-2]
    with open(os.path.join(os.environ['SEEN_DIR'], name + '.json'), 'w') as f:
        json.dump({'executor_input': ei, 'cwd': os.getcwd(), 'home': os.environ['HOME'],
                   'argv': sys.argv, 'path0': sys.path[0], 'main': __name__,
                   'preloaded': 'ml_metadata' in sys.modules}, f)
    print('task', name, 'ran')
    if name == 'fail':
        sys.exit(3)
    if name == 'crash':
        raise ValueError('a bug in the task')
    out = {}
    for key, arts in ei['outputs']['artifacts'].items():
        os.makedirs(arts['artifacts'][0]['uri'], exist_ok=True)
        out[key] = {'artifacts': [{'uri': arts['artifacts'][0]['uri'], 'metadata': {'who': name}}]}
    os.makedirs(os.path.dirname(ei['outputs']['outputFile']), exist_ok=True)
    with open(ei['outputs']['outputFile'], 'w') as f:
        json.dump({'artifacts': out}, f)
''')


def _module_job(root, tasks):
  job = _job('unused', root, tasks)
  for executor in job['pipelineSpec']['deploymentSpec']['executors'].values():
    if 'container' in executor:
      executor['container']['command'] = ['python', '-m', 'toytask']
  return job


@pytest.mark.parametrize('failing', ['fail', 'crash'])
def test_a_zygote_runs_python_m_as_a_fresh_interpreter_does(setup, monkeypatch, failing):
  _, seen, root, tmp = setup
  modules = tmp / 'modules'
  modules.mkdir()
  (modules / 'toytask.py').write_text(MODULE_TASK)
  monkeypatch.setenv('PYTHONPATH', str(modules))
  runs = {}
  for mode, preload in (('fresh', ()), ('zygote', ('ml_metadata',))):
    harness = H.KfpHarness(_module_job(f'{root}-{mode}', ('make', 'use')),
                           str(tmp / f'{mode}.sqlite'), str(tmp / f'work-{mode}'),
                           preload=preload)
    try:
      results = harness.run('run-1')
      runs[mode] = {name: _seen(seen, name) for name in ('make', 'use')}
      assert {n: r.state for n, r in results.items()} == {
          'import_data': 'COMPLETE', 'make': 'COMPLETE', 'use': 'COMPLETE'}
      assert 'task use ran' in results['use'].log
      # A failing task: its exit status, and its log, come back.
      failing_harness = H.KfpHarness(_module_job(f'{root}-{mode}-f', ('make', failing)),
                                     str(tmp / f'{mode}-f.sqlite'), str(tmp / f'work-{mode}-f'),
                                     preload=preload)
      with pytest.raises(H.TaskFailed, match=r'use: exit (3|1) ') as raised:
        try:
          failing_harness.run('run-1')
        finally:
          failing_harness.close()
      assert ('exit 3' if failing == 'fail' else 'ValueError: a bug in the task') in str(
          raised.value)
    finally:
      harness.close()
  for name in ('make', 'use'):
    fresh, forked = runs['fresh'][name], runs['zygote'][name]
    for seen_run, mode in ((fresh, 'fresh'), (forked, 'zygote')):
      # `python -m`: __main__, argv[0] the module's file, sys.path[0] the
      # task's empty working directory (its HOME too), nothing of the checkout.
      assert seen_run['main'] == '__main__'
      assert seen_run['argv'][0] == str(modules / 'toytask.py')
      assert seen_run['argv'][1:-1] == [name]
      assert seen_run['cwd'] == seen_run['path0'] == seen_run['home']
      assert seen_run['home'].endswith(f'work-{mode}/run-1/{name}/home')
    assert forked['preloaded'] and not fresh['preloaded']   # the zygote's import was there
    assert fresh['executor_input'] == json.loads(json.dumps(forked['executor_input']).replace(
        f'{root}-zygote', f'{root}-fresh').replace('work-zygote', 'work-fresh'))
