"""Reader for the Cranfield-1400 collection in its original distribution format.

Files: ``cran.all.1400`` (documents), ``cran.qry`` (queries), ``cranqrel``
(judgements). Facts that this reader gets right (see the dataset README):

* Query ids are positions: the k-th ``.I`` record of ``cran.qry`` (in file
  order) is query "k", the number ``cranqrel`` uses; the ``.I`` numbers of
  ``cran.qry`` (001..365 with gaps) are not used as ids.
* Relevance codes run backwards; gains are 1->4, 2->3, 3->2, 4->1, and 5 ("no
  interest", absent from the distributed file) -> 0.
* Code -1 (once per query, apparently the query's source paper) becomes gain 0
  in `qrels`, so evaluation counts it as judged non-relevant, and the pair is
  listed in `excluded_judgements` so it never becomes a training label.
* Documents 471 and 995 have empty text; they are kept and counted.

Decisions:

* Duplicate (query, doc) rows in ``cranqrel``: the distributed file has none;
  if one appears, the highest gain is kept and ``qrels_duplicate`` counts it.
* Field markers repeated inside one record (documents 240, 576 and 578 carry a
  second ``.A``/``.B``/``.W`` in the middle of their abstract, an artefact of
  the distribution): the marker line is dropped, the lines after it stay in
  the field being read (the abstract), and ``stray_field_markers`` counts it.
  Nothing is lost and no field is overwritten.
* ``.A`` (authors) and ``.B`` (bibliographic source) are parsed and checked
  but not kept: retrieval and the models read title + abstract only.
* Text lines are joined with single spaces (the files wrap lines mid-sentence).
"""

import os
import re
from typing import Dict, Iterator, List, Tuple

from rankdata import reading
from rankdata import types
from rankdata.errors import DataFormatError
from rankdata.tally import Tally

DOCS_FILE = 'cran.all.1400'
QUERIES_FILE = 'cran.qry'
QRELS_FILE = 'cranqrel'

# Cleverdon's relevance codes -> graded gains (higher = more relevant).
GAIN_BY_CODE = {1: 4, 2: 3, 3: 2, 4: 1, 5: 0, -1: 0}
EXCLUDED_CODE = -1
MAX_GAIN = 4

ENV_DIR = 'SSD_CRANFIELD_DIR'
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A field marker: a dot, one upper-case letter, then end of line or a space.
_MARKER = re.compile(r'^\.([A-Z])(?:\s+(.*))?$')


def default_cranfield_dir() -> str:
  """Where the collection is: $SSD_CRANFIELD_DIR, else the shared copy.

  The shared copy is ../shared/datasets/cranfield relative to the project
  root (the folder holding rankdata/).
  The directory may not exist; `load_cranfield` then says so clearly.
  """
  env = os.environ.get(ENV_DIR)
  if env:
    return env
  return os.path.normpath(
      os.path.join(_PROJECT_ROOT, '..', 'shared', 'datasets', 'cranfield'))


def _records(path: str, markers: str, tally: Tally
             ) -> Iterator[Tuple[str, int, Dict[str, str]]]:
  """Yields (.I value, line of the .I, {marker: text}) for each record.

  `markers` lists the field letters allowed besides 'I'.
  """
  record_id, record_line, fields, current, seen = None, 0, {}, None, set()

  def finish():
    return record_id, record_line, {
        k: ' '.join(' '.join(lines).split()) for k, lines in fields.items()}

  for number, line in reading.iter_lines(path):
    match = _MARKER.match(line)
    if match:
      letter, rest = match.group(1), (match.group(2) or '').strip()
      if letter == 'I':
        if record_id is not None:
          yield finish()
        if not re.fullmatch(r'\d+', rest):
          raise DataFormatError(
              path, f'non-integer record id {rest!r} after .I', line=number)
        record_id, record_line, fields, current, seen = (
            str(int(rest)), number, {}, None, set())
        continue
      if letter not in markers:
        allowed = ' '.join('.' + m for m in 'I' + markers)
        raise DataFormatError(path, f'unknown field marker .{letter} '
                              f'(expected one of {allowed})', line=number)
      if record_id is None:
        raise DataFormatError(path, f'field .{letter} before the first .I',
                              line=number)
      if letter in seen:
        tally.add('stray_field_markers', f'{path}:{number}')
      else:
        seen.add(letter)
        current = letter
        fields[current] = []
      if rest:
        fields[current].append(rest)
      continue
    if record_id is None:
      if line.strip():
        raise DataFormatError(path, 'text before the first .I record',
                              line=number)
      continue
    if current is None:
      if line.strip():
        raise DataFormatError(path, 'text after .I without a field marker',
                              line=number)
      continue
    fields[current].append(line)
  if record_id is not None:
    yield finish()


