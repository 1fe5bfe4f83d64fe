"""A pipeline built for a cluster: every path a URI, nothing of this machine in its IR.

The IR is what LocalDagRunner (and, after their own translation, the Kubeflow
runners) execute: TFX's compiler output, a pipeline_pb2.Pipeline. No network
is needed: the factory reads no file while building.
"""

import json
import os
import re

from google.protobuf import json_format
from tfx.dsl.compiler import compiler

from components.pretrained_checkpoint import spec as ckpt_spec
from components.ranker_trainer import component as trainer_component
from pipelines import pipeline as P
from runconfig import config as C

ROOT = 'gs://bucket/root'
CKPT = 'gs://bucket/checkpoints/minilm-l6-h384-uncased'
# A '/' that starts a string or follows a separator starts a local absolute path.
_LOCAL_ABS = re.compile(r'(?:^|[\s"\'=,;:(\[{])(/(?!/)[^\s"\']*)')


def _strings(value):
  """Every string in a JSON-like value; strings that hold JSON are opened too."""
  if isinstance(value, dict):
    for k, v in value.items():
      yield from _strings(k)
      yield from _strings(v)
  elif isinstance(value, list):
    for v in value:
      yield from _strings(v)
  elif isinstance(value, str):
    yield value
    if value[:1] in '{[':
      try:
        yield from _strings(json.loads(value))
      except ValueError:
        pass


def ir_strings(pipeline):
  ir = compiler.Compiler().compile(pipeline)
  return list(_strings(json_format.MessageToDict(ir)))


def local_leaks(strings):
  """Strings naming the home directory ('~' or its path) or a local absolute path."""
  # The home path as a path of its own, not as the tail of a URI (gs://b/root).
  home = re.compile(r'(?<![\w.:/-])' + re.escape(os.path.expanduser('~')) + r'(?![\w.-])')
  leaks = set()
  for s in strings:
    if home.search(s) or '~' in s or os.getcwd() in s:
      leaks.add(s)
    # gs://bucket/... has its slashes after ':' + '/', which the pattern skips.
    leaks.update(m.group(1) for m in _LOCAL_ABS.finditer(s.replace('://', '')))
  return sorted(leaks)


def remote_config(**overrides) -> C.PipelineConfig:
  raw = {
      'pipeline_root': ROOT,
      'data': {'format': 'beir', 'path': 'gs://bucket/data/nfcorpus',
               'unlabelled_pairs': 'gs://bucket/data/logged_pairs.jsonl'},
      'teacher': {'model': {'checkpoint': CKPT}},
      'student': {'model': {'checkpoint': CKPT, 'keep_layers': 2}},
  }
  raw.update(overrides)
  return C.from_dict(C.PipelineConfig, raw)


def test_uri_pipeline_ir_has_no_local_path_or_home():
  strings = ir_strings(P.create_pipeline(remote_config()))
  assert local_leaks(strings) == []
  # The URIs are there, unchanged, and the serving dir is derived from the root.
  for uri in (ROOT, 'gs://bucket/data/nfcorpus', 'gs://bucket/data/logged_pairs.jsonl', CKPT,
              ROOT + '/serving'):
    assert any(uri == s or f'"{uri}"' in s or s.endswith(uri) for s in strings), uri
  assert not any('gs:/bucket' in s.replace('gs://', '') for s in strings)   # no abspath mangling


def test_scanner_catches_local_paths(tmp_path):
  """The check above would fail on a pipeline built with local paths or '~'."""
  cfg = remote_config(pipeline_root=str(tmp_path / 'root'),
                      teacher={'model': {'checkpoint': C.MINILM_CHECKPOINT}})
  leaks = local_leaks(ir_strings(P.create_pipeline(cfg)))
  assert str(tmp_path / 'root') in leaks
  assert C.PipelineConfig.cache_dir in leaks   # minilm-l6 needs the local weights cache


