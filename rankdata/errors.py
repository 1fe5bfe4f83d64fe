"""Errors raised for bad input data; every message names where the problem is."""

from typing import Optional


class DataFormatError(ValueError):
  """Raised when an input file is malformed.

  The message reads ``<path>:<line>: <what is wrong>`` (or ``<path>: record
  <id>: ...`` for record-oriented formats), so a user can open the file at the
  offending spot.
  """

  def __init__(self, path: str, problem: str, line: Optional[int] = None,
               record: Optional[str] = None):
    self.path = str(path)
    self.line = line
    self.record = record
    self.problem = problem
    where = self.path
    if line is not None:
      where += f':{line}'
    if record is not None:
      where += f': record {record}'
    super().__init__(f'{where}: {problem}')
