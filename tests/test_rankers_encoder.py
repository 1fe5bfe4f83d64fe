"""BERT encoder: padding is invisible, noise exists only when training."""

import math

import numpy as np
import pytest
import tensorflow as tf

from rankers import encoder as encoder_lib
from rankers import models


def _inputs(rows, width):
  ids = np.zeros([len(rows), width], np.int32)
  for i, row in enumerate(rows):
    ids[i, :len(row)] = row
  mask = (np.arange(width)[None, :] < np.array([len(r) for r in rows])[:, None])
  return {'input_word_ids': tf.constant(ids),
          'input_mask': tf.constant(mask.astype(np.int32)),
          'input_type_ids': tf.zeros_like(tf.constant(ids))}


def test_padding_does_not_change_outputs(tiny_encoder_config):
  tf.random.set_seed(0)
  encoder = encoder_lib.BertEncoder(tiny_encoder_config())
  rows = [[2, 7, 8, 3], [2, 9, 3]]
  tight = encoder(_inputs(rows, 4)).numpy()
  padded = encoder(_inputs(rows, 9)).numpy()
  np.testing.assert_allclose(padded[0, :4], tight[0], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(padded[1, :3], tight[1, :3], rtol=1e-5,
                             atol=1e-5)
  pooled_tight = models.pool(tf.constant(tight), _inputs(rows, 4)[
      'input_mask'], 'mean')
  pooled_padded = models.pool(tf.constant(padded), _inputs(rows, 9)[
      'input_mask'], 'mean')
  np.testing.assert_allclose(pooled_padded, pooled_tight, rtol=1e-5,
                             atol=1e-5)
  np.testing.assert_array_equal(
      models.pool(tf.constant(padded), _inputs(rows, 9)['input_mask'], 'cls'),
      padded[:, 0])


def test_stochastic_depth_rates_and_noise(tiny_encoder_config):
  config = tiny_encoder_config(num_layers=4, hidden_dropout=0.0,
                               attention_dropout=0.0, stochastic_depth=0.4)
  assert [encoder_lib.layer_drop_rate(config, i) for i in range(4)] == (
      pytest.approx([0.1, 0.2, 0.3, 0.4]))
  tf.random.set_seed(0)
  encoder = encoder_lib.BertEncoder(config)
  inputs = _inputs([[2, 7, 8, 3]] * 16, 4)
  inference = encoder(inputs, training=False).numpy()
  np.testing.assert_array_equal(encoder(inputs).numpy(), inference)
  noisy = encoder(inputs, training=True).numpy()
  # Identical rows differ only through the per-example layer drops.
  assert not np.allclose(noisy, inference)
  assert len({row.tobytes() for row in noisy}) > 1


def test_no_noise_configured_means_training_is_deterministic(
    tiny_encoder_config):
  tf.random.set_seed(0)
  encoder = encoder_lib.BertEncoder(tiny_encoder_config(
      hidden_dropout=0.0, attention_dropout=0.0))
  inputs = _inputs([[2, 7, 8, 3]], 4)
  np.testing.assert_array_equal(encoder(inputs, training=True).numpy(),
                                encoder(inputs, training=False).numpy())


def test_gelu_is_exact():
  x = tf.constant([-1.0, 0.5, 2.0])
  expected = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in
              (-1.0, 0.5, 2.0)]
  np.testing.assert_allclose(encoder_lib.gelu(x).numpy(), expected,
                             rtol=1e-6)
