"""Builds the ranking examples of each split; the ingestion component calls it.

What goes where (all decided here, recorded in `SplitResult.params`):

* Query assignment (`assign_query_splits`): source query ids are sorted
  (numbers numerically, then other ids as strings), the queries with at least
  one relevant judgement (gain >= 1) are shuffled with
  ``numpy.random.default_rng(seed)`` and cut in the order test, dev, train, so
  the test set does not move when the train/dev sizes change. Labelled queries
  left over, and queries without any relevant judgement, go to unlabelled
  (their labels are hidden). With ``source: official`` the dataset's own
  train/dev/test are used instead (test always whole; train/dev optionally
  capped by a seeded sample, the rest unlabelled). A dataset without an
  official dev split (BEIR's commonest shape: qrels/train.tsv + test.tsv)
  gets one with ``dev_from_train``: `dev_queries` official train queries,
  a seeded sample, become dev (logged); test queries never do.
  Then, from train only: `calibration_queries` go to the calibration split
  (held out of training and of every decision; post-training fits use it),
  and the label budget `labelled_fraction` keeps the labels of a seeded,
  nested subset of the remaining train queries; the others become unlabelled
  queries with hidden labels (``hidden_label_queries``).
* First stage: the dataset's own run when it has one, else BM25 top
  `candidates_k` (bm25s). Ranks are 1-based, in `metrics.rank_order`.
* train / dev / calibration lists: top-K candidates, plus (if `include_judged_in_train`)
  every judged document of the query not among them. Labels are the qrels
  gains, 0.0 for unjudged candidates. Pairs in `excluded_judgements`
  (Cranfield code -1) are left out of the lists and counted
  (``excluded_pairs``), so pairs + excluded_pairs = |candidates U judged|
  (``added_judged_pairs`` counts the judged documents kept from outside the
  candidates). A judged document added from outside the top-K gets
  its true BM25 rank and score when BM25 is the first stage; with a run file
  it gets rank 0 (= "not retrieved") and the lowest candidate score of the
  query (0.0 if the query has no candidates).
* test: top-K candidates only, label = qrels gain (0 for unjudged and for
  excluded pairs). `qrels['test']` holds the FULL qrels of the test queries,
  so the ideal DCG counts relevant documents the first stage missed.
* unlabelled: top-K candidates with label None, for labelled-source queries
  not assigned above, for queries without relevant judgements, and for title
  queries: each document with a non-empty title gives a query
  ``title:<doc id>`` whose text is the title, retrieved with BM25 (top
  `title_candidates_k`); `max_title_queries` caps them by a seeded sample.
  A title query's own document normally comes first; it is kept (it is a
  plausible positive for the teacher to label).
"""

import dataclasses
from typing import Dict, Iterable, List, Optional, Tuple

from absl import logging
import numpy as np

from rankdata import bm25 as bm25_lib
from rankdata import features
from rankdata import types

TITLE_QUERY_PREFIX = 'title:'
# Separate random stream for the title-query sample, so that capping titles
# never changes the query split.
_TITLE_STREAM = 1

# Splits whose lists are training material (train_candidates_k applies).
TRAINING_SPLITS = (features.SPLIT_TRAIN, features.SPLIT_UNLABELLED)
STAT_KEYS = (
    'queries', 'queries_without_pairs', 'pairs', 'labelled_pairs',
    'judged_pairs', 'positive_pairs', 'added_judged_pairs', 'excluded_pairs',
    'empty_docs', 'empty_queries', 'title_queries', 'hidden_label_queries',
    'no_relevant_queries')


SOURCE_SEEDED = 'seeded'      # split the judged queries by seed (Cranfield)
SOURCE_OFFICIAL = 'official'  # the dataset's own train/dev/test (BEIR qrels files)
SOURCES = (SOURCE_SEEDED, SOURCE_OFFICIAL)
# Independent random streams, so that one knob never moves another's queries.
_CAP_STREAM = 2
_CALIBRATION_STREAM = 3
_BUDGET_STREAM = 4
_DEV_FROM_TRAIN_STREAM = 5


