"""End-to-end: trainers read the pretrained checkpoint from its artifact, not its source.

Run 1 imports a checkpoint (a tiny HF-format BERT built here) and trains the
teacher from it. The source directory is then deleted, as a cleaned weights
cache or an unreachable home directory would be, and run 2, with a changed
training setting, retrains from the artifact already in the pipeline root.
"""

import json
import os
import shutil

import pytest

from components.common import fileio
from components.pretrained_checkpoint import spec as ckpt_spec
from components.ranker_trainer import component as trainer_component
from pipelines import local_runner
from pipelines import pipeline as P
from runconfig import config as C
from ssd import lineage
from tests import e2e_util

pytestmark = pytest.mark.e2e


@pytest.fixture(scope='module')
def two_runs(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('ckpt_e2e')
  raw = e2e_util.tiny_pipeline_config(tmp, semi_supervised=False, data_validation=False)
  source = e2e_util.write_tiny_checkpoint(str(tmp / 'weights' / 'tiny-bert'),
                                          raw['teacher']['model']['vocab_file'], seed=5,
                                          num_layers=1)   # as e2e_util's tiny models
  source_sha = fileio.sha256_files(source)
  raw['teacher']['model'].update(checkpoint=source, vocab_file=None)
  first = local_runner.run(C.from_dict(C.PipelineConfig, raw))
  shutil.rmtree(tmp / 'weights')
  raw['teacher']['train']['learning_rate'] = 5e-4   # a downstream change: trainers rerun
  cfg = C.from_dict(C.PipelineConfig, raw)
  second = local_runner.run(cfg)
  return cfg, source, source_sha, first, second


def test_second_run_retrains_from_the_artifact_after_the_source_is_gone(two_runs):
  cfg, source, source_sha, _, second = two_runs
  assert not os.path.exists(source)
  assert 0.0 <= second['metrics'][P.ROLE_TEACHER]['ndcg@10'] <= 1.0
  store = lineage.open_store(os.path.join(cfg.pipeline_root, 'metadata.sqlite'))
  states = [e.last_known_state for e in
            lineage.node_executions(store, cfg.pipeline_name, ckpt_spec.NODE_ID)]
  assert states == [lineage._STATE.COMPLETE, lineage._STATE.CACHED]   # pylint: disable=protected-access
  ckpt = lineage.latest_output(store, cfg.pipeline_name, ckpt_spec.NODE_ID, ckpt_spec.CHECKPOINT_KEY)
  props = lineage.custom_props(ckpt)
  assert props[ckpt_spec.SOURCE_PROPERTY] == source
  assert props[ckpt_spec.NUM_LAYERS_PROPERTY] == 1 and props[ckpt_spec.HIDDEN_SIZE_PROPERTY] == 32
  # Every file of the tiny source is one a ranker reads, so the digests agree.
  assert props[ckpt_spec.SHA256_PROPERTY] == source_sha

  for node in (P.TEACHER_TRAINER, P.TEACHER_PRETRAINED):
    runs = lineage.node_executions(store, cfg.pipeline_name, node)
    assert [e.last_known_state for e in runs] == [lineage._STATE.COMPLETE] * 2, node   # pylint: disable=protected-access
    for execution in runs:
      inputs = lineage.execution_io(store, execution.id, kind='input')
      assert [a.id for a in inputs[trainer_component.CHECKPOINT_KEY]] == [ckpt.id], node
    model_run = lineage.execution_io(store, runs[-1].id)['model_run'][0]
    with open(os.path.join(model_run.uri, 'training_summary.json')) as f:
      summary = json.load(f)
    assert summary['checkpoint_uri'] == ckpt.uri
