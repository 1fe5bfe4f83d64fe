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


@component
def AnomaliesGate(anomalies: InputArtifact[standard_artifacts.ExampleAnomalies]) -> None:  # pylint: disable=invalid-name
  A.check(anomalies.uri)
