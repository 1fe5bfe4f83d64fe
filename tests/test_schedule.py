"""`ssd schedule` against a loopback server that answers like the KFP v2beta1 API.

The pipeline uploaded is the checked-in Kubeflow golden (the default config
compiled), turned back into a PipelineJob, so these tests need no TFX import.
"""

import json
import re
import socket

from absl import flags
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
import pytest

from pipelines import kubeflow_spec
from ssd import cli
from ssd import cron
from ssd import schedule
from tests import fake_kfp
from tests import kubeflow_golden as G

CRON = '0 30 2 * * *'


@pytest.fixture
def pipeline_json(tmp_path):
  with open(G.GOLDEN, encoding='utf-8') as f:
    job = G.denormalise(json.load(f))
  path = tmp_path / 'pipeline.json'
  path.write_text(json.dumps(job, indent=1))
  return str(path)


@pytest.fixture
def kfp_server():
  with fake_kfp.FakeKfp() as server:
    yield server


def _ssd(argv, flag_args):
  flags.FLAGS.unparse_flags()
  flags.FLAGS(['ssd', *flag_args])
  try:
    return cli.main(['ssd'] + argv)
  finally:
    flags.FLAGS.unparse_flags()


def _schedule(host, pipeline, *extra):
  return _ssd(['schedule'], [f'--host={host}', f'--pipeline={pipeline}', *extra])


def _closed_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def test_uploads_and_creates_a_recurring_run(kfp_server, pipeline_json, capsys):
  assert _schedule(kfp_server.url, pipeline_json, '--cron', CRON, '--experiment', 'nightly',
                   '--max-concurrency', '2') == 0
  assert kfp_server.errors == []
  assert kfp_server.calls() == [
      'GET /apis/v2beta1/healthz',
      'GET /apis/v2beta1/pipelines',
      'POST /apis/v2beta1/pipelines/upload',
      'GET /apis/v2beta1/pipelines/pipeline-1/versions',
      'GET /apis/v2beta1/experiments',
      'POST /apis/v2beta1/experiments',
      'POST /apis/v2beta1/recurringruns',
  ]
  upload = kfp_server.requests[2]
  assert upload['query'] == {'name': 'ssd-cranfield'}
  (spec,) = kfp_server.specs
  assert spec.pipeline_info.name == 'ssd-cranfield'
  assert spec.default_pipeline_root == G.PIPELINE_ROOT
  assert 'teacher_trainer' in spec.root.dag.tasks
  assert kfp_server.requests[5]['body'].display_name == 'nightly'
  (run,) = kfp_server.recurring_runs
  assert run.trigger.cron_schedule.cron == CRON
  assert run.trigger.periodic_schedule is None
  assert int(run.max_concurrency) == 2
  assert run.mode == 'ENABLE' and run.no_catchup is True
  assert run.experiment_id == 'experiment-3'
  assert (run.pipeline_version_reference.pipeline_id,
          run.pipeline_version_reference.pipeline_version_id) == ('pipeline-1', 'version-2')
  assert run.runtime_config.pipeline_root == G.PIPELINE_ROOT
  out = capsys.readouterr().out
  assert 'recurring_run_id: recurring-run-4' in out


