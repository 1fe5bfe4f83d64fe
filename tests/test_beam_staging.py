"""The DirectRunner's Beam options stop TFX packaging itself for every Beam step.

Without a dependency flag, TFX's BaseBeamExecutor copies the installed TFX
into a new temp directory and builds an sdist of it for every execution (never
deleted; see runconfig.config.TFX_DEPENDENCY_FLAGS). These tests run the real
TFX function that decides this and a real Beam pipeline with the options.
"""

import glob
import os
import tempfile

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to
import pytest
from tfx.utils import dependency_utils

from runconfig import config as C


def _ephemeral_dirs():
  return set(glob.glob(os.path.join(tempfile.gettempdir(), 'tmp*', 'build', 'tfx')))


def test_direct_runner_args_make_tfx_skip_its_package():
  args = C.BeamConfig().pipeline_args()
  assert C.DIRECT_RUNNER_STAGES_NOTHING in args
  before = _ephemeral_dirs()
  # The real TFX decision: the args come back unchanged, no --extra_package.
  assert dependency_utils.make_beam_dependency_flags(args) == args
  assert _ephemeral_dirs() == before


@pytest.mark.parametrize('mode', ['in_memory', 'multi_processing'])
def test_direct_runner_runs_with_the_flag(mode):
  args = C.BeamConfig(direct_num_workers=2 if mode == 'multi_processing' else 1,
                      direct_running_mode=mode).pipeline_args()
  with beam.Pipeline(options=PipelineOptions(args)) as p:
    total = (p | beam.Create(list(range(100))) | beam.CombineGlobally(sum))
    assert_that(total, equal_to([4950]))


def test_other_runners_and_user_flags_are_left_alone():
  dataflow = C.BeamConfig(runner='DataflowRunner', args=['--project=p']).pipeline_args()
  assert dataflow == ['--runner=DataflowRunner', '--project=p']
  # A user's own dependency flag stands alone (TFX then skips its package too).
  own = C.BeamConfig(args=['--requirements_file=reqs.txt']).pipeline_args()
  assert C.DIRECT_RUNNER_STAGES_NOTHING not in own
  assert own[-1] == '--requirements_file=reqs.txt'
  own_image = C.BeamConfig(extra_args=['--sdk_container_image=my/image:1']).pipeline_args()
  assert [a for a in own_image if a.startswith('--sdk_container_image')] == [
      '--sdk_container_image=my/image:1']
