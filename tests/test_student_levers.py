"""Two of the student's CPU levers (issue 21): in-batch negatives scored by
the teacher's embeddings, and a frozen word-embedding table.

Hand-computed in-batch KL; a training run with the term (its history, a
falling loss); the teacher's logit scale read from a real export and the
pseudo-labelled artifact's temperature; the config rules; and a frozen
table that is bitwise the loaded one after training while the rest moves.
"""

import numpy as np
import pytest
import tensorflow as tf

from components.ranker_trainer import module
from components.pseudo_labeler import keys as pl_keys
from pipelines import validation
from rankers import config as RC
from rankers import export as rexport
from rankers import losses
from rankers import models as rmodels
from rankers import training as rtraining
from runconfig import config as C
from tests import e2e_util
from tests import test_embedding_targets as emb_tests


def _unit(rows):
  rows = np.asarray(rows, np.float32)
  return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _kl_rows(student, teacher, mask):
  """Mean over rows with >= 2 masked-in entries of KL(softmax(t) || softmax(s))."""
  out = []
  for s, t, m in zip(student, teacher, mask):
    if m.sum() < 2:
      continue
    s, t = s[m], t[m]
    p = np.exp(t - t.max()) / np.exp(t - t.max()).sum()
    log_q = s - s.max() - np.log(np.exp(s - s.max()).sum())
    out.append(float((p * (np.log(p) - log_q)).sum()))
  return np.mean(out)


def test_in_batch_term_is_the_kl_over_every_query_document_pair_of_the_batch():
  # 2 lists of 2 slots; slot (1, 1) is padding. Positions 0, 1, 2 are the
  # unmasked documents a, b, c; query q2 has no teacher embedding.
  q_target = _unit([[1.0, 0.0], [0.0, 1.0]])
  d_target = np.zeros([2, 2, 2], np.float32)
  d_target[0, 0], d_target[0, 1], d_target[1, 0] = _unit([[1.0, 1.0], [0.0, 1.0], [1.0, -1.0]])
  q_mask = np.array([True, False])
  d_mask = np.array([[True, True], [True, False]])
  positions = tf.constant([0, 1, 2], tf.int64)
  student = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]], np.float32)
  emb = rtraining.EmbeddingDistillation(
      RC.EMBEDDING_LOSS_OFF, 1.0, {}, {}, in_batch=True, teacher_similarity='cosine',
      teacher_logit_scale=10.0)
  got = emb.in_batch_term(tf.constant(student), positions, q_target, q_mask, d_target, d_mask)
  teacher = 10.0 * q_target @ np.stack([d_target[0, 0], d_target[0, 1], d_target[1, 0]]).T
  mask = q_mask[:, None] & np.array([True, True, True])[None, :]
  assert float(got) == pytest.approx(_kl_rows(student, teacher, mask), rel=1e-5)
  # A student that scores as the teacher does has nothing left to learn.
  assert float(emb.in_batch_term(tf.constant(teacher), positions, q_target, q_mask, d_target,
                                 d_mask)) == pytest.approx(0.0, abs=1e-6)
  # Off: no term; and the embedding-level loss is off too (loss none).
  off = rtraining.EmbeddingDistillation(RC.EMBEDDING_LOSS_OFF, 1.0, {}, {}, in_batch=False)
  assert float(off.in_batch_term(tf.constant(student), positions, q_target, q_mask, d_target,
                                 d_mask)) == 0.0
  with pytest.raises(ValueError, match='nothing to learn'):
    rtraining.EmbeddingDistillation(RC.EMBEDDING_LOSS_OFF, 1.0, {'q': q_target[0]}, {}).validate()
  assert float(emb.term(None, None, None, None, None, None, None)) == 0.0


def test_score_matrix_entries_equal_the_row_wise_scores(tiny_bi_config):
  ranker = rmodels.build_ranker(tiny_bi_config, seed=0)
  q = tf.random.stateless_normal([3, 32], seed=[1, 2])
  d = tf.random.stateless_normal([4, 32], seed=[3, 4])
  matrix = ranker.model.score_matrix(q, d).numpy()
  for i in range(3):
    rows = ranker.score_embeddings(tf.repeat(q[i:i + 1], 4, axis=0), d).numpy()
    np.testing.assert_allclose(matrix[i], rows, rtol=1e-5, atol=1e-5)
  # The Keras model's own call still scores pairs (score_matrix sits beside it).
  inputs = ranker.tokenizer.single(tf.constant(['apple', 'cat dog']), 8)
  np.testing.assert_allclose(
      ranker.model({'query': inputs, 'doc': inputs}).numpy(),
      ranker.model.score_embeddings(ranker.model.embed(inputs), ranker.model.embed(inputs)).numpy(),
      rtol=1e-6)


tiny_bi_config = emb_tests.tiny_bi_config


def _word_lists():
  """The embedding tests' 3 lists in the tiny vocabulary (tests/conftest.py),
  so that texts differ after tokenisation (theirs are all [UNK])."""
  return emb_tests._tiny_lists(  # pylint: disable=protected-access
      ('apple', 'cat', 'red'), (('apple banana', 'cherry grape', 'lemon mango'),
                                ('cat dog', 'horse mouse', 'tiger zebra'),
                                ('red blue', 'green black', 'white olive')))


