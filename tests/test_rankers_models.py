"""Tiny cross- and bi-encoders: learn a toy task, then export and reload.

Each architecture is trained once (a module fixture) and the same model is
exported, because tracing the TF graphs dominates the cost of these tests.
The cross-encoder trains with Noisy Student text noise, so the export tests
also prove that no noise reaches the serving graphs.
"""

import json
import logging
import os
import types

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from safetensors import numpy as safetensors_numpy

from rankdata import features
from rankers import checkpoint
from rankers import export
from rankers import models
from rankers import training
from rankers.config import RankerConfig

TOY_WORDS = ('apple banana cherry grape lemon mango olive peach pear plum '
             'kiwi lime cat dog horse mouse tiger zebra lion bear wolf fox'
             ).split()
QUERIES = ['cat', 'red fox', 'apple pear', 'the lion', 'a blue whale']
DOCS = ['cat dog', 'fox', 'apples of the green tree', 'lion bear wolf', 'owl']
EPOCHS = 24
BATCH_LISTS = 8


def toy_examples(num_queries=48, negatives=3, relation='contains', seed=0):
  """One-word queries, documents of three words, one relevant per query.

  relation='contains': the relevant document contains the query word.
  relation='partner': it contains the word's fixed partner instead, and one
  irrelevant document contains the query word itself (a lexical decoy).
  """
  rng = np.random.default_rng(seed)
  examples = []
  for i in range(num_queries):
    word = TOY_WORDS[i % len(TOY_WORDS)]
    key = word
    if relation == 'partner':
      key = TOY_WORDS[(i + len(TOY_WORDS) // 2) % len(TOY_WORDS)]
    others = [w for w in TOY_WORDS if w not in (word, key)]
    docs = [[key] + list(rng.choice(others, 2, replace=False))]
    docs += [list(rng.choice(others, 3, replace=False))
             for _ in range(negatives)]
    if relation == 'partner':
      docs[1][0] = word
    for j, doc in enumerate(docs):
      rng.shuffle(doc)
      examples.append({features.QUERY_ID: f'q{i}', features.QUERY: word,
                       features.DOC_ID: f'd{i}.{j}',
                       features.DOC: ' '.join(doc),
                       features.LABEL: 1.0 if j == 0 else 0.0})
  return examples


def mean_reciprocal_rank(ranker, data):
  scores = ranker.score_lists(data.query.astype(str), data.docs.astype(str),
                              data.mask).numpy()
  scores = np.where(data.mask, scores, -np.inf)
  positive = np.argmax(data.labels, axis=1)
  ranks = 1 + (scores > scores[np.arange(len(scores)), positive][:, None]
               ).sum(axis=1)
  return float(np.mean(1.0 / ranks))


@pytest.fixture(scope='module', params=[
    ('cross_encoder', 'listwise_softmax_ce', 'contains', 1e-2,
     training.TextNoise(token_dropout=0.1, mask_prob=0.1, shuffle_window=2)),
    ('bi_encoder', 'pointwise_sigmoid_ce', 'partner', 3e-3, None),
], ids=['cross_encoder', 'bi_encoder'])
def trained(request, tiny_vocab_file, tiny_encoder_config, tmp_path_factory):
  architecture, loss, relation, learning_rate, text_noise = request.param
  encoder = tiny_encoder_config(hidden_dropout=0.1, attention_dropout=0.1,
                                stochastic_depth=0.1)
  config = RankerConfig(architecture, encoder=encoder,
                        vocab_file=tiny_vocab_file, max_length=16,
                        query_max_length=8)
  ranker = models.build_ranker(config, seed=0)
  data = training.group_into_lists(toy_examples(relation=relation),
                                   list_size=4)
  before = mean_reciprocal_rank(ranker, data)
  tensorboard_dir = str(tmp_path_factory.mktemp('tb'))
  history = training.train_ranker(
      ranker, data, loss=loss, epochs=EPOCHS, batch_lists=BATCH_LISTS,
      learning_rate=learning_rate, warmup_fraction=0.1, seed=0, log_every=25,
      tensorboard_dir=tensorboard_dir, text_noise=text_noise)
  return types.SimpleNamespace(
      ranker=ranker, data=data, history=history, before=before,
      after=mean_reciprocal_rank(ranker, data), learning_rate=learning_rate,
      tensorboard_dir=tensorboard_dir)


@pytest.fixture(scope='module')
def exported(trained, tmp_path_factory):
  export_dir = str(tmp_path_factory.mktemp('export') / 'model')
  export.export_ranker(trained.ranker, export_dir, {'role': 'teacher', 'n': 3})
  return types.SimpleNamespace(ranker=trained.ranker, export_dir=export_dir,
                               scorer=export.load_scorer(export_dir))


def test_loss_drops_and_ranking_improves(trained):
  losses = trained.history['loss']
  steps_per_epoch = len(trained.data) // BATCH_LISTS
  assert len(losses) == EPOCHS * steps_per_epoch
  first = np.mean(losses[:steps_per_epoch])
  last = np.mean(losses[-steps_per_epoch:])
  assert last < 0.8 * first, losses
  assert trained.after > trained.before + 0.2, (trained.before, trained.after)


def test_history_schedule_and_tensorboard(trained):
  history = trained.history
  steps = len(history['loss'])
  assert len(history['pairs_per_second']) == -(-steps // 25)  # and the last
  assert all(rate > 0 for rate in history['pairs_per_second'])
  assert max(history['learning_rate']) == pytest.approx(trained.learning_rate)
  assert history['learning_rate'][-1] < trained.learning_rate / 10
  assert len(history['epoch_loss']) == EPOCHS
  assert os.listdir(trained.tensorboard_dir)


def test_score_lists_scores_exactly_the_unmasked_pairs(trained):
  ranker, some = trained.ranker, trained.data.take(np.arange(3))
  some.mask[0, 1:] = False
  lists = ranker.score_lists(some.query.astype(str), some.docs.astype(str),
                             some.mask).numpy()
  queries = np.repeat(some.query, some.docs.shape[1])[some.mask.ravel()]
  pairs = ranker.score(queries.astype(str), some.docs[some.mask].astype(str))
  np.testing.assert_allclose(lists[some.mask], pairs.numpy(), rtol=1e-5,
                             atol=1e-5)
  assert (lists[~some.mask] == 0).all()


def test_noise_only_when_training(trained):
  ranker = trained.ranker
  inference = ranker.score(QUERIES, DOCS).numpy()
  np.testing.assert_array_equal(ranker.score(QUERIES, DOCS).numpy(),
                                inference)
  noisy = [ranker.score(QUERIES, DOCS, training=True).numpy()
           for _ in range(2)]
  assert not np.allclose(noisy[0], noisy[1])
  assert not np.allclose(noisy[0], inference)


def _example(query, doc):
  def text(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(
        value=[value.encode()]))
  feature = {features.QUERY: text(query), features.DOC: text(doc),
             features.QUERY_ID: text('q1'),
             features.LABEL: tf.train.Feature(
                 float_list=tf.train.FloatList(value=[1.0]))}
  return tf.train.Example(features=tf.train.Features(
      feature=feature)).SerializeToString()


def test_export_gives_in_memory_inference_scores(exported):
  expected = exported.ranker.score(QUERIES, DOCS).numpy()
  scorer = exported.scorer
  first = scorer.score(QUERIES, DOCS)
  assert first.dtype == np.float32 and first.shape == (len(QUERIES),)
  np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(scorer.score(QUERIES, DOCS), first)
  # Length-sorted batches of 2 come back in input order.
  np.testing.assert_allclose(scorer.score(QUERIES, DOCS, batch_size=2),
                             expected, rtol=1e-5, atol=1e-5)
  assert scorer.score([], []).shape == (0,)


def test_score_examples_equals_serving_default(exported):
  serialized = [_example(q, d) for q, d in zip(QUERIES, DOCS)]
  np.testing.assert_allclose(
      exported.scorer.score_examples(serialized, batch_size=3),
      exported.scorer.score(QUERIES, DOCS), rtol=1e-6, atol=1e-6)


def _assert_no_noise_in(export_dir):
  """No random op (dropout, layer drop, text noise) and no generator state."""
  proto = saved_model_pb2.SavedModel()
  with open(os.path.join(export_dir, 'saved_model.pb'), 'rb') as f:
    proto.ParseFromString(f.read())
  graph = proto.meta_graphs[0].graph_def
  ops = {node.op for node in graph.node}
  for function in graph.library.function:
    ops.update(node.op for node in function.node_def)
  assert 'WordpieceTokenizeWithOffsets' in ops, sorted(ops)
  noisy = ('Random', 'Dropout', 'Rng', 'StatefulUniform', 'Shuffle')
  assert not [op for op in ops if any(word in op for word in noisy)], ops
  variables = tf.train.list_variables(
      os.path.join(export_dir, 'variables', 'variables'))
  assert not [name for name, _ in variables if 'generator' in name.lower()
              or 'noise' in name.lower()], variables


def test_no_random_op_in_exported_graphs(exported):
  _assert_no_noise_in(exported.export_dir)


def test_config_metadata_and_assets(exported):
  ranker, scorer = exported.ranker, exported.scorer
  assert scorer.config == json.loads(json.dumps(ranker.config.to_dict()))
  assert scorer.ranker_config == ranker.config
  assert scorer.metadata == {'role': 'teacher', 'n': 3}
  assert os.listdir(os.path.join(exported.export_dir, 'assets')) == [
      'vocab.txt']
  assert not os.path.exists(
      os.path.join(exported.export_dir, 'keras_metadata.pb'))


def test_signatures(exported):
  ranker, scorer = exported.ranker, exported.scorer
  expected = {'serving_default', 'score_examples'}
  if ranker.is_bi_encoder:
    expected |= {'embed_queries', 'embed_documents', 'score_embeddings'}
  assert set(scorer.signatures) == expected
  assert scorer.is_bi_encoder == ranker.is_bi_encoder
  if not ranker.is_bi_encoder:
    with pytest.raises(ValueError, match="no 'embed_queries' signature"):
      scorer.embed_queries(QUERIES)
    return
  query_embedding = scorer.embed_queries(QUERIES, batch_size=2)
  doc_embedding = scorer.embed_documents(DOCS)
  assert query_embedding.shape == (len(QUERIES), ranker.embedding_dim)
  np.testing.assert_allclose(np.linalg.norm(doc_embedding, axis=1), 1.0,
                             rtol=1e-5)
  np.testing.assert_allclose(
      query_embedding, ranker.embed_queries(QUERIES).numpy(), atol=1e-5)
  np.testing.assert_allclose(
      scorer.score_embeddings(query_embedding, doc_embedding),
      scorer.score(QUERIES, DOCS), rtol=1e-5, atol=1e-5)


def test_export_is_an_hf_checkpoint(exported, caplog):
  ranker = exported.ranker
  directory = export.checkpoint_dir_of(exported.export_dir)
  assert directory == os.path.join(exported.export_dir, 'assets.extra',
                                   'hf_checkpoint')
  with open(os.path.join(directory, 'config.json')) as f:
    hf_config = json.load(f)
  encoder = ranker.config.encoder
  assert {k: hf_config[k] for k in (
      'model_type', 'hidden_act', 'hidden_size', 'num_hidden_layers',
      'num_attention_heads', 'intermediate_size', 'vocab_size',
      'max_position_embeddings', 'type_vocab_size', 'layer_norm_eps')} == {
          'model_type': 'bert', 'hidden_act': 'gelu', 'hidden_size': 32,
          'num_hidden_layers': 2, 'num_attention_heads': 2,
          'intermediate_size': 64, 'vocab_size': encoder.vocab_size,
          'max_position_embeddings': 64, 'type_vocab_size': 2,
          'layer_norm_eps': 1e-12}
  with open(os.path.join(directory, 'vocab.txt')) as f, open(
      ranker.config.vocab_file) as g:
    assert f.read() == g.read()
  tensors = safetensors_numpy.load_file(
      os.path.join(directory, 'model.safetensors'))
  prefix = '' if ranker.is_bi_encoder else 'bert.'
  query = ranker.encoder.transformer_layers[1].query
  np.testing.assert_array_equal(  # [out, in], not a scrambled [in, out]
      tensors[prefix + 'encoder.layer.1.attention.self.query.weight'],
      query.kernel.numpy().T)
  if ranker.is_bi_encoder:
    assert 'classifier.weight' not in tensors
  else:
    head = ranker.model.score_head
    assert tensors['classifier.weight'].shape == (1, 32)
    np.testing.assert_array_equal(tensors['classifier.weight'],
                                  head.kernel.numpy().T)
    np.testing.assert_array_equal(tensors['classifier.bias'],
                                  head.bias.numpy())

  # A new ranker built from it scores exactly like the exported one.
  fields = dict(max_length=16, query_max_length=8,
                pooling=ranker.config.pooling)
  with caplog.at_level(logging.INFO, logger='absl'):
    rebuilt = models.build_ranker(RankerConfig(
        ranker.config.architecture, checkpoint_dir=directory, **fields))
  np.testing.assert_allclose(rebuilt.score(QUERIES, DOCS).numpy(),
                             exported.scorer.score(QUERIES, DOCS),
                             rtol=1e-5, atol=1e-5)
  assert rebuilt.config.encoder.hidden_dropout == encoder.hidden_dropout
  if not ranker.is_bi_encoder:
    assert 'Loaded the scoring head' in caplog.text
  assert 'WARNING' not in [r.levelname for r in caplog.records
                           if 'rankers' in r.pathname]

  # A student starts from its first layer.
  student = models.build_ranker(RankerConfig(
      ranker.config.architecture, checkpoint_dir=directory, keep_layers=1,
      **fields))
  assert len(student.encoder.transformer_layers) == 1
  np.testing.assert_array_equal(
      student.encoder.transformer_layers[0].intermediate.kernel.numpy(),
      ranker.encoder.transformer_layers[0].intermediate.kernel.numpy())
  scores = student.score(QUERIES, DOCS).numpy()
  assert scores.shape == (len(QUERIES),) and np.isfinite(scores).all()


def test_checkpoint_dir_of_a_directory_without_one(tmp_path):
  with pytest.raises(FileNotFoundError, match='no HF checkpoint.*config.json'):
    export.checkpoint_dir_of(str(tmp_path))


HYBRID_WEIGHT = 0.25


@pytest.fixture(scope='module')
def hybrid(exported, tmp_path_factory):
  export_dir = str(tmp_path_factory.mktemp('hybrid') / 'model')
  export.export_ranker(exported.ranker, export_dir, {'role': 'student'},
                       hybrid_weight=HYBRID_WEIGHT)
  return types.SimpleNamespace(export_dir=export_dir,
                               scorer=export.load_scorer(export_dir))


def _hybrid_example(query, doc, first_stage_score=None):
  example = tf.train.Example.FromString(_example(query, doc))
  if first_stage_score is not None:
    example.features.feature[features.FIRST_STAGE_SCORE].float_list.value[
        :] = [first_stage_score]
  return example.SerializeToString()


def test_hybrid_export_fuses_with_the_first_stage(exported, hybrid):
  plain, scorer = exported.scorer, hybrid.scorer
  first_stage = np.array([1.0, -2.0, 0.0, 3.5, 12.0], np.float32)
  model = plain.score(QUERIES, DOCS)
  fused = model + HYBRID_WEIGHT * first_stage
  assert scorer.hybrid_weight == HYBRID_WEIGHT and scorer.is_hybrid
  assert scorer.metadata == {'role': 'student',
                             'hybrid_weight': HYBRID_WEIGHT}
  serve = scorer.signatures['serving_default']
  assert set(serve.structured_input_signature[1]) == {
      'query', 'document', 'first_stage_score'}
  out = serve(query=tf.constant(QUERIES), document=tf.constant(DOCS),
              first_stage_score=tf.constant(first_stage))
  assert set(out) == {'score', 'model_score'}
  np.testing.assert_allclose(out['score'].numpy(), fused, rtol=1e-5,
                             atol=1e-5)
  np.testing.assert_allclose(out['model_score'].numpy(), model, rtol=1e-5,
                             atol=1e-5)
  # score() stays the model's own score; score_hybrid() fuses (input order
  # survives the length-sorted batches).
  np.testing.assert_allclose(scorer.score(QUERIES, DOCS, batch_size=2),
                             model, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(
      scorer.score_hybrid(QUERIES, DOCS, first_stage.tolist(), batch_size=2),
      fused, rtol=1e-5, atol=1e-5)
  assert scorer.score([], []).shape == (0,)
  serialized = [_hybrid_example(q, d, s)
                for q, d, s in zip(QUERIES, DOCS, first_stage)]
  np.testing.assert_allclose(scorer.score_examples(serialized, batch_size=3),
                             fused, rtol=1e-5, atol=1e-5)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='first_stage_score'):
    scorer.score_examples([_hybrid_example('cat', 'dog')])
  _assert_no_noise_in(hybrid.export_dir)
  # The hybrid export is a checkpoint like any other.
  assert os.path.isdir(export.checkpoint_dir_of(hybrid.export_dir))


def test_plain_export_signature_is_unchanged(exported):
  scorer = exported.scorer
  assert scorer.hybrid_weight is None and not scorer.is_hybrid
  serve = scorer.signatures['serving_default']
  assert set(serve.structured_input_signature[1]) == {'query', 'document'}
  assert set(serve.structured_outputs) == {'score'}
  assert set(scorer.signatures['score_examples'].structured_outputs) == {
      'score'}
  with pytest.raises(ValueError, match='not a hybrid export'):
    scorer.score_hybrid(QUERIES, DOCS, [0.0] * len(QUERIES))


def test_hybrid_weight_must_agree_with_metadata(exported, tmp_path):
  with pytest.raises(ValueError, match='hybrid_weight'):
    export.export_ranker(exported.ranker, str(tmp_path / 'm'),
                         {'hybrid_weight': 2.0}, hybrid_weight=1.0)
  with pytest.raises(ValueError, match='not hybrid'):
    export.export_ranker(exported.ranker, str(tmp_path / 'm'),
                         {'hybrid_weight': 2.0})
  with pytest.raises(ValueError, match='finite'):
    export.export_ranker(exported.ranker, str(tmp_path / 'm'),
                         hybrid_weight=float('nan'))
