"""Runs every measurement of `ssd bench speed` and returns one result dict
(speed.py has the pieces, speed_report.py writes it up)."""

import os
import time
from typing import Any, Dict

import numpy as np

from ssd.bench import flops as FL
from ssd.bench import speed as SP
from ssd.bench import speed_report


def serving_latency(model_uri: str, queries, docs, calls: int) -> Dict[str, float]:
  """Per-pair latency at batch 1 and pairs/s at batch 64 through the
  exported serving_default signature (raw strings in)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rankers import export  # pylint: disable=g-import-not-at-top
  fn = export.load_scorer(os.path.join(model_uri, 'Format-Serving')).signatures[
      export.SERVING_DEFAULT]
  one = lambda i: fn(query=tf.constant([queries[i % len(queries)]]),
                     document=tf.constant([docs[i % len(docs)]]))
  batch = lambda i: fn(query=tf.constant([queries[(i + j) % len(queries)] for j in range(64)]),
                       document=tf.constant([docs[(i + j) % len(docs)] for j in range(64)]))
  one(0), batch(0)   # tracing / warm-up
  lat = []
  for i in range(calls):
    t0 = time.perf_counter()
    one(i)['score'].numpy()
    lat.append(time.perf_counter() - t0)
  thr = []
  for i in range(max(3, calls // 5)):
    t0 = time.perf_counter()
    batch(i * 64)['score'].numpy()
    thr.append(64 / (time.perf_counter() - t0))
  return {'latency_ms_batch1': 1000 * FL.median(lat), 'pairs_per_s_batch64': FL.median(thr)}


def loop_threads(model_uri: str, n_pairs: int, intra: int, inter: int, batch_size: int,
                 repeats: int) -> float:
  """Plain-loop cross-encoder pairs/s in a fresh process with TF's intra-op /
  inter-op thread pools set (0: TF's default); they cannot change after
  TensorFlow starts, hence the child process."""
  import json  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  code = ('import json, sys, time\n'
          'import tensorflow as tf\n'
          'tf.config.threading.set_intra_op_parallelism_threads(int(sys.argv[3]))\n'
          'tf.config.threading.set_inter_op_parallelism_threads(int(sys.argv[4]))\n'
          'from components.common import scoring\n'
          'from rankers import export\n'
          'from rankdata import features as F\n'
          'from ssd.bench import flops, speed\n'
          'p = list(speed.cranfield_pairs(30, int(sys.argv[2])))\n'
          'q, d = [r[F.QUERY] for r in p], [r[F.DOC] for r in p]\n'
          'sc = export.load_scorer(sys.argv[1])\n'
          'bs = int(sys.argv[5])\n'
          'scoring.score_pairs(sc, q[:bs], d[:bs], bs)\n'
          'times = []\n'
          'for _ in range(int(sys.argv[6])):\n'
          '  t0 = time.perf_counter(); scoring.score_pairs(sc, q, d, bs)\n'
          '  times.append(time.perf_counter() - t0)\n'
          'print("THREADS_JSON", json.dumps(len(q) / flops.median(times)))\n')
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  proc = subprocess.run([sys.executable, '-c', code, os.path.join(model_uri, 'Format-Serving'),
                         str(n_pairs), str(intra), str(inter), str(batch_size), str(repeats)],
                        capture_output=True, text=True, cwd=root, check=False, timeout=1800)
  for line in proc.stdout.splitlines():
    if line.startswith('THREADS_JSON '):
      return float(json.loads(line[len('THREADS_JSON '):]))
  raise RuntimeError(f'threads child failed ({proc.returncode}): {proc.stderr[-2000:]}')


def loop_wins(model_uri: str, queries, docs, repeats: int) -> Dict[str, Any]:
  """Plain-loop cross-encoder throughput with and without each setting; the
  scores of every variant are compared with the default's."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rankers import export  # pylint: disable=g-import-not-at-top
  scorer = export.load_scorer(os.path.join(model_uri, 'Format-Serving'))
  inputs = {'query': queries, 'document': docs}

  def run(batch_size, sort):
    return scorer._run(export.SERVING_DEFAULT, 'score', inputs, batch_size,  # pylint: disable=protected-access
                       sort_by_length=sort)
  reference = run(64, True)
  variants = {}
  for name, bs, sort in (('batch 64, input order', 64, False), ('batch 16, length-sorted', 16, True),
                         ('batch 64, length-sorted (default)', 64, True),
                         ('batch 128, length-sorted', 128, True)):
    t = SP.timed(lambda bs=bs, sort=sort: run(bs, sort), repeats)
    variants[name] = {'pairs_per_s': len(queries) / t['seconds'],
                      'max_abs_diff': float(np.max(np.abs(t['value'] - reference)))}
  # XLA: jit-compile the serving function (the tokenizer's tensorflow_text ops
  # may have no XLA kernels; the error is reported, not hidden).
  sig = scorer.signatures[export.SERVING_DEFAULT]
  jitted = tf.function(lambda q, d: sig(query=q, document=d)['score'], jit_compile=True)
  try:
    q, d = tf.constant(queries[:64]), tf.constant(docs[:64])
    jitted(q, d).numpy()
    t = SP.timed(lambda: [jitted(tf.constant(queries[i:i + 64]), tf.constant(docs[i:i + 64]))
                          .numpy() for i in range(0, len(queries), 64)], repeats)
    variants['batch 64, jit_compile'] = {'pairs_per_s': len(queries) / t['seconds'],
                                         'max_abs_diff': None}
  except Exception as e:  # pylint: disable=broad-except
    variants['batch 64, jit_compile'] = {'pairs_per_s': None,
                                         'error': str(e).splitlines()[0][:160]}
  return variants


def run(work_dir: str, quick: bool, log=print, tiny: bool = False) -> Dict[str, Any]:
  """All measurements; `log` gets progress lines; `tiny`: test sizes."""
  from components.common import scoring  # pylint: disable=g-import-not-at-top
  from rankers import export  # pylint: disable=g-import-not-at-top
  t_start = time.time()
  say = log
  log = lambda msg: say(f'[{time.time() - t_start:6.0f}s] {msg}')
  sizes = SP._sizes(quick, tiny)  # pylint: disable=protected-access
  reps, beam_reps, bs = sizes['repeats'], sizes['beam_repeats'], sizes['batch_size']
  do_seconds = {}   # (teacher, workers) -> median seconds of the executor's Do
  os.makedirs(work_dir, exist_ok=True)
  result: Dict[str, Any] = {'quick': quick, 'sizes': dict(sizes),
                            'throughput': {}, 'flops': {}}
  log('speed: matmul peak')
  result['machine_peak'] = SP.matmul_peak()
  log(f'speed: building models ({"MiniLM-L6" if sizes["teacher"] is None else "random-init"})')
  models = SP.build_models(work_dir, sizes)
  result['models'] = {k: {f: v[f] for f in ('architecture', 'hidden', 'layers', 'intermediate',
                                            'max_length')} for k, v in models.items()}
  examples = SP.write_examples(os.path.join(work_dir, 'examples-main'),
                               SP.cranfield_pairs(30, sizes['pairs']))
  pairs = SP.read_pairs(examples)
  n = len(pairs['query'])
  for name in ('cross', 'bi'):
    m = models[name]
    model_dir = os.path.join(m['uri'], 'Format-Serving')
    scorer = export.load_scorer(model_dir)
    scoring.score_pairs(scorer, pairs['query'][:64], pairs['doc'][:64], bs)   # warm-up
    row = {'pairs': n}
    log(f'speed: {name}: plain loop')
    t = SP.timed(lambda: scoring.score_pairs(scorer, pairs['query'], pairs['doc'], bs), reps)
    row['plain TF loop'] = n / t['seconds']
    for w in (1, 2):
      log(f'speed: {name}: PseudoLabeler, {w} worker(s)')
      t = SP.timed(lambda w=w: SP.run_pseudo_labeler(examples, m['uri'], work_dir, w, bs),
                   beam_reps)
      row[f'PseudoLabeler ({w} worker{"s" if w > 1 else ""})'] = n / t['seconds']
      do_seconds[(name, w)] = t['seconds']
      if t['value']['counts']['total']['pairs_in'] != n:
        raise RuntimeError(f'PseudoLabeler read {t["value"]["counts"]["total"]} of {n} pairs')
    log(f'speed: {name}: BulkInferrer')
    t = SP.timed(lambda: SP.run_bulk_inferrer(examples, m['uri'], work_dir), beam_reps)
    if t['value'] != n:
      raise RuntimeError(f'BulkInferrer wrote {t["value"]} predictions for {n} examples')
    row['TFX BulkInferrer'] = n / t['seconds']
    result['throughput'][name] = row
    f = SP.model_flops(m, pairs['query'], pairs['doc'], bs)
    loop_s = n / row['plain TF loop']
    peak = result['machine_peak']['peak_gflops']
    result['flops'][name] = dict(f, per_pair=f['useful'] / n,
                                 useful_gflops=f['useful'] / loop_s / 1e9,
                                 fraction_of_peak=f['useful'] / loop_s / 1e9 / peak,
                                 executed_fraction_of_peak=f['executed'] / loop_s / 1e9 / peak)
  log('speed: wins on the cross-encoder loop')
  k = sizes['wins_pairs']
  result['wins'] = loop_wins(models['cross']['uri'], pairs['query'][:k], pairs['doc'][:k], reps)
  for intra, inter in sizes['threads']:
    log(f'speed: loop with intra-op {intra} / inter-op {inter} threads (fresh process)')
    result['wins'][f'batch {bs}, threads intra {intra or "default"} / inter '
                   f'{inter or "default"} (fresh process)'] = {
        'pairs_per_s': loop_threads(models['cross']['uri'], k, intra, inter, bs, reps),
        'max_abs_diff': None}
  log('speed: PseudoLabeler sort window before/after (cross-encoder, 1 worker)')
  from components.pseudo_labeler import teacher  # pylint: disable=g-import-not-at-top
  default_window = teacher.SORT_WINDOW_BATCHES
  try:
    teacher.SORT_WINDOW_BATCHES = 1
    t = SP.timed(lambda: SP.run_pseudo_labeler(examples, models['cross']['uri'], work_dir, 1,
                                               bs), 1)
  finally:
    teacher.SORT_WINDOW_BATCHES = default_window
  result['wins']['PseudoLabeler 1 worker, sort window 1 batch (before)'] = {
      'pairs_per_s': n / t['seconds'], 'max_abs_diff': None}
  result['wins'][f'PseudoLabeler 1 worker, sort window {default_window} batches (after)'] = {
      'pairs_per_s': result['throughput']['cross'][speed_report.PL1], 'max_abs_diff': None}
  log('speed: profile of one PseudoLabeler run (cross-encoder, 1 worker)')
  result['profile'] = SP.profile_pseudo_labeler(examples, models['cross']['uri'], work_dir, bs)
  mc = models['cross']
  tokens = SP.token_counts(mc, pairs['query'], pairs['doc'])
  dims = (mc['hidden'], mc['layers'], mc['intermediate'])
  result['wins_padding'] = {
      'pad to max_length': FL.total_flops([mc['max_length']] * n, *dims),
      'pad to longest, input order': FL.total_flops(
          FL.padded_lengths(tokens, None, bs, bs * SP.CHUNK_BATCHES), *dims),
      'pad to longest, length-sorted': result['flops']['cross']['executed'],
      'no padding (useful)': result['flops']['cross']['useful']}
  log('speed: student vs teacher')
  result['latency'] = {
      "T' (teacher)": serving_latency(models['bi']['uri'], pairs['query'], pairs['doc'],
                                      sizes['latency_calls']),
      'S (student)': serving_latency(models['student']['uri'], pairs['query'], pairs['doc'],
                                     sizes['latency_calls'])}
  log('speed: worker scaling (cross-encoder)')
  scaling = {w: {n: do_seconds[('cross', w)]} for w in (1, 2)}
  size = sizes['scale_large']
  ex = SP.write_examples(os.path.join(work_dir, f'examples-{size}'), SP.cranfield_pairs(30, size))
  size = ex.get_int_custom_property('pairs')
  for w in (1, 2):
    log(f'speed: scaling: {size} pairs, {w} worker(s)')
    scaling[w][size] = SP.timed(lambda ex=ex, w=w: SP.run_pseudo_labeler(
        ex, models['cross']['uri'], work_dir, w, bs), beam_reps)['seconds']
  marginal = {}
  for w in (1, 2):
    (n0, t0), (n1, t1) = sorted(scaling[w].items())
    marginal[str(w)] = (n1 - n0) / (t1 - t0) if t1 > t0 else None
  result['scaling'] = {'seconds': {str(w): {str(k): v for k, v in s.items()}
                                   for w, s in scaling.items()},
                       'marginal_pairs_per_s': marginal,
                       'crossover_pairs': FL.crossover(scaling[1], scaling[2])}
  log('speed: peak RSS at 1x and 10x corpus (bi-encoder, fresh processes)')
  rss = {}
  for label, k in zip(('1x', '10x'), sizes['rss_k']):
    ex = SP.write_examples(os.path.join(work_dir, f'examples-top{k}'), SP.cranfield_pairs(k))
    rss[label] = dict(SP.rss_child(ex.uri, models['bi']['uri'], work_dir, bs), bm25_top_k=k)
  result['memory'] = rss
  result['wall_seconds'] = time.time() - t_start
  return result
