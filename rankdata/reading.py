"""Small parsing helpers shared by the readers, so each rule lives in one place.

Every helper raises `DataFormatError` naming file and line, so a user can open
the file at the offending spot.

Files are opened through tf.io.gfile, so a dataset may live on any
filesystem TensorFlow has (a local disk, gs://; see docs/design.md). Lines
are read as bytes and split on b"\n" only, exactly as a local binary file
would be: a CRLF file
(NFCorpus qrels) keeps its "\r" until `iter_lines` strips it, and a lone "\r"
inside a line is text, not a line break. TensorFlow is imported on first
use, so parsing code that never opens a file does not load it.
"""

import json
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from rankdata import metrics
from rankdata import types
from rankdata.errors import DataFormatError
from rankdata.tally import Tally


def _gfile():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.io.gfile


def is_file(path: str) -> bool:
  """True when `path` (local or a URI) is an existing file."""
  gfile = _gfile()
  return gfile.exists(path) and not gfile.isdir(path)


def is_dir(path: str) -> bool:
  return _gfile().isdir(path)
# Graded relevance scales in use stop at 4 (TREC), 3 (MS MARCO) or 2 (BEIR);
# TREC web tracks use -2 for spam. A grade outside this range is almost
# always another column read as the grade (a doc id, a score) and would
# dominate nDCG, so it is an error rather than a judgement.
MIN_GRADE = -10
MAX_GRADE = 10


def require_file(path: str, what: str) -> str:
  """Returns `path`, or raises FileNotFoundError naming the missing input."""
  if not is_file(path):
    raise FileNotFoundError(f'{path}: {what} not found')
  return path


def _raw_lines(f, block_size: int = 1 << 20) -> Iterator[bytes]:
  """Lines of a binary file object, split on b"\\n" only, each with its b"\\n".

  Not GFile's own line iteration: TensorFlow's ReadLine drops every b"\\r"
  (also one inside a line), which would change the text a reader sees.
  """
  rest = b''
  for block in iter(lambda: f.read(block_size), b''):
    lines = (rest + block).split(b'\n')
    rest = lines.pop()
    for line in lines:
      yield line + b'\n'
  if rest:
    yield rest


def iter_lines(path: str) -> Iterator[Tuple[int, str]]:
  """Yields (1-based line number, line without its newline) of a UTF-8 file."""
  with _gfile().GFile(path, 'rb') as f:
    for number, raw in enumerate(_raw_lines(f), start=1):
      try:
        line = raw.decode('utf-8')
      except UnicodeDecodeError as e:
        raise DataFormatError(path, f'not valid UTF-8 ({e.reason})',
                              line=number) from None
      yield number, line.rstrip('\r\n')


def iter_jsonl(path: str) -> Iterator[Tuple[int, Dict[str, Any]]]:
  """Yields (line number, object) of a JSON-lines file; skips blank lines."""
  for number, line in iter_lines(path):
    if not line.strip():
      continue
    try:
      obj = json.loads(line)
    except json.JSONDecodeError as e:
      raise DataFormatError(path, f'invalid JSON: {e.msg} (column {e.colno})',
                            line=number) from None
    except RecursionError:
      raise DataFormatError(path, 'invalid JSON: nested too deeply',
                            line=number) from None
    if not isinstance(obj, dict):
      raise DataFormatError(path, f'expected a JSON object, got '
                            f'{type(obj).__name__}', line=number)
    yield number, obj


def json_id(obj: Mapping[str, Any], key: str, path: str, line: int) -> str:
  """Reads an id field (string or integer) as a non-empty string."""
  if key not in obj:
    raise DataFormatError(path, f'missing key {key!r}', line=line)
  value = obj[key]
  if isinstance(value, bool) or not isinstance(value, (str, int)):
    raise DataFormatError(path, f'{key!r} must be a string or integer, got '
                          f'{type(value).__name__}', line=line)
  value = str(value)
  if not value.strip():
    raise DataFormatError(path, f'{key!r} is empty', line=line)
  return _encodable(value, key, path, line)


def _encodable(value: str, key: str, path: str, line: int) -> str:
  """JSON may escape lone surrogates (\\ud800) that no UTF-8 writer accepts."""
  try:
    value.encode('utf-8')
  except UnicodeEncodeError:
    raise DataFormatError(path, f'{key!r} holds an invalid Unicode escape (a lone '
                          'surrogate such as \\ud800)', line=line) from None
  return value


