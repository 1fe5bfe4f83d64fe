"""Ranking losses against hand-computed values."""

import math

import numpy as np
import pytest
import tensorflow as tf

from rankers import losses


def _t(x, dtype=tf.float32):
  return tf.constant(x, dtype)


def test_pointwise_sigmoid_ce_scales_labels_and_masks():
  scores = _t([[0.0, 2.0], [1.0, 50.0]])
  labels = _t([[1.0, 0.0], [2.0, 9.0]])
  mask = _t([[True, True], [True, False]], tf.bool)
  # Targets 0.5, 0, 1; CE(z, t) = max(z, 0) - z t + log(1 + exp(-|z|)).
  expected = (math.log(2.0) + (2.0 + math.log1p(math.exp(-2.0)))
              + math.log1p(math.exp(-1.0))) / 3
  value = losses.pointwise_sigmoid_ce(scores, labels, mask, max_label=2.0)
  assert float(value) == pytest.approx(expected, rel=1e-6)


def test_pointwise_mse_ignores_padding():
  value = losses.pointwise_mse(_t([[1.0, 2.0], [3.0, 4.0]]),
                               _t([[0.0, 2.0], [1.0, 100.0]]),
                               _t([[True, True], [True, False]], tf.bool))
  assert float(value) == pytest.approx(5.0 / 3.0, rel=1e-6)


def test_pointwise_mse_list_weights():
  value = losses.pointwise_mse(_t([[1.0], [3.0]]), _t([[0.0], [0.0]]),
                               _t([[True], [True]], tf.bool),
                               weights=_t([1.0, 3.0]))
  assert float(value) == pytest.approx((1.0 + 3 * 9.0) / 4.0, rel=1e-6)


def _listwise_case():
  scores = _t([[0.0, math.log(3.0), 100.0], [1.0, 2.0, 3.0], [5.0, 0.0, 0.0]])
  labels = _t([[1.0, 1.0, 5.0], [0.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
  mask = _t([[True, True, False], [True, True, True], [True, True, False]],
            tf.bool)
  # List 1: softmax [1/4, 3/4], target [1/2, 1/2]; list 2 has no positive;
  # list 3: target [1, 0].
  first = 0.5 * (math.log(4.0) + math.log(4.0 / 3.0))
  third = math.log1p(math.exp(-5.0))
  return scores, labels, mask, first, third


def test_listwise_softmax_ce_skips_lists_without_positives():
  scores, labels, mask, first, third = _listwise_case()
  value = losses.listwise_softmax_ce(scores, labels, mask)
  assert float(value) == pytest.approx((first + third) / 2, rel=1e-6)
  weighted = losses.listwise_softmax_ce(scores, labels, mask,
                                        weights=_t([1.0, 7.0, 3.0]))
  assert float(weighted) == pytest.approx((first + 3 * third) / 4, rel=1e-6)


def test_listwise_softmax_ce_gradients_are_finite_and_zero_on_padding():
  scores, labels, mask, _, _ = _listwise_case()
  with tf.GradientTape() as tape:
    tape.watch(scores)
    value = losses.listwise_softmax_ce(scores, labels, mask)
  grad = tape.gradient(value, scores).numpy()
  assert np.all(np.isfinite(grad))
  assert grad[0, 2] == 0.0 and grad[2, 2] == 0.0
  np.testing.assert_allclose(grad[1], 0.0)  # no positive: no signal


def test_no_positive_anywhere_gives_zero():
  value = losses.listwise_softmax_ce(_t([[1.0, 2.0]]), _t([[0.0, 0.0]]),
                                     _t([[True, True]], tf.bool))
  assert float(value) == 0.0


def test_registry():
  assert set(losses.LOSSES) == {'pointwise_sigmoid_ce', 'pointwise_mse',
                                'listwise_softmax_ce'}
  with pytest.raises(ValueError, match='unknown loss.*listwise_softmax_ce'):
    losses.get_loss('hinge')
