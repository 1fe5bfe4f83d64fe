"""Shared helpers for tests that run real pipelines on a Cranfield subset."""

import collections
import os
import re
from typing import Any, Dict

from rankdata import cranfield

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']


def cranfield_dir() -> str:
  path = cranfield.default_cranfield_dir()
  assert os.path.isdir(path), (
      f'Cranfield collection not found at {path}; set SSD_CRANFIELD_DIR or put '
      'shared/datasets/cranfield beside the project')
  return path


def write_tiny_vocab(path: str, size: int = 1500) -> str:
  """A small WordPiece vocabulary from Cranfield's most frequent words.

  Every lower-case letter and digit is also present as a word start and as a
  `##` continuation, so any text tokenises without [UNK] floods.
  """
  os.makedirs(os.path.dirname(path), exist_ok=True)
  ds = cranfield.load_cranfield(cranfield_dir())
  counts = collections.Counter()
  for doc in ds.documents.values():
    counts.update(re.findall(r'[a-z]+', f'{doc.title} {doc.text}'))
  chars = list('abcdefghijklmnopqrstuvwxyz0123456789.,;:()/-=+\'"?')
  words = [w for w, _ in counts.most_common(size)]
  vocab = SPECIAL_TOKENS + chars + [f'##{c}' for c in chars] + [w for w in words if w not in chars]
  with open(path, 'w', encoding='utf-8') as f:
    f.write('\n'.join(vocab) + '\n')
  return path


def tiny_pipeline_config(tmp_path, architecture: str = 'bi_encoder', **overrides) -> Dict[str, Any]:
  """A raw config dict for a fast end-to-end run (tiny random-init model).

  One encoder layer: a tiny trainer's time is nearly all tracing its train
  step and exporting, which grows with the layers (1.7 s less per trainer
  than 2 layers, ~25 s of `make test`); no code path depends on depth.
  """
  vocab = write_tiny_vocab(os.path.join(str(tmp_path), 'vocab.txt'))
  raw = {
      'pipeline_name': 'ssd-tiny',
      'pipeline_root': os.path.join(str(tmp_path), 'root'),
      'cache_dir': os.path.join(str(tmp_path), 'cache'),
      'data_validation': True,
      'data': {'format': 'cranfield', 'path': cranfield_dir(), 'max_queries': 40},
      'splits': {'seed': 7, 'train_queries': 12, 'dev_queries': 8, 'test_queries': 10,
                 'candidates_k': 8, 'title_queries': True, 'max_title_queries': 30},
      'teacher': {
          'model': {'architecture': architecture, 'checkpoint': None, 'vocab_file': vocab,
                    'encoder': {'num_layers': 1, 'hidden_size': 32, 'num_heads': 2,
                                'intermediate_size': 64},
                    'max_length': 48, 'query_max_length': 16},
          'train': {'epochs': 2, 'list_size': 8, 'batch_lists': 4, 'learning_rate': 1e-3,
                    'log_every': 5},
      },
  }
  for key, value in overrides.items():
    raw[key] = value
  return raw


def ssd_loop_config(tmp_path, pipeline_name: str) -> Dict[str, Any]:
  """The full SSD loop that tests/test_loop_e2e.py (run A) and
  tests/test_kubeflow_harness_e2e.py (LocalDagRunner vs. the compiled KFP
  spec) both check: a cross-encoder teacher, 2 SSD rounds, a bi-encoder
  student, loose blessing rules (so the student is blessed and pushed).
  One local run of it serves both (tests/conftest.py: `ssd_loop_run`).
  With the 1-layer tiny model T'_1 does not beat T on dev, so round 2 takes
  the gated path (skipped, the teacher passed through) in both runners;
  tests/test_loop_e2e.py checks either outcome."""
  raw = tiny_pipeline_config(tmp_path, architecture='cross_encoder')
  train = raw['teacher']['train']
  raw.update(
      pipeline_name=pipeline_name, data_validation=False,
      teacher_prime={'mode': 'ssd', 'rounds': 2, 'train': train,
                     'objective': {'max_soft_lists': 20}},
      student={'model': dict(raw['teacher']['model'], architecture='bi_encoder'), 'train': train},
      blessing={'min_improvement': -1.0, 'retention': 0.0, 'must_beat_first_stage': False})
  return raw


def write_tiny_checkpoint(directory: str, vocab_file: str, seed: int = 0, **encoder) -> str:
  """A Hugging Face-format BERT directory with random weights (a stand-in for a
  pretrained checkpoint that a test can build); encoder fields overridable."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rankers import checkpoint as rcheckpoint
  from rankers import config as rconfig
  from rankers import encoder as rencoder
  with tf.io.gfile.GFile(vocab_file, 'r') as f:
    vocab_size = sum(1 for _ in f)
  fields = dict(vocab_size=vocab_size, hidden_size=32, num_layers=2, num_heads=2,
                intermediate_size=64, max_position_embeddings=64)
  fields.update(encoder)
  tf.keras.utils.set_random_seed(seed)
  model = rencoder.BertEncoder(rconfig.EncoderConfig(**fields))
  ids = tf.zeros([1, 4], tf.int32)
  model({'input_word_ids': ids, 'input_mask': tf.ones_like(ids), 'input_type_ids': ids})
  return rcheckpoint.write_hf_checkpoint(directory, model, vocab_file, lower_case=True)


def write_beir(directory: str, queries_per_split: Dict[str, int]) -> str:
  """A small BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv).

  `queries_per_split` maps an official split to its number of queries; query
  `<split>-<i>` judges document `d-<split>-<i>` relevant, and both share a
  word, so BM25 ranks it first.
  """
  import json  # pylint: disable=g-import-not-at-top
  os.makedirs(os.path.join(directory, 'qrels'), exist_ok=True)
  ids = [(split, f'{split}-{i}') for split, n in queries_per_split.items() for i in range(n)]
  words = {query_id: f'w{k}' for k, (_, query_id) in enumerate(ids)}
  with open(os.path.join(directory, 'corpus.jsonl'), 'w', encoding='utf-8') as f:
    for _, query_id in ids:
      f.write(json.dumps({'_id': f'd-{query_id}', 'title': '',
                          'text': f'{words[query_id]} shared text'}) + '\n')
  with open(os.path.join(directory, 'queries.jsonl'), 'w', encoding='utf-8') as f:
    for _, query_id in ids:
      f.write(json.dumps({'_id': query_id, 'text': words[query_id]}) + '\n')
  for split in queries_per_split:
    with open(os.path.join(directory, 'qrels', f'{split}.tsv'), 'w', encoding='utf-8') as f:
      f.write('query-id\tcorpus-id\tscore\n')
      f.writelines(f'{q}\td-{q}\t1\n' for s, q in ids if s == split)
  return directory
