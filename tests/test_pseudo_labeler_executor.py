"""PseudoLabeler executor on real (tiny, random-init) teachers, in Beam.

~200 pairs with malformed records, a record without a doc, an empty
document and a duplicate pair, scored by a cross-encoder and a bi-encoder,
in-process and with two worker processes (where tf-text op registration in
the workers matters). Checks what a downstream stage relies on: outputs load,
counts add up and equal what was written, every kept example names its
teacher, labelled pairs keep their labels, and scores equal direct scoring.
"""

import collections
import dataclasses
import glob
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.common import example_io
from components.pseudo_labeler import outputs as O
from components.pseudo_labeler import executor as E
from components.pseudo_labeler import spec as S
from rankdata import features as F
from rankers import export
from rankers import models
from rankers.config import EncoderConfig
from rankers.config import RankerConfig
from runconfig import config as C
from tests import e2e_util

MODEL_ID = 123
WORDS = ('flow wing pressure boundary layer heat transfer shock mach supersonic '
         'laminar turbulent body drag lift nozzle jet plate cylinder cone').split()
# 5 dead letters in 200 pairs: above the default 1 % threshold, on purpose.
CONFIG = S.PseudoLabelConfig(keep_top_k=3, keep_bottom_k=1, max_pairs_per_query=3, batch_size=16,
                             max_dead_letter_fraction=0.05)
SPLITS = ['train', 'unlabelled']
IN_PROCESS = C.BeamConfig().pipeline_args()   # what a local run passes
TWO_WORKERS = C.BeamConfig(direct_num_workers=2, direct_running_mode='multi_processing').pipeline_args()
EXPECTED_DEAD = {('unlabelled', 'malformed_record'): 2, ('unlabelled', 'missing_doc'): 1,
                 ('unlabelled', 'duplicate_pair'): 1, ('train', 'malformed_record'): 1}


def _text(rng, n):
  return ' '.join(rng.choice(WORDS, size=n))


def _write_records(uri, split, records):
  """Writes raw records (serialized examples or junk) as one gzipped TFRecord."""
  os.makedirs(example_io.split_dir(uri, split), exist_ok=True)
  path = os.path.join(example_io.split_dir(uri, split), 'data_tfrecord-00000-of-00001.gz')
  with tf.io.TFRecordWriter(path, options='GZIP') as writer:
    for record in records:
      writer.write(record)
  return len(records)


def _ser(row):
  return example_io.to_tf_example(row).SerializeToString()


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('pseudo_labeler'))


@pytest.fixture(scope='module')
def inputs(workdir):
  """Examples artifact: train 5x8 labelled (+ an empty doc), unlabelled 19x8
  (+ duplicate, empty doc, one-candidate query), bad records, and a test
  split the config does not ask for."""
  rng = np.random.default_rng(0)
  docs = {f'd{i}': _text(rng, 12) for i in range(40)}
  docs['empty'] = ''
  rows = {'train': [], 'unlabelled': []}
  for split, n_queries, labelled in (('train', 5, True), ('unlabelled', 19, False)):
    for q in range(n_queries):
      qid = f'{split[0]}{q}'
      query = _text(rng, 3)
      for rank, did in enumerate(rng.choice(40, size=8, replace=False)):
        rows[split].append({F.QUERY_ID: qid, F.DOC_ID: f'd{did}', F.QUERY: query,
                            F.DOC: docs[f'd{did}'],
                            F.LABEL: float(rank % 3) if labelled else None,
                            F.FIRST_STAGE_SCORE: 10.0 - rank, F.FIRST_STAGE_RANK: rank + 1})
  for split in SPLITS:
    first = rows[split][0]
    rows[split].append(dict(first, **{F.DOC_ID: 'empty', F.DOC: '', F.FIRST_STAGE_RANK: 9}))
  rows['unlabelled'].append({F.QUERY_ID: 'solo', F.DOC_ID: 'd1', F.QUERY: 'lonely wing',
                             F.DOC: docs['d1'], F.LABEL: None, F.FIRST_STAGE_SCORE: 1.0,
                             F.FIRST_STAGE_RANK: 1})
  duplicate = rows['unlabelled'][10]
  no_doc = tf.train.Example.FromString(_ser(dict(duplicate, **{F.DOC_ID: 'nodoc'})))
  del no_doc.features.feature[F.DOC]
  records = {
      'train': [_ser(r) for r in rows['train']] + [b'\x00\xffjunk'],
      'unlabelled': ([_ser(r) for r in rows['unlabelled']]
                     + [_ser(duplicate), b'\xff\xff\xff', b'\x0a\x05oops',
                        no_doc.SerializeToString()]),
  }
  examples = standard_artifacts.Examples()
  examples.uri = os.path.join(workdir, 'examples')
  for split in SPLITS:
    _write_records(examples.uri, split, records[split])
  example_io.write_split(examples.uri, 'test', rows['train'][:5])
  examples.split_names = artifact_utils.encode_split_names(SPLITS + ['test'])
  return {'examples': examples, 'rows': rows, 'pairs_in': {s: len(records[s]) for s in SPLITS}}