@dataclasses.dataclass(frozen=True)
class SplitConfig:
  """Everything that determines the examples; see the module docstring.

  This is THE split schema: the pipeline config's `splits:` section is parsed
  straight into it (runconfig/config.py), so a default lives only here.
  """
  seed: int = 42
  # seeded: train/dev/test_queries are counts cut from the judged queries.
  # official: the dataset's own splits; train/dev_queries cap them (seeded
  # sample, null = all), the official test split is always used whole.
  source: str = SOURCE_SEEDED
  train_queries: Optional[int] = 50
  dev_queries: Optional[int] = 25
  test_queries: Optional[int] = 75
  # official only, for a dataset without a dev split: carve `dev_queries`
  # seeded queries out of the official train split into dev (test is never
  # touched). A dataset that has a dev split is refused with it set.
  dev_from_train: bool = False
  # Labelled queries cut from train (seeded) into the calibration split:
  # never trained on, never used for decisions; post-training fits use it.
  calibration_queries: int = 0
  # Label budget: keep the labels of this seeded fraction of the train
  # queries (nested: a smaller fraction is a subset of a larger one); the
  # other train queries become unlabelled queries with hidden labels.
  labelled_fraction: float = 1.0
  candidates_k: int = 30
  # First-stage candidates per training query, labelled (train) or not
  # (unlabelled; title queries have title_candidates_k), default
  # candidates_k: training lists can be shorter than the lists evaluation
  # reranks, which bounds the CPU cost of training and of pseudo-labelling
  # on collections reranked at depth 100.
  train_candidates_k: Optional[int] = None
  include_judged_in_train: bool = True
  title_queries: bool = True
  max_title_queries: Optional[int] = None
  title_candidates_k: Optional[int] = None
  bm25: bm25_lib.BM25Params = dataclasses.field(
      default_factory=bm25_lib.BM25Params)

  def __post_init__(self):
    if self.source not in SOURCES:
      raise ValueError(f'source must be one of {SOURCES}, got {self.source!r}')
    for name in ('train_queries', 'dev_queries', 'test_queries'):
      value = getattr(self, name)
      if value is None and self.source == SOURCE_SEEDED:
        raise ValueError(f'{name} must be set when source is {SOURCE_SEEDED!r}')
      if value is not None and value < 0:
        raise ValueError(f'{name} must be >= 0, got {value}')
    if self.dev_from_train and (self.source != SOURCE_OFFICIAL or not self.dev_queries):
      raise ValueError(f'dev_from_train needs source {SOURCE_OFFICIAL!r} and dev_queries >= 1 '
                       '(the number of train queries that become dev)')
    if self.calibration_queries < 0:
      raise ValueError(f'calibration_queries must be >= 0, got {self.calibration_queries}')
    if not 0.0 < self.labelled_fraction <= 1.0:
      raise ValueError(f'labelled_fraction must be in (0, 1], got {self.labelled_fraction}')
    if self.candidates_k < 1:
      raise ValueError('candidates_k must be >= 1')
    if self.train_candidates_k is not None and not 1 <= self.train_candidates_k <= self.candidates_k:
      raise ValueError(f'train_candidates_k must be in [1, candidates_k={self.candidates_k}], '
                       f'got {self.train_candidates_k}')
    if self.title_candidates_k is not None and self.title_candidates_k < 1:
      raise ValueError('title_candidates_k must be >= 1')
    if self.max_title_queries is not None and self.max_title_queries < 0:
      raise ValueError('max_title_queries must be >= 0')

  @property
  def title_k(self) -> int:
    return self.title_candidates_k or self.candidates_k

  def asdict(self) -> Dict[str, object]:
    return dataclasses.asdict(self)


@dataclasses.dataclass
class SplitResult:
  """Examples per split plus what is needed to evaluate and record them.

  Attributes:
    examples: split -> list of dicts keyed by the `features` names.
    queries: split -> query ids (sorted), including queries without pairs.
    qrels: 'dev' and 'test' -> full qrels of their queries.
    stats: split -> counters (`STAT_KEYS`).
    params: everything that determined the split, JSON-serialisable.
  """
  examples: Dict[str, List[Dict[str, object]]]
  queries: Dict[str, List[str]]
  qrels: Dict[str, types.Qrels]
  stats: Dict[str, Dict[str, int]]
  params: Dict[str, object]


def id_sort_key(item_id: str) -> Tuple[int, int, str]:
  """Numbers in numeric order first, then other ids in string order."""
  if item_id.isascii() and item_id.isdigit():
    return (0, int(item_id), item_id)
  return (1, 0, item_id)


def _seeded_sample(ids: List[str], n: Optional[int], seed: int, stream: int
                   ) -> Tuple[List[str], List[str]]:
  """(kept, rest): a seeded sample of n of `ids` (all when n is None)."""
  if n is None or n >= len(ids):
    return list(ids), []
  order = np.random.default_rng([seed, stream]).permutation(len(ids))
  kept = {ids[i] for i in order[:n]}
  return [q for q in ids if q in kept], [q for q in ids if q not in kept]