def _require_text(path: str, record_id: str, line: int, fields: Dict[str, str]) -> None:
  """Every record has a .W marker, even when its text is empty (471, 995).

  A record without one is a truncated file or a record that lost its text;
  reading it as an empty text would hide that.
  """
  if 'W' not in fields:
    raise DataFormatError(path, f'record .I {record_id} has no .W (text) field; the file '
                          'may be truncated. Every record needs a .W line, even with no '
                          'text after it', line=line)


def read_documents(path: str, tally: Tally) -> Dict[str, types.Document]:
  documents: Dict[str, types.Document] = {}
  for doc_id, line, fields in _records(path, 'TABW', tally):
    _require_text(path, doc_id, line, fields)
    if doc_id in documents:
      raise DataFormatError(path, f'duplicate document id {doc_id}', line=line)
    documents[doc_id] = types.Document(
        id=doc_id, title=fields.get('T', ''), text=fields.get('W', ''))
  reading.require_records(len(documents), path, 'documents (.I records)')
  return documents


def read_queries(path: str, tally: Tally) -> Tuple[Dict[str, types.Query],
                                                   List[str]]:
  """Returns queries keyed by position ("1".."N") and their .I numbers."""
  queries: Dict[str, types.Query] = {}
  source_numbers: List[str] = []
  for position, (number, line, fields) in enumerate(
      _records(path, 'W', tally), start=1):
    _require_text(path, number, line, fields)
    queries[str(position)] = types.Query(id=str(position),
                                         text=fields.get('W', ''))
    source_numbers.append(number)
  reading.require_records(len(queries), path, 'queries (.I records)')
  return queries, source_numbers


def read_qrels(path: str, queries: Dict[str, types.Query],
               documents: Dict[str, types.Document], tally: Tally
               ) -> Tuple[types.Qrels, set]:
  qrels: types.Qrels = {}
  excluded = set()
  rows = 0
  for number, line in reading.iter_lines(path):
    if not line.strip():
      continue
    rows += 1
    query_id, doc_id, code = reading.split_columns(
        line, path, number, (3,), what='columns (query doc code)')
    where = f'{path}:{number}'
    query_id = str(reading.parse_int(query_id, path, number, 'query number'))
    doc_id = str(reading.parse_int(doc_id, path, number, 'document id'))
    code = reading.parse_int(code, path, number, 'relevance code')
    if code not in GAIN_BY_CODE:
      known = ', '.join(str(c) for c in sorted(GAIN_BY_CODE))
      raise DataFormatError(path, f'unknown relevance code {code} '
                            f'(known: {known})', line=number)
    if not reading.known_ids(query_id, doc_id, queries, documents, tally, where):
      continue
    if reading.add_judgement(qrels, query_id, doc_id, GAIN_BY_CODE[code],
                             tally, where):
      if code == EXCLUDED_CODE:
        excluded.add((query_id, doc_id))
      else:
        excluded.discard((query_id, doc_id))
  reading.require_records(rows, path, 'judgements')
  return qrels, excluded


def load_cranfield(directory: str = None) -> types.RankingDataset:
  """Reads Cranfield-1400 from `directory` (default_cranfield_dir() if None)."""
  directory = directory or default_cranfield_dir()
  if not reading.is_dir(directory):
    raise FileNotFoundError(
        f'Cranfield directory {directory} does not exist; set ${ENV_DIR} or '
        'put the collection at ../shared/datasets/cranfield beside the project')
  paths = {name: reading.require_file(os.path.join(directory, name),
                                      f'Cranfield file {name}')
           for name in (DOCS_FILE, QUERIES_FILE, QRELS_FILE)}
  tally = Tally('cranfield', keys=(
      'qrels_unknown_query', 'qrels_unknown_doc', 'qrels_duplicate',
      'excluded_judgements', 'stray_field_markers', 'empty_documents',
      'empty_queries'))
  documents = read_documents(paths[DOCS_FILE], tally)
  queries, _ = read_queries(paths[QUERIES_FILE], tally)
  qrels, excluded = read_qrels(paths[QRELS_FILE], queries, documents, tally)
  tally.set('excluded_judgements', len(excluded), warn=False)
  reading.count_empty_texts(queries, documents, tally)
  tally.log()
  return types.RankingDataset(
      name='cranfield', queries=queries, documents=documents, qrels=qrels,
      run=None, excluded_judgements=excluded, report=tally.as_dict(),
      max_gain=MAX_GAIN)
