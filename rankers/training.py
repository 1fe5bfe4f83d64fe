"""A custom training loop over lists of candidates per query.

Rankers learn from lists ([query, L candidates]) so that one loop serves
pointwise and listwise losses alike. The loop is a plain tf.function step
(AdamW, linear warmup then linear decay, global-norm clipping), which keeps
every piece visible and avoids Keras fit() machinery around string inputs.
"""

import collections
import dataclasses
import math
import time
from typing import Any, Dict, Iterable, List, Optional

from absl import logging
import numpy as np
import tensorflow as tf
import tf_keras as keras

from rankdata import features
from rankers import losses
from rankers.models import graph_function
from rankers.models import Ranker

CLIP_NORM = 1.0
# Variables excluded from weight decay (matched against variable names).
NO_DECAY = ('bias', 'gamma', 'beta')


@dataclasses.dataclass
class ListData:
  """N lists of L candidates; padded slots have mask False."""
  query: np.ndarray                     # object (str) [N]
  docs: np.ndarray                      # object (str) [N, L]
  labels: np.ndarray                    # float32 [N, L]
  mask: np.ndarray                      # bool [N, L]
  weights: Optional[np.ndarray] = None  # float32 [N], per-list weight

  def __post_init__(self):
    n, size = self.docs.shape
    for name in ('labels', 'mask'):
      if getattr(self, name).shape != (n, size):
        raise ValueError(f'ListData.{name} has shape '
                         f'{getattr(self, name).shape}, docs {(n, size)}')
    if self.query.shape != (n,):
      raise ValueError(f'ListData.query has shape {self.query.shape}, '
                       f'expected {(n,)}')
    if self.weights is not None and self.weights.shape != (n,):
      raise ValueError(f'ListData.weights has shape {self.weights.shape}, '
                       f'expected {(n,)}')

  def __len__(self) -> int:
    return len(self.query)

  @property
  def num_pairs(self) -> int:
    return int(self.mask.sum())

  def take(self, index: np.ndarray) -> 'ListData':
    return ListData(self.query[index], self.docs[index], self.labels[index],
                    self.mask[index],
                    None if self.weights is None else self.weights[index])


def _text(value: Any) -> str:
  return value.decode('utf-8') if isinstance(value, bytes) else str(value)


def group_into_lists(examples: Iterable[Dict[str, Any]], list_size: int,
                     label_key: str = features.LABEL,
                     seed: int = 0) -> ListData:
  """Groups (query, doc, label) dicts into lists of at most list_size.

  Pairs are grouped by QUERY_ID when present, else by QUERY text. A query
  with more than list_size candidates is split into ceil(n / list_size)
  lists of near-equal size, dealing candidates (shuffled, then sorted by
  label) round-robin so that positives spread over the lists; every pair
  appears exactly once. Lists are padded with mask False.
  """
  if list_size < 1:
    raise ValueError(f'list_size must be >= 1, got {list_size}')
  groups = collections.OrderedDict()
  for i, example in enumerate(examples):
    for key in (features.QUERY, features.DOC, label_key):
      if example.get(key) is None:
        raise ValueError(f'example {i} lacks {key!r} (has {sorted(example)})')
    group = _text(example.get(features.QUERY_ID, example[features.QUERY]))
    groups.setdefault(group, []).append(example)
  rng = np.random.default_rng(seed)
  queries, docs, labels = [], [], []
  for candidates in groups.values():
    order = rng.permutation(len(candidates))
    group_labels = np.array([float(candidates[i][label_key]) for i in order])
    order = order[np.argsort(-group_labels, kind='stable')]
    num_lists = math.ceil(len(candidates) / list_size)
    for part in range(num_lists):
      chosen = [candidates[i] for i in order[part::num_lists]]
      queries.append(_text(chosen[0][features.QUERY]))
      docs.append([_text(c[features.DOC]) for c in chosen])
      labels.append([float(c[label_key]) for c in chosen])
  n = len(queries)
  data = ListData(np.array(queries, dtype=object).reshape([n]),
                  np.full([n, list_size], '', dtype=object),
                  np.zeros([n, list_size], np.float32),
                  np.zeros([n, list_size], bool))
  for row, (row_docs, row_labels) in enumerate(zip(docs, labels)):
    data.docs[row, :len(row_docs)] = row_docs
    data.labels[row, :len(row_labels)] = row_labels
    data.mask[row, :len(row_docs)] = True
  return data


class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
  """Linear warmup to peak over warmup_steps, then linear decay to 0."""

  def __init__(self, peak: float, total_steps: int, warmup_steps: int):
    super().__init__()
    self.peak = peak
    self.total_steps = max(total_steps, 1)
    self.warmup_steps = min(max(warmup_steps, 0), self.total_steps)

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    warmup = self.peak * (step + 1.0) / max(self.warmup_steps, 1)
    decay_steps = max(self.total_steps - self.warmup_steps, 1)
    decay = self.peak * (self.total_steps - step) / decay_steps
    rate = tf.where(step < self.warmup_steps, warmup, decay)
    return tf.clip_by_value(rate, 0.0, self.peak)

  def get_config(self):
    return {'peak': self.peak, 'total_steps': self.total_steps,
            'warmup_steps': self.warmup_steps}


def make_optimizer(learning_rate: float, total_steps: int,
                   warmup_fraction: float,
                   weight_decay: float = 0.01) -> keras.optimizers.Optimizer:
  schedule = WarmupLinearDecay(learning_rate, total_steps,
                               round(warmup_fraction * total_steps))
  optimizer = keras.optimizers.AdamW(learning_rate=schedule,
                                     weight_decay=weight_decay,
                                     jit_compile=False)
  optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY))
  return optimizer


