"""`ssd lineage` flags without a pipeline run: store connections and usage errors."""

from absl import flags

from ssd import cli


def _parse(*flag_args):
  flags.FLAGS.unparse_flags()
  flags.FLAGS(['ssd', *flag_args])


def test_mysql_flags_build_the_mlmd_connection():
  _parse('--mysql_host=db.internal', '--mysql_port=3307', '--mysql_database=mlmd',
         '--mysql_user=reader', '--mysql_password=secret')
  cfg = cli.lineage_connection()
  assert cfg.WhichOneof('config') == 'mysql'
  assert (cfg.mysql.host, cfg.mysql.port, cfg.mysql.database) == ('db.internal', 3307, 'mlmd')
  assert (cfg.mysql.user, cfg.mysql.password) == ('reader', 'secret')
  assert cfg.mysql.skip_db_creation  # inspecting never creates a database


def test_mysql_needs_host_and_database(capsys):
  _parse('--mysql_host=db.internal')
  assert cli.main(['ssd', 'lineage', 'runs']) == 2
  assert '--mysql_database' in capsys.readouterr().err


def test_sqlite_flag_builds_a_read_only_connection(tmp_path):
  path = tmp_path / 'metadata.sqlite'
  path.write_bytes(b'')
  _parse(f'--metadata={path}')
  cfg = cli.lineage_connection()
  assert cfg.sqlite.filename_uri == str(path)
  assert cfg.sqlite.connection_mode == cfg.sqlite.READONLY


def test_missing_store_is_an_error_naming_it(tmp_path, capsys):
  _parse(f'--metadata={tmp_path / "none.sqlite"}')
  assert cli.main(['ssd', 'lineage', 'runs']) == 1
  assert 'none.sqlite' in capsys.readouterr().err


def test_graph_needs_output_and_explain_needs_a_model(capsys):
  _parse()
  assert cli.main(['ssd', 'lineage', 'graph', 'latest-blessed']) == 2
  assert '--output' in capsys.readouterr().err
  assert cli.main(['ssd', 'lineage', 'explain']) == 2
  assert 'explain MODEL' in capsys.readouterr().err


def test_unreachable_mysql_is_an_error_not_a_traceback(capsys):
  _parse('--mysql_host=127.0.0.1', '--mysql_port=1', '--mysql_database=mlmd')
  assert cli.main(['ssd', 'lineage', 'runs']) == 1
  assert 'cannot open the ML Metadata store' in capsys.readouterr().err


def test_a_store_left_by_a_killed_writer_can_be_read(tmp_path):
  """A SIGKILL mid-transaction leaves a hot journal: reading rolls it back."""
  # pylint: disable=import-outside-toplevel
  import os
  import subprocess
  import sys
  from ml_metadata.proto import metadata_store_pb2
  from pipelines import mlmd_store as S
  path = str(tmp_path / 'metadata.sqlite')
  writer = S.open_store(path, read_only=False)
  writer.put_execution_type(metadata_store_pb2.ExecutionType(name='Trainer'))
  del writer
  code = ('import os, sqlite3\n'
          f'c = sqlite3.connect({path!r}, isolation_level=None)\n'
          'c.execute("PRAGMA cache_size=1"); c.execute("BEGIN"); c.execute("CREATE TABLE junk(x)")\n'
          'for _ in range(2000): c.execute("INSERT INTO junk VALUES (?)", ("y" * 200,))\n'
          'os._exit(9)\n')
  subprocess.run([sys.executable, '-c', code], check=False)
  assert os.path.getsize(path + '-journal') > 0  # the killed writer's hot journal
  store = S.open_store(path)  # read-only, as `ssd lineage` opens it
  assert [t.name for t in store.get_execution_types()] == ['Trainer']
  assert not os.path.exists(path + '-journal')  # rolled back, not kept
