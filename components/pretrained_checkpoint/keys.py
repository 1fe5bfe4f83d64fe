"""The PretrainedCheckpoint artifact type's name, TFX-free (for `ssd lineage`).

`namespace.Name`, as KFP needs, and an import path (ssd/__init__.py exports
the class under it), as TFX's Kubeflow entrypoint needs.
"""

CHECKPOINT_TYPE_NAME = 'ssd.PretrainedCheckpoint'
