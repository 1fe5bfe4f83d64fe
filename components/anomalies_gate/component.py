"""AnomaliesGate: fails the run when ExampleValidator found anomalies.

With `data_validation_mode: fail` the pipeline puts this gate after
ExampleValidator and before every trainer (`add_upstream_node`), so bad data
stops the run before any model is trained. A function component: it has no
outputs, only an outcome.
"""

from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from components.anomalies_gate import anomalies as A


class DataAnomaliesError(RuntimeError):
  """ExampleValidator reported anomalies and the config says to fail on them."""


@component
def AnomaliesGate(anomalies: InputArtifact[standard_artifacts.ExampleAnomalies]) -> None:  # pylint: disable=invalid-name
  found = {split: lines for split, lines in A.read_anomalies(anomalies.uri).items() if lines}
  if found:
    count = sum(len(lines) for lines in found.values())
    raise DataAnomaliesError(
        f'data validation found {count} anomal{"y" if count == 1 else "ies"} '
        f'(data_validation_mode: fail), in {anomalies.uri}:\n{A.format_anomalies(found)}\n'
        'Fix the data, or update the schema (data_validation_schema), or set '
        'data_validation_mode: warn to only report them.')
