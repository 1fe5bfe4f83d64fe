"""Reader for a TREC-style directory: topics, qrels, optional run, a corpus.

Files:

* ``topics.tsv``: ``id<TAB>text`` per line.
* ``qrels.txt``: ``qid iteration docid grade``, whitespace separated.
* ``run.txt`` (optional): ``qid Q0 docid rank score tag``; becomes `run`.
* the corpus, exactly one of ``corpus.jsonl`` (BEIR-style
  {"_id", "title", "text"}) or ``docs.tsv`` (``id<TAB>text``, or
  ``id<TAB>title<TAB>text``; the first line decides, every line must match).

Decisions:

* Grades <= 0 mean non-relevant in TREC: gain = max(grade, 0); negative grades
  are counted (``qrels_negative``), not excluded from training (unlike
  Cranfield's -1, a TREC negative grade is a real judgement).
* A repeated (query, doc) judgement keeps the highest gain
  (``qrels_duplicate``).
* Judgements or run lines naming an unknown query or document are skipped and
  counted (``qrels_unknown_*``, ``run_unknown_ids``).
* The run is ordered as trec_eval orders it (score desc, doc id desc); its
  rank column is checked to be an integer and otherwise ignored, as trec_eval
  does. A repeated (query, doc) in the run keeps the higher score
  (``run_duplicate``).
* Duplicate topic or document ids are errors.
* `max_gain` is the largest gain present (at least 1).
"""

import math
import os
from typing import Dict

from rankdata import beir
from rankdata import reading
from rankdata import types
from rankdata.errors import DataFormatError
from rankdata.tally import Tally

TOPICS_FILE = 'topics.tsv'
QRELS_FILE = 'qrels.txt'
RUN_FILE = 'run.txt'
CORPUS_JSONL = 'corpus.jsonl'
DOCS_TSV = 'docs.tsv'


def read_topics(path: str) -> Dict[str, types.Query]:
  queries: Dict[str, types.Query] = {}
  for number, line in reading.iter_lines(path):
    if not line.strip():
      continue
    query_id, text = reading.split_columns(
        line, path, number, (2,), sep='\t',
        what='tab-separated columns (id text)')
    query_id = query_id.strip()
    if not query_id:
      raise DataFormatError(path, 'empty topic id', line=number)
    if query_id in queries:
      raise DataFormatError(path, f'duplicate topic id {query_id!r}',
                            line=number)
    queries[query_id] = types.Query(id=query_id, text=text)
  reading.require_records(len(queries), path, 'topics')
  return queries


def read_docs_tsv(path: str) -> Dict[str, types.Document]:
  documents: Dict[str, types.Document] = {}
  width = None
  for number, line in reading.iter_lines(path):
    if not line.strip():
      continue
    columns = reading.split_columns(
        line, path, number, (width,) if width else (2, 3), sep='\t',
        what='tab-separated columns (as on the first line)' if width else
        'tab-separated columns (id text, or id title text)')
    width = len(columns)
    doc_id = columns[0].strip()
    if not doc_id:
      raise DataFormatError(path, 'empty document id', line=number)
    if doc_id in documents:
      raise DataFormatError(path, f'duplicate document id {doc_id!r}',
                            line=number)
    title = columns[1] if width == 3 else ''
    documents[doc_id] = types.Document(id=doc_id, title=title,
                                       text=columns[-1])
  reading.require_records(len(documents), path, 'documents')
  return documents


def read_corpus(directory: str) -> Dict[str, types.Document]:
  jsonl = os.path.join(directory, CORPUS_JSONL)
  tsv = os.path.join(directory, DOCS_TSV)
  if reading.is_file(jsonl) and reading.is_file(tsv):
    raise DataFormatError(directory, f'both {CORPUS_JSONL} and {DOCS_TSV} '
                          'present; keep one corpus')
  if reading.is_file(jsonl):
    return beir.read_corpus_jsonl(jsonl)
  if reading.is_file(tsv):
    return read_docs_tsv(tsv)
  raise FileNotFoundError(f'{directory}: no corpus ({CORPUS_JSONL} or '
                          f'{DOCS_TSV}) found')


def read_qrels(path: str, queries, documents, tally: Tally) -> types.Qrels:
  qrels: types.Qrels = {}
  rows = 0
  for number, line in reading.iter_lines(path):
    if not line.strip():
      continue
    query_id, _, doc_id, grade = reading.split_columns(
        line, path, number, (4,), what='columns (qid iteration docid grade)')
    where = f'{path}:{number}'
    rows += 1
    grade = reading.parse_grade(grade, path, number, 'grade')
    reading.add_graded_judgement(qrels, query_id, doc_id, grade, queries, documents,
                                 tally, where)
  reading.require_records(rows, path, 'judgements')
  return qrels


