"""`ssd bench speed`: pseudo-labelling throughput against its peers and the
machine, student vs teacher latency, peak memory, worker scaling.

Everything runs in one process run, side by side, so ratios hold on a noisy
machine; each timing is the median of `repeats`. What is compared:
- the PseudoLabeler executor (real Beam, DirectRunner) at 1 worker
  (in_memory) and 2 workers (multi_processing);
- a plain batched loop calling the same SavedModel (components/common/scoring.py,
  which for a bi-encoder embeds each unique text once, as the Beam path);
- TFX's stock BulkInferrer executor on the same Examples, through the
  export's `score_examples` signature (serialized tf.Example in);
all on Cranfield queries x their BM25 top-k documents. Peak RSS is taken
from a fresh child process per corpus size (getrusage of that process).
"""

import json
import os
import resource
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Sequence

import numpy as np

from runconfig import config as C
from ssd.bench import flops as FL

SPLIT = 'unlabelled'
CHUNK_BATCHES = 16   # components/common/scoring.py scores 16 batches per Scorer call


def _sizes(quick: bool, tiny: bool = False) -> Dict[str, Any]:
  """Corpus and model sizes; --quick uses small random-init models, `tiny`
  (tests) the smallest that still exercises every path."""
  if tiny:
    return {'pairs': 40, 'wins_pairs': 40, 'scale_large': 120, 'rss_k': (2, 20),
            'threads': ((1, 1),),
            'repeats': 1, 'beam_repeats': 1, 'latency_calls': 3, 'batch_size': 16,
            'teacher': dict(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64),
            'student': dict(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32),
            'max_length': 32}
  if quick:
    return {'pairs': 600, 'wins_pairs': 600, 'scale_large': 2000, 'rss_k': (10, 100),
            'threads': ((0, 0), (1, 1)),
            'repeats': 3, 'beam_repeats': 1, 'latency_calls': 20, 'batch_size': 64,
            # The layer ratio of the full run (MiniLM-L6 T', its first 2 layers as S).
            'teacher': dict(hidden_size=128, num_layers=3, num_heads=2, intermediate_size=512),
            'student': dict(hidden_size=128, num_layers=1, num_heads=2, intermediate_size=512),
            'max_length': 128}
  # MiniLM-L6 runs at ~10-30 pairs/s on 2 cores: sizes keep the run under 45 min.
  return {'pairs': 320, 'wins_pairs': 128, 'scale_large': 960, 'rss_k': (30, 300),
          'threads': ((0, 0), (1, 1)),
          'repeats': 2, 'beam_repeats': 2, 'latency_calls': 30, 'batch_size': 64,
          'teacher': None, 'student': None, 'max_length': 128}


# --- models and corpus -------------------------------------------------------


def minilm_dir() -> str:
  return os.environ.get('SSD_MINILM_DIR') or os.path.expanduser(
      '~/.cache/ssd-rankers/minilm-l6-h384-uncased')


