"""The model now in production: the newest complete push under the Pusher's destination."""

import os

from components.ranking_evaluator import production


def _push(root, version, complete=True):
  path = os.path.join(root, str(version))
  os.makedirs(os.path.join(path, 'variables'))
  if complete:
    with open(os.path.join(path, production.SAVED_MODEL_FILE), 'wb') as f:
      f.write(b'pb')
  return path


def test_the_newest_complete_version_is_in_production(tmp_path):
  root = str(tmp_path / 'serving')
  _push(root, 1700000000)
  newest = _push(root, 1700000100)
  _push(root, 1700000200, complete=False)   # a push in progress (Pusher writes saved_model.pb last)
  os.makedirs(os.path.join(root, 'notes'))  # not a version
  # Numeric order, not string order.
  _push(root, 999)
  assert production.latest_push(root) == newest


def test_nothing_in_production(tmp_path):
  assert production.latest_push(str(tmp_path / 'missing')) is None
  assert production.latest_push('') is None
  empty = tmp_path / 'serving'
  empty.mkdir()
  _push(str(empty), 5, complete=False)
  assert production.latest_push(str(empty)) is None
