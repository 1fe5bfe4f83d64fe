"""List grouping, the learning-rate schedule and the loop's edge cases.

Learning on a toy task is tested in test_rankers_models.py.
"""

import logging

import numpy as np
import pytest

from rankdata import features
from rankers import losses
from rankers import models
from rankers import training
from rankers.config import RankerConfig


def test_group_into_lists_splits_and_pads():
  examples = []
  for q, n in (('a', 5), ('b', 2)):
    for j in range(n):
      examples.append({features.QUERY: q.encode(), features.DOC: f'{q}{j}',
                       'gain': float(j == 0 or j == 4)})
  data = training.group_into_lists(examples, list_size=3, label_key='gain')
  assert data.docs.shape == (3, 3) and len(data) == 3
  assert list(data.query) == ['a', 'a', 'b']
  # 5 candidates -> two lists of 3 and 2; each positive in its own list.
  assert data.mask.sum(axis=1).tolist() == [3, 2, 2]
  assert data.labels[:2].sum(axis=1).tolist() == [1.0, 1.0]
  pairs = sorted(d for d, m in zip(data.docs.ravel(), data.mask.ravel()) if m)
  assert pairs == sorted(str(e[features.DOC]) for e in examples)
  assert (data.docs[~data.mask] == '').all()
  assert (data.labels[~data.mask] == 0).all()
  with pytest.raises(ValueError, match="example 0 lacks 'label'"):
    training.group_into_lists(examples, list_size=3)


def test_warmup_then_linear_decay():
  schedule = training.WarmupLinearDecay(1.0, total_steps=10, warmup_steps=2)
  rates = [float(schedule(step)) for step in range(10)]
  np.testing.assert_allclose(rates, [0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5,
                                     0.375, 0.25, 0.125])


def test_zero_epochs_does_not_train(tiny_vocab_file, tiny_encoder_config):
  config = RankerConfig('cross_encoder', encoder=tiny_encoder_config(),
                        vocab_file=tiny_vocab_file, max_length=16)
  ranker = models.build_ranker(config, seed=0)
  before = [v.numpy() for v in ranker.trainable_variables]
  examples = [{features.QUERY: 'cat', features.DOC: doc, features.LABEL: 1.0}
              for doc in ('cat dog', 'red fox')]
  data = training.group_into_lists(examples, list_size=4)
  history = training.train_ranker(ranker, data, 'pointwise_mse', epochs=0,
                                  batch_lists=2, learning_rate=1e-3)
  assert history['loss'] == []
  for old, new in zip(before, ranker.trainable_variables):
    np.testing.assert_array_equal(old, new.numpy())


def _pair(query, doc, label=None, teacher=None, **extra):
  example = {features.QUERY_ID: query, features.QUERY: query,
             features.DOC: doc, features.LABEL: label,
             features.TEACHER_SCORE: teacher}
  example.update(extra)
  return example


def test_group_into_lists_mixed_labels_and_teacher_scores():
  examples = [
      _pair('cat', 'cat dog', label=1.0),
      _pair('cat', 'red fox', label=0.0, teacher=-1.5),
      _pair('fox', 'red fox', teacher=2.0),
      _pair('fox', 'fox owl', teacher=3.0),
      _pair('fox', 'the owl', teacher=-1.0),
  ]
  data = training.group_into_lists(examples, list_size=3)
  assert list(data.query) == ['cat', 'fox']
  by_doc = {(q, d): (i, j) for i, q in enumerate(data.query)
            for j, d in enumerate(data.docs[i]) if data.mask[i, j]}
  assert len(by_doc) == 5
  for example in examples:
    i, j = by_doc[(example[features.QUERY], example[features.DOC])]
    label, teacher = example[features.LABEL], example[features.TEACHER_SCORE]
    assert data.label_mask[i, j] == (label is not None)
    assert data.labels[i, j] == (label or 0.0)
    assert data.teacher_mask[i, j] == (teacher is not None)
    assert data.teacher[i, j] == (teacher or 0.0)
  assert data.teacher.dtype == np.float32 and data.labels.dtype == np.float32
  assert not (data.label_mask | data.teacher_mask)[~data.mask].any()
  assert (data.num_labelled, data.num_teacher_scored) == (2, 4)
  some = data.take(np.array([1]))
  np.testing.assert_array_equal(some.teacher_mask, data.teacher_mask[1:])
  np.testing.assert_array_equal(some.label_mask, data.label_mask[1:])
  # Labels-only data keeps the old layout: no teacher, every pair labelled.
  labelled = training.group_into_lists(
      [examples[0], _pair('cat', 'owl', label=0.0)], list_size=3)
  assert labelled.teacher is None and not labelled.teacher_mask.any()
  np.testing.assert_array_equal(labelled.label_mask, labelled.mask)
  with pytest.raises(ValueError, match="example 1 lacks 'label' and "
                                       "'teacher_score'"):
    training.group_into_lists([examples[0], _pair('cat', 'owl')], 3)


def test_group_into_lists_spreads_the_teachers_top_candidates():
  examples = [_pair('q', f'doc{j}', teacher=float(j)) for j in range(6)]
  data = training.group_into_lists(examples, list_size=3, seed=3)
  # Two lists; the teacher's two best candidates go one to each list.
  assert sorted(data.teacher.max(axis=1).tolist()) == [4.0, 5.0]