def read_run(path: str, queries, documents, tally: Tally) -> types.Run:
  scores: Dict[str, Dict[str, float]] = {}
  rows = 0
  for number, line in reading.iter_lines(path):
    if not line.strip():
      continue
    query_id, _, doc_id, rank, score, _ = reading.split_columns(
        line, path, number, (6,), what='columns (qid Q0 docid rank score tag)')
    rows += 1
    where = f'{path}:{number}'
    reading.parse_int(rank, path, number, 'rank')
    score = reading.parse_float(score, path, number, 'score')
    if not math.isfinite(score):
      raise DataFormatError(path, f'score must be finite, got {score}', line=number)
    if query_id not in queries or doc_id not in documents:
      tally.add('run_unknown_ids', where)
      continue
    docs = scores.setdefault(query_id, {})
    if doc_id in docs:
      tally.add('run_duplicate', where)
      score = max(score, docs[doc_id])
    docs[doc_id] = score
  reading.require_records(rows, path, 'run lines (remove an empty run file to use BM25)')
  return reading.sort_run({q: list(d.items()) for q, d in scores.items()})


def load_trec(directory: str, official_splits: bool = False) -> types.RankingDataset:
  """Reads a TREC-style directory (see module docstring).

  With `official_splits`, topics, qrels and the optional run live per split
  in `train/`, `dev/` and `test/` subdirectories (test required) beside one
  corpus; see `_load_trec_official`.
  """
  if official_splits:
    return _load_trec_official(directory)
  topics_path = reading.require_file(os.path.join(directory, TOPICS_FILE),
                                     'TREC topics')
  qrels_path = reading.require_file(os.path.join(directory, QRELS_FILE),
                                    'TREC qrels')
  tally = Tally(f'trec:{directory}', keys=(
      'qrels_unknown_query', 'qrels_unknown_doc', 'qrels_duplicate',
      'qrels_negative', 'run_unknown_ids', 'run_duplicate', 'empty_documents',
      'empty_queries'))
  queries = read_topics(topics_path)
  documents = read_corpus(directory)
  qrels = read_qrels(qrels_path, queries, documents, tally)
  run_path = os.path.join(directory, RUN_FILE)
  run = (read_run(run_path, queries, documents, tally)
         if reading.is_file(run_path) else None)
  return reading.finish_dataset(directory, queries, documents, qrels, tally, run=run)


OFFICIAL_SPLITS = ('train', 'dev', 'test')


def official_split_files(directory: str) -> Dict[str, str]:
  """split -> the topics file that would hold it (the layout only; nothing is read)."""
  return {split: os.path.join(directory, split, TOPICS_FILE) for split in OFFICIAL_SPLITS}


def _load_trec_official(directory: str) -> types.RankingDataset:
  """<dir>/{corpus}, <dir>/<split>/{topics.tsv, qrels.txt[, run.txt]}.

  Topic ids must be unique across splits (a query belongs to one split).
  A split without a run file uses BM25 for its queries only if no split has
  a run; mixing is an error, since one first stage must rank every split.
  """
  reading.require_file(os.path.join(directory, 'test', TOPICS_FILE), 'TREC test topics')
  tally = Tally(f'trec:{directory}', keys=(
      'qrels_unknown_query', 'qrels_unknown_doc', 'qrels_duplicate',
      'qrels_negative', 'run_unknown_ids', 'run_duplicate', 'empty_documents',
      'empty_queries'))
  documents = read_corpus(directory)
  queries: Dict[str, types.Query] = {}
  qrels: types.Qrels = {}
  run: types.Run = {}
  query_splits: Dict[str, str] = {}
  with_run = []
  for split in OFFICIAL_SPLITS:
    split_dir = os.path.join(directory, split)
    if not reading.is_dir(split_dir):
      continue
    topics_path = reading.require_file(os.path.join(split_dir, TOPICS_FILE),
                                       f'TREC {split} topics')
    split_queries = read_topics(topics_path)
    for query_id in split_queries:
      if query_id in query_splits:
        raise DataFormatError(topics_path, f'topic {query_id!r} is also a '
                              f'{query_splits[query_id]} topic; splits must not share queries')
      query_splits[query_id] = split
    queries.update(split_queries)
    qrels_path = reading.require_file(os.path.join(split_dir, QRELS_FILE), f'TREC {split} qrels')
    qrels.update(read_qrels(qrels_path, split_queries, documents, tally))
    run_path = os.path.join(split_dir, RUN_FILE)
    if reading.is_file(run_path):
      run.update(read_run(run_path, split_queries, documents, tally))
      with_run.append(split)
  present = sorted(set(query_splits.values()))
  if with_run and with_run != [s for s in OFFICIAL_SPLITS if s in present]:
    raise DataFormatError(directory, f'run files exist for {with_run} but not for every split '
                          f'({present}): one first stage must rank every split')
  reading.count_empty_texts(queries, documents, tally)
  tally.log()
  max_gain = max((g for docs in qrels.values() for g in docs.values()), default=1)
  return types.RankingDataset(
      name=os.path.basename(os.path.normpath(directory)), queries=queries,
      documents=documents, qrels=qrels, run=run if with_run else None,
      report=tally.as_dict(), max_gain=max(max_gain, 1), query_splits=query_splits)
