"""One entry point for every dataset format, so configs can name a format."""

from typing import Callable, Dict

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
# Formats whose readers know the dataset's own train/dev/test split.
OFFICIAL_SPLIT_FORMATS = ('beir', 'trec')


# pylint: disable-next=redefined-builtin
def load(format: str, path: str, **kwargs) -> types.RankingDataset:
  """Loads `path` with the reader of `format` (one of `FORMATS`).

  kwargs go to the reader, e.g. ``split='dev'`` for 'beir'.
  """
  if format not in _LOADERS:
    raise ValueError(f'unknown dataset format {format!r}; known formats: '
                     f'{", ".join(FORMATS)}')
  if kwargs.get('official_splits') and format not in OFFICIAL_SPLIT_FORMATS:
    raise ValueError(f"format {format!r} has no official splits (splits.source: official "
                     f"works with {', '.join(OFFICIAL_SPLIT_FORMATS)}); use splits.source: seeded")
  return _LOADERS[format](path, **kwargs)
