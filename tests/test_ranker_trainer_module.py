"""The trainer module's pieces that run outside TFX: hybrid fit, config parsing."""

import math

import pytest

from components.ranker_trainer import module
from rankdata import features as F
from rankers import config as RC
from rankers import export as rexport
from rankers import models as rmodels
from ssd import config as C


@pytest.fixture(scope='module')
def tiny_scorer(tmp_path_factory, tiny_vocab_file, tiny_encoder_config):
  ranker = rmodels.build_ranker(RC.RankerConfig(
      architecture='bi_encoder', encoder=tiny_encoder_config(), vocab_file=tiny_vocab_file,
      max_length=16, query_max_length=8), seed=3)
  path = str(tmp_path_factory.mktemp('hybrid') / 'model')
  rexport.export_ranker(ranker, path)
  return rexport.load_scorer(path)


def _row(qid, did, rank, fs, label):
  return {F.QUERY_ID: qid, F.DOC_ID: did, F.QUERY: 'apple banana', F.DOC: f'cherry {did}',
          F.FIRST_STAGE_RANK: rank, F.FIRST_STAGE_SCORE: fs, F.LABEL: label}


def test_hybrid_fit_uses_full_judgements_but_reranks_top_k(tiny_scorer):
  rows = []
  for q in ('q1', 'q2'):
    rows += [_row(q, f'{q}d1', 1, 40.0, 4.0), _row(q, f'{q}d2', 2, 30.0, 2.0),
             _row(q, f'{q}d3', 3, 20.0, 0.0), _row(q, f'{q}d4', 4, 10.0, 0.0),
             _row(q, f'{q}d9', 9, 1.0, 1.0)]   # judged, outside the top-4
  fit = module.fit_hybrid_weight(tiny_scorer, rows, candidates_k=4)
  # With the first stage dominating, the top-4 is in label order; the ideal
  # DCG still counts the judged document outside the top-4.
  dcg = 4 + 2 / math.log2(3)
  assert fit['dev_ndcg@10'] == pytest.approx(dcg / (dcg + 1 / math.log2(4)), abs=1e-6)
  assert fit['weight'] > 0
  assert set(fit['grid']) == set(float(w) for w in module.HYBRID_WEIGHTS)


def test_hybrid_fit_needs_labelled_candidates(tiny_scorer):
  with pytest.raises(ValueError, match='labelled rows'):
    module.fit_hybrid_weight(tiny_scorer, [_row('q', 'd', 9, 1.0, 1.0)], candidates_k=4)


def test_custom_config_round_trip_and_errors():
  args = module.parse_custom_config({
      'model': {'architecture': 'cross_encoder', 'checkpoint': None}, 'train': {'epochs': 2},
      'objective': {'soft_loss': 'margin_mse'}, 'noise': C.to_dict(C.NOISY_STUDENT_NOISE),
      'hybrid': True, 'candidates_k': 30, 'role': 'student'})
  assert args.model.architecture == 'cross_encoder' and args.train.epochs == 2
  assert args.objective.soft_loss == 'margin_mse' and args.noise == C.NOISY_STUDENT_NOISE
  assert (args.hybrid, args.candidates_k, args.role) == (True, 30, 'student')
  with pytest.raises(C.ConfigError, match=r'train\.epoch\b'):
    module.parse_custom_config({'train': {'epoch': 1}})