def test_training_with_in_batch_negatives_records_the_term_and_lowers_it(tiny_bi_config):
  data = _word_lists()
  queries, docs = emb_tests._teacher_table(data, 32)  # pylint: disable=protected-access
  embedding = rtraining.EmbeddingDistillation(RC.EMBEDDING_LOSS_OFF, 1.0, queries, docs,
                                              in_batch=True, teacher_logit_scale=20.0)
  ranker = rmodels.build_ranker(tiny_bi_config, seed=1)
  history = rtraining.train_ranker(
      ranker, data, loss=None, epochs=20, batch_lists=3, learning_rate=3e-3, seed=0,
      objective=rtraining.Objective(hard_weight=0.0, soft_on_labelled=True), embedding=embedding)
  seen = history['in_batch_loss']
  assert len(seen) == 20 and np.isfinite(seen).all()   # one batch of 3 lists per epoch
  assert history['embedding_loss'] == [0.0] * 20        # loss none: no embedding-level term
  assert np.mean(seen[-3:]) < 0.5 * np.mean(seen[:3])   # it learns the teacher's batch scores
  # total = hard_weight x hard + soft_weight x (soft + in-batch)
  np.testing.assert_allclose(history['loss'], np.add(history['soft_loss'], seen), rtol=1e-5)


def test_teacher_logits_come_from_the_teachers_export_and_the_labels_temperature(
    tiny_bi_config, tmp_path):
  ranker = rmodels.build_ranker(tiny_bi_config, seed=0)
  export = rexport.export_ranker(ranker, str(tmp_path / 'teacher' / 'Format-Serving'))
  assert rexport.read_ranker_config(export).cosine_scale == ranker.config.cosine_scale == 20.0
  teacher = {'teacher_uri': str(tmp_path / 'teacher'), pl_keys.TEMPERATURE_PROPERTY: 2.0}
  assert module.teacher_logits(teacher) == ('cosine', 10.0)
  del teacher[pl_keys.TEMPERATURE_PROPERTY]   # an artifact from before the property
  assert module.teacher_logits(teacher) == ('cosine', 20.0)
  with pytest.raises(FileNotFoundError, match='config.json'):
    rexport.read_ranker_config(str(tmp_path / 'nowhere'))


def _config(tmp_path, **student):
  raw = e2e_util.tiny_pipeline_config(tmp_path)
  raw['student'] = dict({'model': raw['teacher']['model']}, **student)
  return C.from_dict(C.PipelineConfig, raw)


def test_in_batch_negatives_are_checked_with_the_config(tmp_path):
  ok = _config(tmp_path, objective={'in_batch_negatives': True})
  assert C.uses_teacher_embeddings(ok.student.objective)
  assert validation.problems(ok, files=False) == []
  cross = _config(tmp_path, model=dict(C.to_dict(ok.student.model), architecture='cross_encoder'),
                  objective={'in_batch_negatives': True})
  assert [p for p in validation.problems(cross, files=False)
          if p.startswith('student.objective.in_batch_negatives: true needs a bi_encoder')]
  hard = _config(tmp_path, objective={'in_batch_negatives': True, 'pseudo_targets': 'hard'})
  assert [p for p in validation.problems(hard, files=False)
          if p.startswith('student.objective.in_batch_negatives: needs pseudo_targets: soft')]


def test_a_frozen_word_embedding_table_is_the_loaded_one_after_training(tiny_bi_config):
  data = _word_lists()
  trained = {}
  for freeze in (False, True):
    ranker = rmodels.build_ranker(tiny_bi_config, seed=1)
    before = {v.name: v.numpy().copy() for v in ranker.trainable_variables}
    table = ranker.word_embedding_table
    assert table.shape == (tiny_bi_config.encoder.vocab_size, 32)
    assert len(rtraining.trained_variables(ranker, freeze)) == (
        len(ranker.trainable_variables) - int(freeze))
    rtraining.train_ranker(ranker, data, loss=None, epochs=2, batch_lists=2, learning_rate=1e-2,
                           seed=0, objective=rtraining.Objective(hard_weight=0.0,
                                                                 soft_on_labelled=True),
                           freeze_word_embeddings=freeze)
    moved = {v.name: not np.array_equal(v.numpy(), before[v.name])
             for v in ranker.trainable_variables}
    trained[freeze] = (moved, table.name)
  moved, table_name = trained[True]
  assert moved[table_name] is False                       # bitwise as loaded
  assert sum(moved.values()) == len(moved) - 1            # everything else trained
  assert trained[False][0][table_name] is True            # unfrozen, the table moves


def test_in_batch_scores_are_plain_listwise_kl():
  # The in-batch term is losses.listwise_kl over [B, P]: the same function the
  # within-list soft loss uses, so one temperature convention holds for both.
  s = tf.constant([[0.0, 1.0, 2.0]])
  t = tf.constant([[2.0, 1.0, 0.0]])
  m = tf.constant([[True, True, True]])
  assert float(losses.listwise_kl(s, t, m)) == pytest.approx(
      _kl_rows(s.numpy(), t.numpy(), m.numpy()), rel=1e-5)
