"""The two images and what the compiled pipeline expects of them.

- `Dockerfile`: the image every Kubeflow component runs in;
- `Dockerfile.beam`: the Beam SDK worker image (Dataflow, Flink, portable).

No Docker engine here, so the Dockerfiles are checked as text: each installs
exactly the lock and the project, the Beam one starts from Beam's own SDK
image of the locked version and keeps its entrypoint. The compiled spec is
checked for what it needs from the image (the weights dir) and for anything
of the building machine. The Beam options docs/running.md gives for each
runner are checked with Beam's and TFX's own code.
"""

import json
import os
import re
import shlex

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.options.pipeline_options import PortableOptions
from apache_beam.options.pipeline_options import WorkerOptions
from apache_beam.transforms import environments
import pytest
from tfx.utils import dependency_utils
import yaml

from pipelines import kubeflow_runner
from runconfig import checkpoints
from runconfig import config as C

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKERFILES = ('Dockerfile', 'Dockerfile.beam')
BEAM_BOOT = '/opt/apache/beam/boot'
TFX_ENTRYPOINT = ['python', '-m', 'tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor']


def _read(name):
  with open(os.path.join(ROOT, name), encoding='utf-8') as f:
    return f.read()


def instructions(name):
  """[(INSTRUCTION, argument)] of a Dockerfile, continuation lines joined, comments dropped."""
  text = re.sub(r'\\\n', ' ', _read(name))
  lines = (l.strip() for l in text.splitlines())
  return [tuple(l.split(None, 1)) for l in lines if l and not l.startswith('#')]


def run_commands(name):
  """Every shell command of every RUN, split on `&&`, as word lists."""
  return [shlex.split(c) for op, arg in instructions(name) if op == 'RUN'
          for c in arg.split('&&')]


def installs(name):
  """Every command that installs something: `pip install`, apt-get, conda, ..."""
  return [words for words in run_commands(name) if 'install' in words]


def locked_version(package):
  for line in _read('requirements.txt').splitlines():
    name, _, version = line.strip().partition('==')
    if re.sub(r'\[.*\]', '', name).lower() == package:
      return version
  raise AssertionError(f'{package} is not in requirements.txt')


def entrypoint(name):
  found = [arg for op, arg in instructions(name) if op == 'ENTRYPOINT']
  return json.loads(found[-1]) if found else None


@pytest.mark.parametrize('name', DOCKERFILES)
def test_installs_exactly_the_lock_and_the_project(name):
  assert installs(name) == [['pip', 'install', '-r', 'requirements.txt'],
                            ['pip', 'install', '--no-deps', '.']]
  assert ['pip', 'check'] in run_commands(name)
  assert not [op for op, _ in instructions(name) if op == 'ADD']
  copied = [src for op, arg in instructions(name) if op == 'COPY' for src in arg.split()[:-1]]
  assert copied[0] == 'requirements.txt'   # installed before the project is copied
  include = re.search(r'include = \[([^\]]*)\]', _read('pyproject.toml')).group(1)
  for package in re.findall(r'"(\w+)\*"', include):
    assert package in copied, f'{name} does not COPY the package {package}'


def test_beam_image_is_the_sdk_image_of_the_locked_beam():
  base = [arg for op, arg in instructions('Dockerfile.beam') if op == 'FROM']
  assert base == [f'apache/beam_python3.10_sdk:{locked_version("apache-beam")}']
  assert locked_version('apache-beam') == '2.59.0'   # the parser reads the lock


def test_beam_image_keeps_the_sdk_harness_entrypoint():
  assert entrypoint('Dockerfile.beam') in (None, [BEAM_BOOT])
  assert not [op for op, _ in instructions('Dockerfile.beam') if op == 'CMD']
  assert entrypoint('Dockerfile') == TFX_ENTRYPOINT


def test_the_image_puts_the_checkpoint_where_the_compiled_spec_looks():
  weights_dir = kubeflow_runner.IMAGE_WEIGHTS_DIR
  assert not weights_dir.startswith(('/root', '/home', '~')) and os.path.isabs(weights_dir)
  commands = run_commands('Dockerfile')
  assert ['ssd', 'weights', f'--cache_dir={weights_dir}'] in commands
  for name in checkpoints.NAMED_CHECKPOINTS:   # every name a config may use
    if name != checkpoints.MINILM.name:
      assert ['ssd', 'weights', f'--model={name}', f'--cache_dir={weights_dir}'] in commands, name
  assert ['chmod', '-R', 'a+rX', weights_dir] in commands   # any pod user may read it


