"""`ssd compile`: the pipeline compiled for Kubeflow (KFP v2), its golden, and its image.

The golden (tests/testdata/kubeflow_cranfield_demo.json) is regenerated with
`make golden` (python -m tests.kubeflow_golden) when the DAG changes.
"""

import difflib
import importlib
import json
import os

from absl import flags
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
import pytest

from pipelines import kubeflow_runner
from pipelines import kubeflow_spec
from ssd import cli
from runconfig import config as C
from tests import kubeflow_golden as G

TFX_ENTRYPOINT = 'tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor'


@pytest.fixture(scope='module')
def job():
  return G.compile_default()


def _executors(job_dict):
  return job_dict['pipelineSpec']['deploymentSpec']['executors']


def _containers(job_dict):
  return {label: ex['container'] for label, ex in _executors(job_dict).items() if 'container' in ex}


def _task_executor(job_dict, task):
  component = job_dict['pipelineSpec']['root']['dag']['tasks'][task]['componentRef']['name']
  return job_dict['pipelineSpec']['components'][component]['executorLabel']


def test_matches_golden(job):
  with open(G.GOLDEN, encoding='utf-8') as f:
    expected = G.dumps(G.normalise(json.load(f)))
  actual = G.dumps(G.normalise(job))
  if actual != expected:
    diff = list(difflib.unified_diff(expected.splitlines(), actual.splitlines(),
                                     'golden (tests/testdata)', 'compiled now', n=3, lineterm=''))
    shown = '\n'.join(diff[:200]) + (f'\n... {len(diff) - 200} more diff lines' if len(diff) > 200 else '')
    pytest.fail(f'the compiled Kubeflow pipeline differs from the golden; if the change is '
                f'intended, run `{G.REGENERATE}` and review git diff.\n{shown}', pytrace=False)


def test_spec_parses_strictly_into_kfp_protos(job):
  parsed = json_format.Parse(json.dumps(job), pipeline_spec_pb2.PipelineJob())
  spec = json_format.ParseDict(job['pipelineSpec'], pipeline_spec_pb2.PipelineSpec())
  assert spec.pipeline_info.name == 'ssd-cranfield'
  assert parsed.display_name == 'ssd-cranfield'
  tasks = set(spec.root.dag.tasks)
  for node in ('ranking_example_gen', 'teacher_trainer', 'pseudo_labeler_r1',
               'student_trainer', 'student_evaluator', 'student_pusher'):
    assert node in tasks
  # Spec 2.1 (parameters as `constant`, which the KFP v2 launcher fills as
  # parameterValues), and nothing but containers: no resolver task, which
  # open-source KFP's Argo compiler refuses.
  assert spec.schema_version == kubeflow_runner.SCHEMA_VERSION == '2.1.0'
  assert not any('resolver' in t for t in tasks)
  executors = job['pipelineSpec']['deploymentSpec']['executors']
  assert all(set(ex) == {'container'} for ex in executors.values())
  config = job['pipelineSpec']['root']['dag']['tasks']['teacher_trainer']['inputs']['parameters']
  assert set(config['custom_config']['runtimeValue']) == {'constant'}
  # The student evaluator reads the model in production: never from KFP's cache.
  caching = {t: spec.root.dag.tasks[t].caching_options.enable_cache for t in tasks}
  assert [t for t, on in caching.items() if not on] == ['student_evaluator']
  # The evaluator waits for both trainers it compares.
  deps = set(spec.root.dag.tasks['teacher_evaluator'].dependent_tasks)
  assert {'teacher_trainer', 'teacher_pretrained', 'ranking_example_gen'} <= deps


def test_strict_parsing_rejects_unknown_fields(job):
  bad = json.loads(json.dumps(job))
  bad['pipelineSpec']['root']['dag']['tasks']['teacher_trainer']['retryPolicyz'] = {}
  with pytest.raises(kubeflow_spec.SpecError, match=r'bad\.json: .*retryPolicyz'):
    kubeflow_spec.parse_job(bad, 'bad.json')


def test_gs_pipeline_root_passes_through_unchanged(job):
  assert job['runtimeConfig']['gcsOutputDirectory'] == G.PIPELINE_ROOT
  spec = kubeflow_spec.pipeline_spec(kubeflow_spec.parse_job(job))
  assert spec.default_pipeline_root == G.PIPELINE_ROOT


def test_image_and_resources_come_from_config(job):
  containers = _containers(job)
  assert containers and {c['image'] for c in containers.values()} == {G.IMAGE}
  trainer = containers[_task_executor(job, 'teacher_trainer')]
  assert trainer['resources'] == {'cpuLimit': 8.0, 'memoryLimit': 32.0,
                                  'accelerator': {'type': 'nvidia.com/gpu', 'count': '1'}}
  evaluator = containers[_task_executor(job, 'teacher_evaluator')]
  assert evaluator['resources'] == {'cpuLimit': 2.0, 'memoryLimit': 8.0}


