"""The `ssd` CLI in-process: data stats on real and broken data, usage errors."""

import os
import shutil

from absl import flags

from ssd import cli
from tests import e2e_util


def _main(argv, flag_args=()):
  flags.FLAGS.unparse_flags()
  flags.FLAGS(['ssd', *flag_args])
  return cli.main(['ssd'] + argv)


def test_data_stats_on_cranfield(capsys):
  assert _main(['data', 'stats', 'cranfield', e2e_util.cranfield_dir()]) == 0
  out = capsys.readouterr().out
  rows = dict(line.split(None, 1) for line in out.splitlines() if line.strip())
  assert rows['documents'].strip().replace(',', '') == '1400'
  assert rows['queries'].strip() == '225'
  assert rows['judgements'].strip().replace(',', '') == '1837'
  assert rows['empty_documents'].strip() == '2'


def test_data_stats_bad_qrels_names_file_and_line(tmp_path, capsys):
  src = e2e_util.cranfield_dir()
  for name in ('cran.all.1400', 'cran.qry', 'cranqrel'):
    shutil.copy(os.path.join(src, name), tmp_path / name)
  lines = (tmp_path / 'cranqrel').read_text().splitlines()
  lines[9] = '1 57 two'
  (tmp_path / 'cranqrel').write_text('\n'.join(lines) + '\n')
  assert _main(['data', 'stats', 'cranfield', str(tmp_path)]) == 1
  err = capsys.readouterr().err
  assert f'{tmp_path / "cranqrel"}:10:' in err


def test_unknown_format_is_an_error(capsys):
  assert _main(['data', 'stats', 'parquet', '/nowhere']) == 1
  assert 'parquet' in capsys.readouterr().err


def test_unknown_command_prints_usage(capsys):
  assert _main(['frobnicate']) == 2
  assert 'ssd run' in capsys.readouterr().err


def test_run_with_bad_override_exits_2_naming_the_key(capsys):
  assert _main(['run'], ['--set=teacher.train.epoch=1']) == 2
  assert 'teacher.train.epoch' in capsys.readouterr().err


def test_bench_levers_needs_quality_at_full_size(tmp_path, capsys):
  work = str(tmp_path / 'bench')
  assert _main(['bench', 'speed'], ['--levers', f'--work_dir={work}']) == 2
  assert '--levers goes with `ssd bench quality`' in capsys.readouterr().err
  assert _main(['bench', 'quality'], ['--levers', '--quick', f'--work_dir={work}']) == 2
  assert 'not --quick' in capsys.readouterr().err


def test_bench_variant_needs_quality_at_full_size_without_levers(tmp_path, capsys):
  work = str(tmp_path / 'bench')
  for command, extra in ((['bench', 'speed'], []), (['bench', 'quality'], ['--quick']),
                         (['bench', 'quality'], ['--levers'])):
    assert _main(command, ['--variant=larger_teacher', f'--work_dir={work}'] + extra) == 2
    assert '--variant goes with `ssd bench quality`' in capsys.readouterr().err


def test_bench_budgets_must_be_fractions(tmp_path, capsys):
  work = str(tmp_path / 'bench')
  for bad in ('0.1,x', '0.1,1.5', '0'):
    assert _main(['bench', 'quality'], [f'--budgets={bad}', '--dataset=nfcorpus',
                                         f'--work_dir={work}']) == 2
    assert '--budgets takes fractions in (0, 1]' in capsys.readouterr().err


def test_bench_quick_runs_two_seeds_unless_told():
  from ssd.bench import commands  # pylint: disable=g-import-not-at-top
  assert commands.seeds_for(quick=True, given=None) == 2
  assert commands.seeds_for(quick=False, given=None) == 3
  assert commands.seeds_for(quick=True, given=5) == 5


def test_a_flag_of_another_command_is_an_error_naming_the_commands_flags(capsys):
  assert _main(['validate'], ['--output=pipeline.json', '--quick']) == 2
  err = capsys.readouterr().err
  own = ', '.join(f'--{f}' for f in cli.COMMANDS[('validate',)].flags)
  assert f'error: ssd validate does not take --output, --quick; its flags: {own}' in err
  assert own.startswith('--config, --set, --pipeline_root')
  # An alias is named by its flag; a command without flags says so.
  assert _main(['run'], ['--dry-run']) == 2
  assert 'ssd run does not take --dry_run; its flags: --config' in capsys.readouterr().err
  assert _main(['data', 'stats', 'cranfield', e2e_util.cranfield_dir()], ['--config=x.yaml']) == 2
  assert 'ssd data stats does not take --config; its flags: none' in capsys.readouterr().err
  # Nothing ran: the check comes before the command.
  assert capsys.readouterr().out == ''


def _flag_arg(name):
  flag = flags.FLAGS[name]
  if flag.boolean:
    return f'--{name}'
  value = {'int': '1', 'list': '0.5', 'multi_string': 'a.b=1'}.get(flag.flag_type(), 'x')
  if hasattr(flag.parser, 'enum_values'):
    value = flag.parser.enum_values[-1]
  return f'--{name}={value}'


def test_every_command_takes_all_its_flags(monkeypatch):
  ran = []
  for words, command in cli.COMMANDS.items():
    monkeypatch.setitem(cli.COMMANDS, words, cli.Command(
        lambda args, words=words: ran.append((words, args)) or 0, command.flags))
  for words, command in cli.COMMANDS.items():
    assert _main(list(words) + ['ARG'], [_flag_arg(f) for f in command.flags]) == 0, words
  assert ran == [(words, ['ARG']) for words in cli.COMMANDS]
  flags.FLAGS.unparse_flags()
  # The aliases the docs use, too.
  assert _main(['schedule'], ['--dry-run', '--max-concurrency=2']) == 0


def test_every_cli_flag_belongs_to_a_command():
  defined = {f.name for f in flags.FLAGS.get_flags_for_module(cli)}
  assert defined == set(cli.COMMAND_FLAGS)
