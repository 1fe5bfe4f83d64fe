"""The trainer module's pieces that run outside TFX: hybrid fit, config parsing."""

import dataclasses
import inspect
import math

import numpy as np
import pytest

from components.common import hybrid
from components.ranker_trainer import module
from rankdata import features as F
from rankers import config as RC
from rankers import export as rexport
from rankers import models as rmodels
from rankers import training as rtraining
from runconfig import config as C


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
  assert fit['calibration_ndcg@10'] == pytest.approx(dcg / (dcg + 1 / math.log2(4)), abs=1e-6)
  assert fit['weight'] > 0 and fit['calibration_queries'] == 2
  assert set(fit['grid']) == set(float(w) for w in hybrid.WEIGHTS)


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


@pytest.mark.parametrize('library_type,settings_type,overrides', [
    (rtraining.Objective, C.ObjectiveConfig, module.OBJECTIVE_OVERRIDES),
    (rtraining.TextNoise, C.NoiseConfig, module.TEXT_NOISE_OVERRIDES)])
def test_every_library_setting_comes_from_runconfig_or_an_override(library_type, settings_type,
                                                                   overrides):
  """A field added to the library type must be named in runconfig (with the same
  default) or be overridden on purpose: it cannot silently keep its own default."""
  # NoiseConfig's None means "the mode's default"; with no config that is the
  # default mode's noise.
  defaults = (C.resolve_noise(C.TeacherPrimeConfig().mode, C.NoiseConfig())
              if settings_type is C.NoiseConfig else settings_type())
  given = {f.name for f in dataclasses.fields(settings_type)}
  for field in dataclasses.fields(library_type):
    if field.name in overrides:
      assert field.name not in given or field.name == 'temperature', field.name
      continue
    assert field.name in given, (
        f'{library_type.__name__}.{field.name}: add it to {settings_type.__name__} or to '
        'the trainer module\'s overrides')
    assert field.default == getattr(defaults, field.name), field.name
  assert set(overrides) <= {f.name for f in dataclasses.fields(library_type)}


def test_library_types_take_runconfigs_values():
  objective = C.ObjectiveConfig(hard_loss='pointwise_mse', hard_weight=0.5, soft_loss='mse',
                                soft_weight=2.0, soft_on_labelled=True)
  assert module.library_objective(objective) == rtraining.Objective(
      hard_loss='pointwise_mse', hard_weight=0.5, soft_loss='mse', soft_weight=2.0,
      temperature=1.0, soft_on_labelled=True)
  assert module.library_text_noise(C.NOISY_STUDENT_NOISE) == rtraining.TextNoise(
      token_dropout=0.1, mask_prob=0.1, shuffle_window=3)
  assert module.library_text_noise(None) is None

  @dataclasses.dataclass
  class Drifted:
    hard_loss: str = 'x'
    new_knob: int = 3
  with pytest.raises(TypeError, match=r'Drifted\.new_knob.*ObjectiveConfig'):
    module.fields_from(Drifted, objective, {})


def test_train_ranker_defaults_are_runconfigs():
  """train_ranker's defaults for settings the user's `train:` section also
  names are the same values (seed aside: the trainer module always passes
  the schema's, 42 by default; the library's 0 is what its own tests pin)."""
  params = inspect.signature(rtraining.train_ranker).parameters
  shared = [f for f in dataclasses.fields(C.TrainConfig)
            if f.name in params and params[f.name].default is not inspect.Parameter.empty]
  assert {f.name for f in shared} == {'warmup_fraction', 'seed', 'log_every', 'freeze_word_embeddings'}
  for field in shared:
    if field.name != 'seed':
      assert params[field.name].default == field.default, field.name


def _pseudo(qid, did, score, soft, hard, confidence, label=None):
  return {F.QUERY_ID: qid, F.DOC_ID: did, F.QUERY: 'apple', F.DOC: f'pear {did}',
          F.LABEL: label, F.TEACHER_SCORE: score, F.SOFT_LABEL: soft, F.HARD_LABEL: hard,
          F.CONFIDENCE: confidence}


def _labels_at(temperature):
  """What the pseudo-labeller writes for scores (2, 1, 0) at a temperature."""
  from components.pseudo_labeler import selection  # pylint: disable=g-import-not-at-top
  return selection.softmax([2.0, 1.0, 0.0], temperature)


