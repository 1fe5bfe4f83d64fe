"""The model now in production: the newest complete push under a push destination.

TFX's Pusher copies a blessed model to `<base_directory>/<unix seconds>/`
and writes `saved_model.pb` last, so a version directory without it is a push
still in progress (or one that died) and is not a model yet. Reading the
destination, not a resolver over ML Metadata, finds the same model locally
and on every Kubeflow backend (open-source KFP has no resolver tasks), and
also a model another pipeline pushed there.
"""

import os
from typing import Optional

import tensorflow as tf

SAVED_MODEL_FILE = 'saved_model.pb'


def latest_push(push_destination: str) -> Optional[str]:
  """The newest complete version directory under `push_destination` (a path or URI), or None."""
  if not push_destination or not tf.io.gfile.isdir(push_destination):
    return None
  versions = sorted((int(name.rstrip('/')) for name in tf.io.gfile.listdir(push_destination)
                     if name.rstrip('/').isdigit()), reverse=True)
  for version in versions:
    path = os.path.join(push_destination, str(version))
    if tf.io.gfile.exists(os.path.join(path, SAVED_MODEL_FILE)):
      return path
  return None
