"""A custom training loop over lists of candidates per query.

Rankers learn from lists ([query, L candidates]) so that one loop serves
pointwise and listwise losses alike. The loop is a plain tf.function step
(AdamW, linear warmup then linear decay, global-norm clipping), which keeps
every piece visible and avoids Keras fit() machinery around string inputs.

Semi-supervised distillation mixes two kinds of pairs in one list set: pairs
with a true label and pairs with only a teacher's score (pseudo-labelled),
and some with both. `ListData` therefore carries per-pair masks for each,
and an `Objective` combines a hard loss on labels with a soft loss on
teacher scores, each over its own eligible pairs. `TextNoise` (Noisy
Student) noises the documents of training pairs only.
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
from rankers import config
from rankers import losses
from rankers import models as rmodels
from rankers.models import graph_function
from rankers.models import Ranker
from rankers.noise import DocumentNoise
from rankers.noise import TextNoise  # also part of this module's API

CLIP_NORM = 1.0
# Variables excluded from weight decay (matched against variable names).
NO_DECAY = ('bias', 'gamma', 'beta')


@dataclasses.dataclass
class ListData:
  """N lists of L candidates; padded slots have mask False.

  label_mask / teacher_mask say which real pairs have a true label / a
  teacher score (both default: every real pair labelled, none scored);
  `labels` and `teacher` are 0 where missing. `teacher` is None when no pair
  has a teacher score.
  """
  query: np.ndarray                     # object (str) [N]
  docs: np.ndarray                      # object (str) [N, L]
  labels: np.ndarray                    # float32 [N, L]
  mask: np.ndarray                      # bool [N, L]
  weights: Optional[np.ndarray] = None  # float32 [N], per-list weight
  teacher: Optional[np.ndarray] = None  # float32 [N, L], teacher scores
  label_mask: Optional[np.ndarray] = None    # bool [N, L]
  teacher_mask: Optional[np.ndarray] = None  # bool [N, L]

  def __post_init__(self):
    n, size = self.docs.shape
    if self.label_mask is None:
      self.label_mask = np.array(self.mask, bool)
    if self.teacher_mask is None:
      self.teacher_mask = (np.zeros([n, size], bool) if self.teacher is None
                           else np.array(self.mask, bool))
    for name in ('labels', 'mask', 'label_mask', 'teacher_mask', 'teacher'):
      value = getattr(self, name)
      if value is not None and value.shape != (n, size):
        raise ValueError(f'ListData.{name} has shape {value.shape}, docs '
                         f'{(n, size)}')
    if self.query.shape != (n,):
      raise ValueError(f'ListData.query has shape {self.query.shape}, '
                       f'expected {(n,)}')
    if self.weights is not None and self.weights.shape != (n,):
      raise ValueError(f'ListData.weights has shape {self.weights.shape}, '
                       f'expected {(n,)}')
    for name in ('label_mask', 'teacher_mask'):
      if (getattr(self, name) & ~self.mask).any():
        raise ValueError(f'ListData.{name} is True on padding slots')
    if self.teacher is None and self.teacher_mask.any():
      raise ValueError('ListData.teacher_mask has pairs but teacher is None')

  def __len__(self) -> int:
    return len(self.query)

  @property
  def num_pairs(self) -> int:
    return int(self.mask.sum())

  @property
  def num_labelled(self) -> int:
    return int(self.label_mask.sum())

  @property
  def num_teacher_scored(self) -> int:
    return int(self.teacher_mask.sum())

  def teacher_or_zeros(self) -> np.ndarray:
    if self.teacher is None:
      return np.zeros(self.docs.shape, np.float32)
    return self.teacher

  def take(self, index: np.ndarray) -> 'ListData':
    pick = lambda value: None if value is None else value[index]
    return ListData(self.query[index], self.docs[index], self.labels[index],
                    self.mask[index], pick(self.weights), pick(self.teacher),
                    self.label_mask[index], self.teacher_mask[index])


def _text(value: Any) -> str:
  return value.decode('utf-8') if isinstance(value, bytes) else str(value)


def _number(example: Dict[str, Any], key: str, index: int) -> Optional[float]:
  value = example.get(key)
  if value is None:
    return None
  value = float(value)
  if not math.isfinite(value):
    raise ValueError(f'example {index}: {key!r} is {value}')
  return value


def group_into_lists(examples: Iterable[Dict[str, Any]], list_size: int,
                     label_key: str = features.LABEL, seed: int = 0,
                     teacher_key: str = features.TEACHER_SCORE,
                     weight_key: Optional[str] = None) -> ListData:
  """Groups (query, doc, label and/or teacher score) dicts into lists.

  Each example needs QUERY, DOC and at least one of `label_key` (a true
  label) and `teacher_key` (a teacher's score); either may be absent or None.
  Pairs are grouped by QUERY_ID when present, else by QUERY text. A query
  with more than list_size candidates is split into ceil(n / list_size)
  lists of near-equal size, dealing candidates (shuffled, then sorted by
  label, unlabelled last, ties by teacher score) round-robin so that
  positives (or the teacher's top candidates) spread over the lists; every
  pair appears exactly once. Lists are padded with mask False. With
  `weight_key`, each list's weight is the mean of its pairs' values (missing
  = 1.0); otherwise lists are unweighted.
  """
  if list_size < 1:
    raise ValueError(f'list_size must be >= 1, got {list_size}')
  groups = collections.OrderedDict()
  for i, example in enumerate(examples):
    for key in (features.QUERY, features.DOC):
      if example.get(key) is None:
        raise ValueError(f'example {i} lacks {key!r} (has {sorted(example)})')
    label = _number(example, label_key, i)
    teacher = _number(example, teacher_key, i)
    if label is None and teacher is None:
      raise ValueError(f'example {i} lacks {label_key!r} and {teacher_key!r}'
                       f' (has {sorted(example)}): a pair needs a label or a '
                       f'teacher score')
    group = _text(example.get(features.QUERY_ID, example[features.QUERY]))
    groups.setdefault(group, []).append((example, label, teacher))
  rng = np.random.default_rng(seed)
  rows = []  # (query, [(doc, label, teacher)])
  list_members = []  # the (example, label, teacher) tuples of each row
  for candidates in groups.values():
    order = rng.permutation(len(candidates))
    # Two stable sorts, descending: by teacher score, then by label (the main
    # key); missing values go last.
    for column in (2, 1):
      values = np.array([candidates[i][column] for i in order], dtype=float)
      order = order[np.argsort(-np.nan_to_num(values, nan=-np.inf),
                               kind='stable')]
    num_lists = math.ceil(len(candidates) / list_size)
    for part in range(num_lists):
      chosen = [candidates[i] for i in order[part::num_lists]]
      rows.append((_text(chosen[0][0][features.QUERY]),
                   [(_text(c[0][features.DOC]), c[1], c[2]) for c in chosen]))
      list_members.append(chosen)
  n = len(rows)
  data = ListData(np.array([q for q, _ in rows], dtype=object).reshape([n]),
                  np.full([n, list_size], '', dtype=object),
                  np.zeros([n, list_size], np.float32),
                  np.zeros([n, list_size], bool),
                  teacher=np.zeros([n, list_size], np.float32),
                  label_mask=np.zeros([n, list_size], bool),
                  teacher_mask=np.zeros([n, list_size], bool))
  for row, (_, pairs) in enumerate(rows):
    for column, (doc, label, teacher) in enumerate(pairs):
      data.docs[row, column] = doc
      data.mask[row, column] = True
      if label is not None:
        data.labels[row, column] = label
        data.label_mask[row, column] = True
      if teacher is not None:
        data.teacher[row, column] = teacher
        data.teacher_mask[row, column] = True
  if not data.teacher_mask.any():
    data.teacher = None
  if weight_key is not None:
    def weight(example):
      value = example.get(weight_key)
      return 1.0 if value is None else float(value)
    data.weights = np.array([np.mean([weight(c[0]) for c in chosen])
                             for chosen in list_members], np.float32).reshape([n])
  return data


@dataclasses.dataclass
class Objective:
  """Hard loss on true labels plus soft loss on teacher scores.

  Per batch: hard_weight * hard_loss(scores, labels, labelled pairs) +
  soft_weight * soft_loss(scores, teacher, soft pairs, temperature), where
  the soft pairs are those with a teacher score, restricted to unlabelled
  pairs unless soft_on_labelled. Each term averages over the lists that
  have eligible pairs (0 when none has). `temperature` is used by
  listwise_kl only.
  """
  hard_loss: str = config.DEFAULT_HARD_LOSS   # a name in losses.LOSSES
  hard_weight: float = 1.0
  soft_loss: str = config.DEFAULT_SOFT_LOSS   # a name in losses.SOFT_LOSSES
  soft_weight: float = 1.0
  temperature: float = 1.0
  soft_on_labelled: bool = False

  def validate(self) -> 'Objective':
    """Raises ValueError naming the offending field; returns self."""
    losses.get_loss(self.hard_loss)
    losses.get_soft_loss(self.soft_loss)
    for name in ('hard_weight', 'soft_weight'):
      value = getattr(self, name)
      if not (math.isfinite(value) and value >= 0):
        raise ValueError(f'Objective.{name} must be finite and >= 0, got '
                         f'{value}')
    if self.hard_weight == 0 and self.soft_weight == 0:
      raise ValueError('Objective.hard_weight and soft_weight are both 0: '
                       'nothing to learn')
    if not (math.isfinite(self.temperature) and self.temperature > 0):
      raise ValueError(f'Objective.temperature must be > 0, got '
                       f'{self.temperature}')
    return self


@dataclasses.dataclass
class EmbeddingDistillation:
  """Embedding-level pseudo-labels: the teacher's embedding of each text.

  A bi-encoder student learns, beside its score losses, to embed each query
  and document of its training lists as the teacher does: `loss` (a name
  in losses.EMBEDDING_LOSSES) between the student's pooled embedding p(s)
  (unit length under cosine similarity) and the teacher's t of the same
  text, over the texts of a batch that have one, times `weight`. p is a
  linear map (no bias) from the student's width to the teacher's, made by
  `build` only when the widths differ, trained with the student and held
  here, never by the ranker: the export does not contain it. `loss` may be
  EMBEDDING_LOSS_OFF ('none') when only `in_batch` uses the embeddings.

  With `in_batch` (in-batch negatives), every query of a batch is also
  scored against the documents of the batch's other lists, for free: the
  embeddings are there. The teacher's score of any such pair comes from its
  embeddings (`teacher_similarity`; logits x `teacher_logit_scale`, its
  cosine scale over the pseudo-labeller's temperature, so that they match
  the soft labels of the pairs it scored), and a listwise KL over each
  query's row of the batch [B, P] is added with the objective's soft weight.
  """
  loss: str
  weight: float
  queries: Dict[str, np.ndarray]     # query text -> teacher embedding [Ht]
  documents: Dict[str, np.ndarray]   # document text -> teacher embedding [Ht]
  projection: Optional[keras.layers.Dense] = None
  in_batch: bool = False
  teacher_similarity: str = 'cosine'
  teacher_logit_scale: float = 20.0

  @property
  def learns_embeddings(self) -> bool:
    return self.loss != config.EMBEDDING_LOSS_OFF

  @property
  def teacher_dim(self) -> int:
    for table in (self.queries, self.documents):
      for vector in table.values():
        return int(np.shape(vector)[-1])
    raise ValueError('EmbeddingDistillation has no teacher embedding')

  def validate(self) -> 'EmbeddingDistillation':
    if self.learns_embeddings:
      losses.get_embedding_loss(self.loss)
    elif not self.in_batch:
      raise ValueError('EmbeddingDistillation with loss none and no in_batch has '
                       'nothing to learn')
    if self.teacher_similarity not in config.SIMILARITIES:
      raise ValueError(f'teacher_similarity must be one of {config.SIMILARITIES}, '
                       f'got {self.teacher_similarity!r}')
    if not (math.isfinite(self.teacher_logit_scale) and self.teacher_logit_scale > 0):
      raise ValueError(f'teacher_logit_scale must be finite and > 0, got '
                       f'{self.teacher_logit_scale}')
    if not (math.isfinite(self.weight) and self.weight >= 0):
      raise ValueError(f'EmbeddingDistillation.weight must be finite and >= 0, '
                       f'got {self.weight}')
    dims = {np.shape(v)[-1] for t in (self.queries, self.documents) for v in t.values()}
    if len(dims) != 1:
      raise ValueError(f'teacher embeddings must share one width, got {sorted(dims)}')
    return self

  def build(self, student_dim: int, seed: int = 0) -> None:
    """Makes the projection when the student's width is not the teacher's."""
    if student_dim == self.teacher_dim:
      self.projection = None
      return
    self.projection = keras.layers.Dense(
        self.teacher_dim, use_bias=False, name='embedding_projection',
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed))
    self.projection.build((None, student_dim))

  @property
  def trainable_variables(self) -> list:
    return [] if self.projection is None else list(self.projection.trainable_variables)

  def targets(self, batch: ListData) -> List[np.ndarray]:
    """[query targets [B, Ht], their mask [B], document targets [B, L, Ht],
    their mask [B, L]]; a text without a teacher embedding is masked out."""
    dim = self.teacher_dim
    n, size = batch.docs.shape
    q_target, q_mask = np.zeros([n, dim], np.float32), np.zeros([n], bool)
    d_target, d_mask = np.zeros([n, size, dim], np.float32), np.zeros([n, size], bool)
    for i, text in enumerate(batch.query):
      if _text(text) in self.queries:
        q_target[i], q_mask[i] = self.queries[_text(text)], True
    for (i, j), text in np.ndenumerate(batch.docs):
      if batch.mask[i, j] and _text(text) in self.documents:
        d_target[i, j], d_mask[i, j] = self.documents[_text(text)], True
    return [q_target, q_mask, d_target, d_mask]

  def term(self, query_embedding, doc_embedding, positions, q_target, q_mask,
           d_target, d_mask) -> tf.Tensor:
    """The loss over a batch's texts (score_lists_with_embeddings' outputs)."""
    if not self.learns_embeddings:
      return tf.zeros([])
    dim = tf.shape(d_target)[-1]
    student = tf.concat([query_embedding, doc_embedding], axis=0)
    teacher = tf.concat([q_target, tf.gather(tf.reshape(d_target, [-1, dim]),
                                             positions)], axis=0)
    mask = tf.concat([q_mask, tf.gather(tf.reshape(d_mask, [-1]), positions)],
                     axis=0)
    if self.projection is not None:
      student = self.projection(student)
    return losses.get_embedding_loss(self.loss)(student, teacher, mask)

  def in_batch_term(self, score_matrix, positions, q_target, q_mask, d_target,
                    d_mask) -> tf.Tensor:
    """Listwise KL between the teacher's and the student's scores of every
    query of the batch with every document of it ([B, P]: P the batch's
    unmasked documents, in `positions` order); pairs where either text has
    no teacher embedding are left out. `score_matrix` is the student's
    (models.BiEncoder.score_matrix)."""
    if not self.in_batch:
      return tf.zeros([])
    dim = tf.shape(d_target)[-1]
    teacher_docs = tf.gather(tf.reshape(d_target, [-1, dim]), positions)
    doc_mask = tf.gather(tf.reshape(d_mask, [-1]), positions)
    teacher = self.teacher_logit_scale * rmodels.similarity_matrix(
        q_target, teacher_docs, self.teacher_similarity, 1.0)
    mask = q_mask[:, tf.newaxis] & doc_mask[tf.newaxis, :]
    return losses.listwise_kl(score_matrix, teacher, mask)

  def input_signature(self, list_size: int) -> List[tf.TensorSpec]:
    return [tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None], tf.bool),
            tf.TensorSpec([None, list_size, None], tf.float32),
            tf.TensorSpec([None, list_size], tf.bool)]


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


def train_ranker(ranker: Ranker, data: ListData, loss: Optional[str],
                 epochs: int, batch_lists: int, learning_rate: float,
                 warmup_fraction: float = config.DEFAULT_WARMUP_FRACTION,
                 seed: int = 0,
                 log_every: int = config.DEFAULT_LOG_EVERY,
                 tensorboard_dir: Optional[str] = None,
                 loss_kwargs: Optional[Dict[str, Any]] = None,
                 weight_decay: float = 0.01,
                 objective: Optional[Objective] = None,
                 text_noise: Optional[TextNoise] = None,
                 embedding: Optional[EmbeddingDistillation] = None,
                 freeze_word_embeddings: bool = False
                 ) -> Dict[str, List[float]]:
  """Trains `ranker` in place on lists; returns the history.

  Args:
    ranker: the model to train (its trainable variables are updated).
    data: lists of candidates; labels (and teacher scores) are the targets.
    loss: a name in losses.LOSSES, on the labelled pairs. With an objective
      it may be None; otherwise it must equal objective.hard_loss.
    epochs: passes over the lists (0: no training).
    batch_lists: lists per step (pairs per step = batch_lists * L at most).
    learning_rate: peak learning rate.
    warmup_fraction: fraction of all steps spent warming up.
    seed: seeds the list shuffling, TF's global random seed (dropout) and the
      text noise.
    log_every: steps between log lines `step s/S loss x pairs/s y` (with an
      objective: `loss x (hard h soft s)`).
    tensorboard_dir: if set, loss (and hard_loss / soft_loss), learning rate
      and pairs/s are written as tf.summary scalars.
    loss_kwargs: extra hard-loss arguments, e.g. {'max_label': 3.0}.
    weight_decay: AdamW decoupled weight decay (not on biases/LayerNorm).
    objective: hard + soft loss mix (see Objective); None: `loss` on labels.
    text_noise: Noisy Student noise on the documents of training pairs
      (never at inference); None or all-zero: none.
    embedding: the teacher's embeddings of the texts, learnt beside the
      score losses (bi-encoders only; see EmbeddingDistillation). Its
      projection, if any, is built and trained here and left on it.
    freeze_word_embeddings: keep the word-piece embedding table as loaded
      (most of a small BERT's parameters: 11.7 M of a 2-layer MiniLM's
      15.5 M); every other variable trains.

  Returns:
    {'loss': per-step losses, 'learning_rate': per-step rates,
     'pairs_per_second': one value per log line, 'epoch_loss': per epoch},
    and with an objective also 'hard_loss' and 'soft_loss' per step (the
    unweighted terms; loss = hard_weight * hard + soft_weight * soft),
    and with an embedding also 'embedding_loss' per step (unweighted), and
    'in_batch_loss' with in-batch negatives (unweighted).
  """
  loss, loss_fn, objective, text_noise = _checked_arguments(
      loss, objective, text_noise, batch_lists=batch_lists, epochs=epochs,
      log_every=log_every)
  loss_kwargs = dict(loss_kwargs or {})
  _check_targets(data, loss, loss_kwargs, objective)
  history = _empty_history(objective, embedding)
  if embedding is not None:
    embedding = _prepare_embedding(embedding, ranker, seed)
  steps_per_epoch = math.ceil(len(data) / batch_lists)
  total_steps = epochs * steps_per_epoch
  if total_steps == 0:
    logging.info('No training: %d epochs over %d lists', epochs, len(data))
    return history

  tf.random.set_seed(seed)
  optimizer = make_optimizer(learning_rate, total_steps, warmup_fraction,
                             weight_decay)
  variables = trained_variables(ranker, freeze_word_embeddings) + (
      embedding.trainable_variables if embedding is not None else [])
  # Creating the slots now, not inside the first step, avoids a second trace.
  optimizer.build(variables)
  list_size = data.docs.shape[1]
  doc_noise = (None if text_noise is None else
               DocumentNoise(text_noise, ranker.tokenizer.mask_id, seed))
  if doc_noise is not None:
    logging.info('Text noise on training documents: %s', text_noise)
  train_step = _make_train_step(ranker, objective, loss_fn, loss_kwargs,
                                embedding, doc_noise, optimizer, variables,
                                list_size)
  log = _StepLog(history, objective, embedding, tensorboard_dir, log_every,
                 total_steps)
  _run_epochs(data, train_step, optimizer, embedding, log, history,
              epochs=epochs, batch_lists=batch_lists, seed=seed)
  log.close()
  return history


def trained_variables(ranker: Ranker, freeze_word_embeddings: bool) -> list:
  """The ranker's variables a step updates."""
  if not freeze_word_embeddings:
    return list(ranker.trainable_variables)
  table = ranker.word_embedding_table
  kept = [v for v in ranker.trainable_variables if v is not table]
  logging.info('Word embeddings frozen: %d of %d parameters train',
               sum(int(np.prod(v.shape)) for v in kept),
               sum(int(np.prod(v.shape)) for v in ranker.trainable_variables))
  return kept


def _run_epochs(data: ListData, train_step, optimizer,
                embedding: Optional['EmbeddingDistillation'], log: '_StepLog',
                history: Dict[str, List[float]], epochs: int, batch_lists: int,
                seed: int) -> None:
  """The training loop: each epoch visits the lists in a seeded order,
  `batch_lists` per step; appends each epoch's mean loss to the history."""
  rng = np.random.default_rng(seed)
  for epoch in range(epochs):
    order = rng.permutation(len(data))
    epoch_losses = []
    for start in range(0, len(data), batch_lists):
      batch = data.take(order[start:start + batch_lists])
      rate = float(optimizer.learning_rate)  # the rate this step uses
      values = train_step(*_step_inputs(batch, embedding)).numpy()
      epoch_losses.append(log.step(values, rate, batch.num_pairs))
    history['epoch_loss'].append(float(np.mean(epoch_losses)))
    logging.info('epoch %d/%d mean loss %.4f', epoch + 1, epochs,
                 history['epoch_loss'][-1])


def _checked_arguments(loss: Optional[str], objective: Optional[Objective],
                       text_noise: Optional[TextNoise], batch_lists: int,
                       epochs: int, log_every: int):
  """train_ranker's arguments checked: (the hard loss's name and function, a
  validated copy of the objective, the text noise or None when it changes
  nothing)."""
  if objective is not None:
    objective = dataclasses.replace(objective).validate()
    if loss is not None and loss != objective.hard_loss:
      raise ValueError(f'loss={loss!r} but objective.hard_loss='
                       f'{objective.hard_loss!r}; pass one of them')
    loss = objective.hard_loss
  elif loss is None:
    raise ValueError('train_ranker needs a loss or an objective')
  loss_fn = losses.get_loss(loss)
  if batch_lists < 1:
    raise ValueError(f'batch_lists must be >= 1, got {batch_lists}')
  if epochs < 0:
    raise ValueError(f'epochs must be >= 0, got {epochs}')
  if log_every < 1:
    raise ValueError(f'log_every must be >= 1, got {log_every}')
  if text_noise is not None:
    text_noise = dataclasses.replace(text_noise).validate()
    if text_noise.is_identity:
      text_noise = None
  return loss, loss_fn, objective, text_noise


def _empty_history(objective: Optional[Objective],
                   embedding: Optional['EmbeddingDistillation']
                   ) -> Dict[str, List[float]]:
  """train_ranker's history before the first step: the keys it will fill."""
  history = {'loss': [], 'learning_rate': [], 'pairs_per_second': [],
             'epoch_loss': []}
  if objective is not None:
    history.update(hard_loss=[], soft_loss=[])
  if embedding is not None:
    history.update(embedding_loss=[])
    if embedding.in_batch:
      history.update(in_batch_loss=[])
  return history


def _make_train_step(ranker: Ranker, objective: Optional[Objective], loss_fn,
                     loss_kwargs: Dict[str, Any],
                     embedding: Optional[EmbeddingDistillation], doc_noise,
                     optimizer, variables, list_size: int):
  """The traced step: one update, returns [total, hard, soft, embedding,
  in-batch]."""

  def objective_terms(scores, labels, teacher, mask, label_mask,
                      teacher_mask, weights):
    hard_mask = mask & label_mask
    hard = loss_fn(scores, labels, hard_mask, weights=weights, **loss_kwargs)
    if objective is None:
      return hard, hard, tf.zeros([])
    soft_mask = mask & teacher_mask
    if not objective.soft_on_labelled:
      soft_mask &= ~label_mask
    soft = losses.soft_loss(objective.soft_loss, scores, teacher, soft_mask,
                            temperature=objective.temperature,
                            weights=weights)
    total = objective.hard_weight * hard + objective.soft_weight * soft
    return total, hard, soft

  def forward(queries, docs, mask, targets):
    """Scores [B, L] and the (unweighted) embedding and in-batch terms."""
    if embedding is None:
      return (ranker.score_lists(queries, docs, mask, training=True,
                                 doc_noise=doc_noise), tf.zeros([]), tf.zeros([]))
    scores, query_embedding, doc_embedding, positions = (
        ranker.score_lists_with_embeddings(queries, docs, mask, doc_noise=doc_noise))
    in_batch = (embedding.in_batch_term(
        ranker.model.score_matrix(query_embedding, doc_embedding), positions, *targets)
                if embedding.in_batch else tf.zeros([]))
    return scores, embedding.term(query_embedding, doc_embedding, positions,
                                  *targets), in_batch

  def train_step(queries, docs, labels, teacher, mask, label_mask,
                 teacher_mask, weights, *targets):
    with tf.GradientTape() as tape:
      scores, emb, in_batch = forward(queries, docs, mask, targets)
      total, hard, soft = objective_terms(scores, labels, teacher, mask,
                                          label_mask, teacher_mask, weights)
      if embedding is not None:
        total += embedding.weight * emb
        if embedding.in_batch:
          total += (objective.soft_weight if objective is not None else 1.0) * in_batch
    gradients = tape.gradient(total, variables)
    gradients, _ = tf.clip_by_global_norm(gradients, CLIP_NORM)
    optimizer.apply_gradients(zip(gradients, variables))
    return tf.stack([total, hard, soft, emb, in_batch])

  lists = lambda dtype: tf.TensorSpec([None, list_size], dtype)
  return graph_function(train_step, [
      tf.TensorSpec([None], tf.string), lists(tf.string), lists(tf.float32),
      lists(tf.float32), lists(tf.bool), lists(tf.bool), lists(tf.bool),
      tf.TensorSpec([None], tf.float32)] + (
          [] if embedding is None else embedding.input_signature(list_size)))


def _step_inputs(batch: ListData,
                 embedding: Optional[EmbeddingDistillation]) -> List[tf.Tensor]:
  """The train step's arguments for one batch of lists."""
  weights = (np.ones(len(batch), np.float32) if batch.weights is None
             else batch.weights.astype(np.float32))
  targets = [] if embedding is None else embedding.targets(batch)
  return [tf.constant(batch.query.tolist(), tf.string),
          tf.constant(batch.docs.tolist(), tf.string),
          tf.constant(batch.labels, tf.float32),
          tf.constant(batch.teacher_or_zeros(), tf.float32),
          tf.constant(batch.mask), tf.constant(batch.label_mask),
          tf.constant(batch.teacher_mask), tf.constant(weights)] + [
              tf.constant(t) for t in targets]


# What _StepLog records per step (history keys and TensorBoard scalars).
_SCALARS = ('loss', 'learning_rate', 'hard_loss', 'soft_loss', 'embedding_loss',
            'in_batch_loss')


class _StepLog:
  """Per-step history, TensorBoard scalars and the windowed log lines."""

  def __init__(self, history: Dict[str, List[float]],
               objective: Optional[Objective],
               embedding: Optional[EmbeddingDistillation],
               tensorboard_dir: Optional[str], log_every: int,
               total_steps: int):
    self.history, self.objective, self.embedding = history, objective, embedding
    self.writer = (tf.summary.create_file_writer(tensorboard_dir)
                   if tensorboard_dir else None)
    self.log_every, self.total_steps, self.steps = log_every, total_steps, 0
    self.window_losses, self.window_pairs = [], 0
    self.window_start = time.perf_counter()

  def step(self, values, rate: float, num_pairs: int) -> float:
    """Records one step's [total, hard, soft, embedding, in-batch]; returns
    total."""
    value, hard, soft, emb, in_batch = (float(v) for v in values)
    self.steps += 1
    if not math.isfinite(value):
      raise FloatingPointError(f'loss is {value} at step {self.steps} (hard '
                               f'{hard}, soft {soft})')
    scalars = {'loss': value, 'learning_rate': rate}
    if self.objective is not None:
      scalars.update(hard_loss=hard, soft_loss=soft)
    if self.embedding is not None:
      scalars.update(embedding_loss=emb)
      if self.embedding.in_batch:
        scalars.update(in_batch_loss=in_batch)
    for name in _SCALARS:
      if name in scalars:
        self.history[name].append(scalars[name])
    self.window_losses.append((value, hard, soft))
    self.window_pairs += num_pairs
    if self.writer is not None:
      with self.writer.as_default(step=self.steps):
        for name in _SCALARS:
          if name in scalars:
            tf.summary.scalar(name, scalars[name])
    if self.steps % self.log_every == 0 or self.steps == self.total_steps:
      self._log_window()
    return value

  def _log_window(self) -> None:
    elapsed = time.perf_counter() - self.window_start
    pairs_per_second = self.window_pairs / max(elapsed, 1e-9)
    self.history['pairs_per_second'].append(pairs_per_second)
    mean_loss, mean_hard, mean_soft = np.mean(self.window_losses, axis=0)
    if self.objective is None:
      logging.info('step %d/%d loss %.4f pairs/s %.1f', self.steps,
                   self.total_steps, mean_loss, pairs_per_second)
    else:
      logging.info('step %d/%d loss %.4f (hard %.4f soft %.4f) pairs/s '
                   '%.1f', self.steps, self.total_steps, mean_loss, mean_hard,
                   mean_soft, pairs_per_second)
    if self.writer is not None:
      with self.writer.as_default(step=self.steps):
        tf.summary.scalar('pairs_per_second', pairs_per_second)
    self.window_losses, self.window_pairs = [], 0
    self.window_start = time.perf_counter()

  def close(self) -> None:
    if self.writer is not None:
      self.writer.flush()


def _prepare_embedding(embedding: EmbeddingDistillation, ranker: Ranker,
                       seed: int) -> EmbeddingDistillation:
  """Validates `embedding` for `ranker` and builds its projection."""
  if not ranker.is_bi_encoder:
    raise ValueError('embedding distillation needs a bi-encoder student, this '
                     f'ranker is a {ranker.config.architecture}')
  embedding.validate()
  embedding.build(ranker.embedding_dim, seed)
  logging.info('Embedding distillation: %s x %s%s on %d query and %d document '
               'teacher embeddings (width %d, student %d%s)', embedding.loss,
               embedding.weight,
               (f', in-batch negatives (teacher {embedding.teacher_similarity} x '
                f'{embedding.teacher_logit_scale:g})' if embedding.in_batch else ''),
               len(embedding.queries), len(embedding.documents),
               embedding.teacher_dim, ranker.embedding_dim,
               ', projected' if embedding.projection is not None else '')
  return embedding


def _check_targets(data: ListData, loss: str, loss_kwargs: Dict[str, Any],
                   objective: Optional[Objective]) -> None:
  """Warns about targets a loss will clip or pairs no term will use."""
  labelled = data.labels[data.label_mask]
  max_label = loss_kwargs.get('max_label', 1.0)
  if (loss == 'pointwise_sigmoid_ce' and labelled.size and
      labelled.max() > max_label):
    logging.warning('labels go up to %s but max_label is %s: targets are '
                    'clipped to 1', labelled.max(), max_label)
  unlabelled = data.num_pairs - data.num_labelled
  if objective is None:
    if unlabelled:
      logging.warning('%d of %d pairs have no label and are not trained on '
                      '(pass an objective to learn from teacher scores)',
                      unlabelled, data.num_pairs)
    return
  if objective.soft_weight > 0 and not data.num_teacher_scored:
    logging.warning('Objective.soft_weight is %s but no pair has a teacher '
                    'score', objective.soft_weight)
  if objective.hard_weight > 0 and not data.num_labelled:
    logging.warning('Objective.hard_weight is %s but no pair has a label',
                    objective.hard_weight)
  soft_pairs = data.teacher_mask & (objective.soft_on_labelled |
                                    ~data.label_mask)
  unused = data.mask & ~(
      (data.label_mask if objective.hard_weight > 0 else False) |
      (soft_pairs if objective.soft_weight > 0 else False))
  if unused.any():
    logging.warning('%d of %d pairs are used by no loss term (weights hard '
                    '%s, soft %s, soft_on_labelled %s)', int(unused.sum()),
                    data.num_pairs, objective.hard_weight,
                    objective.soft_weight, objective.soft_on_labelled)
  if (objective.temperature != 1.0 and
      objective.soft_loss not in losses.TEMPERATURE_LOSSES):
    logging.warning('Objective.temperature %s is not used by soft loss %s',
                    objective.temperature, objective.soft_loss)
