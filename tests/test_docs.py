"""Docs that stay true: what README.md and docs/*.md say about the CLI and the config.

* Every `ssd ...` command line (in a fenced block, or an inline code span
  that starts with `ssd `) parses with that command's real flags: absl knows
  each flag, and ssd/cli.py's COMMANDS table lets that command take it.
* Every config key the docs name (`splits.calibration_queries`,
  `teacher_prime.mode=ssd`, `data_validation_mode: warn`, `--set key=value`)
  exists in the schema (runconfig/config.py); `key=value` spans and `--set`
  values also load (types checked).
* Where the docs give a default (`key: value` (default), `key` (default V)),
  it is the schema's.
"""

import bisect
import dataclasses
import glob
import os
import re
import shlex
from typing import Any, Iterator, List, Optional, Tuple, Union, get_args, get_origin, get_type_hints

from absl import flags
import pytest
import yaml

from components.pseudo_labeler import config as pl_config
from runconfig import config as C
from ssd import cli
from tests import e2e_util

DOCS = [os.path.join(e2e_util.ROOT, 'README.md')] + sorted(
    glob.glob(os.path.join(e2e_util.ROOT, 'docs', '*.md')))
# Config fields that are free-form mappings in the schema, parsed later into
# a typed config (pipelines/validation.py checks them as such).
MAPPING_SCHEMAS = {'teacher_prime.pseudo_label': pl_config.PseudoLabelConfig,
                   'student.transfer': pl_config.PseudoLabelConfig}
SECTIONS = {f.name for f in dataclasses.fields(C.PipelineConfig)}
_SPAN = re.compile(r'`([^`\n]+)`')
_COMMENT = re.compile(r'\s+#.*$')
_KEY = r'[a-z_][a-z0-9_]*(?:\.(?:[a-z0-9_]+|\*|<[a-z_]+>))*'
# `key=value` (an override), `key: value` (YAML) or `key` with an optional
# ` > 0`-style remark; the first part must be a top-level config field.
_KEY_SPAN = re.compile(rf'^(?P<key>{_KEY})(?:(?P<op>=|: )(?P<value>.+)| [<>=]+ .*)?$')
_FILE = re.compile(r'\.(py|md|json|jsonl|yaml|txt|tsv|sqlite|png|svg|dot|pb)$')
_DEFAULT_AFTER = re.compile(
    r'^\s*\((?:the )?default(?::? (?:`(?P<code>[^`]+)`|(?P<text>[^,;)]+)))?')


def _doc_lines(path: str) -> Iterator[Tuple[int, str, bool]]:
  """(line number, text, inside a fenced block) of one Markdown file."""
  fenced = False
  with open(path, encoding='utf-8') as f:
    for number, line in enumerate(f, start=1):
      if line.startswith('```'):
        fenced = not fenced
        continue
      yield number, line.rstrip('\n'), fenced


def _where(path: str, number: int) -> str:
  return f'{os.path.relpath(path, e2e_util.ROOT)}:{number}'


def _fenced_commands(path: str) -> Iterator[Tuple[str, str]]:
  """(where, shell text) of every `ssd` command in fenced blocks, continuations joined."""
  pending, start = '', 0
  for number, line, fenced in _doc_lines(path):
    if not fenced:
      continue
    text = _COMMENT.sub('', line.replace('$ ', '', 1) if line.startswith('$ ') else line)
    if not pending:
      start = number
    pending += ' ' + text.rstrip().rstrip('\\')
    if text.rstrip().endswith('\\'):
      continue
    for part in re.split(r';|&&', pending):
      words = part.split()
      if any(w == 'ssd' or w.endswith('/ssd') for w in words[:1]):
        yield _where(path, start), part.strip()
    pending = ''


def _paragraphs(path: str) -> Iterator[Tuple[List[int], List[int], str]]:
  """(line numbers, where each line starts in the text, the lines joined by
  spaces) of every paragraph outside fenced blocks: a span or a
  "(default ...)" may wrap."""
  numbers, lines = [], []
  for number, line, fenced in list(_doc_lines(path)) + [(0, '', False)]:
    if fenced or not line.strip():
      if lines:
        starts = [sum(len(l) + 1 for l in lines[:i]) for i in range(len(lines))]
        yield numbers, starts, ' '.join(lines)
      numbers, lines = [], []
      continue
    numbers.append(number)
    lines.append(line.strip())


