"""PseudoLabeler through Beam's portable runner, with the teacher in a separate SDK worker process.

The same executor and Beam code as the DirectRunner tests; only the runner
and its options change (what `beam.runner` / `beam.args` set): the pipeline
is submitted to a job service over the Beam job API, and every DoFn runs in
an SDK harness process started by a worker pool (`worker_pool_main`), which
is how Flink, Spark and Dataflow run Python pipelines. The pseudo-labels
must equal the in-process DirectRunner's.

(Beam 2.59's DaskRunner cannot run this pipeline; see docs/design.md.)
"""

import os
import socket
import subprocess
import sys
import time

import pytest

from tests import e2e_util
from tests.test_pseudo_labeler_executor import check_run
from tests.test_pseudo_labeler_executor import cross_run  # pylint: disable=unused-import
from tests.test_pseudo_labeler_executor import cross_teacher  # pylint: disable=unused-import
from tests.test_pseudo_labeler_executor import inputs  # pylint: disable=unused-import
from tests.test_pseudo_labeler_executor import run_executor
from tests.test_pseudo_labeler_executor import scores_by_pair
from tests.test_pseudo_labeler_executor import vocab  # pylint: disable=unused-import
from tests.test_pseudo_labeler_executor import workdir  # pylint: disable=unused-import

# Multi-process Beam (a job service and an SDK worker process): an end-to-end run.
pytestmark = pytest.mark.e2e


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


@pytest.fixture(scope='module')
def worker_pool():
  """A Beam SDK worker pool in its own process; it forks one SDK harness per worker."""
  port = _free_port()
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      p for p in (e2e_util.ROOT, os.environ.get('PYTHONPATH')) if p),
             # The pool starts workers as `python -c ...`: this interpreter's.
             PATH=os.pathsep.join((os.path.dirname(sys.executable), os.environ.get('PATH', ''))))
  pool = subprocess.Popen(
      [sys.executable, '-m', 'apache_beam.runners.worker.worker_pool_main',
       f'--service_port={port}'], env=env, cwd=e2e_util.ROOT)
  try:
    deadline = time.time() + 120
    while True:
      try:
        socket.create_connection(('localhost', port), timeout=1).close()
        break
      except OSError:
        if time.time() > deadline or pool.poll() is not None:
          raise RuntimeError('Beam worker pool did not start') from None
        time.sleep(1)
    yield port
  finally:
    pool.terminate()
    pool.wait(timeout=30)


def test_portable_runner_with_worker_process_matches_direct_runner(workdir, inputs, cross_run,
                                                                   worker_pool):
  beam_args = ['--runner=PortableRunner', '--job_endpoint=embed', '--environment_type=EXTERNAL',
               f'--environment_config=localhost:{worker_pool}']
  run = run_executor(workdir, 'cross_portable', inputs['examples'], cross_run['model'], beam_args)
  check_run(run, inputs)
  assert run['payload']['counts'] == cross_run['payload']['counts']
  a, b = scores_by_pair(cross_run), scores_by_pair(run)
  assert a.keys() == b.keys() and len(a) > 50
  assert a == b   # bitwise: batches are fixed by the data (pseudo_labeler/canonical.py)
  print(f'\nthroughput on {run["payload"]["counts"]["total"]["pairs_in"]} pairs: DirectRunner '
        f'in_memory {cross_run["payload"]["pairs_per_second"]:.1f} pairs/s, PortableRunner + '
        f'SDK worker process {run["payload"]["pairs_per_second"]:.1f} pairs/s')