def test_image_beam_args_and_root_overrides_come_from_config():
  cfg = C.load_config(G.CONFIG, G.overrides() + [
      'kubeflow.beam_args=[--runner=DirectRunner, --direct_num_workers=4]',
      'kubeflow.pipeline_root=s3://other-bucket/ssd'])
  compiled = kubeflow_runner.compile_job(cfg, image='example.org/other:1')
  labeler = _containers(compiled)[_task_executor(compiled, 'pseudo_labeler_r1')]
  assert labeler['image'] == 'example.org/other:1'
  assert labeler['args'][-2:] == ['--runner=DirectRunner', '--direct_num_workers=4']
  assert compiled['runtimeConfig']['gcsOutputDirectory'] == 's3://other-bucket/ssd'


def test_local_paths_are_named_so_compile_can_warn():
  cfg = C.load_config(G.CONFIG, G.overrides() + [
      'data.path=../shared/datasets/cranfield', 'push.serving_dir=/srv/models',
      'teacher.model.checkpoint=gs://bucket/bert', 'student.model.vocab_file=vocab.txt'])
  found = kubeflow_runner.local_paths(cfg)
  assert found['data.path'] == '../shared/datasets/cranfield'
  assert found['push.serving_dir'] == '/srv/models'
  assert found['student.model.vocab_file'] == 'vocab.txt'
  assert 'teacher.model.checkpoint' not in found   # a URI
  assert 'pipeline_root' not in found              # the golden's gs:// root
  named = C.load_config(G.CONFIG, G.overrides())
  assert not any(k.endswith('.checkpoint') for k in kubeflow_runner.local_paths(named))


def test_normalise_hides_versions_fingerprints_timestamps_and_local_paths():
  home = os.path.expanduser('~')
  job = {
      'labels': {'tfx_version': '1-16-0', 'tfx_runner': 'kubeflow_v2'},
      'pipelineSpec': {'sdkVersion': 'tfx-1.16.0'},
      'params': {
          'code_fingerprint': {'runtimeValue': {'constantValue': {'stringValue': 'abc123'}}},
          'custom_config': json.dumps({'code_fingerprint': 'f00d', 'epochs': 2,
                                       'made': '2026-11-29T10:00:00Z',
                                       'cache': f'{home}/weights', 'root': 'gs://b/root'}),
          'repo': f'{G.ROOT}/configs',
      },
      'componentInputDefinitions': {'data_fingerprint': {'parameterType': 'STRING'}},
  }
  out = G.normalise(job)
  assert out['labels'] == {'tfx_version': '<version>', 'tfx_runner': 'kubeflow_v2'}
  assert out['pipelineSpec']['sdkVersion'] == 'tfx-<version>'
  params = out['params']
  assert params['code_fingerprint']['runtimeValue']['constantValue']['stringValue'] == '<fingerprint>'
  assert params['custom_config'] == {'<json>': {
      'code_fingerprint': '<fingerprint>', 'epochs': 2, 'made': '<timestamp>',
      'cache': '<HOME>/weights' if home != '/' else f'{home}/weights', 'root': 'gs://b/root'}}
  assert params['repo'] == '<REPO>/configs'
  assert out['componentInputDefinitions'] == {'data_fingerprint': {'parameterType': 'STRING'}}
  assert G.normalise(out) == out  # idempotent: the stored golden normalises to itself
  assert json.loads(G.denormalise(out)['params']['custom_config'])['epochs'] == 2


def test_unknown_resource_node_is_a_config_error():
  cfg = C.load_config(G.CONFIG, G.overrides() + ['kubeflow.resources={teacher_trainr: {cpu: 1}}'])
  with pytest.raises(C.ConfigError, match=r'teacher_trainr.*known: .*teacher_trainer'):
    kubeflow_runner.compile_job(cfg)


def test_resources_are_validated_and_merged_field_by_field():
  default = C.ResourcesConfig(cpu=2, memory_gb=8)
  spec = kubeflow_runner.resource_spec(default, C.ResourcesConfig(memory_gb=64), 'k')
  assert (spec.cpu_limit, spec.memory_limit) == (2, 64)
  assert kubeflow_runner.resource_spec(C.ResourcesConfig(), None, 'k') is None
  with pytest.raises(C.ConfigError, match=r'k\.cpu: must be > 0'):
    kubeflow_runner.resource_spec(default, C.ResourcesConfig(cpu=0), 'k')
  with pytest.raises(C.ConfigError, match='accelerator_count is set but'):
    kubeflow_runner.resource_spec(default, C.ResourcesConfig(accelerator_count=2), 'k')
  with pytest.raises(C.ConfigError, match=r'kubeflow\.resources\.x\.cpus'):
    C.load_config(None, ['kubeflow.resources={x: {cpus: 1}}'])