@pytest.fixture(scope='module')
def vocab(workdir):
  return e2e_util.write_tiny_vocab(os.path.join(workdir, 'vocab.txt'))


def _teacher(workdir, vocab, architecture):
  with open(vocab, encoding='utf-8') as f:
    size = sum(1 for _ in f)
  config = RankerConfig(architecture, encoder=EncoderConfig(
      vocab_size=size, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
      max_position_embeddings=64), vocab_file=vocab, max_length=48, query_max_length=16)
  model = standard_artifacts.Model()
  model.uri = os.path.join(workdir, f'model_{architecture}')
  model.id = MODEL_ID
  export.export_ranker(models.build_ranker(config, seed=3),
                       path_utils.serving_model_path(model.uri))
  return model


@pytest.fixture(scope='module')
def cross_teacher(workdir, vocab):
  return _teacher(workdir, vocab, 'cross_encoder')


@pytest.fixture(scope='module')
def bi_teacher(workdir, vocab):
  return _teacher(workdir, vocab, 'bi_encoder')


def run_executor(workdir, name, examples, model, beam_args, config=CONFIG):
  out = standard_artifacts.Examples()
  out.uri = os.path.join(workdir, name, 'pseudo_labelled')
  report = S.PseudoLabelReport()
  report.uri = os.path.join(workdir, name, 'report')
  for artifact in (out, report):
    os.makedirs(artifact.uri, exist_ok=True)
  context = base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=beam_args, tmp_dir=os.path.join(workdir, name, 'tmp'),
      unique_id=name)
  E.Executor(context).Do({S.EXAMPLES_KEY: [examples], S.MODEL_KEY: [model]},
                         {S.PSEUDO_LABELLED_KEY: [out], S.REPORT_KEY: [report]},
                         {S.CONFIG_KEY: C.to_json(config)})
  with open(os.path.join(report.uri, S.COUNTS_FILE)) as f:
    payload = json.load(f)
  print(f'\n{name}: {payload["counts"]["total"]["pairs_in"]} pairs in '
        f'{payload["pipeline_seconds"]:.1f}s = {payload["pairs_per_second"]:.1f} pairs/s')
  return {'out': out, 'report': report, 'payload': payload, 'model': model,
          'kept': {s: example_io.read_split(out.uri, s) for s in config.splits}}


@pytest.fixture(scope='module')
def cross_run(workdir, inputs, cross_teacher):
  return run_executor(workdir, 'cross', inputs['examples'], cross_teacher, IN_PROCESS)


@pytest.fixture(scope='module')
def bi_run(workdir, inputs, bi_teacher):
  return run_executor(workdir, 'bi', inputs['examples'], bi_teacher, IN_PROCESS)


def dead_letters(report_uri):
  lines = []
  for path in sorted(glob.glob(os.path.join(report_uri, 'dead_letter-*.jsonl'))):
    with open(path) as f:
      lines += [json.loads(line) for line in f if line.strip()]
  return lines


