"""Which splits a run needs, why, and the error when one came out empty.

Shared by ingestion (train and dev, needed in every mode) and the SplitsGate
(unlabelled, needed by semi-supervised runs), so the message is the same.
"""

from typing import Dict, List

from rankdata import features as F


class EmptySplitError(ValueError):
  """A split the rest of the pipeline needs came out empty."""


# Why each split must not be empty, and what to change when it is.
REQUIRED_WHY = {
    F.SPLIT_TRAIN: ('the teacher trains on it', 'raise splits.train_queries'),
    F.SPLIT_DEV: ('models are selected on it', 'raise splits.dev_queries'),
    F.SPLIT_UNLABELLED: (
        'semi_supervised is on and the pseudo-labeller labels it; without it SSD '
        'would quietly become supervised training',
        'set data.unlabelled_pairs, turn on splits.title_queries, leave labelled '
        'queries over (lower splits.*_queries), or set semi_supervised: false'),
}


def check(examples: Dict[str, int], queries: Dict[str, int], required: List[str],
          data_path: str) -> None:
  """Raises EmptySplitError naming every required split with no examples.

  Args:
    examples: split -> examples written (a missing split has none).
    queries: split -> queries assigned to it (for the message).
    required: the splits that must not be empty.
    data_path: the dataset, named in the message.
  """
  problems = []
  for split in required:
    if not examples.get(split):
      why, fix = REQUIRED_WHY.get(split, ('the pipeline reads it', 'check splits.*'))
      problems.append(f'split {split!r} has no examples ({queries.get(split, 0)} queries), but '
                      f'{why}; to fix: {fix}')
  if problems:
    raise EmptySplitError(f'{data_path}: ' + ' | '.join(problems))