def _objective_data():
  examples = [
      # Labelled only.
      _pair('cat', 'cat dog', label=1.0), _pair('cat', 'red fox', label=0.0),
      _pair('cat', 'owl', label=0.0),
      # Pseudo-labelled only.
      _pair('fox', 'red fox', teacher=2.0), _pair('fox', 'the owl',
                                                  teacher=-1.0),
      _pair('fox', 'fox owl', teacher=0.5),
      # Both, on some pairs.
      _pair('lion', 'the lion', label=1.0, teacher=4.0),
      _pair('lion', 'lion bear', teacher=1.0),
      _pair('lion', 'green lime', label=0.0, teacher=-2.0),
  ]
  return training.group_into_lists(examples, list_size=4, seed=0)


def _noiseless_ranker(architecture, tiny_vocab_file, tiny_encoder_config):
  # One layer: tracing a train step dominates these tests' cost.
  config = RankerConfig(architecture, encoder=tiny_encoder_config(
      num_layers=1, hidden_dropout=0.0, attention_dropout=0.0),
                        vocab_file=tiny_vocab_file, max_length=16,
                        query_max_length=8)
  return models.build_ranker(config, seed=0)


@pytest.mark.parametrize('objective,hand_masks', [
    (training.Objective(hard_weight=0.5, soft_weight=2.0, temperature=2.0),
     'unlabelled'),
    (training.Objective(hard_loss='pointwise_sigmoid_ce',
                        soft_loss='margin_mse', soft_on_labelled=True), 'all'),
], ids=['kl_unlabelled', 'margin_mse_all'])
def test_objective_terms_on_the_first_step(tiny_vocab_file, tiny_encoder_config,
                                           objective, hand_masks):
  """One step over all lists: its logged terms are the losses of the
  initial model (no dropout), with the masks written out by hand."""
  ranker = _noiseless_ranker('cross_encoder', tiny_vocab_file,
                             tiny_encoder_config)
  data = _objective_data()
  assert list(data.query) == ['cat', 'fox', 'lion']
  scores = ranker.score_lists(data.query.astype(str), data.docs.astype(str),
                              data.mask)
  labelled = np.array([[1, 1, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0]], bool)
  scored = np.array([[0, 0, 0, 0], [1, 1, 1, 0], [1, 1, 1, 0]], bool)
  # group_into_lists orders by label then teacher score.
  np.testing.assert_array_equal(data.label_mask, labelled)
  np.testing.assert_array_equal(data.teacher_mask, scored)
  soft_mask = scored & ~labelled if hand_masks == 'unlabelled' else scored
  hard = losses.get_loss(objective.hard_loss)(scores, data.labels, labelled)
  soft = losses.soft_loss(objective.soft_loss, scores, data.teacher,
                          soft_mask, objective.temperature)
  history = training.train_ranker(
      ranker, data, None, epochs=1, batch_lists=len(data),
      learning_rate=1e-3, objective=objective, log_every=1)
  assert len(history['loss']) == 1
  assert history['hard_loss'][0] == pytest.approx(float(hard), rel=1e-5)
  assert history['soft_loss'][0] == pytest.approx(float(soft), rel=1e-5)
  assert float(soft) > 0 and float(hard) > 0
  assert history['loss'][0] == pytest.approx(
      objective.hard_weight * float(hard)
      + objective.soft_weight * float(soft), rel=1e-5)


def test_no_eligible_soft_pair_and_text_noise(tiny_vocab_file,
                                             tiny_encoder_config, caplog):
  """Labels only: the soft term is 0 (not NaN); the step sees noised docs."""
  ranker = _noiseless_ranker('bi_encoder', tiny_vocab_file,
                             tiny_encoder_config)
  data = training.group_into_lists(
      [_pair('cat', d, label=float(d == 'cat'))
       for d in ('cat', 'dog cat', 'owl')]
      + [_pair('fox', d, label=float(d == 'fox'))
         for d in ('fox', 'dog', 'red fox')], list_size=4)
  scores = ranker.score_lists(data.query.astype(str), data.docs.astype(str),
                              data.mask)
  clean = float(losses.listwise_softmax_ce(scores, data.labels, data.mask))
  with caplog.at_level(logging.INFO, logger='absl'):
    history = training.train_ranker(
        ranker, data, 'listwise_softmax_ce', epochs=2, batch_lists=2,
        learning_rate=1e-3, objective=training.Objective(), log_every=2,
        text_noise=training.TextNoise(mask_prob=0.9))
  assert history['soft_loss'] == [0.0, 0.0]
  assert all(np.isfinite(history['loss'])) and min(history['hard_loss']) > 0
  assert history['loss'] == history['hard_loss']
  # Without noise the first step's loss would be `clean` (no dropout).
  assert history['hard_loss'][0] != pytest.approx(clean, rel=1e-3)
  assert 'no pair has a teacher score' in caplog.text
  assert 'Text noise on training documents' in caplog.text
  assert 'hard ' in caplog.text and 'soft 0.0000' in caplog.text


def test_objective_validation(tiny_vocab_file, tiny_encoder_config):
  for objective, match in (
      (training.Objective(soft_loss='kl'), 'unknown soft loss'),
      (training.Objective(hard_loss='kl'), 'unknown loss'),
      (training.Objective(hard_weight=0.0, soft_weight=0.0), 'both 0'),
      (training.Objective(soft_weight=-1.0), 'soft_weight'),
      (training.Objective(temperature=0.0), 'temperature')):
    with pytest.raises(ValueError, match=match):
      objective.validate()
  data = _objective_data()
  with pytest.raises(ValueError, match="loss='pointwise_mse' but objective"):
    training.train_ranker(None, data, 'pointwise_mse', epochs=1,
                          batch_lists=1, learning_rate=1e-3,
                          objective=training.Objective())
  with pytest.raises(ValueError, match='needs a loss or an objective'):
    training.train_ranker(None, data, None, epochs=1, batch_lists=1,
                          learning_rate=1e-3)
