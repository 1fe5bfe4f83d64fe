"""Ranking losses on list-shaped tensors.

All losses take scores [B, L], labels or targets [B, L] and a bool mask
[B, L] (False marks padding slots of short lists), plus optional per-list
weights [B], and return a scalar. Padded slots never contribute, whatever
their score or label, so lists of different lengths can share a batch.

Two registries: `LOSSES` (hard losses, targets are graded labels) and
`SOFT_LOSSES` (distillation losses, targets are a teacher's raw scores). The
trainer passes each its own mask (pairs with a label, pairs with a teacher
score), so a list with no eligible pair must contribute nothing: every loss
here averages over the lists (or pairs) that actually carry a signal and
returns 0, never NaN, when there are none.
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


def listwise_kl(scores: tf.Tensor, teacher_scores: tf.Tensor, mask: tf.Tensor,
                temperature: float = 1.0,
                weights: Optional[tf.Tensor] = None) -> tf.Tensor:
  """KL(softmax(teacher / T) || softmax(student / T)) per list, times T^2.

  Softmaxes run over each list's masked-in pairs only. The T^2 factor (Hinton
  et al., 2015) keeps gradient magnitudes comparable across temperatures.
  Lists with fewer than two eligible pairs carry no signal (a one-element
  softmax is constant) and are left out of the average, like padding.
  """
  if not temperature > 0:
    raise ValueError(f'temperature must be > 0, got {temperature}')
  mask = tf.cast(mask, tf.bool)
  scores = tf.cast(scores, tf.float32) / temperature
  teacher = tf.cast(teacher_scores, tf.float32) / temperature
  # Masked slots get the lowest float so they vanish from the softmax; where
  # a whole row is masked the row is ignored below (and its values are 0).
  student_log_probs = tf.nn.log_softmax(
      tf.where(mask, scores, tf.float32.min), axis=1)
  teacher_log_probs = tf.nn.log_softmax(
      tf.where(mask, teacher, tf.float32.min), axis=1)
  terms = tf.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs)
  list_losses = tf.reduce_sum(tf.where(mask, terms, 0.0), axis=1)
  list_losses *= temperature * temperature
  list_weights = tf.cast(
      tf.reduce_sum(tf.cast(mask, tf.int32), axis=1) >= 2, tf.float32)
  if weights is not None:
    list_weights *= tf.cast(weights, tf.float32)
  return _weighted_mean(list_losses, list_weights)


def margin_mse(scores: tf.Tensor, teacher_scores: tf.Tensor, mask: tf.Tensor,
               weights: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Margin-MSE (Hofstaetter et al., 2020): match the teacher's score gaps.

  Per list, the mean over ordered pairs (i, j), i != j, of eligible slots of
  ((s_i - s_j) - (t_i - t_j))^2; then the (weighted) mean over lists that
  have at least one such pair. Only differences matter, so the student is
  free to shift its scores by a constant.
  """
  mask = tf.cast(mask, tf.bool)
  error = tf.cast(scores, tf.float32) - tf.cast(teacher_scores, tf.float32)
  # (s_i - s_j) - (t_i - t_j) = e_i - e_j with e = s - t.
  error = tf.where(mask, error, 0.0)
  differences = error[:, :, tf.newaxis] - error[:, tf.newaxis, :]  # [B, L, L]
  size = tf.shape(mask)[1]
  pairs = (mask[:, :, tf.newaxis] & mask[:, tf.newaxis, :]
           & ~tf.eye(size, dtype=tf.bool)[tf.newaxis])
  pairs = tf.cast(pairs, tf.float32)
  pair_counts = tf.reduce_sum(pairs, axis=[1, 2])
  list_losses = tf.math.divide_no_nan(
      tf.reduce_sum(tf.square(differences) * pairs, axis=[1, 2]), pair_counts)
  list_weights = tf.cast(pair_counts > 0, tf.float32)
  if weights is not None:
    list_weights *= tf.cast(weights, tf.float32)
  return _weighted_mean(list_losses, list_weights)


def embedding_mse(student: tf.Tensor, teacher: tf.Tensor,
                  mask: tf.Tensor) -> tf.Tensor:
  """Mean over masked-in rows of the squared distance ||s - t||^2.

  student, teacher: [N, H] embeddings of the same N texts; mask: bool [N].
  For unit vectors this is 2 - 2 cos(s, t). 0 when no row is masked in.
  """
  errors = tf.reduce_sum(tf.square(tf.cast(student, tf.float32)
                                   - tf.cast(teacher, tf.float32)), axis=-1)
  return _weighted_mean(errors, tf.cast(mask, tf.float32))


def embedding_cosine(student: tf.Tensor, teacher: tf.Tensor,
                     mask: tf.Tensor) -> tf.Tensor:
  """Mean over masked-in rows of 1 - cos(s, t) (scale-free); 0 when none."""
  cosine = tf.reduce_sum(
      tf.math.l2_normalize(tf.cast(student, tf.float32), axis=-1)
      * tf.math.l2_normalize(tf.cast(teacher, tf.float32), axis=-1), axis=-1)
  return _weighted_mean(1.0 - cosine, tf.cast(mask, tf.float32))


LossFn = Callable[..., tf.Tensor]
# Hard losses: fn(scores, labels, mask, weights=None, **kwargs).
LOSSES: Dict[str, LossFn] = {
    'pointwise_sigmoid_ce': pointwise_sigmoid_ce,
    'pointwise_mse': pointwise_mse,
    'listwise_softmax_ce': listwise_softmax_ce,
}
# Soft (distillation) losses: fn(scores, teacher_scores, mask, weights=None),
# and `temperature=` for those in TEMPERATURE_LOSSES. 'mse' is the pointwise
# MSE to the teacher's scores, averaged over eligible pairs.
SOFT_LOSSES: Dict[str, LossFn] = {
    'listwise_kl': listwise_kl,
    'mse': pointwise_mse,
    'margin_mse': margin_mse,
}
TEMPERATURE_LOSSES = ('listwise_kl',)
# Embedding losses: fn(student [N, H], teacher [N, H], mask [N]) -> scalar;
# the student's and the teacher's embedding of the same text (training.py:
# EmbeddingDistillation).
EMBEDDING_LOSSES: Dict[str, LossFn] = {
    'mse': embedding_mse,
    'cosine': embedding_cosine,
}


def get_embedding_loss(name: str) -> LossFn:
  if name not in EMBEDDING_LOSSES:
    raise ValueError(f'unknown embedding loss {name!r}; known: '
                     f'{sorted(EMBEDDING_LOSSES)}')
  return EMBEDDING_LOSSES[name]


def get_loss(name: str) -> LossFn:
  if name not in LOSSES:
    raise ValueError(f'unknown loss {name!r}; known: {sorted(LOSSES)}')
  return LOSSES[name]


def get_soft_loss(name: str) -> LossFn:
  if name not in SOFT_LOSSES:
    raise ValueError(f'unknown soft loss {name!r}; known: '
                     f'{sorted(SOFT_LOSSES)}')
  return SOFT_LOSSES[name]


def soft_loss(name: str, scores: tf.Tensor, teacher_scores: tf.Tensor,
              mask: tf.Tensor, temperature: float = 1.0,
              weights: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Calls the soft loss `name`; temperature goes only where it is defined."""
  fn = get_soft_loss(name)
  if name in TEMPERATURE_LOSSES:
    return fn(scores, teacher_scores, mask, temperature=temperature,
              weights=weights)
  return fn(scores, teacher_scores, mask, weights=weights)