def check_run(run, inputs):
  """Everything a downstream stage relies on, for one executor run."""
  out, report, payload, model = run['out'], run['report'], run['payload'], run['model']
  counts = payload['counts']
  model_dir = path_utils.serving_model_path(model.uri)
  fingerprint = E.teacher_fingerprint(model_dir)
  teacher_id = fingerprint   # the content, not the MLMD id (hashed in a Kubeflow container)

  # Layout and format.
  assert artifact_utils.decode_split_names(out.split_names) == SPLITS
  assert examples_utils.get_payload_format(out) == example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE
  assert not os.path.exists(example_io.split_dir(out.uri, 'test'))
  for split in SPLITS:
    assert glob.glob(os.path.join(example_io.split_dir(out.uri, split), 'data_tfrecord-*.gz'))

  # Counts add up and equal what was written.
  letters = dead_letters(report.uri)
  assert all(set(d) == {'reason', 'split', 'record'} for d in letters)
  by_reason = collections.Counter((d['split'], d['reason']) for d in letters)
  assert dict(by_reason) == EXPECTED_DEAD
  for split in SPLITS + [S.TOTAL]:
    values = counts[split]
    assert O.unaccounted(values) == 0, values
    if split != S.TOTAL:
      assert values['pairs_in'] == inputs['pairs_in'][split]
      assert values['kept'] == len(run['kept'][split])
      for reason in S.DEAD_LETTER_REASONS:
        assert values[f'dead_letter_{reason}'] == by_reason.get((split, reason), 0)
      assert values['empty_text_scored'] == 1
    for name, n in values.items():
      assert out.get_int_custom_property(f'{split}_{name}') == n
      assert report.get_int_custom_property(f'{split}_{name}') == n
  assert counts[S.TOTAL]['pairs_in'] == sum(inputs['pairs_in'].values())
  # Beam metrics agree where the runner reports them.
  for split in SPLITS:
    for name, n in counts[split].items():
      if f'{split}_{name}' in payload['beam_metrics']:
        assert payload['beam_metrics'][f'{split}_{name}'] == n, name
  assert payload['beam_metrics'][f'unlabelled_pairs_in'] == inputs['pairs_in']['unlabelled']

  # Selection on the unlabelled split: 19 lists of 8 -> 3 kept each; the list
  # with the empty doc (9) -> 3; the single-candidate list -> no_signal.
  u = counts['unlabelled']
  assert u['kept'] == 19 * 3
  assert u['filtered_not_top_or_bottom'] == 18 * 4 + 5
  assert u['filtered_over_query_cap'] == 19
  assert u['filtered_no_signal'] == 1

  # Teacher identity.
  for artifact in (out, report):
    assert not artifact.has_custom_property('teacher_model_id')
    assert artifact.get_string_custom_property('teacher_fingerprint') == fingerprint
    assert artifact.get_string_custom_property('teacher_uri') == model.uri
  assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0
  for split in SPLITS:
    for ex in run['kept'][split]:
      assert ex[F.TEACHER_ID] == teacher_id
      for key in (F.TEACHER_SCORE, F.SOFT_LABEL, F.HARD_LABEL, F.CONFIDENCE):
        assert ex[key] is not None and np.isfinite(ex[key])

  # Labelled pairs: all kept, labels and original features unchanged.
  want = {(r[F.QUERY_ID], r[F.DOC_ID]): r for r in inputs['rows']['train']}
  got = {(r[F.QUERY_ID], r[F.DOC_ID]): r for r in run['kept']['train']}
  assert got.keys() == want.keys()
  for key, row in want.items():
    assert got[key][F.LABEL] == pytest.approx(row[F.LABEL])
    for feature in (F.QUERY, F.DOC, F.FIRST_STAGE_RANK):
      assert got[key][feature] == row[feature]
  assert got[('t0', 'empty')][F.DOC] == ''
  for qid in {k[0] for k in got}:
    soft = [r[F.SOFT_LABEL] for k, r in got.items() if k[0] == qid]
    assert sum(soft) == pytest.approx(1.0, abs=1e-5)
    assert sum(r[F.HARD_LABEL] for k, r in got.items() if k[0] == qid) == 1.0

  # Scores equal direct scoring with the exported model.
  scorer = export.load_scorer(model_dir)
  kept = run['kept']['train'] + run['kept']['unlabelled']
  direct = scorer.score([r[F.QUERY] for r in kept], [r[F.DOC] for r in kept])
  np.testing.assert_allclose([r[F.TEACHER_SCORE] for r in kept], direct, atol=1e-4, rtol=1e-4)

  # Report files.
  with open(os.path.join(report.uri, S.PLOT_FILE), 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  assert payload['teacher']['teacher_id'] == teacher_id
  assert payload['config'] == C.to_dict(CONFIG)


def scores_by_pair(run):
  return {(s, r[F.QUERY_ID], r[F.DOC_ID]): (r[F.TEACHER_SCORE], r[F.SOFT_LABEL], r[F.HARD_LABEL],
                                           r[F.CONFIDENCE])
          for s in SPLITS for r in run['kept'][s]}


@pytest.mark.e2e   # exports a real teacher; a real Beam run
def test_cross_encoder_in_process(cross_run, inputs):
  assert cross_run['payload']['teacher']['architecture'] == 'cross_encoder'
  check_run(cross_run, inputs)


@pytest.mark.e2e   # exports a real teacher; a real Beam run
def test_bi_encoder_in_process(bi_run, inputs):
  assert bi_run['payload']['teacher']['architecture'] == 'bi_encoder'
  check_run(bi_run, inputs)


@pytest.mark.e2e   # Beam worker processes: minutes on 2 cores
@pytest.mark.parametrize('architecture', ['bi_encoder', 'cross_encoder'])
def test_two_worker_processes_match_in_process(architecture, workdir, inputs, request):
  in_process = request.getfixturevalue('bi_run' if architecture == 'bi_encoder' else 'cross_run')
  run = run_executor(workdir, f'{architecture}_2workers', inputs['examples'],
                     in_process['model'], TWO_WORKERS)
  check_run(run, inputs)
  assert run['payload']['counts'] == in_process['payload']['counts']
  # Bitwise: every teacher call sees a batch fixed by the data, not by how
  # bundles reached the workers (pseudo_labeler/canonical.py).
  a, b = scores_by_pair(in_process), scores_by_pair(run)
  assert a.keys() == b.keys() and a == b


@pytest.mark.e2e   # exports a real teacher; a real Beam run
def test_missing_splits_are_skipped_and_none_is_an_error(workdir, inputs, cross_teacher):
  config = S.PseudoLabelConfig(splits=['dev', 'nope'])
  with pytest.raises(ValueError, match='none of the configured splits'):
    run_executor(workdir, 'nosplit', inputs['examples'], cross_teacher, IN_PROCESS, config)


@pytest.mark.e2e   # a fresh interpreter importing TensorFlow
def test_fresh_process_needs_tensorflow_text(cross_teacher):
  """The pitfall the scoring DoFn's setup() avoids: a fresh interpreter (a
  Beam worker) cannot load the teacher until tensorflow_text is imported."""
  model_dir = path_utils.serving_model_path(cross_teacher.uri)
  script = textwrap.dedent(f'''
      import tensorflow as tf
      try:
        tf.saved_model.load({model_dir!r})
        print('PLAIN_LOAD_OK')
      except Exception as e:  # Op type not registered
        print('PLAIN_LOAD_FAILED', str(e).splitlines()[0])
      from components.pseudo_labeler import teacher
      print('TEACHER_SCORE', teacher.load_teacher({model_dir!r}).score(['wing'], ['flow'])[0])
  ''')
  result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          timeout=600, cwd=e2e_util.ROOT, check=False)  # a hang guard; TF import under load
  assert 'PLAIN_LOAD_FAILED' in result.stdout, result.stdout + result.stderr
  assert 'not registered' in result.stdout
  assert 'TEACHER_SCORE' in result.stdout, result.stderr