def json_text(obj: Mapping[str, Any], key: str, path: str, line: int,
              required: bool = True) -> str:
  """Reads a text field; an optional one may be absent or null ('' then)."""
  if key not in obj or obj[key] is None:
    if required:
      raise DataFormatError(path, f'missing key {key!r}', line=line)
    return ''
  value = obj[key]
  if not isinstance(value, str):
    raise DataFormatError(path, f'{key!r} must be a string, got '
                          f'{type(value).__name__}', line=line)
  return _encodable(value, key, path, line)


def parse_int(value: str, path: str, line: int, what: str) -> int:
  try:
    return int(value)
  except ValueError:
    raise DataFormatError(path, f'{what} must be an integer, got {value!r}',
                          line=line) from None


def parse_grade(value: str, path: str, line: int, what: str = 'grade') -> int:
  """An integer relevance grade in [MIN_GRADE, MAX_GRADE]."""
  grade = parse_int(value, path, line, what)
  if not MIN_GRADE <= grade <= MAX_GRADE:
    raise DataFormatError(path, f'{what} {grade} is out of range [{MIN_GRADE}, {MAX_GRADE}]; '
                          'is another column (a doc id, a score) in the grade column?',
                          line=line)
  return grade


def require_records(count: int, path: str, what: str) -> None:
  """An input that parses to nothing is an error, not an empty dataset."""
  if not count:
    raise DataFormatError(path, f'no {what} found: the file is empty or holds only blank '
                          'lines; check that it is the right file and was fully written')


def parse_float(value: str, path: str, line: int, what: str) -> float:
  try:
    return float(value)
  except ValueError:
    raise DataFormatError(path, f'{what} must be a number, got {value!r}',
                          line=line) from None


def split_columns(line: str, path: str, number: int, expected: Tuple[int, ...],
                  sep: Optional[str] = None, what: str = 'columns'
                  ) -> List[str]:
  """Splits a line (on `sep`, None = whitespace); checks the column count."""
  columns = line.split(sep)
  if len(columns) not in expected:
    want = ' or '.join(str(n) for n in expected)
    raise DataFormatError(path, f'expected {want} {what}, got {len(columns)}',
                          line=number)
  return columns


def known_ids(query_id: str, doc_id: str, queries: Mapping[str, types.Query],
              documents: Mapping[str, types.Document], tally: Tally, where: str) -> bool:
  """False (and counted) when a judgement names an unknown query or document."""
  if query_id not in queries:
    tally.add('qrels_unknown_query', where)
    return False
  if doc_id not in documents:
    tally.add('qrels_unknown_doc', where)
    return False
  return True


def add_graded_judgement(qrels: types.Qrels, query_id: str, doc_id: str, grade: int,
                         queries: Mapping[str, types.Query],
                         documents: Mapping[str, types.Document], tally: Tally,
                         where: str) -> None:
  """BEIR/TREC grades: unknown ids counted and skipped, negatives count as gain 0."""
  if not known_ids(query_id, doc_id, queries, documents, tally, where):
    return
  if grade < 0:
    tally.add('qrels_negative', where)
  add_judgement(qrels, query_id, doc_id, max(grade, 0), tally, where)


def add_judgement(qrels: types.Qrels, query_id: str, doc_id: str, gain: int,
                  tally: Tally, where: str) -> bool:
  """Adds a judgement; a repeated (query, doc) keeps the highest gain.

  Returns True when this row's gain is the one kept.
  """
  docs = qrels.setdefault(query_id, {})
  if doc_id in docs:
    tally.add('qrels_duplicate', where)
    if gain <= docs[doc_id]:
      return False
  docs[doc_id] = gain
  return True


def count_empty_texts(queries: Mapping[str, types.Query],
                      documents: Mapping[str, types.Document],
                      tally: Tally) -> None:
  """Counts (and later warns about) empty documents and queries; keeps them."""
  for doc in documents.values():
    if doc.is_empty:
      tally.add('empty_documents', f'doc {doc.id}')
  for query in queries.values():
    if query.is_empty:
      tally.add('empty_queries', f'query {query.id}')


def sort_run(run: types.Run) -> types.Run:
  """Orders each query's candidates as evaluation does (`rank_order`)."""
  return {q: metrics.rank_order(docs) for q, docs in run.items()}


def finish_dataset(directory: str, queries, documents, qrels, tally,
                   run=None, query_splits=None):
  """The common end of every directory reader: counts, log, the dataset.

  `max_gain` is the largest gain present (at least 1).
  """
  count_empty_texts(queries, documents, tally)
  tally.log()
  max_gain = max((g for docs in qrels.values() for g in docs.values()), default=1)
  return types.RankingDataset(
      name=os.path.basename(os.path.normpath(directory)), queries=queries,
      documents=documents, qrels=qrels, run=run, report=tally.as_dict(),
      max_gain=max(max_gain, 1), query_splits=query_splits)
