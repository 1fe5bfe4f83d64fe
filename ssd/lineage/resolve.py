"""Turning what a user types into MLMD objects: model and run references.

Model: an artifact id (`42`), an artifact URI (the artifact folder, its
`Format-Serving` folder, or a Pusher's destination folder), `latest-blessed`
(the model named by the newest blessed `ModelBlessing`, preferring the
student evaluator's) or `latest-pushed` (the model behind the newest
`PushedModel` with `pushed` = 1).
Run: `run:<n>` (the n-th run in `ssd lineage runs`, 1 = oldest; negative
counts from the newest), `run:latest`, or a pipeline run id as printed there.

Models are found by URI wherever a step recorded one (a blessing's
`current_model`, a selection's `source_model`), never by a recorded MLMD id:
TFX in a Kubeflow container gives artifacts hashed ids that no store holds.
"""

import os
from typing import List, Optional

from ml_metadata.proto import metadata_store_pb2

from components.ranking_evaluator import keys as EV
from pipelines import mlmd_store as S

LATEST_BLESSED = 'latest-blessed'
LATEST_PUSHED = 'latest-pushed'
STUDENT_EVALUATOR = 'student_evaluator'  # pipelines/pipeline.py: STUDENT_EVALUATOR
SERVING_DIR = 'Format-Serving'
MODEL_TYPE = 'Model'


class RefError(LookupError):
  """A reference names nothing in the store."""


def _live(artifacts):
  return [a for a in artifacts if a.state == metadata_store_pb2.Artifact.LIVE]


def latest_blessed(store) -> metadata_store_pb2.Artifact:
  names = S.Names(store)
  blessings = [b for b in _live(S.artifacts_of_type(store, 'ModelBlessing', names))
               if names.artifact_props(b).get(EV.BLESSED_PROPERTY) == 1
               and names.artifact_props(b).get(EV.CURRENT_MODEL_PROPERTY)]
  if not blessings:
    raise RefError('no blessed model in the store')
  student = [b for b in blessings
             if (p := S.producer(store, b.id)) is not None
             and S.execution_node(store, p, names) == STUDENT_EVALUATOR]
  chosen = (student or blessings)[-1]
  uri = names.artifact_props(chosen)[EV.CURRENT_MODEL_PROPERTY]
  model = S.artifact_by_uri(store, uri, MODEL_TYPE, names)
  if model is None:
    raise RefError(f'blessing #{chosen.id} names model {uri}, which no artifact of this store has')
  return model


def pushed_model_source(store, pushed: metadata_store_pb2.Artifact) -> Optional[metadata_store_pb2.Artifact]:
  """The model a PushedModel came from: its Pusher's input `model`."""
  pusher = S.producer(store, pushed.id)
  if pusher is None:
    return None
  return (S.execution_io(store, pusher.id, 'input').get('model') or [None])[0]


def latest_pushed(store) -> metadata_store_pb2.Artifact:
  names = S.Names(store)
  pushed = [p for p in _live(S.artifacts_of_type(store, 'PushedModel', names))
            if names.artifact_props(p).get('pushed') == 1]
  if not pushed:
    raise RefError('no pushed model in the store')
  model = pushed_model_source(store, pushed[-1])
  if model is None:
    raise RefError(f'PushedModel #{pushed[-1].id} has no input model recorded')
  return model


def model_by_id(store, artifact_id: int) -> metadata_store_pb2.Artifact:
  found = store.get_artifacts_by_id([int(artifact_id)])
  if not found:
    raise RefError(f'no artifact #{artifact_id} in the store')
  return found[0]


def model_by_uri(store, uri: str) -> metadata_store_pb2.Artifact:
  names = S.Names(store)
  path = uri.rstrip('/')
  candidates = [path]
  if '://' not in path:
    candidates.append(os.path.abspath(path))
  candidates += [c[:-len(SERVING_DIR) - 1] for c in list(candidates) if c.endswith('/' + SERVING_DIR)]
  for c in candidates:
    found = S.artifact_by_uri(store, c, names=names)
    if found is not None:
      return found
  # A Pusher's destination (`<serving_dir>/<version>`) is a property, not a URI.
  for c in candidates:
    for pushed in S.pushes_to(store, c, names):
      model = pushed_model_source(store, pushed)
      if model is not None:
        return model
  raise RefError(f'no artifact with URI {uri}')


def resolve_model(store, ref: str) -> metadata_store_pb2.Artifact:
  ref = str(ref).strip()
  if ref == LATEST_BLESSED:
    return latest_blessed(store)
  if ref == LATEST_PUSHED:
    return latest_pushed(store)
  if ref.isdigit():
    return model_by_id(store, int(ref))
  if ref.startswith('model:') and ref[6:].isdigit():
    return model_by_id(store, int(ref[6:]))
  return model_by_uri(store, ref)


def runs_of(store, pipeline: Optional[str] = None) -> List[metadata_store_pb2.Context]:
  """Pipeline-run contexts (TFX's or KFP's), oldest first, optionally of one pipeline."""
  runs = S.run_contexts(store)
  if pipeline is None:
    return runs
  names = S.Names(store)
  return [r for r in runs if S.run_pipeline(store, r, names) == pipeline]


def run_pipeline(store, run: metadata_store_pb2.Context) -> Optional[str]:
  return S.run_pipeline(store, run)


def is_run_ref(ref: str) -> bool:
  return str(ref).startswith('run:')


def resolve_run(store, ref: str, pipeline: Optional[str] = None) -> metadata_store_pb2.Context:
  runs = runs_of(store, pipeline)
  if not runs:
    raise RefError('no pipeline runs in the store')
  key = ref[4:] if ref.startswith('run:') else ref
  if key == 'latest':
    return runs[-1]
  try:
    n = int(key)
  except ValueError:
    n = None
  if n is not None and n != 0 and -len(runs) <= n <= len(runs):
    return runs[n - 1] if n > 0 else runs[n]
  for r in runs:
    if r.name == key:
      return r
  raise RefError(f'no pipeline run {ref!r} (see `ssd lineage runs`)')