@pytest.mark.e2e   # exports a real teacher; a real Beam run
def test_fingerprint_changes_with_content(workdir, cross_teacher):
  model_dir = path_utils.serving_model_path(cross_teacher.uri)
  copy = os.path.join(workdir, 'fingerprint_copy')
  shutil.copytree(model_dir, copy)
  assert E.teacher_fingerprint(copy) == E.teacher_fingerprint(model_dir)
  with open(glob.glob(os.path.join(copy, 'variables', 'variables.data-*'))[0], 'r+b') as f:
    f.seek(100)
    byte = f.read(1)
    f.seek(100)
    f.write(bytes([byte[0] ^ 1]))
  assert E.teacher_fingerprint(copy) != E.teacher_fingerprint(model_dir)


def test_check_counts_rejects_lost_pairs_and_a_teacher_that_scores_nothing():
  ok = O.counts_from_rows([['u', 'pairs_in', 3], ['u', 'kept', 2],
                           ['u', 'dead_letter_scoring_error', 1]], ['u'])
  E.check_counts(ok, '/r')
  lost = O.counts_from_rows([['u', 'pairs_in', 3], ['u', 'kept', 1]], ['u'])
  with pytest.raises(RuntimeError, match='neither kept'):
    E.check_counts(lost, '/r')
  broken = O.counts_from_rows([['u', 'pairs_in', 3], ['u', 'dead_letter_scoring_error', 2],
                               ['u', 'dead_letter_malformed_record', 1]], ['u'])
  with pytest.raises(RuntimeError, match='failed on all 2'):
    E.check_counts(broken, '/r')


