"""ssd: semi-supervised distillation of neural rankers, orchestrated with TFX.

The project's custom artifact types are importable from here by the name
they carry in ML Metadata and in a compiled Kubeflow spec (`ssd.<Name>`).
TFX's Kubeflow entrypoint rebuilds an artifact by importing its schema title
(kubeflow_v2_entrypoint_utils._retrieve_class_path), and KFP requires that
title to read `namespace.Name`; `ssd.PretrainedCheckpoint` is both. The
import is lazy (PEP 562), so `import ssd` stays free of TFX.
"""

import importlib

# Type name (after `ssd.`) -> the module that defines it, beside its component.
ARTIFACT_TYPE_MODULES = {
    'PretrainedCheckpoint': 'components.pretrained_checkpoint.spec',
    'PseudoLabelReport': 'components.pseudo_labeler.spec',
}


def __getattr__(name):
  module = ARTIFACT_TYPE_MODULES.get(name)
  if module is None:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  return getattr(importlib.import_module(module), name)
