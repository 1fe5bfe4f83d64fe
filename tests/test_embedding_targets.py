"""Embedding-level pseudo-labels (issue 21): the teacher's embedding of each
text as a target for a bi-encoder student.

Losses on hand-computed inputs; the projection between widths (made only
when they differ, never exported); the pseudo-labeller's embeddings (one
per unique text, the exported teacher's exact values, counts that add up);
and one trainer run with the feature on, through the RankerTrainer
executor's hand-over to run_fn and its lineage record.
"""

import json
import os
import types as pytypes

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.common import example_io
from components.common import teacher_embeddings as TE
from components.pseudo_labeler import labelling as L
from components.pseudo_labeler import outputs as O
from components.pseudo_labeler import spec as S
from components.ranker_trainer import component as trainer_component
from components.ranker_trainer import module
from rankdata import features as F
from rankers import config as RC
from rankers import export as rexport
from rankers import losses
from rankers import models as rmodels
from rankers import training as rtraining
from runconfig import config as C
from tests import e2e_util
from tests import test_pseudo_labeler_executor as plx

# Fixtures of the pseudo-labeller's executor tests: the same inputs and teacher.
workdir, inputs, vocab, bi_teacher = plx.workdir, plx.inputs, plx.vocab, plx.bi_teacher


def test_embedding_losses_on_hand_computed_rows():
  student = tf.constant([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]])
  teacher = tf.constant([[0.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
  mask = tf.constant([True, True, False])
  # Rows 1-2 only: ||(1,-1)||^2 = 2 and 0 -> 1.0; 1 - cos: 1 and 0 -> 0.5.
  assert float(losses.embedding_mse(student, teacher, mask)) == pytest.approx(1.0)
  assert float(losses.embedding_cosine(student, teacher, mask)) == pytest.approx(0.5)
  # Scale-free cosine: (3,4) vs (6,8) is 0; no row in -> 0, not NaN.
  assert float(losses.embedding_cosine(tf.constant([[3.0, 4.0]]), tf.constant([[6.0, 8.0]]),
                                       tf.constant([True]))) == pytest.approx(0.0, abs=1e-7)
  assert float(losses.embedding_mse(student, teacher, tf.zeros([3], tf.bool))) == 0.0
  assert set(losses.EMBEDDING_LOSSES) == set(RC.EMBEDDING_LOSSES)


def test_targets_and_term_follow_the_texts_of_a_batch():
  data = rtraining.ListData(np.array(['q1', 'q2'], object),
                            np.array([['a', 'b'], ['c', '']], object),
                            np.zeros([2, 2], np.float32), np.array([[True, True], [True, False]]))
  emb = rtraining.EmbeddingDistillation(
      'mse', 1.0, queries={'q1': np.array([1.0, 0.0], np.float32)},
      documents={'a': np.array([0.0, 1.0], np.float32), 'c': np.array([1.0, 1.0], np.float32)})
  q_t, q_m, d_t, d_m = emb.targets(data)
  assert q_m.tolist() == [True, False] and d_m.tolist() == [[True, False], [True, False]]
  np.testing.assert_array_equal(d_t[1, 0], [1.0, 1.0])
  # Student: queries (1,0), (5,5); docs at positions 0 (a), 1 (b), 2 (c).
  term = emb.term(tf.constant([[1.0, 0.0], [5.0, 5.0]]),
                  tf.constant([[0.0, 0.0], [9.0, 9.0], [1.0, 2.0]]),
                  tf.constant([0, 1, 2], tf.int64), q_t, q_m, d_t, d_m)
  # q1: 0; a: (0,0) vs (0,1) -> 1; c: (1,2) vs (1,1) -> 1; q2 and b have none.
  assert float(term) == pytest.approx(2.0 / 3.0)


def _tiny_lists(queries=('wing flow', 'heat plate', 'shock drag'),
                docs=(('wing lift', 'heat flow', 'drag body'), ('plate heat', 'jet nozzle', 'wing'),
                      ('shock wave', 'drag', 'cone flow'))):
  """3 lists of 3 pairs with teacher scores (3 queries, 3 x 3 documents)."""
  queries, docs = np.array(queries, object), np.array(docs, object)
  teacher = np.array([[3.0, 1.0, 0.0], [2.0, 0.0, 1.0], [3.0, 2.0, 0.0]], np.float32)
  return rtraining.ListData(queries, docs, np.zeros([3, 3], np.float32), np.ones([3, 3], bool),
                            teacher=teacher, label_mask=np.zeros([3, 3], bool))


def _teacher_table(data, width, seed=0):
  rng = np.random.default_rng(seed)
  unit = lambda: (lambda v: v / np.linalg.norm(v))(rng.normal(size=width)).astype(np.float32)
  return ({q: unit() for q in data.query}, {d: unit() for d in data.docs.ravel()})


@pytest.fixture(scope='module')
def tiny_bi_config(tiny_vocab_file, tiny_encoder_config):
  # 1 layer: these tests train and export; depth adds only tracing time.
  return RC.RankerConfig(architecture='bi_encoder', encoder=tiny_encoder_config(
                         num_layers=1, hidden_dropout=0.0, attention_dropout=0.0),
                         vocab_file=tiny_vocab_file,
                         max_length=16, query_max_length=8)


def _train(config, data, embedding):
  ranker = rmodels.build_ranker(config, seed=1)
  history = rtraining.train_ranker(
      ranker, data, loss=None, epochs=2, batch_lists=2, learning_rate=1e-3, seed=0,
      objective=rtraining.Objective(hard_weight=0.0, soft_on_labelled=True), embedding=embedding)
  return ranker, history


@pytest.fixture(scope='module')
def plain_export(tiny_bi_config, tmp_path_factory):
  """The same ranker trained without embedding targets, exported (one for every teacher width)."""
  ranker, _ = _train(tiny_bi_config, _tiny_lists(), None)
  return rexport.export_ranker(ranker, str(tmp_path_factory.mktemp('embedding') / 'plain'))


@pytest.mark.parametrize('teacher_width', [32, 48])
def test_projection_only_when_widths_differ_and_never_exported(tiny_bi_config, plain_export,
                                                               tmp_path, teacher_width):
  data = _tiny_lists()
  queries, docs = _teacher_table(data, teacher_width)
  embedding = rtraining.EmbeddingDistillation('cosine', 1.0, queries, docs)
  ranker, history = _train(tiny_bi_config, data, embedding)
  assert len(history['embedding_loss']) == 4 and np.isfinite(history['embedding_loss']).all()
  if teacher_width == 32:
    assert embedding.projection is None
  else:
    assert embedding.projection.kernel.shape == (32, 48)
    initial = tf_keras.initializers.GlorotUniform(seed=0)((32, 48)).numpy()   # train seed
    assert not np.allclose(embedding.projection.kernel.numpy(), initial)  # trained
  with_feature = rexport.export_ranker(ranker, str(tmp_path / 'with'))
  plain = plain_export
  shapes = lambda d: sorted((name, tuple(shape)) for name, shape in tf.train.list_variables(
      os.path.join(d, 'variables', 'variables')))
  assert shapes(with_feature) == shapes(plain)   # same variables: no projection
  assert not any('projection' in name for name, _ in shapes(with_feature))
  loaded = tf.saved_model.load(with_feature)
  assert set(loaded.signatures) == set(tf.saved_model.load(plain).signatures)
  assert loaded.signatures['embed_queries'].structured_outputs['embedding'].shape[-1] == 32


def test_cross_encoder_teacher_cannot_emit_embeddings():
  cfg = S.PseudoLabelConfig(emit_embeddings=True)
  with pytest.raises(ValueError, match='bi-encoder teacher'):
    _ = beam.Pipeline() | beam.Create([]) | L.PseudoLabel('/nowhere', False, cfg, b'id')


@pytest.fixture(scope='module')
def emitted(workdir, inputs, bi_teacher):
  config = C.from_dict(S.PseudoLabelConfig, dict(C.to_dict(plx.CONFIG), emit_embeddings=True))
  return plx.run_executor(workdir, 'bi_embeddings', inputs['examples'], bi_teacher,
                          plx.IN_PROCESS, config=config)


@pytest.mark.e2e   # exports a real teacher; a real Beam run
def test_pseudo_labeller_emits_each_unique_text_once_with_the_teachers_values(
    emitted, inputs, bi_teacher):
  counts = emitted['payload']['counts']   # pairs still add up, as without embeddings
  for split in plx.SPLITS:
    assert O.unaccounted(counts[split]) == 0 and counts[split]['kept'] == len(emitted['kept'][split])
    assert counts[split]['pairs_in'] == inputs['pairs_in'][split]
  assert counts['unlabelled']['kept'] == 19 * 3   # the same selection as plx.check_run's
  table = TE.read(emitted['out'].uri)
  # Parsable pairs of the scored splits (malformed records and the record
  # without a document never reach the teacher).
  rows = [r for s in plx.SPLITS for r in inputs['rows'][s]]
  assert set(table[TE.QUERY]) == {r[F.QUERY] for r in rows}
  assert set(table[TE.DOCUMENT]) == {r[F.DOC] for r in rows}   # '' (empty doc) too
  files = tf.io.gfile.glob(TE.file_prefix(emitted['out'].uri) + '*')
  written = sum(1 for _ in example_io.iter_serialized(files))
  assert written == len(table[TE.QUERY]) + len(table[TE.DOCUMENT])   # read() refuses twins
  scorer = rexport.load_scorer(path_utils.serving_model_path(bi_teacher.uri))
  for side, embed in ((TE.QUERY, scorer.embed_queries), (TE.DOCUMENT, scorer.embed_documents)):
    texts = sorted(table[side])
    np.testing.assert_allclose(np.stack([table[side][t] for t in texts]),
                               np.asarray(embed(texts, batch_size=4)), atol=1e-5)
  text_counts = emitted['payload']['embeddings']
  for side in TE.SIDES:
    assert text_counts[side] == {S.TEXTS_UNIQUE: len(table[side]), S.TEXTS_EMBEDDED: len(table[side]),
                            S.TEXTS_FAILED: 0}
    assert emitted['out'].get_int_custom_property(f'embeddings_{side}_embedded') == len(table[side])
  assert emitted['out'].get_string_custom_property(S.TEACHER_EMBEDDINGS_PROPERTY) == TE.DIR


def _fn_args(tmp_path, examples_uri, custom_config):
  return pytypes.SimpleNamespace(
      train_files=[os.path.join(example_io.split_dir(examples_uri, s), '*') for s in plx.SPLITS],
      eval_files=[], serving_model_dir=str(tmp_path / 'model' / 'Format-Serving'),
      model_run_dir=str(tmp_path / 'model_run'), base_model=None, custom_config=custom_config)


@pytest.mark.e2e   # trains and exports a (tiny) student on a real pseudo-labeller output
def test_trainer_learns_the_teachers_embeddings_and_records_whose(emitted, bi_teacher, vocab,
                                                                  tmp_path):
  objective = C.ObjectiveConfig(hard_weight=0.5, soft_on_labelled=True, embedding_loss='mse',
                                embedding_weight=2.0)
  student = C.ModelConfig(checkpoint=None, vocab_file=vocab, max_length=48, query_max_length=16,
                          encoder=C.EncoderSizeConfig(num_layers=1, hidden_size=16, num_heads=2,
                                                      intermediate_size=32))
  custom_config = {'model': C.to_dict(student), 'objective': C.to_dict(objective),
                   'train': C.to_dict(C.TrainConfig(epochs=1, list_size=4, batch_lists=4,
                                                    learning_rate=1e-3, log_every=100)),
                   'role': 'student'}
  teacher = trainer_component.embedding_teacher(custom_config, [emitted['out']])
  assert teacher == {TE.EXAMPLES_URI_KEY: emitted['out'].uri, 'teacher_uri': bi_teacher.uri,
                     'teacher_fingerprint': emitted['payload']['teacher']['teacher_fingerprint'],
                     S.TEMPERATURE_PROPERTY: plx.CONFIG.temperature}
  off = dict(custom_config, objective=C.to_dict(C.ObjectiveConfig()))
  assert trainer_component.embedding_teacher(off, [emitted['out']]) is None
  module.run_fn(_fn_args(tmp_path, emitted['out'].uri, dict(custom_config,
                                                            embedding_teacher=teacher)))
  with open(tmp_path / 'model_run' / 'training_summary.json') as f:
    summary = json.load(f)
  record = summary['embedding_teacher']
  assert (record['teacher_uri'], record['teacher_fingerprint']) == (
      teacher['teacher_uri'], teacher['teacher_fingerprint'])
  assert record['projection'] is True and record['teacher_dim'] == 32   # 16 -> 32
  assert record['query_texts'] > 0 and record['document_texts'] > 0
  losses_seen = summary['history']['embedding_loss']
  assert losses_seen and all(np.isfinite(losses_seen))
  exported = os.path.join(tmp_path, 'model', 'Format-Serving')
  with open(os.path.join(exported, rexport.ASSETS_EXTRA, rexport.METADATA_FILE)) as f:
    assert json.load(f)['embedding_teacher'] == record
  names = [n for n, _ in tf.train.list_variables(os.path.join(exported, 'variables', 'variables'))]
  assert not any('projection' in n for n in names)
  model = standard_artifacts.Model()
  trainer_component.record_embedding_teacher(model, teacher)
  assert model.get_string_custom_property('embedding_teacher_uri') == bi_teacher.uri


def test_trainer_without_teacher_embeddings_says_why(tmp_path):
  objective = C.ObjectiveConfig(embedding_loss='cosine')
  with pytest.raises(ValueError, match='hold no teacher embeddings'):
    module.embedding_distillation(objective, {TE.EXAMPLES_URI_KEY: str(tmp_path)},
                                  [{F.QUERY: 'q', F.DOC: 'd'}], 'student')
  assert module.embedding_distillation(C.ObjectiveConfig(), None, [], 'student') is None


@pytest.mark.e2e   # a whole (tiny) pipeline: TFX, Beam and MLMD
@pytest.mark.timeout(1200)
def test_pipeline_student_learns_its_teachers_embeddings_and_mlmd_says_whose(tmp_path):
  from ml_metadata.metadata_store import metadata_store  # pylint: disable=g-import-not-at-top
  from ml_metadata.proto import metadata_store_pb2
  from pipelines import local_runner
  base = e2e_util.tiny_pipeline_config(tmp_path, architecture='bi_encoder')
  student_model = dict(base['teacher']['model'], encoder={   # 16 wide: T is 32, so projected
      'num_layers': 1, 'hidden_size': 16, 'num_heads': 2, 'intermediate_size': 32})
  raw = dict(base, data_validation=False, push={'enabled': False},
             teacher_prime={'rounds': 0},
             student={'model': student_model, 'train': base['teacher']['train'],
                      'supervised_baseline': False,
                      'objective': {'hard_weight': 0.5, 'soft_on_labelled': True,
                                    'max_soft_lists': 10, 'embedding_loss': 'cosine'}},
             blessing={'min_improvement': -1.0, 'retention': 0.0, 'must_beat_first_stage': False,
                       'compare_last_blessed': False})
  cfg = C.from_dict(C.PipelineConfig, raw)
  local_runner.run(cfg)
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = cfg.metadata_sqlite
  store = metadata_store.MetadataStore(config)
  props = lambda a: {k: (v.string_value or v.int_value) for k, v in a.custom_properties.items()}
  labelled = [props(a) | {'uri': a.uri} for a in store.get_artifacts_by_type('Examples')
              if 'teacher_embeddings' in a.custom_properties]
  models = [props(a) | {'uri': a.uri} for a in store.get_artifacts_by_type('Model')
            if 'embedding_teacher_uri' in a.custom_properties]
  assert len(labelled) == 1 and len(models) == 1   # the transfer set; the student
  assert labelled[0]['embeddings_document_embedded'] == labelled[0]['embeddings_document_unique']
  assert models[0]['embedding_teacher_uri'] == labelled[0]['teacher_uri']
  assert models[0]['embedding_teacher_fingerprint'] == labelled[0]['teacher_fingerprint']
  with open(os.path.join(models[0]['uri'], 'Format-Serving', rexport.ASSETS_EXTRA,
                         rexport.METADATA_FILE)) as f:
    record = json.load(f)['embedding_teacher']
  assert record['projection'] is True and record['loss'] == 'cosine'
  assert record['examples_uri'] == labelled[0]['uri']
