"""Pseudo-labeller throughput on two Beam runners, same inputs, same code.

  PYTHONPATH=. python tools/beam_runner_throughput.py [--queries 250] [--docs 8]

Builds an Examples artifact of `queries` x `docs` unlabelled pairs and a tiny
random-init cross-encoder teacher, then runs the PseudoLabeler executor with
(1) the DirectRunner in process and (2) the PortableRunner with an SDK
worker pool in a separate process (`worker_pool_main`), and prints pairs/s
of each Beam pipeline (counts.json: pipeline_seconds) and whether the kept
pseudo-labels agree.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import path_utils

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from components.common import example_io  # pylint: disable=g-import-not-at-top,wrong-import-position
from components.pseudo_labeler import executor as E  # pylint: disable=wrong-import-position
from components.pseudo_labeler import spec as S  # pylint: disable=wrong-import-position
from rankdata import features as F  # pylint: disable=wrong-import-position
from rankers import export, models  # pylint: disable=wrong-import-position
from rankers.config import EncoderConfig, RankerConfig  # pylint: disable=wrong-import-position
from runconfig import config as C  # pylint: disable=wrong-import-position

WORDS = ('flow wing pressure boundary layer heat transfer shock mach supersonic laminar '
         'turbulent body drag lift nozzle jet plate cylinder cone').split()
SPECIAL = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']


def build_inputs(workdir, n_queries, n_docs):
  rng = np.random.default_rng(0)
  vocab = os.path.join(workdir, 'vocab.txt')
  with open(vocab, 'w', encoding='utf-8') as f:
    f.write('\n'.join(SPECIAL + WORDS) + '\n')
  rows = []
  for q in range(n_queries):
    query = ' '.join(rng.choice(WORDS, 3))
    for rank in range(n_docs):
      rows.append({F.QUERY_ID: f'q{q}', F.DOC_ID: f'd{rank}', F.QUERY: query,
                   F.DOC: ' '.join(rng.choice(WORDS, 20)), F.LABEL: None,
                   F.FIRST_STAGE_SCORE: float(n_docs - rank), F.FIRST_STAGE_RANK: rank + 1})
  examples = standard_artifacts.Examples()
  examples.uri = os.path.join(workdir, 'examples')
  example_io.write_split(examples.uri, F.SPLIT_UNLABELLED, rows)
  examples.split_names = artifact_utils.encode_split_names([F.SPLIT_UNLABELLED])
  model = standard_artifacts.Model()
  model.uri = os.path.join(workdir, 'teacher')
  model.id = 1
  config = RankerConfig('cross_encoder', encoder=EncoderConfig(
      vocab_size=len(SPECIAL) + len(WORDS), hidden_size=64, num_layers=2, num_heads=2,
      intermediate_size=128, max_position_embeddings=64), vocab_file=vocab, max_length=48,
      query_max_length=16)
  export.export_ranker(models.build_ranker(config, seed=3), path_utils.serving_model_path(model.uri))
  return examples, model, len(rows)


def run(workdir, name, examples, model, beam_args):
  out = standard_artifacts.Examples()
  out.uri = os.path.join(workdir, name, 'pseudo_labelled')
  report = S.PseudoLabelReport()
  report.uri = os.path.join(workdir, name, 'report')
  context = base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=beam_args, tmp_dir=os.path.join(workdir, name, 'tmp'), unique_id=name)
  cfg = S.PseudoLabelConfig(splits=[F.SPLIT_UNLABELLED], keep_top_k=3, keep_bottom_k=1,
                            batch_size=64)
  E.Executor(context).Do({S.EXAMPLES_KEY: [examples], S.MODEL_KEY: [model]},
                         {S.PSEUDO_LABELLED_KEY: [out], S.REPORT_KEY: [report]},
                         {S.CONFIG_KEY: C.to_json(cfg)})
  with open(os.path.join(report.uri, S.COUNTS_FILE)) as f:
    payload = json.load(f)
  kept = {(r[F.QUERY_ID], r[F.DOC_ID]): r[F.TEACHER_SCORE]
          for r in example_io.read_split(out.uri, F.SPLIT_UNLABELLED)}
  return payload, kept


def worker_pool():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    port = s.getsockname()[1]
  env = dict(os.environ, PYTHONPATH=ROOT,
             PATH=os.pathsep.join((os.path.dirname(sys.executable), os.environ.get('PATH', ''))))
  pool = subprocess.Popen([sys.executable, '-m', 'apache_beam.runners.worker.worker_pool_main',
                           f'--service_port={port}'], env=env, cwd=ROOT)
  for _ in range(120):
    try:
      socket.create_connection(('localhost', port), timeout=1).close()
      return pool, port
    except OSError:
      time.sleep(1)
  pool.terminate()
  raise RuntimeError('worker pool did not start')


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--queries', type=int, default=250)
  parser.add_argument('--docs', type=int, default=8)
  args = parser.parse_args()
  workdir = tempfile.mkdtemp(prefix='beam_throughput_')
  examples, model, n = build_inputs(workdir, args.queries, args.docs)
  results = {}
  direct, direct_kept = run(workdir, 'direct', examples, model,
                            ['--runner=DirectRunner', '--direct_num_workers=1',
                             '--direct_running_mode=in_memory'])
  results['DirectRunner (in_memory)'] = direct
  pool, port = worker_pool()
  try:
    portable, portable_kept = run(
        workdir, 'portable', examples, model,
        ['--runner=PortableRunner', '--job_endpoint=embed', '--environment_type=EXTERNAL',
         f'--environment_config=localhost:{port}'])
  finally:
    pool.terminate()
    pool.wait(timeout=30)
  results['PortableRunner (SDK worker process)'] = portable
  same = direct_kept.keys() == portable_kept.keys() and all(
      abs(direct_kept[k] - portable_kept[k]) < 1e-4 for k in direct_kept)
  print(f'{n} pairs, tiny cross-encoder (2 x 64), same inputs:')
  for name, payload in results.items():
    print(f'  {name:38s} {payload["pipeline_seconds"]:7.1f} s  '
          f'{payload["pairs_per_second"]:7.1f} pairs/s')
  print(f'  same kept pairs and teacher scores: {same}')


if __name__ == '__main__':
  main()