def _spans(path: str) -> Iterator[Tuple[str, str, str]]:
  """(where, span, text after it in its paragraph) of every inline code span."""
  for numbers, starts, text in _paragraphs(path):
    for match in _SPAN.finditer(text):
      line = numbers[bisect.bisect_right(starts, match.start()) - 1]
      yield _where(path, line), match.group(1), text[match.end():]


def _command_lines() -> List[Tuple[str, str]]:
  out = []
  for path in DOCS:
    out += list(_fenced_commands(path))
    out += [(where, span) for where, span, _ in _spans(path)
            if re.match(r'^(\.venv/bin/)?ssd \S', span)]
  return out


def _argv(text: str) -> List[str]:
  """The arguments after `ssd`: usage brackets dropped, a `...` standing for
  more arguments dropped, and an upper-case placeholder value (`--x=N`) made 1."""
  words = shlex.split(text)
  words = words[next(i for i, w in enumerate(words) if w == 'ssd' or w.endswith('/ssd')) + 1:]
  out = []
  for word in (w.strip('[]') for w in words):
    takes_value = out and out[-1].startswith('--') and '=' not in out[-1]
    if not word or (word.startswith('...') and not takes_value):
      continue
    out.append(re.sub(r'^(--\w+)=[A-Z]+$', r'\1=1', word))
  return out


def _command_problem(text: str) -> Optional[str]:
  """Why `ssd <text>` does not parse with its command's flags (None: it does)."""
  flags.FLAGS.unparse_flags()
  try:
    positional = flags.FLAGS(['ssd'] + _argv(text))[1:]
  except flags.Error as e:
    return str(e)
  try:
    found = cli.find_command(positional)
    if found is None:
      groups = {w[:len(positional)] for w in cli.COMMANDS}
      given = [n for n in cli.COMMAND_FLAGS if flags.FLAGS[n].present]
      return None if tuple(positional) in groups and not given else 'no such command'
    problem = cli.stray_flags_problem(*found)
    sets = [s for s in flags.FLAGS.set if '=' in s]
    if problem is None and sets:
      problem = _load_problem(sets)
    return problem
  finally:
    flags.FLAGS.unparse_flags()


def _load_problem(overrides: List[str]) -> Optional[str]:
  try:
    C.load_config(None, overrides)
  except C.ConfigError as e:
    return str(e)
  return None


def _unwrap(tp: Any) -> Any:
  if get_origin(tp) is Union:
    return next(a for a in get_args(tp) if a is not type(None))
  return tp


def schema_field(key: str) -> Tuple[Any, Any]:
  """(type, default) of a dotted config key; KeyError when the schema lacks it.

  `*` stands for any field of a section, `<name>` for any key of a mapping.
  """
  tp, default, path = C.PipelineConfig, None, []
  for part in key.split('.'):
    tp = _unwrap(tp)
    if '.'.join(path) in MAPPING_SCHEMAS:
      tp = MAPPING_SCHEMAS['.'.join(path)]
    path.append(part)
    if get_origin(tp) is dict:
      if not (part.startswith('<') and dataclasses.is_dataclass(get_args(tp)[1])):
        raise KeyError(key)
      tp, default = get_args(tp)[1], None
      continue
    if not dataclasses.is_dataclass(tp):
      raise KeyError(key)
    if part == '*':
      return tp, None
    fields = {f.name: f for f in dataclasses.fields(tp)}
    if part not in fields:
      raise KeyError(key)
    field = fields[part]
    tp = get_type_hints(tp)[part]
    default = (field.default_factory() if field.default_factory is not dataclasses.MISSING
               else field.default)
  return tp, default


def _fields_named(name: str) -> List[Any]:
  """Defaults of every schema field called `name` (bare names in the docs)."""
  seen, out, todo = set(), [], [C.PipelineConfig, *MAPPING_SCHEMAS.values()]
  while todo:
    tp = todo.pop()
    if tp in seen:
      continue
    seen.add(tp)
    for field in dataclasses.fields(tp):
      hint = _unwrap(get_type_hints(tp)[field.name])
      if dataclasses.is_dataclass(hint):
        todo.append(hint)
      if field.name == name and field.default is not dataclasses.MISSING:
        out.append(field.default)
  return out