def test_soft_targets_come_from_the_pseudo_labellers_temperature():
  """Changing pseudo_label.temperature changes what the trainer learns from."""
  objective = C.ObjectiveConfig(soft_loss='listwise_kl')
  received = {}
  for t in (1.0, 0.5):
    probs = _labels_at(t)
    rows = [_pseudo('u1', f'd{i}', s, float(p), float(i == 0), 0.4)
            for i, (s, p) in enumerate(zip([2.0, 1.0, 0.0], probs))]
    targets = module.training_targets(rows, objective)
    data = rtraining.group_into_lists(targets, list_size=3, teacher_key=module.TARGET_KEY)
    # The loss's target: softmax of the received logits (temperature 1),
    # ordered by doc id.
    order = np.argsort(data.docs[0])
    logits = data.teacher[0][order]
    received[t] = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(received[t], probs, rtol=1e-5)
  np.testing.assert_allclose(received[1.0], [0.66524096, 0.24472847, 0.09003057], rtol=1e-5)
  np.testing.assert_allclose(received[0.5], [0.86681333, 0.11731043, 0.01587624], rtol=1e-5)
  # A training list that is a subset of the scored list gets the renormalised
  # distribution, i.e. softmax(score / T) over the subset.
  rows = [_pseudo('u1', 'd0', 2.0, 0.86681333, 1.0, 0.4),
          _pseudo('u1', 'd2', 0.0, 0.01587624, 0.0, 0.4)]
  data = rtraining.group_into_lists(module.training_targets(rows, objective), list_size=2,
                                    teacher_key=module.TARGET_KEY)
  t = data.teacher[0]
  p = np.exp(t - t.max()) / np.exp(t - t.max()).sum()
  assert sorted(p.tolist()) == pytest.approx(sorted([1 / (1 + math.exp(-4)), 1 / (1 + math.exp(4))]),
                                             rel=1e-5)


def test_score_regression_losses_use_raw_teacher_scores():
  rows = [_pseudo('u1', 'd0', 7.5, 0.9, 1.0, 0.4), _pseudo('u1', 'd1', -1.0, 0.1, 0.0, 0.4)]
  for loss in ('mse', 'margin_mse'):
    targets = module.training_targets(rows, C.ObjectiveConfig(soft_loss=loss))
    assert [r[module.TARGET_KEY] for r in targets] == [7.5, -1.0]


def test_hard_pseudo_targets_and_confidence_weights():
  rows = [_pseudo('u1', 'd0', 2.0, 0.7, 1.0, 0.25), _pseudo('u1', 'd1', 1.0, 0.3, 0.0, 0.25),
          _pseudo('q1', 'd5', 3.0, 0.6, 1.0, 0.9, label=2.0),
          _pseudo('q1', 'd6', 1.0, 0.4, 0.0, 0.9, label=0.0)]
  objective = C.ObjectiveConfig(pseudo_targets='hard', confidence_weighting=True,
                                soft_on_labelled=True)
  targets = module.training_targets(rows, objective)
  # Unlabelled pairs learn their hard label; true labels are untouched.
  assert [r[F.LABEL] for r in targets] == [1.0, 0.0, 2.0, 0.0]
  assert [r[module.TARGET_KEY] is None for r in targets] == [True, True, False, False]
  data = rtraining.group_into_lists(targets, list_size=4, teacher_key=module.TARGET_KEY,
                                    weight_key=module.WEIGHT_KEY)
  # One list per query: the pseudo-labelled one weighs its confidence.
  assert sorted(data.weights.tolist()) == [0.25, 1.0]
  with pytest.raises(ValueError, match='no hard_label'):
    module.training_targets([dict(rows[0], **{F.HARD_LABEL: None})], objective)


def test_hard_pseudo_labelled_queries_are_still_sampled():
  rows = [_pseudo(f'u{i}', f'd{j}', float(j), 0.5, float(j == 0), 0.5)
          for i in range(5) for j in range(2)]
  rows += [_pseudo('q1', 'd9', 1.0, 0.5, 1.0, 0.5, label=1.0)]
  targets = module.training_targets(rows, C.ObjectiveConfig(pseudo_targets='hard'))
  kept = module.sample_soft_lists(targets, max_lists=2, seed=0)
  assert len({r[F.QUERY_ID] for r in kept if r[module.PSEUDO_KEY]}) == 2
  assert any(r[F.QUERY_ID] == 'q1' for r in kept)   # true labels are always kept


def test_truncation_warning_counts_documents_and_queries_apart(tiny_vocab_file,
                                                               tiny_encoder_config, caplog):
  ranker = rmodels.build_ranker(RC.RankerConfig(
      architecture='bi_encoder', encoder=tiny_encoder_config(), vocab_file=tiny_vocab_file,
      max_length=5, query_max_length=4), seed=3)
  examples = [{F.QUERY: 'apple banana cherry', F.DOC: 'red blue green black white'},
              {F.QUERY: 'apple', F.DOC: 'red'}]
  with caplog.at_level('WARNING'):
    counts = module._count_truncated(ranker, examples, 'student')  # pylint: disable=protected-access
  assert counts['items'] == 2 and counts['truncated_docs'] == 1
  assert counts['truncated_queries'] == 1
  assert ('[student] 2 training pairs: 1 documents over max_length=5 and 1 queries over '
          'query_max_length=4 are truncated') in caplog.text
