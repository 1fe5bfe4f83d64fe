"""Aggregates over seeds and paired significance tests over queries.

Pure numpy, so each number can be checked by hand in tests.

The paired test is a two-sided randomisation (sign-flip) test on per-query
differences, the test IR papers use for system comparisons (Smucker, Allan
and Carterette, CIKM 2007): under the null hypothesis each query's difference
is as likely to have either sign. With several seeds, each query's value is
first averaged over the seeds, so a query counts once.
"""

from typing import Dict, Mapping, Sequence

import numpy as np

PERMUTATIONS = 10000


def mean_std(values: Sequence[float]) -> Dict[str, float]:
  """Mean and sample standard deviation (ddof=1; 0 for one value)."""
  a = np.asarray(values, np.float64)
  return {'mean': float(a.mean()), 'std': float(a.std(ddof=1)) if a.size > 1 else 0.0,
          'n': int(a.size)}


def average_over_seeds(per_seed: Sequence[Mapping[str, float]]) -> Dict[str, float]:
  """query -> mean over seeds, for the queries every seed has."""
  common = set(per_seed[0])
  for run in per_seed[1:]:
    common &= set(run)
  return {q: float(np.mean([run[q] for run in per_seed])) for q in sorted(common)}


def paired_randomization_test(a: Mapping[str, float], b: Mapping[str, float],
                              permutations: int = PERMUTATIONS, seed: int = 0
                              ) -> Dict[str, float]:
  """Two-sided sign-flip test of mean(a - b) over the queries both have.

  Returns the mean difference, the number of queries and the p-value
  (with the +1 correction, so p is never 0).
  """
  queries = sorted(set(a) & set(b))
  if not queries:
    raise ValueError('no common query to compare')
  d = np.array([a[q] - b[q] for q in queries], np.float64)
  observed = abs(d.mean())
  rng = np.random.default_rng(seed)
  signs = rng.choice([-1.0, 1.0], size=(permutations, d.size))
  null = np.abs((signs * d).mean(axis=1))
  p = (1 + int(np.sum(null >= observed - 1e-12))) / (permutations + 1)
  return {'mean_difference': float(d.mean()), 'queries': int(d.size), 'p_value': float(p)}
