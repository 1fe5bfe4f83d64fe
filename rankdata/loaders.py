"""One entry point for every dataset format, so configs can name a format."""

from typing import Callable, Dict, Optional

from rankdata import beir
from rankdata import cranfield
from rankdata import pairs
from rankdata import trec
from rankdata import types

_LOADERS: Dict[str, Callable[..., types.RankingDataset]] = {
    'cranfield': cranfield.load_cranfield,
    'beir': beir.load_beir,
    'trec': trec.load_trec,
    'pairs': pairs.load_pairs_dataset,
}
FORMATS = tuple(_LOADERS)
# Formats whose readers know the dataset's own train/dev/test split, and
# where each split's file lies (split -> path; a split is present when its
# file exists). Read by the loaders and, from the file list alone, by
# `ssd validate`.
_OFFICIAL_SPLIT_FILES: Dict[str, Callable[[str], Dict[str, str]]] = {
    'beir': beir.official_split_files,
    'trec': trec.official_split_files,
}
OFFICIAL_SPLIT_FORMATS = tuple(_OFFICIAL_SPLIT_FILES)


# pylint: disable-next=redefined-builtin
def official_format_problem(format: str) -> Optional[str]:
  """Why `format` cannot give official splits (None: it can)."""
  if format in OFFICIAL_SPLIT_FORMATS:
    return None
  return (f"format {format!r} has no official splits (splits.source: official "
          f"works with {', '.join(OFFICIAL_SPLIT_FORMATS)}); use splits.source: seeded")


# pylint: disable-next=redefined-builtin
def official_split_files(format: str, path: str) -> Dict[str, str]:
  """split -> the file that holds it in a dataset of `format` (one of OFFICIAL_SPLIT_FORMATS)."""
  return _OFFICIAL_SPLIT_FILES[format](path)


# pylint: disable-next=redefined-builtin
def load(format: str, path: str, **kwargs) -> types.RankingDataset:
  """Loads `path` with the reader of `format` (one of `FORMATS`).

  kwargs go to the reader, e.g. ``split='dev'`` for 'beir'.
  """
  if format not in _LOADERS:
    raise ValueError(f'unknown dataset format {format!r}; known formats: '
                     f'{", ".join(FORMATS)}')
  problem = kwargs.get('official_splits') and official_format_problem(format)
  if problem:
    raise ValueError(problem)
  return _LOADERS[format](path, **kwargs)
