"""The execution parameter that carries the code fingerprint (one place for the name).

Every custom component declares it (optional) so it lands in TFX's cache key;
pipelines/code_fingerprint.py computes the value, docs/lineage.md explains it.
The stock Trainer gets the same name as a `custom_config` key.
"""

from tfx.types.component_spec import ExecutionParameter

CODE_FINGERPRINT_KEY = 'code_fingerprint'


def parameter() -> ExecutionParameter:
  return ExecutionParameter(type=str, optional=True)