def test_one_checkpoint_artifact_feeds_every_pretrained_trainer():
  p = P.create_pipeline(remote_config())
  nodes = {c.id: c for c in p.components}
  ckpt = nodes[ckpt_spec.NODE_ID]
  assert ckpt.exec_properties[ckpt_spec.SOURCE_KEY] == CKPT
  assert ckpt.exec_properties[ckpt_spec.CACHE_DIR_KEY] == ''
  fed = sorted(c.id for c in p.components
               if trainer_component.CHECKPOINT_KEY in c.inputs
               and c.inputs[trainer_component.CHECKPOINT_KEY].producer_component_id == ckpt.id)
  assert fed == sorted([P.TEACHER_TRAINER, P.TEACHER_PRETRAINED, P.teacher_prime_trainer_id(1),
                        P.STUDENT_TRAINER, P.STUDENT_SUPERVISED])
  for c in p.components:
    if c.id in fed:
      assert 'cache_dir' not in json.loads(c.exec_properties['custom_config'])


def test_distinct_checkpoints_get_their_own_nodes_and_size_check_moves_to_run_time():
  other = 'gs://bucket/checkpoints/bert-base-uncased/'
  cfg = remote_config(teacher_prime={'model': {'checkpoint': other}})
  p = P.create_pipeline(cfg)
  nodes = {c.id: c for c in p.components}
  # The teacher's checkpoint keeps the plain node id (and its cache); the other gets a slug.
  assert nodes[ckpt_spec.NODE_ID].exec_properties[ckpt_spec.SOURCE_KEY] == CKPT
  assert f'{ckpt_spec.NODE_ID}_minilm_l6_h384_uncased' not in nodes
  assert nodes[f'{ckpt_spec.NODE_ID}_bert_base_uncased'].exec_properties[
      ckpt_spec.SOURCE_KEY] == other
  tp = nodes[P.teacher_prime_trainer_id(1)]
  assert tp.inputs['checkpoint'].producer_component_id == f'{ckpt_spec.NODE_ID}_bert_base_uncased'
  assert json.loads(tp.exec_properties['custom_config'])['check_size_against_base'] is True


def test_warm_started_teacher_prime_takes_no_checkpoint():
  p = P.create_pipeline(remote_config(teacher_prime={'warm_start': True}))
  tp = {c.id: c for c in p.components}[P.teacher_prime_trainer_id(1)]
  assert trainer_component.CHECKPOINT_KEY not in tp.inputs   # starts from its teacher


def test_named_checkpoint_is_resolved_by_the_component_not_the_factory(tmp_path):
  """`minilm-l6` with an empty weights cache still builds: nothing is read here."""
  cfg = remote_config(cache_dir=str(tmp_path / 'no-such-cache'),
                      teacher={'model': {'checkpoint': C.MINILM_CHECKPOINT}},
                      student={'model': {'checkpoint': C.MINILM_CHECKPOINT, 'keep_layers': 2}})
  p = P.create_pipeline(cfg)
  ckpt = {c.id: c for c in p.components}[ckpt_spec.NODE_ID]
  assert ckpt.exec_properties[ckpt_spec.SOURCE_KEY] == C.MINILM_CHECKPOINT
  assert not (tmp_path / 'no-such-cache').exists()


def test_beam_runner_and_args_come_from_config():
  cfg = remote_config(beam={'runner': 'DataflowRunner',
                            'args': ['--project=p', '--region=europe-west4',
                                     '--temp_location=gs://bucket/tmp']})
  p = P.create_pipeline(cfg)
  assert p.beam_pipeline_args == ['--runner=DataflowRunner', '--project=p',
                                  '--region=europe-west4', '--temp_location=gs://bucket/tmp']
  assert C.BeamConfig().pipeline_args() == [
      '--runner=DirectRunner', '--direct_num_workers=1', '--direct_running_mode=in_memory',
      C.DIRECT_RUNNER_STAGES_NOTHING]