# --- a teacher that fails on some records ------------------------------------

POISON = 'theory'   # in the tiny (Cranfield) vocabulary, not in WORDS


@pytest.fixture(scope='module')
def poisoned_teacher(workdir, vocab):
  """A real cross-encoder whose embedding of one word is NaN: every pair with
  that word gets a non-finite score (a `scoring_error` dead letter)."""
  with open(vocab, encoding='utf-8') as f:
    tokens = [line.rstrip('\n') for line in f]
  config = RankerConfig('cross_encoder', encoder=EncoderConfig(
      vocab_size=len(tokens), hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
      max_position_embeddings=64), vocab_file=vocab, max_length=48, query_max_length=16)
  ranker = models.build_ranker(config, seed=3)
  table = ranker.model.encoder.embeddings.word_embeddings.embeddings
  rows = table.numpy()
  rows[tokens.index(POISON)] = np.nan
  table.assign(rows)
  model = standard_artifacts.Model()
  model.uri = os.path.join(workdir, 'model_poisoned')
  model.id = MODEL_ID
  export.export_ranker(ranker, path_utils.serving_model_path(model.uri))
  return model


@pytest.fixture(scope='module')
def poison_inputs(workdir):
  """unlabelled: 10 queries x 5 docs; doc 'dp' (in 3 lists) holds the word."""
  rng = np.random.default_rng(1)
  rows = []
  for q in range(10):
    docs = [f'd{q}_{i}' for i in range(4)] + (['dp'] if q < 3 else [f'd{q}_4'])
    for rank, did in enumerate(docs):
      text = f'wing {POISON} flow' if did == 'dp' else _text(rng, 8)
      rows.append({F.QUERY_ID: f'q{q}', F.DOC_ID: did, F.QUERY: _text(rng, 3), F.DOC: text,
                   F.LABEL: None, F.FIRST_STAGE_SCORE: 5.0 - rank,
                   F.FIRST_STAGE_RANK: rank + 1})
  examples = standard_artifacts.Examples()
  examples.uri = os.path.join(workdir, 'poison_examples')
  example_io.write_split(examples.uri, 'unlabelled', rows)
  examples.split_names = artifact_utils.encode_split_names(['unlabelled'])
  return examples