def _key_spans() -> List[Tuple[str, str, Optional[str], Optional[str], str]]:
  """(where, key, op, value, text after) of spans that name a config key."""
  out = []
  for path in DOCS:
    for where, span, after in _spans(path):
      match = _KEY_SPAN.match(span)
      if match and match.group('key').split('.')[0] in SECTIONS and not _FILE.search(span):
        out.append((where, match.group('key'), match.group('op'), match.group('value'), after))
  return out


def _doc_default(after: str) -> Optional[str]:
  match = _DEFAULT_AFTER.match(after)
  if not match:
    return None
  return match.group('code') or (match.group('text') or '').strip() or ''


def _parse_value(text: str) -> Any:
  if text.endswith('%'):
    return float(text[:-1].strip()) / 100
  return yaml.safe_load(text)


def _default_claims() -> List[Tuple[str, str, Any]]:
  """(where, key, value the docs give as its default)."""
  out = []
  for path in DOCS:
    for where, span, after in _spans(path):
      stated = _doc_default(after)
      if stated is None:
        continue
      match = _KEY_SPAN.match(span)
      if match and match.group('op') and stated == '':
        out.append((where, match.group('key'), _parse_value(match.group('value'))))
      elif match and not match.group('op') and stated:
        out.append((where, match.group('key'), _parse_value(stated)))
  return out


def _schema_default(key: str) -> List[Any]:
  if '.' in key or key in SECTIONS:
    return [schema_field(key)[1]]
  return _fields_named(key)


# ---------------------------------------------------------------- the checks


def test_the_docs_have_command_lines_keys_and_defaults_to_check():
  commands = _command_lines()
  assert len(commands) >= 40
  assert any('--set teacher_prime.mode=noisy_student' in text for _, text in commands)
  assert len(_key_spans()) >= 80
  assert ('docs/running.md', 'beam.runner', 'DirectRunner') in {
      (where.split(':')[0], key, value) for where, key, value in _default_claims()}


def test_every_ssd_command_line_parses_with_its_commands_flags():
  wrong = []
  for where, text in _command_lines():
    problem = _command_problem(text)
    if problem:
      wrong.append(f'{where}: `{text}`: {problem}')
  assert not wrong, '\n'.join(wrong)


def test_every_config_key_named_in_the_docs_is_in_the_schema():
  wrong = []
  for where, key, op, value, _ in _key_spans():
    try:
      schema_field(key)
    except KeyError:
      wrong.append(f'{where}: {key}: not a config key')
      continue
    if op == '=' and '<' not in key and '*' not in key:
      problem = _load_problem([f'{key}={value}'])
      if problem:
        wrong.append(f'{where}: {key}={value}: {problem}')
  assert not wrong, '\n'.join(wrong)


def test_every_default_the_docs_give_is_the_schemas():
  wrong = []
  for where, key, value in _default_claims():
    defaults = _schema_default(key)
    if not defaults or any(d != value for d in defaults):
      wrong.append(f'{where}: {key}: the docs say default {value!r}, the schema {defaults!r}')
  assert not wrong, '\n'.join(wrong)


# ------------------------------------------------- the checks see a wrong doc


@pytest.mark.parametrize('text, problem', [
    ('ssd validate --config=x.yaml --output=y.json', 'ssd validate does not take --output'),
    ('ssd run --no_such_flag=1', 'no_such_flag'),
    ('ssd frobnicate', 'no such command'),
    ('ssd run --set teacher_prime.mdoe=ssd', 'teacher_prime.mdoe'),
])
def test_a_wrong_command_line_is_caught(text, problem):
  assert problem in (_command_problem(text) or '')


def test_wrong_keys_and_defaults_are_caught():
  with pytest.raises(KeyError):
    schema_field('splits.calibration_query')
  with pytest.raises(KeyError):
    schema_field('teacher_prime.pseudo_label.temprature')
  assert schema_field('teacher_prime.pseudo_label.temperature')[0] is float
  assert schema_field('kubeflow.resources.<node_id>.cpu')[0] == Optional[float]
  assert schema_field('teacher.train.log_every')[1] == 10
  assert _doc_default(' (default 10) and more') == '10'
  assert _doc_default(' (default `DirectRunner`, with') == 'DirectRunner'
  assert _doc_default(' (default): prints') == ''
  assert _parse_value('1 %') == 0.01
  assert _schema_default('max_dead_letter_fraction') == [0.01]