def train_ranker(ranker: Ranker, data: ListData, loss: str, epochs: int,
                 batch_lists: int, learning_rate: float,
                 warmup_fraction: float = 0.1, seed: int = 0,
                 log_every: int = 50, tensorboard_dir: Optional[str] = None,
                 loss_kwargs: Optional[Dict[str, Any]] = None,
                 weight_decay: float = 0.01) -> Dict[str, List[float]]:
  """Trains `ranker` in place on lists; returns the history.

  Args:
    ranker: the model to train (its trainable variables are updated).
    data: lists of candidates; labels are the loss's targets.
    loss: a name in losses.LOSSES.
    epochs: passes over the lists (0: no training).
    batch_lists: lists per step (pairs per step = batch_lists * L at most).
    learning_rate: peak learning rate.
    warmup_fraction: fraction of all steps spent warming up.
    seed: seeds the list shuffling and TF's global random seed (dropout).
    log_every: steps between log lines `step s/S loss x pairs/s y`.
    tensorboard_dir: if set, loss, learning rate and pairs/s are written as
      tf.summary scalars.
    loss_kwargs: extra loss arguments, e.g. {'max_label': 3.0}.
    weight_decay: AdamW decoupled weight decay (not on biases/LayerNorm).

  Returns:
    {'loss': per-step losses, 'learning_rate': per-step rates,
     'pairs_per_second': one value per log line, 'epoch_loss': per epoch}.
  """
  loss_fn = losses.get_loss(loss)
  loss_kwargs = dict(loss_kwargs or {})
  if batch_lists < 1:
    raise ValueError(f'batch_lists must be >= 1, got {batch_lists}')
  if epochs < 0:
    raise ValueError(f'epochs must be >= 0, got {epochs}')
  if log_every < 1:
    raise ValueError(f'log_every must be >= 1, got {log_every}')
  max_label = loss_kwargs.get('max_label', 1.0)
  if (loss == 'pointwise_sigmoid_ce' and data.num_pairs and
      data.labels[data.mask].max() > max_label):
    logging.warning('labels go up to %s but max_label is %s: targets are '
                    'clipped to 1', data.labels[data.mask].max(), max_label)
  history = {'loss': [], 'learning_rate': [], 'pairs_per_second': [],
             'epoch_loss': []}
  steps_per_epoch = math.ceil(len(data) / batch_lists)
  total_steps = epochs * steps_per_epoch
  if total_steps == 0:
    logging.info('No training: %d epochs over %d lists', epochs, len(data))
    return history

  tf.random.set_seed(seed)
  rng = np.random.default_rng(seed)
  optimizer = make_optimizer(learning_rate, total_steps, warmup_fraction,
                             weight_decay)
  variables = ranker.trainable_variables
  # Creating the slots now, not inside the first step, avoids a second trace.
  optimizer.build(variables)
  list_size = data.docs.shape[1]

  def train_step(queries, docs, labels, mask, weights):
    with tf.GradientTape() as tape:
      scores = ranker.score_lists(queries, docs, mask, training=True)
      value = loss_fn(scores, labels, mask, weights=weights, **loss_kwargs)
    gradients = tape.gradient(value, variables)
    gradients, _ = tf.clip_by_global_norm(gradients, CLIP_NORM)
    optimizer.apply_gradients(zip(gradients, variables))
    return value

  train_step = graph_function(train_step, [
      tf.TensorSpec([None], tf.string),
      tf.TensorSpec([None, list_size], tf.string),
      tf.TensorSpec([None, list_size], tf.float32),
      tf.TensorSpec([None, list_size], tf.bool),
      tf.TensorSpec([None], tf.float32)])

  writer = (tf.summary.create_file_writer(tensorboard_dir)
            if tensorboard_dir else None)
  step = 0
  window_losses, window_pairs, window_start = [], 0, time.perf_counter()
  for epoch in range(epochs):
    order = rng.permutation(len(data))
    epoch_losses = []
    for start in range(0, len(data), batch_lists):
      batch = data.take(order[start:start + batch_lists])
      weights = (np.ones(len(batch), np.float32) if batch.weights is None
                 else batch.weights.astype(np.float32))
      rate = float(optimizer.learning_rate)  # the rate this step uses
      value = float(train_step(
          tf.constant(batch.query.tolist(), tf.string),
          tf.constant(batch.docs.tolist(), tf.string),
          tf.constant(batch.labels, tf.float32),
          tf.constant(batch.mask), tf.constant(weights)))
      step += 1
      if not math.isfinite(value):
        raise FloatingPointError(f'loss is {value} at step {step}')
      history['loss'].append(value)
      history['learning_rate'].append(rate)
      epoch_losses.append(value)
      window_losses.append(value)
      window_pairs += batch.num_pairs
      if writer is not None:
        with writer.as_default(step=step):
          tf.summary.scalar('loss', value)
          tf.summary.scalar('learning_rate', rate)
      if step % log_every == 0 or step == total_steps:
        elapsed = time.perf_counter() - window_start
        pairs_per_second = window_pairs / max(elapsed, 1e-9)
        history['pairs_per_second'].append(pairs_per_second)
        logging.info('step %d/%d loss %.4f pairs/s %.1f', step, total_steps,
                     np.mean(window_losses), pairs_per_second)
        if writer is not None:
          with writer.as_default(step=step):
            tf.summary.scalar('pairs_per_second', pairs_per_second)
        window_losses, window_pairs = [], 0
        window_start = time.perf_counter()
    history['epoch_loss'].append(float(np.mean(epoch_losses)))
    logging.info('epoch %d/%d mean loss %.4f', epoch + 1, epochs,
                 history['epoch_loss'][-1])
  if writer is not None:
    writer.flush()
  return history
