"""End-to-end: the compiled Kubeflow pipeline, run task by task as KFP runs it.

`ssd compile`'s spec for a tiny SSD config (tests/e2e_util.py) runs under
tests/kfp_harness.py: every task is its container command with a
launcher-style ExecutorInput, in a child process forked from a zygote that
imported the TFX entrypoint's libraries once (conftest's `zygote`, tests/kfp_zygote.py: the
same module, arguments, empty directory and HOME as `python -m`, ~7 CPU-s
less per task), recorded in an ML Metadata store with KFP's names. The same config also runs under LocalDagRunner (the
run tests/test_loop_e2e.py checks as its run A: one run serves both files,
tests/conftest.py); every evaluator's metrics and decisions must be equal. A
second harness run takes every task from KFP's cache except the student
evaluator (never cached: it reads the model in production) and what follows
it. `ssd lineage` reads the store the harness wrote. The demo config's root
tasks run as fresh interpreters, exactly as a container starts them.
"""

import json
import os
import re
import subprocess
import sys

import pytest

from components.ranking_evaluator import spec as eval_spec
from pipelines import kubeflow_runner
from pipelines import pipeline as P
from runconfig import config as C
from tests import e2e_util
from tests import kfp_harness as H

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

SSD = os.path.join(os.path.dirname(sys.executable), 'ssd')


def _config(root, name):
  return C.from_dict(C.PipelineConfig, e2e_util.ssd_loop_config(root, name))


@pytest.fixture(scope='module')
def runs(tmp_path_factory, ssd_loop_run, zygote):
  # The LocalDagRunner side is test_loop_e2e.py's run A, run once for both (tests/conftest.py).
  local_cfg, _ = ssd_loop_run
  tmp = tmp_path_factory.mktemp('kfp')
  kf_cfg = _config(tmp / 'kfp', 'ssd-tiny-kfp')
  job = kubeflow_runner.compile_job(kf_cfg, image='registry.example.com/ssd-rankers:test')
  harness = H.KfpHarness(job, str(tmp / 'kfp' / 'kfp_mlmd.sqlite'), str(tmp / 'kfp' / 'work'),
                         zygote=zygote)
  try:
    first = harness.run('run-1')
    second = harness.run('run-2')
  finally:
    harness.close()
  return {'local': local_cfg, 'job': job, 'harness': harness, 'first': first, 'second': second}


def _local_metrics(cfg, node):
  from pipelines import mlmd_store  # pylint: disable=g-import-not-at-top
  store = mlmd_store.open_store(cfg.metadata_sqlite)
  evaluation = mlmd_store.latest_output(store, cfg.pipeline_name, node, eval_spec.EVALUATION_KEY)
  with open(os.path.join(evaluation.uri, eval_spec.METRICS_FILE)) as f:
    return json.load(f)


def _kfp_metrics(result):
  with open(os.path.join(result.outputs[eval_spec.EVALUATION_KEY][0].uri, eval_spec.METRICS_FILE)) as f:
    return json.load(f)


def _evaluators(cfg):
  rounds = [P.teacher_prime_evaluator_id(r) for r in range(1, cfg.teacher_prime.rounds + 1)]
  return [P.TEACHER_EVALUATOR, *rounds, P.STUDENT_EVALUATOR]


def test_every_task_runs_under_its_container_command(runs):
  tasks = set(runs['job']['pipelineSpec']['root']['dag']['tasks'])
  assert {name: r.state for name, r in runs['first'].items()} == {t: 'COMPLETE' for t in tasks}
  assert not any(t.startswith('latest_blessed') for t in tasks)   # no resolver task


def _gate_named(reason, uris):
  """`reason` with the gate's blessing URI (a skipped round names it) replaced
  by the node that wrote it: the URIs differ by runner (each lays out its own
  root), the node must not. `uris`: {blessing uri: node} of that run."""
  def name(match):
    assert match.group(1) in uris, (match.group(1), uris)
    return f'gate blessing <{uris[match.group(1)]}> is not blessed'
  return re.sub(r'gate blessing (\S+) is not blessed', name, reason)