def build_models(work_dir: str, sizes: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
  """Exports T' (cross- and bi-encoder) and S (bi-encoder); returns
  {name: {'uri': model artifact uri, 'encoder': dims, 'max_length', ...}}."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rankers import export, models  # pylint: disable=g-import-not-at-top
  from rankers.config import EncoderConfig, RankerConfig  # pylint: disable=g-import-not-at-top
  ckpt = minilm_dir()
  vocab = os.path.join(ckpt, 'vocab.txt')
  out = {}
  for name, arch, dims, keep in (('cross', 'cross_encoder', sizes['teacher'], None),
                                 ('bi', 'bi_encoder', sizes['teacher'], None),
                                 ('student', 'bi_encoder', sizes['student'], 2)):
    if dims is None:   # the real MiniLM-L6 (student: its first 2 layers)
      config = RankerConfig(arch, checkpoint_dir=ckpt, keep_layers=keep,
                            max_length=sizes['max_length'], query_max_length=32)
    else:
      with tf.io.gfile.GFile(vocab) as f:
        vocab_size = sum(1 for _ in f)
      config = RankerConfig(arch, encoder=EncoderConfig(
          vocab_size=vocab_size, max_position_embeddings=512, **dims), vocab_file=vocab,
                            max_length=sizes['max_length'], query_max_length=32)
    ranker = models.build_ranker(config, seed=0)
    uri = os.path.join(work_dir, 'models', name)
    export.export_ranker(ranker, os.path.join(uri, 'Format-Serving'))
    enc = ranker.config.encoder
    out[name] = {'uri': uri, 'architecture': arch, 'hidden': enc.hidden_size,
                 'layers': enc.num_layers, 'intermediate': enc.intermediate_size,
                 'max_length': ranker.config.max_length,
                 'query_max_length': ranker.config.query_max_length,
                 'tokenizer': ranker.tokenizer}
  return out


def cranfield_pairs(k: int, limit: int = 0):
  """Yields example rows: Cranfield queries x BM25 top-k (streamed, not listed)."""
  from rankdata import bm25, cranfield  # pylint: disable=g-import-not-at-top
  from rankdata import features as F  # pylint: disable=g-import-not-at-top
  data = cranfield.load_cranfield()
  index = bm25.BM25Index(list(data.documents.values()))
  n = 0
  for qid, query in data.queries.items():
    for rank, (did, score) in enumerate(index.search_one(query.text, k)):
      if limit and n >= limit:
        return
      yield {F.QUERY_ID: qid, F.DOC_ID: did, F.QUERY: query.text,
             F.DOC: data.documents[did].full_text, F.LABEL: None,
             F.FIRST_STAGE_SCORE: float(score), F.FIRST_STAGE_RANK: rank + 1}
      n += 1


def write_examples(uri: str, rows) -> Any:
  """An Examples artifact with one split of `rows` (gzipped TFRecords)."""
  from tfx.components.util import examples_utils  # pylint: disable=g-import-not-at-top
  from tfx.proto import example_gen_pb2  # pylint: disable=g-import-not-at-top
  from tfx.types import artifact_utils, standard_artifacts  # pylint: disable=g-import-not-at-top
  from components.common import example_io  # pylint: disable=g-import-not-at-top
  examples = standard_artifacts.Examples()
  examples.uri = uri
  n = example_io.write_split(uri, SPLIT, rows)
  examples.split_names = artifact_utils.encode_split_names([SPLIT])
  examples_utils.set_payload_format(examples, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
  examples.set_int_custom_property('pairs', n)
  return examples


def _model_artifact(uri: str):
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  model = standard_artifacts.Model()
  model.uri = uri
  model.id = 1
  return model


# --- the three ways to score --------------------------------------------------


WORKERS = {n: C.BeamConfig(direct_num_workers=n, direct_running_mode=mode).pipeline_args()
           for n, mode in ((1, 'in_memory'), (2, 'multi_processing'))}


def run_pseudo_labeler(examples, model_uri: str, work_dir: str, workers: int,
                       batch_size: int) -> Dict[str, Any]:
  """The real PseudoLabeler executor; returns its counts.json payload."""
  from tfx.dsl.components.base import base_beam_executor  # pylint: disable=g-import-not-at-top
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  from components.pseudo_labeler import executor as E  # pylint: disable=g-import-not-at-top
  from components.pseudo_labeler import spec as S  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  run_dir = os.path.join(work_dir, f'pl-{time.time_ns()}')
  out, report = standard_artifacts.Examples(), S.PseudoLabelReport()
  out.uri, report.uri = os.path.join(run_dir, 'out'), os.path.join(run_dir, 'report')
  for a in (out, report):
    tf.io.gfile.makedirs(a.uri)
  context = base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=WORKERS[workers], tmp_dir=os.path.join(run_dir, 'tmp'),
      unique_id=f'pl{workers}')
  cfg = S.PseudoLabelConfig(splits=[SPLIT], batch_size=batch_size, keep_top_k=4,
                            keep_bottom_k=4, max_dead_letter_fraction=1.0)
  E.Executor(context).Do({S.EXAMPLES_KEY: [examples], S.MODEL_KEY: [_model_artifact(model_uri)]},
                         {S.PSEUDO_LABELLED_KEY: [out], S.REPORT_KEY: [report]},
                         {S.CONFIG_KEY: C.to_json(cfg)})
  with tf.io.gfile.GFile(os.path.join(report.uri, S.COUNTS_FILE)) as f:
    payload = json.load(f)
  tf.io.gfile.rmtree(run_dir)
  return payload


def profile_pseudo_labeler(examples, model_uri: str, work_dir: str, batch_size: int
                           ) -> Dict[str, float]:
  """Where one PseudoLabeler run (1 worker) spends its wall time, from
  cProfile's cumulative times of a few functions (seconds)."""
  import cProfile  # pylint: disable=g-import-not-at-top
  import pstats  # pylint: disable=g-import-not-at-top
  profile = cProfile.Profile()
  t0 = time.perf_counter()
  profile.enable()
  run_pseudo_labeler(examples, model_uri, work_dir, 1, batch_size)
  profile.disable()
  total = time.perf_counter() - t0
  cum: Dict[str, float] = {}
  for (path, _, func), row in pstats.Stats(profile).stats.items():  # pylint: disable=no-member
    key = {('dependency_utils.py', 'make_beam_dependency_flags'): 'tfx_dependency_packaging',
           ('direct_runner.py', 'run_pipeline'): 'beam_run',
           ('export.py', '_run'): 'teacher_calls',
           ('executor.py', 'Do'): 'executor_do',
           ('report.py', 'plot_png'): 'report_plot'}.get((os.path.basename(path), func))
    if key:
      cum[key] = max(cum.get(key, 0.0), row[3])
  out = {'total': total}
  out.update(cum)
  out['beam_overhead'] = cum.get('beam_run', 0.0) - cum.get('teacher_calls', 0.0)
  out['other'] = total - cum.get('tfx_dependency_packaging', 0.0) - cum.get('beam_run', 0.0)
  return out


def run_bulk_inferrer(examples, model_uri: str, work_dir: str) -> int:
  """TFX's BulkInferrer executor through `score_examples`; returns logs written."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfx.components.bulk_inferrer import executor as BI  # pylint: disable=g-import-not-at-top
  from tfx.dsl.components.base import base_beam_executor  # pylint: disable=g-import-not-at-top
  from tfx.proto import bulk_inferrer_pb2  # pylint: disable=g-import-not-at-top
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  from tfx.utils import proto_utils  # pylint: disable=g-import-not-at-top
  from rankers import export  # pylint: disable=g-import-not-at-top
  run_dir = os.path.join(work_dir, f'bi-{time.time_ns()}')
  result = standard_artifacts.InferenceResult()
  result.uri = os.path.join(run_dir, 'result')
  tf.io.gfile.makedirs(result.uri)
  context = base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=WORKERS[1], tmp_dir=os.path.join(run_dir, 'tmp'), unique_id='bulk')
  spec = bulk_inferrer_pb2.ModelSpec(model_signature_name=[export.SCORE_EXAMPLES])
  BI.Executor(context).Do(
      {'examples': [examples], 'model': [_model_artifact(model_uri)]},
      {'inference_result': [result]},
      {'model_spec': proto_utils.proto_to_json(spec),
       'data_spec': proto_utils.proto_to_json(bulk_inferrer_pb2.DataSpec())})
  n = 0
  for path in tf.io.gfile.glob(os.path.join(result.uri, '*.gz')):
    n += sum(1 for _ in tf.data.TFRecordDataset(path, compression_type='GZIP'))
  tf.io.gfile.rmtree(run_dir)
  return n


def read_pairs(examples) -> Dict[str, List[str]]:
  from components.common import example_io  # pylint: disable=g-import-not-at-top
  from rankdata import features as F  # pylint: disable=g-import-not-at-top
  rows = example_io.read_split(examples.uri, SPLIT)
  return {'query': [r[F.QUERY] for r in rows], 'doc': [r[F.DOC] for r in rows]}


def timed(fn: Callable[[], Any], repeats: int) -> Dict[str, Any]:
  seconds, value = [], None
  for _ in range(repeats):
    t0 = time.perf_counter()
    value = fn()
    seconds.append(time.perf_counter() - t0)
  return {'seconds': FL.median(seconds), 'all_seconds': seconds, 'value': value}


# --- the machine -------------------------------------------------------------


def matmul_peak(repeats: int = 5) -> Dict[str, Any]:
  """fp32 matmul GFLOP/s (median of repeats) for square and model-like shapes."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  shapes = [(1024, 1024, 1024), (2048, 2048, 2048), (8192, 384, 1536), (8192, 1536, 384)]
  out = {}
  for m, k, n in shapes:
    a = tf.random.normal([m, k])
    b = tf.random.normal([k, n])
    tf.matmul(a, b).numpy()
    t = timed(lambda a=a, b=b: tf.matmul(a, b).numpy(), repeats)['seconds']
    out[f'{m}x{k}x{n}'] = 2.0 * m * k * n / t / 1e9
  return {'gflops_by_shape': out, 'peak_gflops': max(out.values())}


def token_counts(model: Dict[str, Any], queries: Sequence[str], docs: Sequence[str]):
  """Per-pair tokens the cross-encoder processed (pair) or, for a bi-encoder,
  per unique text ({'query': [...], 'doc': [...]})."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tok = model['tokenizer']
  pieces = lambda texts: tok.tokens_per_text(tf.constant(list(texts), tf.string)).numpy()
  if model['architecture'] == 'cross_encoder':
    return FL.pair_tokens(pieces(queries), pieces(docs), model['max_length'])
  return {'query': FL.single_tokens(pieces(sorted(set(queries))), model['query_max_length']),
          'doc': FL.single_tokens(pieces(sorted(set(docs))), model['max_length'])}


def model_flops(model: Dict[str, Any], queries, docs, batch_size: int) -> Dict[str, float]:
  """FLOPs of scoring the pairs: `useful` over real tokens, `executed` with
  the padding of length-sorted batches (components/common/scoring.py's order)."""
  dims = (model['hidden'], model['layers'], model['intermediate'])
  chunk = batch_size * CHUNK_BATCHES
  if model['architecture'] == 'cross_encoder':
    tokens = token_counts(model, queries, docs)
    chars = [len(q) + len(d) for q, d in zip(queries, docs)]
    padded = FL.padded_lengths(tokens, chars, batch_size, chunk)
    return {'useful': FL.total_flops(tokens, *dims), 'executed': FL.total_flops(padded, *dims),
            'tokens': int(tokens.sum()), 'padded_tokens': int(padded.sum())}
  counts = token_counts(model, queries, docs)
  useful = sum(FL.total_flops(c, *dims) for c in counts.values())
  return {'useful': useful, 'executed': useful,   # unique texts; padding not modelled
          'tokens': int(sum(c.sum() for c in counts.values())), 'padded_tokens': None}


def peak_rss_mb() -> float:
  """This process's peak RSS (VmHWM). Unlike getrusage's ru_maxrss it starts
  afresh at exec, so a child does not inherit the parent's peak."""
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith('VmHWM:'):
        return int(line.split()[1]) / 1024
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_child(examples_uri: str, model_uri: str, work_dir: str, batch_size: int) -> Dict[str, Any]:
  """Runs the PseudoLabeler (1 worker) in a fresh process; its peak RSS."""
  code = ('import json, sys\n'
          'from tfx.types import artifact_utils, standard_artifacts\n'
          'from ssd.bench import speed as s\n'
          'e = standard_artifacts.Examples()\n'
          'e.uri = sys.argv[1]\n'
          'e.split_names = artifact_utils.encode_split_names([s.SPLIT])\n'
          'before = s.peak_rss_mb()\n'
          'p = s.run_pseudo_labeler(e, sys.argv[2], sys.argv[3], 1, int(sys.argv[4]))\n'
          "print('RSS_JSON', json.dumps({'pairs': p['counts']['total']['pairs_in'],\n"
          "      'seconds': p['pipeline_seconds'], 'peak_rss_mb': s.peak_rss_mb(),\n"
          "      'rss_before_run_mb': before}))\n")
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  proc = subprocess.run([sys.executable, '-c', code, examples_uri, model_uri, work_dir,
                         str(batch_size)], capture_output=True, text=True, cwd=root,
                        check=False, timeout=3600)
  for line in proc.stdout.splitlines():
    if line.startswith('RSS_JSON '):
      return json.loads(line[len('RSS_JSON '):])
  raise RuntimeError(f'rss child failed ({proc.returncode}): {proc.stderr[-2000:]}')
