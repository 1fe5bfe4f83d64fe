"""Shared fixtures: a tiny BERT vocabulary and encoder config for fast tests."""

import pytest

TINY_WORDS = (
    'apple banana cherry grape lemon mango olive peach pear plum kiwi lime '
    'cat dog horse mouse tiger zebra lion bear wolf fox owl '
    'red blue green black white the a of is ##s').split()
TINY_SPECIAL = ('[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]')


@pytest.fixture(scope='session')
def tiny_vocab_file(tmp_path_factory) -> str:
  """vocab.txt with the BERT special tokens and a few dozen words."""
  path = tmp_path_factory.mktemp('tiny_vocab') / 'vocab.txt'
  path.write_text('\n'.join(TINY_SPECIAL + tuple(TINY_WORDS)) + '\n')
  return str(path)


@pytest.fixture(scope='session')
def tiny_encoder_config():
  """A factory of 2-layer, hidden-32 encoder configs (fields overridable)."""
  from rankers import config  # pylint: disable=g-import-not-at-top

  def make(**overrides):
    fields = dict(vocab_size=len(TINY_SPECIAL) + len(TINY_WORDS),
                  hidden_size=32, num_layers=2, num_heads=2,
                  intermediate_size=64, max_position_embeddings=64)
    fields.update(overrides)
    return config.EncoderConfig(**fields)

  return make


# --- one run, two files ---------------------------------------------------------

@pytest.fixture(scope='session')
def ssd_loop_run(tmp_path_factory):
  """(config, summary) of one local run of e2e_util.ssd_loop_config: run A of
  tests/test_loop_e2e.py, and the LocalDagRunner side of
  tests/test_kubeflow_harness_e2e.py. Both files are in one xdist group
  (below), so the run happens once per `make test`."""
  from pipelines import local_runner  # pylint: disable=g-import-not-at-top
  from runconfig import config as C  # pylint: disable=g-import-not-at-top
  from tests import e2e_util  # pylint: disable=g-import-not-at-top
  tmp = tmp_path_factory.mktemp('loop')
  cfg = C.from_dict(C.PipelineConfig, e2e_util.ssd_loop_config(tmp / 'a', 'ssd-a'))
  return cfg, local_runner.run(cfg)


# --- xdist: which worker runs what, and in what order ---------------------------
#
# `make test` runs `pytest -n 2 --dist loadgroup --no-loadscope-reorder`: a
# group's tests all run on one worker, groups are handed out in the order
# below. Every test file is its own group (so its module fixtures run once, as
# with --dist loadfile), except files that share a session fixture.
SHARED_GROUPS = {
    'test_loop_e2e.py': 'ssd_loop',                  # ssd_loop_run
    'test_kubeflow_harness_e2e.py': 'ssd_loop',
}
# The costliest groups first (CPU seconds alone, measured), so the cheap unit
# test files fill in the end of both workers' queues instead of leaving one
# worker finishing a long end-to-end file alone.
HEAVY_FIRST = (
    'ssd_loop',                             # ~260: one local loop + two KFP harness runs
    'test_lineage_e2e.py',                  # ~120: eight runs
    'test_bench_speed.py',                  # ~85
    'test_embedding_targets.py',            # ~65
    'test_pseudo_labeler_executor.py',      # ~55
    'test_concurrency_e2e.py',              # ~40
    'test_checkpoint_artifact_e2e.py',      # ~30
    'test_pipeline_e2e.py',                 # ~25
    'test_pseudo_labeler_portable.py',      # ~15
    'test_data_validation_e2e.py',          # ~15
)


def xdist_group_of(item) -> str:
  name = item.nodeid.split('::', 1)[0].rsplit('/', 1)[-1]
  return SHARED_GROUPS.get(name, name)


@pytest.hookimpl(tryfirst=True)   # before xdist's own hook reads the markers
def pytest_collection_modifyitems(items):
  rank = {group: i for i, group in enumerate(HEAVY_FIRST)}
  position = {id(item): i for i, item in enumerate(items)}
  for item in items:
    item.add_marker(pytest.mark.xdist_group(xdist_group_of(item)))
  # Stable: within a group, files and tests keep their collection order.
  items.sort(key=lambda item: (rank.get(xdist_group_of(item), len(rank)), position[id(item)]))
