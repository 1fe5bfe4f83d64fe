"""Cron expressions as Kubeflow Pipelines reads them (robfig/cron v1 `cron.Parse`).

KFP's ScheduledWorkflow controller parses a recurring run's cron with
`github.com/robfig/cron` (v1) `cron.Parse`: **6 fields, seconds first**

    second minute hour day-of-month month day-of-week
    0      30     2    *            *     *          (every day at 02:30:00 UTC)

or a descriptor (`@daily`, `@every 6h`). That parser also takes 5 fields, but
reads them as *second minute hour day-of-month month*: the familiar crontab
`30 2 * * *` would run at second 30 of minute 2 of every hour. So a 5-field
expression is refused here, with the 6-field one it most likely meant.
"""

import re
from typing import List, Tuple

FIELDS: Tuple[Tuple[str, int, int], ...] = (
    ('second', 0, 59), ('minute', 0, 59), ('hour', 0, 23),
    ('day-of-month', 1, 31), ('month', 1, 12), ('day-of-week', 0, 6))
MONTHS = {m: i for i, m in enumerate(
    'jan feb mar apr may jun jul aug sep oct nov dec'.split(), start=1)}
DAYS = {d: i for i, d in enumerate('sun mon tue wed thu fri sat'.split())}
DESCRIPTORS = ('@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly')
# Go's time.ParseDuration units; robfig wants a whole number of seconds >= 1.
_GO_DURATION = re.compile(r'^((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$')
_GO_UNIT_SECONDS = {'ns': 1e-9, 'us': 1e-6, 'µs': 1e-6, 'ms': 1e-3, 's': 1, 'm': 60, 'h': 3600}


class CronError(ValueError):
  """Not a cron expression KFP's scheduler accepts."""


def _value(text: str, field: str, lo: int, hi: int) -> int:
  names = MONTHS if field == 'month' else DAYS if field == 'day-of-week' else {}
  if text.lower() in names:
    return names[text.lower()]
  if not text.isdigit():
    raise CronError(f'{field}: {text!r} is not a number'
                    + (f' or a name ({", ".join(names)})' if names else ''))
  value = int(text)
  if not lo <= value <= hi:
    raise CronError(f'{field}: {value} is outside {lo}-{hi}')
  return value


def _check_field(text: str, field: str, lo: int, hi: int) -> None:
  for part in text.split(','):
    if not part:
      raise CronError(f'{field}: empty list item in {text!r}')
    range_part, _, step = part.partition('/')
    if '/' in part and (not step.isdigit() or int(step) == 0):
      raise CronError(f'{field}: step {step!r} must be a positive integer')
    if range_part in ('*', '?'):  # robfig v1 takes "?" (= "*") in any field
      continue
    bounds = range_part.split('-')
    if len(bounds) > 2:
      raise CronError(f'{field}: too many hyphens in {range_part!r}')
    start = _value(bounds[0], field, lo, hi)
    end = _value(bounds[1], field, lo, hi) if len(bounds) == 2 else start
    if end < start:
      raise CronError(f'{field}: range {range_part!r} ends before it starts')


def _check_every(duration: str) -> None:
  if not _GO_DURATION.match(duration):
    raise CronError(f'@every: {duration!r} is not a Go duration (e.g. 90m, 6h, 1h30m)')
  seconds = sum(float(n) * _GO_UNIT_SECONDS[u]
                for n, _, u in re.findall(r'(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)', duration))
  if seconds < 1 or abs(seconds - round(seconds)) > 1e-9:
    raise CronError(f'@every: {duration!r} must be a whole number of seconds, at least 1s')


def validate(expr: str) -> str:
  """Returns the expression with single spaces, or raises CronError saying what is wrong."""
  fields: List[str] = expr.split()
  if not fields:
    raise CronError('empty cron expression')
  if fields[0].startswith('@'):
    if fields[0] == '@every' and len(fields) == 2:
      _check_every(fields[1])
    elif fields[0] not in DESCRIPTORS or len(fields) != 1:
      raise CronError(f'unknown descriptor {expr!r}; use one of {", ".join(DESCRIPTORS)} '
                      'or "@every <duration>"')
    return ' '.join(fields)
  if len(fields) == 5:
    raise CronError(
        f'{expr!r} has 5 fields; KFP reads cron with a leading seconds field '
        f'(second minute hour day-of-month month day-of-week), so it would mean '
        f'second={fields[0]} minute={fields[1]} hour={fields[2]}. '
        f'For the usual crontab meaning write "0 {" ".join(fields)}"')
  if len(fields) != 6:
    raise CronError(f'{expr!r} has {len(fields)} fields; expected 6 '
                    '(second minute hour day-of-month month day-of-week), e.g. "0 0 2 * * *"')
  for text, (field, lo, hi) in zip(fields, FIELDS):
    _check_field(text, field, lo, hi)
  return ' '.join(fields)
