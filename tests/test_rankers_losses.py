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
  assert set(losses.SOFT_LOSSES) == {'listwise_kl', 'mse', 'margin_mse'}
  assert losses.get_soft_loss('mse') is losses.pointwise_mse
  with pytest.raises(ValueError, match='unknown soft loss.*margin_mse'):
    losses.get_soft_loss('listwise_softmax_ce')


def _kl_case():
  # List 1: eligible pairs 0, 1 (slot 2 is padding with an absurd score).
  # List 2: no eligible pair. List 3: one eligible pair (no signal).
  # List 4: student equals teacher up to a shift (KL 0).
  scores = _t([[0.0, math.log(3.0), 100.0], [1.0, 2.0, 3.0],
               [4.0, 0.0, 0.0], [1.0, 2.0, 5.0]])
  teacher = _t([[0.0, 0.0, -50.0], [3.0, 2.0, 1.0], [0.0, 9.0, 9.0],
                [0.0, 1.0, 4.0]])
  mask = _t([[True, True, False], [False, False, False],
             [True, False, False], [True, True, True]], tf.bool)
  return scores, teacher, mask


def test_listwise_kl_hand_computed():
  scores, teacher, mask = _kl_case()
  # T = 1: p = [1/2, 1/2], q = [1/4, 3/4]: KL = (ln 2 + ln(2/3)) / 2.
  first = 0.5 * math.log(4.0 / 3.0)
  value = losses.listwise_kl(scores, teacher, mask)
  assert float(value) == pytest.approx((first + 0.0) / 2, rel=1e-5)
  # T = 2: q = [1, sqrt 3] / (1 + sqrt 3); the KL is multiplied by T^2 = 4.
  r3 = math.sqrt(3.0)
  first_t2 = 4 * 0.5 * (math.log(0.5 * (1 + r3)) +
                        math.log(0.5 * (1 + r3) / r3))
  value = losses.listwise_kl(scores, teacher, mask, temperature=2.0)
  assert float(value) == pytest.approx(first_t2 / 2, rel=1e-5)
  weighted = losses.listwise_kl(scores, teacher, mask,
                                weights=_t([3.0, 100.0, 100.0, 1.0]))
  assert float(weighted) == pytest.approx(3 * first / 4, rel=1e-5)
  assert float(losses.soft_loss('listwise_kl', scores, teacher, mask,
                                temperature=2.0)) == pytest.approx(
                                    first_t2 / 2, rel=1e-5)
  with pytest.raises(ValueError, match='temperature'):
    losses.listwise_kl(scores, teacher, mask, temperature=0.0)


def test_listwise_kl_gradients_finite_and_zero_where_masked():
  scores, teacher, mask = _kl_case()
  with tf.GradientTape() as tape:
    tape.watch(scores)
    value = losses.listwise_kl(scores, teacher, mask, temperature=2.0)
  grad = tape.gradient(value, scores).numpy()
  assert np.all(np.isfinite(grad))
  np.testing.assert_array_equal(grad[:3][~mask.numpy()[:3]], 0.0)
  np.testing.assert_allclose(grad[2:], 0.0, atol=1e-7)
  # T^2 (q - p) / T per eligible score (T = 2), over the 2 counted lists.
  q = np.array([1.0, math.sqrt(3.0)]) / (1 + math.sqrt(3.0))
  np.testing.assert_allclose(grad[0, :2], 2.0 * (q - 0.5) / 2, rtol=1e-5)


def test_soft_losses_of_all_masked_lists_are_zero_not_nan():
  scores, teacher = _t([[1.0, 2.0], [3.0, 4.0]]), _t([[0.0, 5.0], [1.0, 1.0]])
  nothing = tf.zeros([2, 2], tf.bool)
  for name in sorted(losses.SOFT_LOSSES):
    with tf.GradientTape() as tape:
      tape.watch(scores)
      value = losses.soft_loss(name, scores, teacher, nothing)
    assert float(value) == 0.0, name
    np.testing.assert_array_equal(tape.gradient(value, scores), 0.0)


def test_margin_mse_hand_computed():
  scores = _t([[1.0, 2.0, 4.0], [3.0, 5.0, 100.0], [1.0, 2.0, 3.0],
               [7.0, 0.0, 0.0]])
  teacher = _t([[0.0, 0.0, 0.0], [1.0, 1.0, 7.0], [9.0, 9.0, 9.0],
                [0.0, 0.0, 0.0]])
  mask = _t([[True, True, True], [True, True, False], [False] * 3,
             [True, False, False]], tf.bool)
  # List 1: errors e = s - t = [1, 2, 4]; squared gaps 1, 9, 4 (each twice
  # among ordered pairs) -> 14/3. List 2: e = [2, 4] -> 4. Lists 3, 4 have
  # no pair and do not count.
  value = losses.margin_mse(scores, teacher, mask)
  assert float(value) == pytest.approx((14.0 / 3.0 + 4.0) / 2, rel=1e-6)
  weighted = losses.margin_mse(scores, teacher, mask,
                               weights=_t([1.0, 3.0, 5.0, 7.0]))
  assert float(weighted) == pytest.approx((14.0 / 3.0 + 12.0) / 4, rel=1e-6)
  # Only score differences matter.
  shifted = losses.margin_mse(scores + 10.0, teacher, mask)
  assert float(shifted) == pytest.approx(float(value), rel=1e-6)
  # The registry form ignores temperature.
  assert float(losses.soft_loss('margin_mse', scores, teacher, mask,
                                temperature=5.0)) == pytest.approx(
                                    float(value), rel=1e-6)


def test_soft_mse_is_pointwise_over_eligible_pairs():
  value = losses.soft_loss('mse', _t([[1.0, 2.0], [3.0, 4.0]]),
                           _t([[0.0, 2.0], [1.0, 100.0]]),
                           _t([[True, True], [True, False]], tf.bool),
                           temperature=3.0)
  assert float(value) == pytest.approx(5.0 / 3.0, rel=1e-6)
