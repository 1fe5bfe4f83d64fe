"""What a benchmark ran on: CPU model, cores, versions, date."""

import datetime
import os
import platform
from typing import Dict, List


def cpu_model() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or 'unknown'


def describe() -> Dict[str, str]:
  from importlib import metadata  # pylint: disable=g-import-not-at-top
  versions = {}
  for dist in ('tensorflow', 'tensorflow-text', 'tfx', 'apache-beam', 'ml-metadata', 'numpy'):
    try:
      versions[dist] = metadata.version(dist)
    except metadata.PackageNotFoundError:
      versions[dist] = 'not installed'
  return {'cpu': cpu_model(), 'cores': str(os.cpu_count()), 'python': platform.python_version(),
          'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
          **versions}


def provenance_lines(command: str, machine: Dict[str, str],
                     versions: bool = True) -> List[str]:
  """The Markdown lines every report section opens with: command, machine and
  (optionally) versions, each ending in a hard line break."""
  lines = [f'Command: `{command}`  ',
           f'Machine: {machine["cpu"]}, {machine["cores"]} cores; {machine["date"]}  ']
  if versions:
    lines.append('Versions: ' + ', '.join(f'{k} {v}' for k, v in machine.items()
                                         if k not in ('cpu', 'cores', 'date')) + '  ')
  return lines
