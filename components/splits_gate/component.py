"""SplitsGate: fails an SSD run right after ingestion when a split it needs is empty.

Ingestion itself requires only what every run needs (train and dev), so a
supervised and a semi-supervised run of the same data share the ingestion
and the whole teacher stage from the cache. What only SSD needs, a
non-empty unlabelled split, is checked by this gate, which the pipeline puts
between ingestion and the teacher's trainers (`add_upstream_node`: ordering
only, so it is not part of their cache keys). An empty unlabelled split thus
stops the run before any model trains, with the same message ingestion gives.
A function component: no outputs, only an outcome.
"""

from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.splits_gate import required as R


def counts(examples) -> tuple:
  """({split: examples written}, {split: queries}) from the Examples artifact's properties."""
  written, queries = {}, {}
  for split in artifact_utils.decode_split_names(examples.split_names):
    written[split] = examples.get_int_custom_property(f'{split}_examples_written')
  for split in R.REQUIRED_WHY:  # ingestion records only the splits it wrote: 0 otherwise
    queries[split] = examples.get_int_custom_property(f'{split}_queries')
  return written, queries


def check_examples(examples, required_splits: str) -> None:
  """Raises EmptySplitError when a split of `required_splits` (comma-separated) is empty."""
  written, queries = counts(examples)
  data_path = (examples.get_string_custom_property('data_path')
               if examples.has_custom_property('data_path') else examples.uri)
  R.check(written, queries, [s for s in required_splits.split(',') if s], data_path)


@component
def SplitsGate(examples: InputArtifact[standard_artifacts.Examples],  # pylint: disable=invalid-name
               required_splits: Parameter[str],
               code_fingerprint: Parameter[str] = '') -> None:
  """Raises EmptySplitError when a split of `required_splits` (comma-separated) is empty."""
  del code_fingerprint  # only there to be part of the cache key (pipelines/code_fingerprint.py)
  check_examples(examples, required_splits)