def official_splits_problem(present: Iterable[str], cfg: SplitConfig) -> Optional[str]:
  """Why a dataset whose official splits are `present` cannot give a run its
  test, train and dev queries under `cfg` (None: it can).

  One rule for both callers: ingestion passes the splits that hold judged
  queries, `ssd validate` the split files the dataset directory lists.
  """
  present = set(present)
  have = ', '.join(s for s in (features.SPLIT_TRAIN, features.SPLIT_DEV, features.SPLIT_TEST)
                   if s in present) or 'none'
  if features.SPLIT_TEST not in present:
    return f'no official test split (official splits: {have})'
  if features.SPLIT_TRAIN not in present:
    return (f'only the official test split (official splits: {have}): nothing to train on, '
            'and dev cannot come from test; use splits.source: seeded to cut seeded '
            'train/dev/test splits from the judged queries (test is then a seeded sample, '
            'not the official one)')
  if features.SPLIT_DEV not in present and not cfg.dev_from_train and cfg.dev_queries != 0:
    return (f'no official dev split (official splits: {have}), and models are selected on '
            'dev; set splits.dev_from_train: true to carve splits.dev_queries seeded queries '
            'out of the official train split into dev (never test)')
  if features.SPLIT_DEV in present and cfg.dev_from_train:
    return (f'splits.dev_from_train is set but the dataset has an official dev split '
            f'(official splits: {have}); remove splits.dev_from_train to use it')
  return None


def _dev_from_train(train: List[str], cfg: SplitConfig) -> Tuple[List[str], List[str]]:
  """(dev, train): `cfg.dev_queries` seeded official train queries become dev."""
  if cfg.dev_queries >= len(train):
    raise ValueError(f'splits.dev_from_train: dev_queries={cfg.dev_queries} leaves no train '
                     f'query (the official train split has {len(train)})')
  dev, rest = _seeded_sample(train, cfg.dev_queries, cfg.seed, _DEV_FROM_TRAIN_STREAM)
  logging.info('splits.dev_from_train: the dataset has no dev split; %d of its %d official '
               'train queries became dev (seed %d); %d stay train, test is untouched',
               len(dev), len(train), cfg.seed, len(rest))
  return dev, rest


def assign_query_splits(query_ids: Iterable[str], cfg: SplitConfig,
                        labelled: Optional[Iterable[str]] = None,
                        official: Optional[Dict[str, str]] = None
                        ) -> Dict[str, List[str]]:
  """Assigns each query to exactly one split (see module docstring).

  Args:
    query_ids: all source query ids.
    cfg: counts and seed.
    labelled: ids with >= 1 relevant judgement (None: all of them); only these
      can go to train, dev, calibration or test.
    official: query id -> the dataset's own split ('train'|'dev'|'test');
      required when cfg.source is 'official'.

  Returns:
    split name -> sorted query ids, for every name in `features.ALL_SPLITS`.
  """
  ids = sorted(set(query_ids), key=id_sort_key)
  labelled_set = set(ids) if labelled is None else set(labelled)
  unknown = labelled_set.difference(ids)
  if unknown:
    raise ValueError(f'labelled ids not among the query ids: '
                     f'{sorted(unknown)[:5]}')
  pool = [q for q in ids if q in labelled_set]
  out: Dict[str, List[str]] = {s: [] for s in features.ALL_SPLITS}
  if cfg.source == SOURCE_OFFICIAL:
    if not official:
      raise ValueError("splits.source is 'official' but the dataset has no official "
                       'splits (BEIR: qrels/train.tsv, dev.tsv, test.tsv)')
    by_split = {s: [q for q in pool if official.get(q) == s]
                for s in (features.SPLIT_TRAIN, features.SPLIT_DEV, features.SPLIT_TEST)}
    problem = official_splits_problem([s for s, qs in by_split.items() if qs], cfg)
    if problem:
      raise ValueError(problem)
    if cfg.dev_from_train:
      by_split[features.SPLIT_DEV], by_split[features.SPLIT_TRAIN] = _dev_from_train(
          by_split[features.SPLIT_TRAIN], cfg)
    out[features.SPLIT_TEST] = by_split[features.SPLIT_TEST]
    spare: List[str] = []
    for split, cap in ((features.SPLIT_DEV, cfg.dev_queries),
                       (features.SPLIT_TRAIN, cfg.train_queries)):
      out[split], rest = _seeded_sample(by_split[split], cap, cfg.seed, _CAP_STREAM)
      spare += rest
    # Judged queries outside the official splits, and capped-off ones, are
    # unlabelled (labels hidden); never test.
    spare += [q for q in pool if official.get(q) not in by_split]
  else:
    counts = [(features.SPLIT_TEST, cfg.test_queries),
              (features.SPLIT_DEV, cfg.dev_queries),
              (features.SPLIT_TRAIN, cfg.train_queries)]
    wanted = sum(n for _, n in counts)
    if wanted > len(pool):
      raise ValueError(
          f'requested {cfg.train_queries} train + {cfg.dev_queries} dev + '
          f'{cfg.test_queries} test = {wanted} queries, but only {len(pool)} of '
          f'{len(ids)} queries have a relevant judgement')
    shuffled = [pool[i] for i in np.random.default_rng(cfg.seed).permutation(
        len(pool))]
    start = 0
    for split, n in counts:
      out[split] = shuffled[start:start + n]
      start += n
    spare = shuffled[start:]
  # Calibration, then the label budget, are both cut from train.
  train = sorted(out[features.SPLIT_TRAIN], key=id_sort_key)
  if cfg.calibration_queries:
    if cfg.calibration_queries >= len(train):
      raise ValueError(f'calibration_queries={cfg.calibration_queries} leaves no train '
                       f'query (train has {len(train)})')
    calibration, train = _seeded_sample(train, cfg.calibration_queries, cfg.seed,
                                        _CALIBRATION_STREAM)
    # _seeded_sample keeps n; here the n go to calibration, the rest stay.
    out[features.SPLIT_CALIBRATION] = calibration
  if cfg.labelled_fraction < 1.0:
    keep = max(1, int(round(cfg.labelled_fraction * len(train))))
    train, hidden = _seeded_sample(train, keep, cfg.seed, _BUDGET_STREAM)
    spare += hidden
  out[features.SPLIT_TRAIN] = train
  out[features.SPLIT_UNLABELLED] = spare + [q for q in ids if q not in labelled_set]
  return {s: sorted(out[s], key=id_sort_key) for s in features.ALL_SPLITS}


