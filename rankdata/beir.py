"""Reader for a dataset in BEIR's layout.

Layout: ``corpus.jsonl`` ({"_id", "title", "text"}), ``queries.jsonl``
({"_id", "text"}), ``qrels/<split>.tsv`` (header ``query-id corpus-id score``,
tab separated).

Decisions:

* All queries of ``queries.jsonl`` are kept, judged in this split or not:
  queries without a relevant judgement are the unlabelled ones of
  semi-supervised training (`splits` sends them to the unlabelled split).
  ``queries_without_qrels`` counts the queries with no judgement in the split.
* ``title`` may be absent or null (read as ''); ``_id`` and ``text`` are
  required; other keys (e.g. ``metadata``) are ignored.
* The header line of the qrels file is required (BEIR's own loader skips the
  first line unconditionally, so a file without it would lose a row there).
* Scores must be integers; a negative score becomes gain 0 and is counted
  (``qrels_negative``); a repeated (query, doc) keeps the highest gain.
* Judgements naming an unknown query or document are skipped and counted.
* Duplicate ids in the corpus or queries are errors: which text is right
  cannot be decided.
* `max_gain` is the largest gain present (at least 1): BEIR does not state
  its scale.
"""

import os
from typing import Dict

from rankdata import reading
from rankdata import types
from rankdata.errors import DataFormatError
from rankdata.tally import Tally

QRELS_HEADER = ('query-id', 'corpus-id', 'score')


def read_corpus_jsonl(path: str) -> Dict[str, types.Document]:
  """BEIR corpus.jsonl -> doc id -> Document."""
  documents: Dict[str, types.Document] = {}
  for line, obj in reading.iter_jsonl(path):
    doc_id = reading.json_id(obj, '_id', path, line)
    if doc_id in documents:
      raise DataFormatError(path, f'duplicate document id {doc_id!r}',
                            line=line)
    documents[doc_id] = types.Document(
        id=doc_id,
        title=reading.json_text(obj, 'title', path, line, required=False),
        text=reading.json_text(obj, 'text', path, line))
  reading.require_records(len(documents), path, 'documents')
  return documents


def read_queries_jsonl(path: str) -> Dict[str, types.Query]:
  queries: Dict[str, types.Query] = {}
  for line, obj in reading.iter_jsonl(path):
    query_id = reading.json_id(obj, '_id', path, line)
    if query_id in queries:
      raise DataFormatError(path, f'duplicate query id {query_id!r}', line=line)
    queries[query_id] = types.Query(
        id=query_id, text=reading.json_text(obj, 'text', path, line))
  reading.require_records(len(queries), path, 'queries')
  return queries


def read_qrels_tsv(path: str, queries, documents, tally: Tally) -> types.Qrels:
  qrels: types.Qrels = {}
  header_seen = False
  rows = 0
  for number, line in reading.iter_lines(path):
    if not line.strip():
      continue
    columns = reading.split_columns(line, path, number, (3,), sep='\t',
                                    what='tab-separated columns')
    if not header_seen:
      if tuple(c.strip() for c in columns) != QRELS_HEADER:
        raise DataFormatError(path, 'expected header '
                              f'{" ".join(QRELS_HEADER)!r}, got {line!r}',
                              line=number)
      header_seen = True
      continue
    rows += 1
    query_id, doc_id, score = (c.strip() for c in columns)
    where = f'{path}:{number}'
    score = reading.parse_grade(score, path, number, 'score')
    reading.add_graded_judgement(qrels, query_id, doc_id, score, queries, documents,
                                 tally, where)
  if not header_seen:
    raise DataFormatError(path, 'empty qrels file (not even the header)')
  if not rows:
    raise DataFormatError(path, 'no judgements after the header; check that it is the '
                          'right file and was fully written')
  return qrels


OFFICIAL_SPLITS = ('train', 'dev', 'test')


def official_split_files(directory: str) -> Dict[str, str]:
  """split -> the qrels file that would hold it (the layout only; nothing is read)."""
  return {split: os.path.join(directory, 'qrels', f'{split}.tsv') for split in OFFICIAL_SPLITS}


def load_beir(directory: str, split: str = 'test',
              official_splits: bool = False) -> types.RankingDataset:
  """Reads a BEIR dataset directory with the judgements of `split`.

  With `official_splits`, reads every qrels/{train,dev,test}.tsv present
  (test is required) and records each judged query's split in
  `query_splits`; a query judged in two split files is an error.
  """
  if official_splits:
    return _load_beir_official(directory)
  corpus_path = reading.require_file(os.path.join(directory, 'corpus.jsonl'),
                                     'BEIR corpus')
  queries_path = reading.require_file(os.path.join(directory, 'queries.jsonl'),
                                      'BEIR queries')
  qrels_path = reading.require_file(
      os.path.join(directory, 'qrels', f'{split}.tsv'), f'BEIR qrels ({split})')
  tally = Tally(f'beir:{directory}', keys=(
      'qrels_unknown_query', 'qrels_unknown_doc', 'qrels_duplicate',
      'qrels_negative', 'queries_without_qrels', 'empty_documents',
      'empty_queries'))
  documents = read_corpus_jsonl(corpus_path)
  queries = read_queries_jsonl(queries_path)
  qrels = read_qrels_tsv(qrels_path, queries, documents, tally)
  tally.set('queries_without_qrels',
            sum(1 for q in queries if q not in qrels), warn=False)
  return reading.finish_dataset(directory, queries, documents, qrels, tally, run=None)


def _load_beir_official(directory: str) -> types.RankingDataset:
  corpus_path = reading.require_file(os.path.join(directory, 'corpus.jsonl'),
                                     'BEIR corpus')
  queries_path = reading.require_file(os.path.join(directory, 'queries.jsonl'),
                                      'BEIR queries')
  reading.require_file(os.path.join(directory, 'qrels', 'test.tsv'),
                       'BEIR qrels (test)')
  tally = Tally(f'beir:{directory}', keys=(
      'qrels_unknown_query', 'qrels_unknown_doc', 'qrels_duplicate',
      'qrels_negative', 'queries_without_qrels', 'empty_documents',
      'empty_queries'))
  documents = read_corpus_jsonl(corpus_path)
  queries = read_queries_jsonl(queries_path)
  qrels: types.Qrels = {}
  query_splits = {}
  for split, path in official_split_files(directory).items():
    if not reading.is_file(path):
      continue
    split_qrels = read_qrels_tsv(path, queries, documents, tally)
    for query_id, docs in split_qrels.items():
      if query_id in query_splits:
        raise DataFormatError(path, f'query {query_id!r} is also judged in '
                              f'qrels/{query_splits[query_id]}.tsv; official '
                              'splits must not share queries')
      query_splits[query_id] = split
      qrels[query_id] = docs
    tally.set(f'{split}_queries', len(split_qrels), warn=False)
  tally.set('queries_without_qrels',
            sum(1 for q in queries if q not in qrels), warn=False)
  return reading.finish_dataset(directory, queries, documents, qrels, tally, run=None, query_splits=query_splits)
