"""List grouping and the custom training loop on a toy separable task."""

import os

import numpy as np
import pytest
import tensorflow as tf

from rankdata import features
from rankers import models
from rankers import training
from rankers.config import RankerConfig

TOY_WORDS = ('apple banana cherry grape lemon mango olive peach pear plum '
             'kiwi lime cat dog horse mouse tiger zebra lion bear wolf fox'
             ).split()


def toy_examples(num_queries=48, negatives=3, relation='contains', seed=0):
  """One-word queries, documents of three words, one relevant per query.

  relation='contains': the relevant document contains the query word.
  relation='partner': it contains the word's fixed partner instead, and one
  irrelevant document contains the query word itself (a lexical decoy).
  """
  rng = np.random.default_rng(seed)
  examples = []
  for i in range(num_queries):
    word = TOY_WORDS[i % len(TOY_WORDS)]
    key = word
    if relation == 'partner':
      key = TOY_WORDS[(i + len(TOY_WORDS) // 2) % len(TOY_WORDS)]
    others = [w for w in TOY_WORDS if w not in (word, key)]
    docs = [[key] + list(rng.choice(others, 2, replace=False))]
    docs += [list(rng.choice(others, 3, replace=False))
             for _ in range(negatives)]
    if relation == 'partner':
      docs[1][0] = word
    for j, doc in enumerate(docs):
      rng.shuffle(doc)
      examples.append({features.QUERY_ID: f'q{i}', features.QUERY: word,
                       features.DOC_ID: f'd{i}.{j}', features.DOC: ' '.join(doc),
                       features.LABEL: 1.0 if j == 0 else 0.0})
  return examples


def mean_reciprocal_rank(ranker, data):
  scores = ranker.score_lists(data.query.astype(str), data.docs.astype(str),
                              data.mask).numpy()
  scores = np.where(data.mask, scores, -np.inf)
  positive = np.argmax(data.labels, axis=1)
  ranks = 1 + (scores > scores[np.arange(len(scores)), positive][:, None]
               ).sum(axis=1)
  return float(np.mean(1.0 / ranks))


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


@pytest.mark.parametrize('architecture,loss,relation,learning_rate', [
    ('cross_encoder', 'listwise_softmax_ce', 'contains', 1e-2),
    ('bi_encoder', 'pointwise_sigmoid_ce', 'partner', 3e-3),
])
def test_training_learns_toy_task(architecture, loss, relation, learning_rate,
                                  tiny_vocab_file, tiny_encoder_config,
                                  tmp_path):
  config = RankerConfig(architecture, encoder=tiny_encoder_config(),
                        vocab_file=tiny_vocab_file, max_length=16,
                        query_max_length=8)
  ranker = models.build_ranker(config, seed=0)
  data = training.group_into_lists(toy_examples(relation=relation),
                                   list_size=4)
  before = mean_reciprocal_rank(ranker, data)
  history = training.train_ranker(
      ranker, data, loss=loss, epochs=16, batch_lists=8,
      learning_rate=learning_rate, warmup_fraction=0.1, seed=0, log_every=25,
      tensorboard_dir=str(tmp_path / 'tb'))
  after = mean_reciprocal_rank(ranker, data)
  steps = 16 * 6
  assert len(history['loss']) == steps
  first, last = np.mean(history['loss'][:6]), np.mean(history['loss'][-6:])
  assert last < 0.8 * first, history['loss']
  assert after > before + 0.2, (before, after)
  assert len(history['pairs_per_second']) == 4  # steps 25, 50, 75 and 96
  assert max(history['learning_rate']) == pytest.approx(learning_rate)
  assert history['learning_rate'][-1] < learning_rate / 10
  assert os.listdir(tmp_path / 'tb')


def test_zero_epochs_does_not_train(tiny_vocab_file, tiny_encoder_config):
  config = RankerConfig('cross_encoder', encoder=tiny_encoder_config(),
                        vocab_file=tiny_vocab_file, max_length=16)
  ranker = models.build_ranker(config, seed=0)
  before = [v.numpy() for v in ranker.trainable_variables]
  data = training.group_into_lists(toy_examples(num_queries=4), list_size=4)
  history = training.train_ranker(ranker, data, 'pointwise_mse', epochs=0,
                                  batch_lists=2, learning_rate=1e-3)
  assert history['loss'] == []
  for old, new in zip(before, ranker.trainable_variables):
    np.testing.assert_array_equal(old, new.numpy())


def test_score_lists_matches_pairwise_scores(tiny_vocab_file,
                                             tiny_encoder_config):
  for architecture in ('cross_encoder', 'bi_encoder'):
    config = RankerConfig(architecture, encoder=tiny_encoder_config(),
                          vocab_file=tiny_vocab_file, max_length=16)
    ranker = models.build_ranker(config, seed=0)
    queries = tf.constant(['cat', 'red fox'])
    docs = tf.constant([['cat dog', 'lion', ''], ['fox', 'the red fox', 'x']])
    mask = tf.constant([[True, True, False], [True, True, True]])
    scores = ranker.score_lists(queries, docs, mask).numpy()
    pairwise = ranker.score(['cat', 'cat', 'red fox', 'red fox', 'red fox'],
                            ['cat dog', 'lion', 'fox', 'the red fox', 'x'])
    np.testing.assert_allclose(scores[mask.numpy()], pairwise, rtol=1e-5,
                               atol=1e-5)
    assert scores[0, 2] == 0.0