def title_queries(ds: types.RankingDataset, cfg: SplitConfig
                  ) -> Dict[str, types.Query]:
  """Synthetic queries ``title:<doc id>`` from non-empty titles (seeded cap)."""
  if not cfg.title_queries:
    return {}
  doc_ids = sorted((d.id for d in ds.documents.values() if d.title.strip()),
                   key=id_sort_key)
  if cfg.max_title_queries is not None and cfg.max_title_queries < len(doc_ids):
    rng = np.random.default_rng([cfg.seed, _TITLE_STREAM])
    picked = rng.choice(len(doc_ids), size=cfg.max_title_queries,
                        replace=False)
    doc_ids = [doc_ids[i] for i in sorted(picked)]
  out = {}
  for doc_id in doc_ids:
    query_id = TITLE_QUERY_PREFIX + doc_id
    if query_id in ds.queries:
      raise ValueError(f'title query id {query_id!r} collides with a query id '
                       f'of {ds.name}')
    out[query_id] = types.Query(id=query_id,
                                text=ds.documents[doc_id].title.strip())
  return out


class _Builder:
  """Holds the state shared while building the lists of all splits."""

  def __init__(self, ds: types.RankingDataset, cfg: SplitConfig):
    self.ds, self.cfg = ds, cfg
    self._index: Optional[bm25_lib.BM25Index] = None
    self._doc_text: Dict[str, str] = {}
    self.first_stage = 'run' if ds.run is not None else 'bm25'

  @property
  def index(self) -> bm25_lib.BM25Index:
    if self._index is None:
      self._index = bm25_lib.BM25Index(list(self.ds.documents.values()),
                                       self.cfg.bm25)
    return self._index

  def doc_text(self, doc_id: str) -> str:
    if doc_id not in self._doc_text:
      self._doc_text[doc_id] = self.ds.documents[doc_id].full_text
    return self._doc_text[doc_id]

  def candidates(self, queries: Dict[str, types.Query], k: int,
                 use_run: bool) -> types.Run:
    if use_run:
      return {q: list(self.ds.run.get(q, []))[:k] for q in queries}
    return bm25_lib.bm25_run(self.index, queries, k)

  def added_judged(self, query: types.Query, ranked: bm25_lib.Ranking,
                   doc_ids: List[str]) -> List[Tuple[str, float, int]]:
    """(doc, score, rank) of judged docs outside the candidates (see module)."""
    if not doc_ids:
      return []
    if self.first_stage == 'bm25':
      ranks = self.index.ranks_of(query.text, doc_ids)
      return sorted(((d, s, r) for d, (r, s) in ranks.items()),
                    key=lambda x: x[2])
    lowest = min((s for _, s in ranked), default=0.0)
    return [(d, float(lowest), 0) for d in sorted(doc_ids, key=id_sort_key)]

  def example(self, query: types.Query, doc_id: str, label: Optional[float],
              score: float, rank: int) -> Dict[str, object]:
    return {
        features.QUERY_ID: query.id,
        features.DOC_ID: doc_id,
        features.QUERY: query.text,
        features.DOC: self.doc_text(doc_id),
        features.LABEL: label,
        features.FIRST_STAGE_SCORE: float(score),
        features.FIRST_STAGE_RANK: int(rank),
    }

  def query_list(self, split: str, query: types.Query,
                 ranked: bm25_lib.Ranking, stats: Dict[str, int]
                 ) -> List[Dict[str, object]]:
    """The examples of one query in `split`; updates `stats`."""
    judged = self.ds.qrels.get(query.id, {})
    items = [(d, s, r) for r, (d, s) in enumerate(ranked, start=1)]
    labelled_split = split in features.LABELLED_SPLITS
    if labelled_split and self.cfg.include_judged_in_train:
      seen = {d for d, _ in ranked}
      items += self.added_judged(query, ranked,
                                 [d for d in judged if d not in seen])
    out = []
    for position, (doc_id, score, rank) in enumerate(items):
      if labelled_split and (query.id, doc_id) in self.ds.excluded_judgements:
        stats['excluded_pairs'] += 1
        continue
      stats['added_judged_pairs'] += position >= len(ranked)
      if split == features.SPLIT_UNLABELLED:
        label = None
      else:
        label = float(judged.get(doc_id, 0))
      out.append(self.example(query, doc_id, label, score, rank))
      stats['labelled_pairs'] += label is not None
      stats['judged_pairs'] += doc_id in judged
      stats['positive_pairs'] += judged.get(doc_id, 0) >= 1
      stats['empty_docs'] += not self.doc_text(doc_id)
    stats['pairs'] += len(out)
    stats['queries_without_pairs'] += not out
    return out


