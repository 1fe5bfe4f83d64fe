"""RankingExampleGen executor.

Reading, first-stage retrieval and splitting happen in memory (`rankdata`):
a BM25 index needs the whole corpus anyway, and the collections this stage
reads (up to a few million documents) fit on one worker. The heavy, per-pair
work of the pipeline (scoring with BERT models) is what runs on Beam.
"""

import dataclasses
import json
import os
import time
from typing import Any, Dict, List

from absl import logging
import numpy as np
from tfx import types
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components.common import example_io
from components.common import fileio
from components.ranking_example_gen import spec as S
from components.splits_gate import required as required_lib
from rankdata import features as F
from rankdata import loaders
from rankdata import pairs as rpairs
from rankdata import splits as rsplits
from runconfig import config as C


def subset_queries(ds, max_queries: int, seed: int):
  """Keeps a seeded random subset of `max_queries` queries (and their judgements)."""
  ids = sorted(ds.queries)
  if max_queries >= len(ids):
    return ds
  rng = np.random.default_rng(seed)
  keep = set(rng.choice(ids, size=max_queries, replace=False).tolist())
  logging.info('subset: keeping %d of %d queries (seed %d)', len(keep), len(ids), seed)
  return dataclasses.replace(
      ds,
      queries={q: v for q, v in ds.queries.items() if q in keep},
      qrels={q: v for q, v in ds.qrels.items() if q in keep},
      run=None if ds.run is None else {q: v for q, v in ds.run.items() if q in keep},
      excluded_judgements={p for p in ds.excluded_judgements if p[0] in keep})


def add_unlabelled_pairs(result, pairs: List[Dict[str, str]]) -> None:
  """Appends a JSONL corpus of pairs to the unlabelled split (rank = order per query).

  Its query ids get their own namespace (`u:<id>`): the file's ids are not
  the dataset's, and a shared id would merge two unrelated queries into one
  list when the pseudo-labeller and the trainers group by query.
  """
  rank: Dict[str, int] = {}
  unlabelled = result.examples.setdefault(F.SPLIT_UNLABELLED, [])
  for p in pairs:
    query_id = S.UNLABELLED_QUERY_PREFIX + p['query_id']
    rank[query_id] = rank.get(query_id, 0) + 1
    unlabelled.append({
        F.QUERY_ID: query_id, F.DOC_ID: p['doc_id'], F.QUERY: p['query'], F.DOC: p['doc'],
        F.LABEL: None, F.FIRST_STAGE_SCORE: 0.0, F.FIRST_STAGE_RANK: rank[query_id]})
  stats = result.stats.setdefault(F.SPLIT_UNLABELLED, {})
  stats['extra_pairs'] = len(pairs)
  stats['extra_pair_queries'] = len(rank)
  stats['pairs'] = stats.get('pairs', 0) + len(pairs)
  stats['queries'] = stats.get('queries', 0) + len(rank)


def format_split_stats(stats: Dict[str, Dict[str, Any]]) -> str:
  keys: List[str] = []
  for s in stats.values():
    keys.extend(k for k in s if k not in keys and isinstance(s[k], (int, float)))
  width = max(len(k) for k in keys) if keys else 10
  lines = [f'{"":{width}}  ' + '  '.join(f'{n:>10}' for n in stats)]
  for k in keys:
    lines.append(f'{k:{width}}  ' + '  '.join(f'{stats[n].get(k, ""):>10}' for n in stats))
  return '\n'.join(lines)


EmptySplitError = required_lib.EmptySplitError


def check_required_splits(result, required: List[str], data_path: str) -> None:
  """Raises EmptySplitError naming every required split without examples."""
  required_lib.check({split: len(rows) for split, rows in result.examples.items()},
                     {split: stats.get('queries', 0) for split, stats in result.stats.items()},
                     required, data_path)


class Executor(base_executor.BaseExecutor):
  """Loads a ranking dataset, builds the splits and writes tf.Examples."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    del input_dict
    t0 = time.time()
    raw = json.loads(exec_properties[S.CONFIG_KEY])
    data = C.from_dict(C.DataConfig, raw.get('data', {}), prefix='data')
    splits = C.from_dict(C.SplitsConfig, raw.get('splits', {}), prefix='splits')
    fmt = exec_properties[S.DATA_FORMAT_KEY]
    path = exec_properties[S.DATA_PATH_KEY]
    examples = artifact_utils.get_single_instance(output_dict[S.EXAMPLES_KEY])

    official = splits.source == rsplits.SOURCE_OFFICIAL
    # Fingerprints of what this run reads, taken here (not when the pipeline
    # was built), so MLMD records the bytes these examples came from.
    data_fingerprint = fileio.sha256_files(path)
    ds = loaders.load(fmt, path, **({'official_splits': True} if official else {}))
    logging.info('loaded %s from %s: %d queries, %d documents, %d judged queries',
                 fmt, path, len(ds.queries), len(ds.documents), len(ds.qrels))
    if data.max_queries:
      ds = subset_queries(ds, data.max_queries, splits.seed)
    result = rsplits.build_examples(ds, splits)

    unlabelled_fingerprint = None
    if data.unlabelled_pairs:
      unlabelled_fingerprint = fileio.sha256_files(data.unlabelled_pairs)
      add_unlabelled_pairs(result, rpairs.load_pairs(data.unlabelled_pairs))

    # Fail here, before any model trains, rather than in a later component.
    check_required_splits(result, raw.get(S.REQUIRED_SPLITS_CONFIG_KEY, []), path)
    split_names = [s for s in F.ALL_SPLITS if result.examples.get(s)]
    written: Dict[str, int] = {}
    for split in split_names:
      written[split] = example_io.write_split(examples.uri, split, result.examples[split])
      stats = result.stats.setdefault(split, {})
      stats['examples_written'] = written[split]
      for key, value in stats.items():
        if isinstance(value, (int, np.integer)):
          examples.set_int_custom_property(f'{split}_{key}', int(value))
    examples.split_names = artifact_utils.encode_split_names(split_names)
    examples_utils.set_payload_format(examples, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
    examples.set_string_custom_property('data_format', fmt)
    examples.set_string_custom_property('data_path', path)
    examples.set_string_custom_property(S.DATA_FINGERPRINT_PROPERTY, data_fingerprint)
    if unlabelled_fingerprint is not None:
      examples.set_string_custom_property(S.UNLABELLED_PATH_PROPERTY, data.unlabelled_pairs)
      examples.set_string_custom_property(S.UNLABELLED_FINGERPRINT_PROPERTY, unlabelled_fingerprint)
    examples.set_string_custom_property('split_params', json.dumps(result.params, sort_keys=True,
                                                                  default=str))
    for key, value in ds.report.items():
      examples.set_int_custom_property(f'source_{key}', int(value))

    io_utils.write_string_file(
        os.path.join(examples.uri, S.QRELS_FILE),
        json.dumps({s: q for s, q in result.qrels.items()}, sort_keys=True))
    report = {'data_format': fmt, 'data_path': path, 'data_fingerprint': data_fingerprint,
              'unlabelled_pairs': data.unlabelled_pairs,
              'unlabelled_fingerprint': unlabelled_fingerprint, 'source_report': ds.report,
              'split_stats': result.stats, 'params': result.params, 'written': written}
    io_utils.write_string_file(os.path.join(examples.uri, S.REPORT_FILE),
                               json.dumps(report, indent=1, sort_keys=True, default=str))
    logging.info('ingested %s in %.1fs:\n%s', fmt, time.time() - t0,
                 format_split_stats(result.stats))
