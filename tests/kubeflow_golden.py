"""The Kubeflow golden: the default config compiled, normalised, checked in.

Regenerate after any change to the DAG (new node, new parameter, a merge):

    make golden            # = python -m tests.kubeflow_golden

then review `git diff tests/testdata/` like any other change. What is
normalised, so that the golden changes only when the pipeline does:
- versions: the TFX/Python labels and `sdkVersion`;
- timestamps (ISO 8601) anywhere;
- fingerprints: any value under a key named `code_fingerprint`,
  `data_fingerprint` or `unlabelled_fingerprint` (parameters or JSON inside them);
- this machine's paths: the repository, the weights cache, the home directory;
- JSON held in a string parameter (Trainer custom_config, component configs)
  is expanded into a `{"<json>": ...}` object, so a diff shows the one key
  that changed instead of one long line.
"""

import json
import os
import re
import sys
from typing import Any, Dict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, 'tests', 'testdata', 'kubeflow_cranfield_demo.json')
CONFIG = os.path.join(ROOT, 'configs', 'cranfield_demo.yaml')
IMAGE = 'registry.example.com/ssd-rankers:golden'
PIPELINE_ROOT = 'gs://ssd-golden/root'
DATA_PATH = 'gs://ssd-golden/cranfield'
FINGERPRINT_KEYS = ('code_fingerprint', 'data_fingerprint', 'unlabelled_fingerprint')
_TIMESTAMP = re.compile(r'\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?')
REGENERATE = 'make golden  (or: python -m tests.kubeflow_golden)'


def cache_dir() -> str:
  """The weights cache the test run uses (`make test` exports SSD_MINILM_DIR)."""
  minilm = os.environ.get('SSD_MINILM_DIR')
  return os.path.dirname(minilm.rstrip('/')) if minilm else os.path.expanduser('~/.cache/ssd-rankers')


def overrides():
  """The golden config: the demo config, bound to a fixed image and remote paths."""
  return [f'pipeline_root={PIPELINE_ROOT}', f'data.path={DATA_PATH}', f'kubeflow.image={IMAGE}',
          'kubeflow.default_resources={cpu: 2, memory_gb: 8}',
          'kubeflow.resources={teacher_trainer: {cpu: 8, memory_gb: 32, '
          'accelerator: nvidia.com/gpu, accelerator_count: 1}}']


def compile_default() -> Dict[str, Any]:
  from pipelines import kubeflow_runner  # pylint: disable=g-import-not-at-top
  from runconfig import config as C  # pylint: disable=g-import-not-at-top
  return kubeflow_runner.compile_job(C.load_config(CONFIG, overrides()))


def _local_paths():
  home = os.path.expanduser('~')
  pairs = [(os.path.realpath(cache_dir()), '<CACHE_DIR>'), (cache_dir(), '<CACHE_DIR>'),
           (ROOT, '<REPO>'), (os.path.dirname(ROOT), '<REPO>/..')]
  if home not in ('/', ''):
    pairs.append((home, '<HOME>'))
  return sorted(set(pairs), key=lambda p: -len(p[0]))


def _normalise_string(text: str, paths) -> Any:
  stripped = text.strip()
  if stripped[:1] in ('{', '[') and len(stripped) > 1:
    try:
      return {'<json>': normalise(json.loads(stripped), paths)}
    except ValueError:
      pass
  for path, token in paths:
    # Whole path components only: gs://bucket/root must not lose its /root to $HOME.
    text = re.sub(r'(?<![\w./-])' + re.escape(path) + r'(?![\w.-])', token, text)
  return _TIMESTAMP.sub('<timestamp>', text)


def _blank_constants(value: Any) -> Any:
  if isinstance(value, dict):
    return {k: ('<fingerprint>' if k in ('stringValue', 'constant') and isinstance(v, str)
                else _blank_constants(v) if isinstance(v, dict) else v)
            for k, v in value.items()}
  return '<fingerprint>' if isinstance(value, str) else value


def normalise(value: Any, paths=None) -> Any:
  """A copy of the compiled job with versions, timestamps, fingerprints and local paths replaced."""
  paths = _local_paths() if paths is None else paths
  if isinstance(value, dict):
    out = {}
    for key, item in value.items():
      if key in FINGERPRINT_KEYS:
        # A value, or a task parameter of that name: blank the constant, keep the shape.
        out[key] = _blank_constants(item)
      elif key in ('tfx_version', 'tfx_py_version'):
        out[key] = '<version>'
      elif key == 'sdkVersion' and isinstance(item, str):
        out[key] = re.sub(r'-[\d.]+\w*$', '-<version>', item)
      else:
        out[key] = normalise(item, paths)
    return out
  if isinstance(value, list):
    return [normalise(v, paths) for v in value]
  if isinstance(value, str):
    return _normalise_string(value, paths)
  return value


def denormalise(value: Any) -> Any:
  """The golden back as a loadable PipelineJob (`{"<json>": x}` -> a JSON string again).

  Placeholders stay as text; `ssd schedule` tests upload this without a TFX import.
  """
  if isinstance(value, dict):
    if set(value) == {'<json>'}:
      return json.dumps(value['<json>'], sort_keys=True)
    return {k: denormalise(v) for k, v in value.items()}
  if isinstance(value, list):
    return [denormalise(v) for v in value]
  return value


def dumps(job: Dict[str, Any]) -> str:
  return json.dumps(job, indent=1, sort_keys=True, ensure_ascii=False) + '\n'


def update() -> str:
  text = dumps(normalise(compile_default()))
  os.makedirs(os.path.dirname(GOLDEN), exist_ok=True)
  with open(GOLDEN, 'w', encoding='utf-8') as f:
    f.write(text)
  return GOLDEN


if __name__ == '__main__':
  sys.path.insert(0, ROOT)
  print(f'wrote {update()}')
