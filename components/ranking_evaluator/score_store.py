"""Scores an evaluation computed, handed to the evaluations after it.

Every evaluator of a run scores the model it compares against on dev (and on
the calibration split for its hybrid weight), and that model was already
scored by the evaluator before: T by the teacher evaluator, then again by
each T' evaluator; T' by its evaluator, then again as the student's teacher.
On NFCorpus at bench sizes that repetition cost ~2.7 min of every 16.6-min
seed. So each evaluation writes the scores it used to its `ModelEvaluation`
artifact (`model_scores/`), and an evaluator given that artifact as its
`prior_evaluation` input reuses them. Lineage records the edge.

A score is reused only when both of its keys match:
- the model's content: the SavedModel's `fingerprint.pb` (TensorFlow's
  hashes of the graph, signatures and checkpoint), `variables/variables.index`
  (it holds a CRC32C of every variable's bytes) and every file under
  `assets/` (the tokenizer's vocabulary and the ranker's config live there).
  A model copied to a new URI (an evaluator's `selected_model`) keeps its
  key; a retrained one never does. A model without `fingerprint.pb` is
  never reused.
- the rows: a hash of every (query id, document id, query text, document
  text) in scoring order, so other examples, another split or another
  candidate depth never match.
"""

import hashlib
import io
import json
import os
from typing import Any, Dict, List, Optional, Set

import numpy as np
import tensorflow as tf

from rankdata import features as F

SCORES_DIR = 'model_scores'
INDEX_FILE = 'index.json'
FINGERPRINT_FILE = 'fingerprint.pb'


def model_key(model_dir: str) -> Optional[str]:
  """Content hash of a SavedModel, or None when it has no fingerprint.pb."""
  fingerprint = os.path.join(model_dir, FINGERPRINT_FILE)
  if not tf.io.gfile.exists(fingerprint):
    return None
  h = hashlib.sha256()
  for path in (fingerprint, os.path.join(model_dir, 'variables', 'variables.index')):
    if tf.io.gfile.exists(path):
      with tf.io.gfile.GFile(path, 'rb') as f:
        h.update(f.read())
    h.update(b'\0')
  assets = os.path.join(model_dir, 'assets')
  if tf.io.gfile.isdir(assets):
    for root, _, files in sorted(tf.io.gfile.walk(assets)):
      for name in sorted(files):
        path = os.path.join(root, name)
        h.update(os.path.relpath(path, assets).encode('utf-8') + b'\0')
        with tf.io.gfile.GFile(path, 'rb') as f:
          h.update(f.read())
  return h.hexdigest()


def rows_key(rows: List[Dict[str, Any]]) -> str:
  h = hashlib.sha256()
  for r in rows:
    for k in (F.QUERY_ID, F.DOC_ID, F.QUERY, F.DOC):
      h.update(str(r[k]).encode('utf-8') + b'\0')
  return h.hexdigest()


class ScoreStore:
  """Scores by (model key, rows key); loads a prior evaluation's, saves its own."""

  def __init__(self):
    self._scores: Dict[str, np.ndarray] = {}
    self._from_prior: Set[str] = set()
    self.reused: List[str] = []     # 'role/split' of each reuse, for the record

  @staticmethod
  def _key(model: str, rows: str) -> str:
    return f'{model}-{rows}'

  def get(self, model: Optional[str], rows: str) -> Optional[np.ndarray]:
    return None if model is None else self._scores.get(self._key(model, rows))

  def from_prior(self, model: Optional[str], rows: str) -> bool:
    """Whether these scores were loaded from a prior evaluation (not computed here)."""
    return model is not None and self._key(model, rows) in self._from_prior

  def put(self, model: Optional[str], rows: str, scores: np.ndarray) -> None:
    if model is not None:
      self._scores[self._key(model, rows)] = np.asarray(scores, np.float32)

  def __len__(self) -> int:
    return len(self._scores)

  def load(self, evaluation_uri: str) -> int:
    """Adds the scores a prior evaluation saved; returns how many."""
    directory = os.path.join(evaluation_uri, SCORES_DIR)
    index_path = os.path.join(directory, INDEX_FILE)
    if not tf.io.gfile.exists(index_path):
      return 0
    with tf.io.gfile.GFile(index_path) as f:
      index = json.load(f)
    for key, name in index.items():
      with tf.io.gfile.GFile(os.path.join(directory, name), 'rb') as f:
        self._scores.setdefault(key, np.load(io.BytesIO(f.read())))
      self._from_prior.add(key)
    return len(index)

  def save(self, evaluation_uri: str) -> None:
    """Writes every score held (the prior's too, so a chain carries them on)."""
    directory = os.path.join(evaluation_uri, SCORES_DIR)
    tf.io.gfile.makedirs(directory)
    index = {}
    for i, (key, scores) in enumerate(sorted(self._scores.items())):
      name = f'{i:05d}.npy'
      buffer = io.BytesIO()
      np.save(buffer, scores)
      with tf.io.gfile.GFile(os.path.join(directory, name), 'wb') as f:
        f.write(buffer.getvalue())
      index[key] = name
    with tf.io.gfile.GFile(os.path.join(directory, INDEX_FILE), 'w') as f:
      json.dump(index, f, indent=1, sort_keys=True)
