"""The report's plot: where the kept and the filtered pairs sit.

A histogram of teacher scores and one of list confidence, for pseudo-labelled
pairs kept, pseudo-labelled pairs filtered, and labelled pairs (always kept).
It makes a badly chosen `min_confidence` or top/bottom-k visible at a
glance. The data is a bounded sample drawn in the pipeline, so the plot costs
the same for a thousand pairs or a billion.
"""

import io
from typing import Dict, List, Sequence

import matplotlib
import numpy as np

matplotlib.use('Agg')  # headless: workers and CI have no display
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position

STATUS_ORDER = ('kept', 'filtered', 'labelled')
COLOURS = {'kept': 'tab:green', 'filtered': 'tab:red', 'labelled': 'tab:blue'}


def plot_png(sample: Dict[str, List[Sequence[float]]], title: str) -> bytes:
  """A PNG with score and confidence histograms per status."""
  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  statuses = [s for s in STATUS_ORDER if sample.get(s)] + sorted(
      s for s in sample if s not in STATUS_ORDER and sample[s])
  for column, (ax, label) in enumerate(zip(axes, ('teacher score', 'list confidence'))):
    everything = [row[column] for status in statuses for row in sample[status]]
    bins = np.histogram_bin_edges(everything, bins=30) if everything else 30
    for status in statuses:
      values = [row[column] for row in sample[status]]
      ax.hist(values, bins=bins, alpha=0.5, label=f'{status} (n={len(values)})',
              color=COLOURS.get(status))
    ax.set_xlabel(label)
    ax.set_ylabel('pairs (sample)')
    if statuses:
      ax.legend()
    else:
      ax.text(0.5, 0.5, 'no scored pairs', ha='center', va='center', transform=ax.transAxes)
  fig.suptitle(title)
  fig.tight_layout()
  buffer = io.BytesIO()
  fig.savefig(buffer, format='png', dpi=80)
  plt.close(fig)
  return buffer.getvalue()