def build_examples(ds: types.RankingDataset, cfg: SplitConfig) -> SplitResult:
  """Assigns queries to splits and builds every split's example lists."""
  builder = _Builder(ds, cfg)
  relevant = set(ds.relevant_query_ids())
  assigned = assign_query_splits(ds.queries, cfg, labelled=relevant,
                                 official=ds.query_splits)
  titles = title_queries(ds, cfg)
  candidates = builder.candidates(ds.queries, cfg.candidates_k,
                                  use_run=builder.first_stage == 'run')
  candidates.update(builder.candidates(titles, cfg.title_k, use_run=False))
  queries = dict(ds.queries, **titles)
  assigned[features.SPLIT_UNLABELLED] += list(titles)

  examples, stats = {}, {}
  for split in features.ALL_SPLITS:
    counts = dict.fromkeys(STAT_KEYS, 0)
    examples[split] = []
    for query_id in assigned[split]:
      query = queries[query_id]
      counts['queries'] += 1
      counts['empty_queries'] += query.is_empty
      if query_id in titles:
        counts['title_queries'] += 1
      elif split == features.SPLIT_UNLABELLED:
        if query_id in relevant:
          counts['hidden_label_queries'] += 1
        else:
          counts['no_relevant_queries'] += 1
      ranked = candidates[query_id]
      if (split in TRAINING_SPLITS and cfg.train_candidates_k and query_id not in titles):
        ranked = ranked[:cfg.train_candidates_k]
      examples[split] += builder.query_list(split, query, ranked, counts)
    stats[split] = counts

  qrels = {s: {q: dict(ds.qrels.get(q, {})) for q in assigned[s]}
           for s in (features.SPLIT_DEV, features.SPLIT_TEST, features.SPLIT_CALIBRATION)}
  params = {
      'dataset': ds.name,
      'first_stage': builder.first_stage,
      'split_config': cfg.asdict(),
      'source_queries': len(ds.queries),
      'relevant_queries': len(relevant),
      'title_queries': len(titles),
      'documents': len(ds.documents),
  }
  for split in features.ALL_SPLITS:
    logging.info('split %s: %s', split, stats[split])
  return SplitResult(examples=examples, queries=assigned, qrels=qrels,
                     stats=stats, params=params)