def test_second_schedule_reuses_pipeline_version_and_experiment(kfp_server, pipeline_json, tmp_path):
  assert _schedule(kfp_server.url, pipeline_json, f'--cron={CRON}') == 0
  assert _schedule(kfp_server.url, pipeline_json, '--cron=0 0 */6 * * *') == 0
  second = kfp_server.calls()[7:]
  # Same name, new content-addressed version (the first was named after the pipeline).
  assert second[:4] == ['GET /apis/v2beta1/healthz', 'GET /apis/v2beta1/pipelines',
                        'GET /apis/v2beta1/pipelines/pipeline-1/versions',
                        'POST /apis/v2beta1/pipelines/upload_version']
  assert 'POST /apis/v2beta1/experiments' not in second  # Default exists now
  assert kfp_server.requests[10]['query']['name'].startswith('ssd-cranfield-')
  # The same spec again: its version is found by name, nothing is uploaded.
  assert _schedule(kfp_server.url, pipeline_json, f'--cron={CRON}') == 0
  third = kfp_server.calls()[len(kfp_server.calls()) - 5:]
  assert not any('upload' in c for c in third)
  runs = kfp_server.recurring_runs
  assert [r.trigger.cron_schedule.cron for r in runs] == [CRON, '0 0 */6 * * *', CRON]
  assert runs[1].pipeline_version_reference.pipeline_version_id == \
      runs[2].pipeline_version_reference.pipeline_version_id != \
      runs[0].pipeline_version_reference.pipeline_version_id
  assert len({r.experiment_id for r in runs}) == 1
  assert kfp_server.errors == []


def test_dry_run_prints_valid_requests_and_sends_nothing(kfp_server, pipeline_json, capsys):
  assert _schedule(kfp_server.url, pipeline_json, f'--cron={CRON}', '--dry-run',
                   '--max-concurrency=3', '--experiment=nightly') == 0
  assert kfp_server.requests == []
  lines = capsys.readouterr().out.splitlines()
  assert lines[0].startswith('# dry run: nothing sent')
  requests = [json.loads(l) for l in lines[1:]]
  assert [(r['method'], r['path']) for r in requests] == [
      ('GET', '/apis/v2beta1/healthz'), ('GET', '/apis/v2beta1/pipelines'),
      ('POST', '/apis/v2beta1/pipelines/upload'), ('GET', '/apis/v2beta1/pipelines/<pipeline_id>/versions'),
      ('GET', '/apis/v2beta1/experiments'), ('POST', '/apis/v2beta1/experiments'),
      ('POST', '/apis/v2beta1/recurringruns')]
  spec = json_format.ParseDict(requests[2]['spec'], pipeline_spec_pb2.PipelineSpec())
  assert spec.pipeline_info.name == 'ssd-cranfield'
  experiment = fake_kfp.parse_model(requests[5]['body'], 'V2beta1Experiment')
  assert experiment.display_name == 'nightly'
  run = fake_kfp.parse_model(requests[6]['body'], 'V2beta1RecurringRun')
  assert run.trigger.cron_schedule.cron == CRON and int(run.max_concurrency) == 3
  assert fake_kfp.parse_filter(requests[1]['query']['filter']) == {'display_name': 'ssd-cranfield'}
  # What the dry run prints is what a real run sends (ids aside).
  assert _schedule(kfp_server.url, pipeline_json, f'--cron={CRON}', '--max-concurrency=3',
                   '--experiment=nightly') == 0
  sent = [r for r in kfp_server.requests if r['path'].endswith('/recurringruns')][0]['raw']
  ids = {'experiment_id': '<experiment_id>'}
  sent = dict(sent, **ids, pipeline_version_reference={
      'pipeline_id': '<pipeline_id>', 'pipeline_version_id': '<version_id>'})
  assert sent == requests[6]['body']
  assert [r['query'] for r in kfp_server.requests[:2]] == [{}, requests[1]['query']]


@pytest.mark.parametrize('expr, message', [
    ('0 2 * * *', r'5 fields.*write "0 0 2 \* \* \*"'),
    ('0 61 2 * * *', r'minute: 61 is outside 0-59'),
    ('0 0 2 * * 7', r'day-of-week: 7 is outside 0-6'),
    ('0 0 2 * * mon-fry', r"day-of-week: 'fry' is not a number"),
    ('0 0 5-2 * * *', r'ends before it starts'),
    ('0 */0 * * * *', r'step .* positive'),
    ('@sometimes', r'unknown descriptor'),
    ('@every 500ms', r'whole number of seconds'),
    ('* * * *', r'4 fields; expected 6'),
])
def test_invalid_cron_is_a_clear_error(expr, message, pipeline_json, capsys):
  assert _schedule('http://127.0.0.1:1', pipeline_json, f'--cron={expr}') == 2
  err = capsys.readouterr().err
  assert err.startswith('error: --cron: ')
  assert re.search(message, err), err


