"""Ranking losses on list-shaped tensors.

All losses take scores [B, L], labels or targets [B, L] and a bool mask
[B, L] (False marks padding slots of short lists), plus optional per-list
weights [B], and return a scalar. Padded slots never contribute, whatever
their score or label, so lists of different lengths can share a batch.
"""

from typing import Callable, Dict, Optional

import tensorflow as tf


def _pair_weights(mask: tf.Tensor, weights: Optional[tf.Tensor]) -> tf.Tensor:
  """Float [B, L]: list weight where mask is True, 0 elsewhere."""
  pair_weights = tf.cast(mask, tf.float32)
  if weights is not None:
    pair_weights *= tf.cast(weights, tf.float32)[:, tf.newaxis]
  return pair_weights


def _weighted_mean(values: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
  return tf.math.divide_no_nan(tf.reduce_sum(values * weights),
                               tf.reduce_sum(weights))


def pointwise_sigmoid_ce(scores: tf.Tensor, labels: tf.Tensor,
                         mask: tf.Tensor, max_label: float = 1.0,
                         weights: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Sigmoid cross-entropy against labels / max_label (clipped to [0, 1])."""
  scores = tf.cast(scores, tf.float32)
  targets = tf.clip_by_value(tf.cast(labels, tf.float32) / max_label, 0.0, 1.0)
  losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets,
                                                   logits=scores)
  return _weighted_mean(losses, _pair_weights(mask, weights))


def pointwise_mse(scores: tf.Tensor, targets: tf.Tensor, mask: tf.Tensor,
                  weights: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Mean squared error to targets (e.g. teacher scores)."""
  errors = tf.square(tf.cast(scores, tf.float32) - tf.cast(targets, tf.float32))
  return _weighted_mean(errors, _pair_weights(mask, weights))


def listwise_softmax_ce(scores: tf.Tensor, labels: tf.Tensor, mask: tf.Tensor,
                        weights: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Softmax cross-entropy to the distribution labels / sum(labels).

  Negative labels count as 0. Lists without a positive label contribute 0 and
  are left out of the average.
  """
  mask = tf.cast(mask, tf.bool)
  scores = tf.cast(scores, tf.float32)
  labels = tf.where(mask, tf.maximum(tf.cast(labels, tf.float32), 0.0), 0.0)
  label_sums = tf.reduce_sum(labels, axis=1, keepdims=True)
  targets = tf.math.divide_no_nan(labels, label_sums)
  masked_scores = tf.where(mask, scores, tf.float32.min)
  log_probs = tf.where(mask, tf.nn.log_softmax(masked_scores, axis=1), 0.0)
  list_losses = -tf.reduce_sum(targets * log_probs, axis=1)
  list_weights = tf.cast(label_sums[:, 0] > 0, tf.float32)
  if weights is not None:
    list_weights *= tf.cast(weights, tf.float32)
  return _weighted_mean(list_losses, list_weights)


LossFn = Callable[..., tf.Tensor]
LOSSES: Dict[str, LossFn] = {
    'pointwise_sigmoid_ce': pointwise_sigmoid_ce,
    'pointwise_mse': pointwise_mse,
    'listwise_softmax_ce': listwise_softmax_ce,
}


def get_loss(name: str) -> LossFn:
  if name not in LOSSES:
    raise ValueError(f'unknown loss {name!r}; known: {sorted(LOSSES)}')
  return LOSSES[name]
