"""AnomaliesGate: fails the run when ExampleValidator found anomalies.

With `data_validation_mode: fail` the pipeline puts this gate after
ExampleValidator and before every trainer (`add_upstream_node`), so bad data
stops the run before any model is trained. A function component: it has no
outputs, only an outcome.
"""

from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from components.anomalies_gate import anomalies as A


@component
def AnomaliesGate(anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],  # pylint: disable=invalid-name
                  code_fingerprint: Parameter[str] = '') -> None:
  del code_fingerprint  # only there to be part of the cache key (pipelines/code_fingerprint.py)
  A.check(anomalies.uri)
