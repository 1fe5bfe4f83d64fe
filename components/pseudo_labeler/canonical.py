"""Batches whose membership and order are a function of the data alone.

A teacher's output for one item depends, in its last bits, on the batch the
item is run in: its size, the item's position, the length the batch is
padded to (measured 2026-11-30 on this CPU stack: MiniLM document
embeddings change by 3e-8 to 9e-8 between batch sizes, and the cosine
`score_embeddings` signature's output changes between batches of 7 and 300). Beam forms batches from bundles, and a bundle's
contents and order are the runner's choice. With two DirectRunner worker
processes the teacher's scores differed in their last bits from a one-worker
run, for both teacher kinds (tests/test_pseudo_labeler_executor.py, before
this module); one in-process worker happened to repeat itself (two runs of
Cranfield's transfer labelling, 45,467 pairs, were identical), but nothing
promised it on Dataflow, Flink or Spark.

`CanonicalWindows` makes each batch a function of the data: items go to
`ceil(count / window)` buckets by a content hash, each bucket is grouped,
sorted by that hash and cut into windows of at most `window` items. Which
items share a window, and in what order, then no longer depends on the
runner, the number of workers or the order the input arrived in. The group
also breaks fusion, so the windows spread over the runner's workers.
"""

import math
from typing import Any, Callable, Iterable, List

import apache_beam as beam


def bucket(key: bytes, buckets: int) -> int:
  """A stable bucket of a content key (not Python's per-process hash())."""
  return int.from_bytes(key[:8], 'big') % max(1, buckets)


def windows(items: Iterable[Any], key_fn: Callable[[Any], bytes], window: int) -> List[List[Any]]:
  """One bucket's items sorted by key, cut into lists of at most `window`.

  Items with equal keys must be interchangeable (equal inputs to the
  teacher): their relative order is the only thing left to the runner.
  """
  ordered = sorted(items, key=key_fn)
  return [ordered[i:i + window] for i in range(0, len(ordered), window)]


@beam.ptransform_fn
def CanonicalWindows(items, key_fn: Callable[[Any], bytes], window: int):  # pylint: disable=invalid-name
  """Items -> lists of at most `window` items, fixed by the data (see module doc).

  Buckets hold `window` items on average (a bucket over it is cut in two),
  so a teacher call sees about as many items as a plain BatchElements window.
  """
  if window < 1:
    raise ValueError(f'window must be >= 1, got {window}')
  count = items | 'Count' >> beam.combiners.Count.Globally()
  return (items
          | 'KeyByBucket' >> beam.Map(
              lambda item, n: (bucket(key_fn(item), math.ceil(n / window)), item),
              n=beam.pvalue.AsSingleton(count))
          | 'GroupBuckets' >> beam.GroupByKey()
          | 'CutWindows' >> beam.FlatMap(lambda kv: windows(kv[1], key_fn, window)))
