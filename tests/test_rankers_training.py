"""List grouping, the learning-rate schedule and the loop's edge cases.

Learning on a toy task is tested in test_rankers_models.py.
"""

import numpy as np
import pytest

from rankdata import features
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
