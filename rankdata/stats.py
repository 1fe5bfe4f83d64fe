"""Summary counts of a dataset, for logs, the CLI and recorded artefacts.

Everything is computed from the dataset itself, then the reader's `report`
counters are added (under their own names unless a computed count already has
that name; the two agree, e.g. empty_documents).
"""

import collections
from typing import Dict

from rankdata import types


def dataset_stats(ds: types.RankingDataset) -> Dict[str, object]:
  """Counts of queries, documents, judgements (total and per gain) and more."""
  gains = collections.Counter(
      g for docs in ds.qrels.values() for g in docs.values())
  stats: Dict[str, object] = {
      'name': ds.name,
      'queries': len(ds.queries),
      'documents': len(ds.documents),
      'judgements': sum(gains.values()),
  }
  for gain in sorted(gains):
    stats[f'judgements_gain_{gain}'] = gains[gain]
  stats.update({
      'excluded_judgements': len(ds.excluded_judgements),
      'queries_with_judgements': sum(1 for d in ds.qrels.values() if d),
      'queries_with_relevant': len(ds.relevant_query_ids()),
      'empty_documents': sum(1 for d in ds.documents.values() if d.is_empty),
      'empty_queries': sum(1 for q in ds.queries.values() if q.is_empty),
      'max_gain': ds.max_gain,
  })
  if ds.run is not None:
    stats['run_queries'] = len(ds.run)
    stats['run_pairs'] = sum(len(v) for v in ds.run.values())
  for key, value in ds.report.items():
    stats.setdefault(key, value)
  return stats


def format_stats(stats: Dict[str, object]) -> str:
  """Two aligned columns: name, value (numbers right-aligned)."""
  if not stats:
    return ''
  width = max(len(k) for k in stats)
  values = {k: f'{v:,}' if isinstance(v, int) and not isinstance(v, bool)
            else str(v) for k, v in stats.items()}
  value_width = max(len(v) for v in values.values())
  return '\n'.join(f'{k:<{width}}  {v:>{value_width}}'
                   for k, v in values.items())
