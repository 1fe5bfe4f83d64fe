"""Shared fixtures: a tiny BERT vocabulary and encoder config for fast tests; the
SSD loop run two e2e files share; the zygote that four e2e files start
their processes from; how xdist schedules the files."""

import sys

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


@pytest.fixture(scope='session')
def zygote(tmp_path_factory):
  """A tests/zygote.py process that imported what the KFP entrypoint and
  `ssd run` import: the KFP harness's tasks and the `ssd run` processes of
  tests/crash_util.py and tests/test_concurrency_e2e.py fork from it. Its
  files are in one xdist group (below), so it starts once per `make test`."""
  from tests import kfp_harness  # pylint: disable=g-import-not-at-top
  from tests import zygote as zygote_lib  # pylint: disable=g-import-not-at-top
  process = zygote_lib.Zygote(kfp_harness.ENTRYPOINT_PRELOAD + zygote_lib.RUN_PRELOAD,
                              str(tmp_path_factory.mktemp('zygote')))
  yield process
  process.close()


# --- xdist: which worker runs what, and in what order ---------------------------
#
# `make test` runs `pytest -n 2 --dist loadfile --no-loadscope-reorder`: each
# test file runs on one worker (its module fixtures run once), except that
# files sharing a session fixture go to one worker together (the scheduler
# below); files are handed out in the order below, the costliest first.
# (--dist loadgroup would do the grouping with xdist_group markers, but
# pytest-xdist 3.8 renames node ids through an attribute pytest 9 no longer
# reads, so its groups are ignored.)
SHARED_GROUPS = {
    'test_loop_e2e.py': 'shared',                  # ssd_loop_run
    'test_kubeflow_harness_e2e.py': 'shared',      # ssd_loop_run, zygote
    'test_lineage_e2e.py': 'shared',               # zygote
    'test_concurrency_e2e.py': 'shared',           # zygote
}
# The costliest groups first (seconds per file, measured with getrusage per
# test on 2026-12-03: 1-layer tiny models, the shared zygote), so the cheap
# unit test files fill in the end of both workers' queues instead of leaving
# one worker finishing a long end-to-end file alone.
HEAVY_FIRST = (
    'shared',                               # ~240: KFP harness 86, lineage 70, loop 57, concurrency 25
    'test_bench_speed.py',                  # ~85
    'test_embedding_targets.py',            # ~40
    'test_pseudo_labeler_executor.py',      # ~45
    'test_rankers_models.py',               # ~33
    'test_pseudo_labeler_beam_fns.py',      # ~22
    'test_rankers_mpnet.py',                # ~25
    'test_checkpoint_artifact_e2e.py',      # ~20
    'test_pipeline_e2e.py',                 # ~17
    'test_pseudo_labeler_portable.py',      # ~18
    'test_data_validation_e2e.py',          # ~6
)


def group_of(nodeid: str) -> str:
  """The scheduling unit of a test: its file's name, or the name of a shared group."""
  name = nodeid.split('::', 1)[0].rsplit('/', 1)[-1]
  return SHARED_GROUPS.get(name, name)


def pytest_collection_modifyitems(items):
  rank = {group: i for i, group in enumerate(HEAVY_FIRST)}
  position = {id(item): i for i, item in enumerate(items)}
  # Stable: within a group, files and tests keep their collection order.
  items.sort(key=lambda item: (rank.get(group_of(item.nodeid), len(rank)), position[id(item)]))


@pytest.hookimpl(optionalhook=True)   # xdist's hook: absent under -p no:xdist
def pytest_xdist_make_scheduler(config, log):
  """--dist loadfile, with SHARED_GROUPS' files scheduled as one unit."""
  if config.getvalue('dist') != 'loadfile':
    return None   # xdist's own scheduler
  # Loaded: xdist is what calls this hook (no import, so no BUILD dependency).
  scheduler = sys.modules['xdist.scheduler']

  class GroupedFileScheduling(scheduler.LoadScopeScheduling):

    def _split_scope(self, nodeid: str) -> str:
      return group_of(nodeid)

  return GroupedFileScheduling(config, log)