def test_metrics_and_decisions_equal_the_local_run(runs):
  from pipelines import mlmd_store  # pylint: disable=g-import-not-at-top
  assert runs['local'].teacher_prime.rounds == 2
  local_cfg = runs['local']
  store = mlmd_store.open_store(local_cfg.metadata_sqlite)
  evaluators = _evaluators(local_cfg)
  local_uris = {mlmd_store.latest_output(store, local_cfg.pipeline_name, node,
                                         eval_spec.BLESSING_KEY).uri: node for node in evaluators}
  kfp_uris = {runs['first'][node].outputs[eval_spec.BLESSING_KEY][0].uri: node
              for node in evaluators}
  for node in evaluators:
    local, kfp = _local_metrics(local_cfg, node), _kfp_metrics(runs['first'][node])
    assert kfp['metrics'] == local['metrics'], node
    for key in ('blessed', 'selected_role', 'checks'):
      assert kfp['decision'][key] == local['decision'][key], (node, key)
    assert (_gate_named(kfp['decision']['reason'], kfp_uris)
            == _gate_named(local['decision']['reason'], local_uris)), node
  student = _kfp_metrics(runs['first'][P.STUDENT_EVALUATOR])['decision']
  assert student['blessed'] is True
  pushed = runs['first'][P.STUDENT_PUSHER].outputs['pushed_model'][0]
  assert pushed.custom_properties['pushed'].double_value == 1.0


def test_a_second_run_takes_all_but_the_production_comparison_from_the_cache(runs):
  states = {name: r.state for name, r in runs['second'].items()}
  rerun = {name for name, state in states.items() if state == 'COMPLETE'}
  assert rerun == {P.STUDENT_EVALUATOR, P.STUDENT_PUSHER}, states
  # The student is now compared with the model the first run pushed.
  decision = _kfp_metrics(runs['second'][P.STUDENT_EVALUATOR])['decision']
  production = runs['first'][P.STUDENT_PUSHER].outputs['pushed_model'][0]
  assert decision['model_uris'][P.ROLE_LAST_BLESSED_STUDENT] == (
      production.custom_properties['pushed_destination'].string_value)
  assert 'no worse than last_blessed_student' in decision['reason']


def _ssd(*args):
  proc = subprocess.run([SSD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                        check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout


def test_lineage_reads_the_kfp_store(runs):
  store = runs['harness'].store_path
  doc = json.loads(_ssd('lineage', 'runs', f'--metadata={store}', '--format=json'))
  assert [r['run_id'] for r in doc['runs']][-2:] == ['run-1', 'run-2']
  explained = json.loads(_ssd('lineage', 'explain', 'latest-blessed', f'--metadata={store}',
                              '--format=json'))
  assert explained['model']['uri'] == runs['first'][P.STUDENT_TRAINER].outputs['model'][0].uri
  text = _ssd('lineage', 'explain', 'latest-blessed', f'--metadata={store}')
  assert 'student_trainer' in text and 'teacher' in text


@pytest.fixture(scope='module')
def image_weights():
  """The image's weights dir (kubeflow_runner.IMAGE_WEIGHTS_DIR), as the Dockerfile fills it."""
  minilm = os.environ.get('SSD_MINILM_DIR')
  assert minilm, 'run through `make test`, which fetches the checkpoint and sets SSD_MINILM_DIR'
  target = kubeflow_runner.IMAGE_WEIGHTS_DIR
  if not os.path.exists(target):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.symlink(os.path.dirname(minilm.rstrip('/')), target)
  return target


def test_the_demo_specs_root_tasks_exit_0(image_weights, tmp_path):
  del image_weights
  cfg = C.load_config(os.path.join(e2e_util.ROOT, 'configs', 'cranfield_demo.yaml'),
                      [f'pipeline_root={tmp_path / "root"}', f'data.path={e2e_util.cranfield_dir()}'])
  job = kubeflow_runner.compile_job(cfg, image='registry.example.com/ssd-rankers:test')
  harness = H.KfpHarness(job, str(tmp_path / 'mlmd.sqlite'), str(tmp_path / 'work'))
  roots = [name for name in harness.order() if not harness.upstream(name)]
  assert roots == ['pretrained_checkpoint', 'ranking_example_gen']
  results = harness.run('run-1', only=roots)
  assert {name: r.state for name, r in results.items()} == {n: 'COMPLETE' for n in roots}
  checkpoint = results['pretrained_checkpoint'].outputs['checkpoint'][0]
  assert os.path.exists(os.path.join(checkpoint.uri, 'config.json'))
  examples = results['ranking_example_gen'].outputs['examples'][0]
  # Examples' `split_names` is a TFX property; through the launcher it is a custom one.
  splits = json.loads(examples.custom_properties['split_names'].string_value)
  assert {'train', 'dev', 'test', 'unlabelled', 'calibration'} == set(splits)
  assert examples.custom_properties['display_name'].string_value == 'examples'
