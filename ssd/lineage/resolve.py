"""Turning what a user types into MLMD objects: model and run references.

Model: an artifact id (`42`), an artifact URI (the artifact folder, its
`Format-Serving` folder, or a Pusher's destination folder), `latest-blessed`
(the model named by the newest blessed `ModelBlessing`, preferring the
student evaluator's) or `latest-pushed` (the model behind the newest
`PushedModel` with `pushed` = 1).
Run: `run:<n>` (the n-th run in `ssd lineage runs`, 1 = oldest; negative
counts from the newest), `run:latest`, or a pipeline run id as printed there.
"""

import os
from typing import List, Optional

from ml_metadata.proto import metadata_store_pb2

from pipelines import mlmd_store as S

LATEST_BLESSED = 'latest-blessed'
LATEST_PUSHED = 'latest-pushed'
STUDENT_EVALUATOR = 'student_evaluator'  # pipelines/pipeline.py: STUDENT_EVALUATOR
SERVING_DIR = 'Format-Serving'


class RefError(LookupError):
  """A reference names nothing in the store."""


def _artifacts_of_type(store, type_name: str) -> List[metadata_store_pb2.Artifact]:
  try:
    return sorted(store.get_artifacts_by_type(type_name), key=lambda a: a.id)
  except Exception:  # pylint: disable=broad-except  (type never registered)
    return []


def _live(artifacts):
  return [a for a in artifacts if a.state == metadata_store_pb2.Artifact.LIVE]


def latest_blessed(store) -> metadata_store_pb2.Artifact:
  blessings = [b for b in _live(_artifacts_of_type(store, 'ModelBlessing'))
               if S.custom_props(b).get('blessed') == 1 and 'current_model_id' in b.custom_properties]
  if not blessings:
    raise RefError('no blessed model in the store')
  student = [b for b in blessings
             if (p := S.producer(store, b.id)) is not None
             and S.execution_node(store, p.id) == STUDENT_EVALUATOR]
  chosen = (student or blessings)[-1]
  return model_by_id(store, S.custom_props(chosen)['current_model_id'])


def latest_pushed(store) -> metadata_store_pb2.Artifact:
  pushed = [p for p in _live(_artifacts_of_type(store, 'PushedModel'))
            if S.custom_props(p).get('pushed') == 1]
  if not pushed:
    raise RefError('no pushed model in the store')
  producer = S.producer(store, pushed[-1].id)
  models = S.execution_io(store, producer.id, 'input').get('model', [])
  if not models:
    raise RefError(f'PushedModel #{pushed[-1].id} has no input model recorded')
  return models[0]


def model_by_id(store, artifact_id: int) -> metadata_store_pb2.Artifact:
  found = store.get_artifacts_by_id([int(artifact_id)])
  if not found:
    raise RefError(f'no artifact #{artifact_id} in the store')
  return found[0]


def model_by_uri(store, uri: str) -> metadata_store_pb2.Artifact:
  path = uri.rstrip('/')
  candidates = [path]
  if not path.startswith(('gs://', 's3://', 'hdfs://')):
    candidates.append(os.path.abspath(path))
  candidates += [c[:-len(SERVING_DIR) - 1] for c in list(candidates) if c.endswith('/' + SERVING_DIR)]
  for c in candidates:
    found = [a for a in store.get_artifacts_by_uri(c)]
    if found:
      return sorted(found, key=lambda a: a.id)[0]
  # A Pusher's destination (`<serving_dir>/<version>`) is a property, not a URI.
  for p in _artifacts_of_type(store, 'PushedModel'):
    if S.custom_props(p).get('pushed_destination', '').rstrip('/') in candidates:
      producer = S.producer(store, p.id)
      models = S.execution_io(store, producer.id, 'input').get('model', [])
      if models:
        return models[0]
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
  """Pipeline-run contexts, oldest first, optionally of one pipeline."""
  runs = sorted(store.get_contexts_by_type(S.PIPELINE_RUN_CONTEXT_TYPE),
                key=lambda c: (c.create_time_since_epoch, c.id))
  if pipeline is None:
    return runs
  return [r for r in runs if run_pipeline(store, r) == pipeline]


def run_pipeline(store, run: metadata_store_pb2.Context) -> Optional[str]:
  """The pipeline a run belongs to (TFX makes the pipeline context its parent)."""
  for parent in store.get_parent_contexts_by_context(run.id):
    if parent.type == S.PIPELINE_CONTEXT_TYPE or parent.type_id == _type_id(store, S.PIPELINE_CONTEXT_TYPE):
      return parent.name
  executions = store.get_executions_by_context(run.id)
  if executions:
    return S.execution_contexts(store, executions[0].id).get(S.PIPELINE_CONTEXT_TYPE)
  return None


def _type_id(store, name: str) -> int:
  try:
    return store.get_context_type(name).id
  except Exception:  # pylint: disable=broad-except
    return -1


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