def test_dockerignore_keeps_what_the_images_copy():
  ignored = {l.strip().rstrip('/') for l in _read('.dockerignore').splitlines()
             if l.strip() and not l.startswith('#')}
  for name in DOCKERFILES:
    for op, arg in instructions(name):
      if op == 'COPY':
        assert not set(arg.split()[:-1]) & ignored, f'.dockerignore drops a source of {name}: {arg}'


# --- the compiled spec -------------------------------------------------------

GS_OVERRIDES = ['pipeline_root=gs://bucket/root', 'data.path=gs://bucket/data/cranfield',
                'kubeflow.image=registry.example.com/ssd-rankers:1']


@pytest.mark.parametrize('cache_dir', [None, '{home}/.cache/ssd-rankers'])
def test_compiled_spec_holds_nothing_of_the_building_machine(tmp_path, monkeypatch, cache_dir):
  """Neither the builder's home (default or expanded weights cache) nor its cwd reaches the spec."""
  home, cwd = tmp_path / 'home-of-an-unusual-builder', tmp_path / 'an-unusual-cwd'
  home.mkdir()
  cwd.mkdir()
  monkeypatch.setenv('HOME', str(home))
  monkeypatch.chdir(cwd)
  overrides = GS_OVERRIDES + ([f'cache_dir={cache_dir.format(home=home)}'] if cache_dir else [])
  job = kubeflow_runner.compile_job(
      C.load_config(os.path.join(ROOT, 'configs', 'cranfield_demo.yaml'), overrides))
  text = json.dumps(job)
  for leak in (str(tmp_path), '~', ROOT):
    assert leak not in text
  tasks = job['pipelineSpec']['root']['dag']['tasks']
  cache_param = tasks['pretrained_checkpoint']['inputs']['parameters']['cache_dir']
  assert kubeflow_runner.IMAGE_WEIGHTS_DIR in json.dumps(cache_param)


# --- Beam options of docs/running.md -------------------------------------------


def documented_beam_args():
  """{runner: kubeflow.beam_args} of each YAML block in docs/running.md that has them."""
  with open(os.path.join(ROOT, 'docs', 'running.md'), encoding='utf-8') as f:
    blocks = re.findall(r'```yaml\n(.*?)```', f.read(), re.S)
  found = {}
  for block in blocks:
    kf = (yaml.safe_load(block) or {}).get('kubeflow') or {}
    if kf.get('beam_args'):
      args = kf['beam_args']
      found[dict(a.split('=', 1) for a in args if '=' in a)['--runner']] = args
  return found


def test_docs_give_beam_args_for_dataflow_and_flink():
  assert {'DataflowRunner', 'FlinkRunner'} <= set(documented_beam_args())


@pytest.mark.parametrize('runner', ['DataflowRunner', 'FlinkRunner'])
def test_documented_beam_args_name_the_beam_image_and_stop_tfx_packaging(runner):
  args = documented_beam_args()[runner]
  cfg = C.load_config(None, ['kubeflow.beam_args=' + json.dumps(args)])
  assert cfg.kubeflow.beam_args == args
  # TFX's own decision: a dependency flag is there, so no TFX sdist is built or staged.
  assert dependency_utils.make_beam_dependency_flags(args) == args
  image = PipelineOptions(args).view_as(WorkerOptions).sdk_container_image
  assert image and 'ssd-rankers-beam' in image
  if runner == 'FlinkRunner':   # portable runners start the environment's image
    env = environments.Environment.from_options(PipelineOptions(args).view_as(PortableOptions))
    assert isinstance(env, environments.DockerEnvironment) and env.container_image == image


def test_the_lock_pins_every_package():
  """Both images install requirements.txt as it is: it must be a full `==` lock."""
  lock = [l.strip() for l in _read('requirements.txt').splitlines()
          if l.strip() and not l.startswith('#')]
  assert lock and all(re.fullmatch(r'[\w.\-\[\],]+==[\w.\-+]+', l) for l in lock), \
      'requirements.txt must be a full == lock (the images install it as is)'