@pytest.mark.parametrize('expr', ['0 30 2 * * *', '0 0 9 ? * 2-6', '*/10 * * * * *', '0 0 0 1 JAN,jul *',
                                  '0 0 12 * * MON-FRI', '@daily', '@every 1h30m', '0 15 3-9/2 * * ?'])
def test_valid_cron_expressions(expr):
  assert cron.validate(f'  {expr} ') == expr


def test_unreachable_host_is_a_clear_error(pipeline_json, capsys):
  host = f'http://127.0.0.1:{_closed_port()}'
  assert _schedule(host, pipeline_json, f'--cron={CRON}') == 1
  err = capsys.readouterr().err
  assert f'error: cannot reach Kubeflow Pipelines at {host}' in err
  assert 'Connection refused' in err


def test_spec_that_does_not_parse_is_a_clear_error(tmp_path, kfp_server, pipeline_json, capsys):
  broken = tmp_path / 'broken.json'
  broken.write_text('{"displayName": "x",\n "pipelineSpec": {')
  assert _schedule(kfp_server.url, str(broken), f'--cron={CRON}') == 2
  assert f'error: {broken}:2:' in capsys.readouterr().err
  job = json.loads(open(pipeline_json).read())
  job['pipelineSpec']['deploymentSpec']['executors']['teacher_trainer_executor']['containerz'] = {}
  wrong = tmp_path / 'wrong.json'
  wrong.write_text(json.dumps(job))
  assert _schedule(kfp_server.url, str(wrong), f'--cron={CRON}') == 2
  err = capsys.readouterr().err
  assert str(wrong) in err and 'containerz' in err
  assert _schedule(kfp_server.url, str(tmp_path / 'missing.json'), f'--cron={CRON}') == 2
  assert 'cannot read' in capsys.readouterr().err
  assert kfp_server.requests == []


def test_other_bad_input(kfp_server, pipeline_json, capsys):
  assert _schedule(kfp_server.url, pipeline_json, f'--cron={CRON}', '--max_concurrency=0') == 2
  assert 'max_concurrency must be >= 1' in capsys.readouterr().err
  assert _schedule('127.0.0.1:8080', pipeline_json, f'--cron={CRON}') == 2
  assert 'http(s):// URL' in capsys.readouterr().err
  assert _ssd(['schedule'], [f'--pipeline={pipeline_json}']) == 2
  assert 'usage: ssd schedule' in capsys.readouterr().err
  assert kfp_server.requests == []


def test_server_error_is_reported(kfp_server, pipeline_json, capsys):
  job_plan = schedule.make_plan(kfp_server.url, pipeline_json, CRON)
  original = kfp_server.route

  def failing(method, path, *args):
    if path.endswith('/recurringruns'):
      raise fake_kfp.BadRequest('trigger is invalid')
    return original(method, path, *args)

  kfp_server.route = failing
  with pytest.raises(schedule.ScheduleError, match=r'answered 400 .*trigger is invalid'):
    schedule.schedule(job_plan)


def test_plan_names_a_content_addressed_version(pipeline_json, tmp_path):
  plan = schedule.make_plan('http://kfp:8080/', pipeline_json, CRON)
  assert plan.host == 'http://kfp:8080'
  assert plan.version_name.startswith('ssd-cranfield-') and len(plan.version_name) == len('ssd-cranfield-') + 12
  job = kubeflow_spec.load_job(pipeline_json)
  job.display_name = 'renamed display only'
  other = tmp_path / 'other.json'
  other.write_text(json_format.MessageToJson(job))
  assert schedule.make_plan('http://kfp:8080', str(other), CRON).version_name == plan.version_name
