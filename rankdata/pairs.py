"""Reader for unlabelled (query, document) pairs in JSON lines.

Each line: ``{"query_id", "query", "doc_id", "doc"}`` (ids strings or
integers, texts strings; other keys ignored). Such a file is a corpus for
semi-supervised training without any judgements, e.g. logged queries with
the documents a production system showed for them.

Decisions:

* The same query id (or doc id) must carry the same text on every line;
  otherwise which text is right cannot be decided and it is an error.
* Empty texts are kept and counted (``empty_queries``, ``empty_documents``).
* As a dataset, the pairs become the first-stage `run`: score 0.0, the file
  order is the rank; a repeated (query, doc) pair keeps its first position and
  is counted (``run_duplicate``).
"""

import os
from typing import Dict, List, Sequence

from rankdata import reading
from rankdata import types
from rankdata.errors import DataFormatError
from rankdata.tally import Tally

KEYS = ('query_id', 'query', 'doc_id', 'doc')


def load_pairs(path: str) -> List[Dict[str, str]]:
  """Reads the pairs file: one dict per line with exactly `KEYS`.

  Also checks that every id maps to a single text across the file.
  """
  reading.require_file(path, 'pairs file')
  pairs: List[Dict[str, str]] = []
  texts: Dict[str, Dict[str, str]] = {'query': {}, 'doc': {}}
  for line, obj in reading.iter_jsonl(path):
    pair = {key: (reading.json_id if key.endswith('_id') else
                  reading.json_text)(obj, key, path, line) for key in KEYS}
    for kind in ('query', 'doc'):
      item_id, text = pair[f'{kind}_id'], pair[kind]
      known = texts[kind].setdefault(item_id, text)
      if known != text:
        raise DataFormatError(path, f'{kind} id {item_id!r} has a different '
                              'text than on an earlier line', line=line)
    pairs.append(pair)
  reading.require_records(len(pairs), path, 'pairs')
  return pairs


def pairs_as_dataset(pairs: Sequence[Dict[str, str]], name: str = 'pairs'
                     ) -> types.RankingDataset:
  """Queries, documents and a run (file order, score 0.0); no qrels."""
  tally = Tally(f'pairs:{name}', keys=('run_duplicate', 'empty_documents',
                                       'empty_queries'))
  queries: Dict[str, types.Query] = {}
  documents: Dict[str, types.Document] = {}
  run: types.Run = {}
  seen = set()
  for i, pair in enumerate(pairs):
    query_id, doc_id = pair['query_id'], pair['doc_id']
    queries.setdefault(query_id, types.Query(id=query_id, text=pair['query']))
    documents.setdefault(doc_id, types.Document(id=doc_id, title='',
                                                text=pair['doc']))
    if (query_id, doc_id) in seen:
      tally.add('run_duplicate', f'pair {i + 1}')
      continue
    seen.add((query_id, doc_id))
    run.setdefault(query_id, []).append((doc_id, 0.0))
  reading.count_empty_texts(queries, documents, tally)
  tally.log()
  return types.RankingDataset(name=name, queries=queries, documents=documents,
                              qrels={}, run=run, report=tally.as_dict(),
                              max_gain=1)


def load_pairs_dataset(path: str) -> types.RankingDataset:
  """`pairs_as_dataset(load_pairs(path))`, named after the file."""
  name = os.path.splitext(os.path.basename(path))[0]
  return pairs_as_dataset(load_pairs(path), name=name)
