"""Reading ExampleValidator's anomalies into short, printable lines.

ExampleValidator writes one `Split-<name>/SchemaDiff.pb` (a binary
tensorflow_metadata Anomalies proto) per split. Both the gate (which fails
the run) and the run summary (which prints them) read them through here.
"""

import os
from typing import Dict, List

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2

ANOMALIES_FILE = 'SchemaDiff.pb'
SPLIT_PREFIX = 'Split-'


def describe(anomalies: anomalies_pb2.Anomalies) -> List[str]:
  """'feature: short description' per anomaly (dataset-level ones too)."""
  out = []
  for feature, info in sorted(anomalies.anomaly_info.items()):
    text = info.short_description or info.description
    if not text and info.reason:
      text = '; '.join(r.short_description or r.description for r in info.reason)
    out.append(f'{feature}: {text}')
  if anomalies.HasField('dataset_anomaly_info'):
    info = anomalies.dataset_anomaly_info
    out.append(f'(dataset): {info.short_description or info.description}')
  return out


def read_anomalies(uri: str) -> Dict[str, List[str]]:
  """{split: ['feature: description', ...]} of an ExampleAnomalies artifact."""
  found: Dict[str, List[str]] = {}
  for name in sorted(tf.io.gfile.listdir(uri)) if tf.io.gfile.isdir(uri) else []:
    name = name.rstrip('/')
    path = os.path.join(uri, name, ANOMALIES_FILE)
    if not name.startswith(SPLIT_PREFIX) or not tf.io.gfile.exists(path):
      continue
    with tf.io.gfile.GFile(path, 'rb') as f:
      proto = anomalies_pb2.Anomalies.FromString(f.read())
    found[name[len(SPLIT_PREFIX):]] = describe(proto)
  return found


def format_anomalies(found: Dict[str, List[str]]) -> str:
  return '\n'.join(f'  {split}: {line}' for split, lines in found.items() for line in lines)


class DataAnomaliesError(RuntimeError):
  """ExampleValidator reported anomalies and the config says to fail on them."""


def check(uri: str) -> None:
  """Raises DataAnomaliesError listing every anomaly of the artifact at `uri`."""
  found = {split: lines for split, lines in read_anomalies(uri).items() if lines}
  if found:
    count = sum(len(lines) for lines in found.values())
    raise DataAnomaliesError(
        f'data validation found {count} anomal{"y" if count == 1 else "ies"} '
        f'(data_validation_mode: fail), in {uri}:\n{format_anomalies(found)}\n'
        'Fix the data, or update the schema (data_validation_schema), or set '
        'data_validation_mode: warn to only report them.')
