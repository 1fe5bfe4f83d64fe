"""BERT rankers (cross-encoder and bi-encoder) in Keras 2 (tf_keras)."""