def test_custom_artifact_types_are_kfp_compatible():
  """KFP v2 rejects custom type names without `namespace.`; say which node and key."""
  from tfx import types  # pylint: disable=g-import-not-at-top
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from tfx.dsl.components.base import base_component, base_executor, executor_spec  # pylint: disable=g-import-not-at-top,g-multiple-import
  from tfx.types import component_spec  # pylint: disable=g-import-not-at-top

  class Bare(types.Artifact):
    TYPE_NAME = 'BareReport'

  class Spec(types.ComponentSpec):
    PARAMETERS = {}
    INPUTS = {}
    OUTPUTS = {'report': component_spec.ChannelParameter(type=Bare)}

  class Node(base_component.BaseComponent):
    SPEC_CLASS = Spec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(base_executor.BaseExecutor)

  node = Node(spec=Spec(report=types.Channel(type=Bare))).with_id('bare')
  pipeline = tfx.dsl.Pipeline(pipeline_name='p', pipeline_root='gs://b/r', components=[node])
  with pytest.raises(kubeflow_runner.CompileError, match=r"bare: output 'report'.*'ssd\.Bare'"):
    kubeflow_runner.check_artifact_types(pipeline)
  # A KFP-valid title is not enough: TFX's entrypoint imports the type by it.
  Bare.TYPE_NAME = 'ssd.BareReport'
  with pytest.raises(kubeflow_runner.CompileError, match=r"'ssd\.BareReport', which does not import"):
    kubeflow_runner.check_artifact_types(pipeline)


def test_project_artifact_types_import_by_their_title():
  """What TFX's Kubeflow entrypoint does with a custom type's schema title."""
  from tfx.utils import import_utils  # pylint: disable=g-import-not-at-top
  import ssd  # pylint: disable=g-import-not-at-top
  for name, module in ssd.ARTIFACT_TYPE_MODULES.items():
    cls = getattr(importlib.import_module(module), name)
    assert cls.TYPE_NAME == f'ssd.{name}'
    assert import_utils.import_class_by_path(cls.TYPE_NAME) is cls
  with pytest.raises(AttributeError):
    ssd.NoSuchType  # pylint: disable=pointless-statement


def test_every_container_entrypoint_and_executor_imports(job):
  """What the image must hold: TFX's entrypoint, every executor class, the Trainer's run_fn."""
  containers = _containers(job)
  commands = {tuple(c['command']) for c in containers.values()}
  assert commands == {('python', '-m', TFX_ENTRYPOINT)}
  assert importlib.import_module(TFX_ENTRYPOINT).main
  executor_paths = {c['args'][c['args'].index('--executor_class_path') + 1]
                    for c in containers.values()}
  assert 'components.pseudo_labeler.executor.Executor' in executor_paths
  for path in executor_paths:
    module, _, name = path.rpartition('.')
    assert isinstance(getattr(importlib.import_module(module), name), type), path
  tasks = job['pipelineSpec']['root']['dag']['tasks'].values()
  run_fns = {t['inputs']['parameters']['run_fn']['runtimeValue']['constant']
             for t in tasks
             if 'run_fn' in t.get('inputs', {}).get('parameters', {})}
  assert run_fns == {'components.ranker_trainer.module.run_fn'}
  module, _, name = run_fns.pop().rpartition('.')
  assert callable(getattr(importlib.import_module(module), name))


def test_cli_compile_writes_a_spec_that_loads(tmp_path, capsys):
  out = tmp_path / 'pipeline.json'
  flags.FLAGS.unparse_flags()
  flags.FLAGS(['ssd', f'--config={G.CONFIG}', f'--output={out}', '--image=example.org/ssd:7',
               *(f'--set={o}' for o in G.overrides())])
  try:
    assert cli.main(['ssd', 'compile']) == 0
  finally:
    flags.FLAGS.unparse_flags()
  parsed = kubeflow_spec.load_job(str(out))
  spec = kubeflow_spec.pipeline_spec(parsed)
  assert {c['image'] for c in kubeflow_spec.container_commands(spec).values()} == {'example.org/ssd:7'}
  assert f'pipeline: {out}' in capsys.readouterr().out


def test_cli_compile_needs_output(capsys):
  flags.FLAGS.unparse_flags()
  flags.FLAGS(['ssd'])
  assert cli.main(['ssd', 'compile']) == 2
  assert '--output' in capsys.readouterr().err
