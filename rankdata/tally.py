"""Counting what a reader skips or repairs, so that nothing disappears silently.

Every reader keeps one `Tally`: each skipped or repaired record bumps a named
counter and the first few locations (``file:line``) are remembered, so that the
warning logged at the end of loading points at concrete lines. The counters end
up in `RankingDataset.report`, shown by stats and the ingestion component.
"""

import collections
from typing import Dict, Iterable, List

from absl import logging

# How many offending locations a warning quotes per counter.
MAX_EXAMPLES = 5


class Tally:
  """Named counters plus the first few places each one was bumped."""

  def __init__(self, source: str, keys: Iterable[str] = ()):
    self.source = source
    self.counts: Dict[str, int] = collections.OrderedDict(
        (k, 0) for k in keys)
    self._where: Dict[str, List[str]] = collections.defaultdict(list)
    self._silent = set()

  def add(self, key: str, where: str = '', n: int = 1) -> None:
    """Counts `n` occurrences of `key`; `where` is e.g. 'path:12'."""
    self.counts[key] = self.counts.get(key, 0) + n
    if where and len(self._where[key]) < MAX_EXAMPLES:
      self._where[key].append(where)

  def set(self, key: str, value: int, warn: bool = True) -> None:
    """Sets a computed counter; warn=False for expected ones (Cranfield -1)."""
    self.counts[key] = value
    if not warn:
      self._silent.add(key)

  def log(self) -> None:
    """Logs one warning per non-zero counter, quoting the first locations."""
    for key, n in self.counts.items():
      if not n or key in self._silent:
        continue
      where = self._where.get(key)
      example = f' (first at {", ".join(where)})' if where else ''
      logging.warning('%s: %s: %d%s', self.source, key, n, example)

  def as_dict(self) -> Dict[str, int]:
    return dict(self.counts)
