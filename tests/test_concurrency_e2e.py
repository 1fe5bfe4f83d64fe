"""Two `ssd run` processes on one store, and two runs of one config.

Real processes (forked from the tests' zygote, tests/zygote.py, with their
libraries imported), real TFX runs on a tiny teacher-only config:

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
import signal
import sqlite3
import time

import pytest

from ssd import lineage
from tests import crash_util
from tests import e2e_util

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

NODES = {'ranking_example_gen', 'teacher_trainer', 'teacher_pretrained', 'teacher_evaluator'}


def _config(tmp, name):
  raw = e2e_util.tiny_pipeline_config(tmp / name, semi_supervised=False, data_validation=False)
  raw['beam'] = {'direct_num_workers': 1, 'direct_running_mode': 'in_memory'}
  path = tmp / f'{name}.json'
  path.write_text(json.dumps(raw))
  return str(path), raw


def _run_all(config_paths, logs, zygote, timeout=1800):
  """Starts one `ssd run` per config at once (children of the tests' zygote,
  tests/zygote.py); returns each one's exit code, output and seconds until
  *it* exited (polled, so a fast failure is timed as such even while the
  other run goes on)."""
  t0 = time.time()
  procs = [crash_util.start_run(zygote, path, str(logs / f'{i}.out'), str(logs / f'{i}.err'))
           for i, path in enumerate(config_paths)]
  seconds = {}
  while len(seconds) < len(procs) and time.time() - t0 < timeout:
    for i, proc in enumerate(procs):
      if i not in seconds and proc.poll() is not None:
        seconds[i] = time.time() - t0
    time.sleep(0.2)
  results = []
  for i, proc in enumerate(procs):
    if proc.poll() is None:
      os.kill(proc.pid, signal.SIGKILL)
    results.append({'rc': proc.wait(), 'seconds': seconds.get(i, float('inf')),
                    'out': (logs / f'{i}.out').read_text(),
                    'err': (logs / f'{i}.err').read_text()})
  return results


@pytest.fixture(scope='module')
def runs(tmp_path_factory, zygote):
  tmp = tmp_path_factory.mktemp('concurrency')
  path, raw = _config(tmp, 'a')
  (tmp / 'logs_ab').mkdir()
  results = _run_all([path, path], tmp / 'logs_ab', zygote)
  other_path, other_raw = _config(tmp, 'b')
  (tmp / 'logs_b').mkdir()
  (again,) = _run_all([other_path], tmp / 'logs_b', zygote)
  return {'raw': raw, 'results': results, 'again': again, 'other_raw': other_raw}


def test_second_run_fails_fast_and_the_first_finishes(runs):
  # Started together, so the second cannot have waited for the first: with
  # the store lock it must have failed fast.
  winner, loser = sorted(runs['results'], key=lambda r: r['rc'])
  assert winner['rc'] == 0, winner['err'][-3000:]
  assert loser['rc'] == 3, loser['err'][-3000:]
  assert 'another run is using the ML Metadata store' in loser['err']
  assert 'metadata.sqlite.lock held by pid' in loser['err']
  # It exited while the winner still ran (it did not wait for the lock): in
  # less than half the winner's time (both start from the zygote with their
  # libraries imported; the winner then runs the teacher stage).
  assert loser['seconds'] < min(120, winner['seconds'] / 2), (loser['seconds'],
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