@pytest.mark.e2e   # a real teacher in a real Beam run
def test_too_many_teacher_failures_fail_the_execution(workdir, poison_inputs,
                                                      poisoned_teacher):
  config = S.PseudoLabelConfig(splits=['unlabelled'], batch_size=8)
  assert config.max_dead_letter_fraction == 0.01
  with pytest.raises(E.TooManyDeadLettersError) as e:
    run_executor(workdir, 'poisoned', poison_inputs, poisoned_teacher, IN_PROCESS, config)
  message = str(e.value)
  assert message.startswith('3 of 50 pairs (6.00%) were dead-lettered, more than '
                            'max_dead_letter_fraction=0.01 allows')
  assert "{'scoring_error': 3}" in message
  for q in range(3):
    assert f'unlabelled q{q}/dp: scoring_error (non-finite score nan)' in message
  # Nothing that looks complete is left behind: no data, no counts on the output.
  out_uri = os.path.join(workdir, 'poisoned', 'pseudo_labelled')
  assert not glob.glob(os.path.join(out_uri, '**', '*.gz'), recursive=True)
  with open(os.path.join(workdir, 'poisoned', 'report', S.COUNTS_FILE)) as f:
    failed = json.load(f)
  assert failed['failed'] is True and failed['counts']['total']['dead_letter_scoring_error'] == 3
  assert len(dead_letters(os.path.join(workdir, 'poisoned', 'report'))) == 3


@pytest.mark.e2e   # a real teacher in a real Beam run
def test_teacher_failures_below_the_threshold_are_dead_letters(workdir, poison_inputs,
                                                               poisoned_teacher):
  config = S.PseudoLabelConfig(splits=['unlabelled'], batch_size=8,
                               max_dead_letter_fraction=0.1)
  run = run_executor(workdir, 'poisoned_ok', poison_inputs, poisoned_teacher, IN_PROCESS,
                     config)
  total = run['payload']['counts']['total']
  assert total['pairs_in'] == 50 and total['dead_letter_scoring_error'] == 3
  assert total['kept'] == 47 == len(run['kept']['unlabelled'])
  assert run['out'].get_int_custom_property('total_dead_letter_scoring_error') == 3
  assert {d['record']['doc_id'] for d in dead_letters(run['report'].uri)} == {'dp'}


@pytest.mark.e2e   # exports a real teacher; a real Beam run
def test_fused_targets_are_recorded_and_add_the_first_stage(workdir, inputs, cross_run):
  """fuse_first_stage with a set weight: every kept train pair's target is the
  teacher's score (the plain run's) + 0.25 x its first-stage score; the
  weight is on both artifacts and in counts.json."""
  config = dataclasses.replace(CONFIG, fuse_first_stage=True, first_stage_weight=0.25)
  run = run_executor(workdir, 'cross_fused', inputs['examples'], cross_run['model'], IN_PROCESS,
                     config=config)
  for artifact in (run['out'], run['report']):
    assert artifact.get_float_custom_property(S.FIRST_STAGE_WEIGHT_PROPERTY) == 0.25
  assert not cross_run['out'].has_custom_property(S.FIRST_STAGE_WEIGHT_PROPERTY)
  assert run['payload']['fusion'] == {'weight': 0.25, 'source': 'config'}
  assert cross_run['payload']['fusion'] is None
  assert run['payload']['counts']['train']['kept'] == cross_run['payload']['counts']['train']['kept']
  plain = {(r[F.QUERY_ID], r[F.DOC_ID]): r[F.TEACHER_SCORE] for r in cross_run['kept']['train']}
  fused = {(r[F.QUERY_ID], r[F.DOC_ID]): r for r in run['kept']['train']}
  assert fused.keys() == plain.keys()
  for key, row in fused.items():
    assert row[F.TEACHER_SCORE] == pytest.approx(plain[key] + 0.25 * row[F.FIRST_STAGE_SCORE],
                                                 abs=1e-4)
  # Fitting the weight needs the calibration split, which these Examples lack:
  # refused before any Beam work.
  fit = dataclasses.replace(CONFIG, fuse_first_stage=True, splits=SPLITS + ['calibration'])
  with pytest.raises(ValueError, match="fits its weight on the 'calibration' split, which the "
                                       'input Examples'):
    run_executor(workdir, 'cross_fused_fit', inputs['examples'], cross_run['model'], IN_PROCESS,
                 config=fit)
