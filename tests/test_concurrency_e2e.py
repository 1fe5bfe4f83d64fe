"""Two `ssd run` processes on one store, and two runs of one config.

Real processes, real TFX runs on a tiny teacher-only config:

* Started at the same time on one pipeline root / SQLite ML Metadata store,
  one run takes the store's lock and finishes; the other fails within
  seconds (exit 3) naming the lock and its holder. The store is intact
  (SQLite integrity check) and holds every execution of the finished run,
  all complete.
* The same config and seed, run again under a fresh pipeline root (no cache
  to reuse), gives the same metrics to 1e-6 (one Beam worker, in memory).
"""

import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from ssd import lineage
from tests import e2e_util

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

NODES = {'ranking_example_gen', 'teacher_trainer', 'teacher_pretrained', 'teacher_evaluator'}


def _config(tmp, name):
  raw = e2e_util.tiny_pipeline_config(tmp / name, semi_supervised=False, data_validation=False)
  raw['beam'] = {'direct_num_workers': 1, 'direct_running_mode': 'in_memory'}
  path = tmp / f'{name}.json'
  path.write_text(json.dumps(raw))
  return str(path), raw


def _run_all(config_paths, logs, timeout=1800):
  """Starts one `ssd run` per config at once; returns each one's exit code,
  output and seconds until *it* exited (polled, so a fast failure is timed
  as such even while the other run goes on)."""
  env = dict(os.environ, PYTHONPATH=e2e_util.ROOT)
  t0 = time.time()
  procs = []
  for i, path in enumerate(config_paths):
    out, err = open(logs / f'{i}.out', 'w'), open(logs / f'{i}.err', 'w')  # pylint: disable=consider-using-with
    procs.append((subprocess.Popen([sys.executable, '-m', 'ssd.cli', 'run', f'--config={path}'],
                                   cwd=e2e_util.ROOT, env=env, stdout=out, stderr=err), out, err))
  seconds = {}
  while len(seconds) < len(procs) and time.time() - t0 < timeout:
    for i, (proc, _, _) in enumerate(procs):
      if i not in seconds and proc.poll() is not None:
        seconds[i] = time.time() - t0
    time.sleep(0.2)
  results = []
  for i, (proc, out, err) in enumerate(procs):
    if proc.poll() is None:
      proc.kill()
    proc.wait()
    out.close()
    err.close()
    results.append({'rc': proc.returncode, 'seconds': seconds.get(i, float('inf')),
                    'out': (logs / f'{i}.out').read_text(),
                    'err': (logs / f'{i}.err').read_text()})
  return results


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('concurrency')
  path, raw = _config(tmp, 'a')
  (tmp / 'logs_ab').mkdir()
  results = _run_all([path, path], tmp / 'logs_ab')
  other_path, other_raw = _config(tmp, 'b')
  (tmp / 'logs_b').mkdir()
  (again,) = _run_all([other_path], tmp / 'logs_b')
  return {'raw': raw, 'results': results, 'again': again, 'other_raw': other_raw}


def test_second_run_fails_fast_and_the_first_finishes(runs):
  # Started together, so the second cannot have waited for the first: with
  # the store lock it must have failed fast.
  winner, loser = sorted(runs['results'], key=lambda r: r['rc'])
  assert winner['rc'] == 0, winner['err'][-3000:]
  assert loser['rc'] == 3, loser['err'][-3000:]
  assert 'another run is using the ML Metadata store' in loser['err']
  assert 'metadata.sqlite.lock held by pid' in loser['err']
  # It exited while the winner still ran (it did not wait for the lock), and
  # within TFX's import time plus slack for a loaded CI machine.
  assert loser['seconds'] < min(120, winner['seconds'] - 10), (loser['seconds'],
                                                               winner['seconds'])
  assert 'metrics:' in winner['out']


def test_store_is_intact_with_every_execution_complete(runs):
  raw = runs['raw']
  store_path = os.path.join(raw['pipeline_root'], 'metadata.sqlite')
  with sqlite3.connect(f'file:{store_path}?mode=ro', uri=True) as db:
    assert db.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
  rows = lineage.execution_table(lineage.open_store(store_path), raw['pipeline_name'])
  assert {r['node'] for r in rows} == NODES
  assert all(r['state'] == 'COMPLETE' for r in rows), rows
  assert len(rows) == len(NODES)   # one run's worth: the loser recorded nothing


def test_same_config_and_seed_give_the_same_metrics(runs):
  again = runs['again']
  assert again['rc'] == 0, again['err'][-3000:]
  with open(os.path.join(runs['raw']['pipeline_root'], 'metrics.json')) as f:
    first = json.load(f)
  with open(os.path.join(runs['other_raw']['pipeline_root'], 'metrics.json')) as f:
    second = json.load(f)
  assert first.keys() == second.keys() and {'bm25', 'teacher'} <= set(first)
  for role, values in first.items():
    assert values.keys() == second[role].keys()
    for metric, value in values.items():
      assert second[role][metric] == pytest.approx(value, abs=1e-6), (role, metric)


def test_truncated_training_inputs_are_counted(runs):
  """Cranfield abstracts are far longer than the tiny model's 48 tokens."""
  raw = runs['raw']
  store = lineage.open_store(os.path.join(raw['pipeline_root'], 'metadata.sqlite'))
  model_run = lineage.latest_output(store, raw['pipeline_name'], 'teacher_trainer', 'model_run')
  with open(os.path.join(model_run.uri, 'training_summary.json')) as f:
    truncation = json.load(f)['truncation']
  assert truncation['items'] > 0
  assert 0 < truncation['truncated_docs'] <= truncation['items']   # bi-encoder teacher
  assert truncation['longest_pieces'] > raw['teacher']['model']['max_length']
