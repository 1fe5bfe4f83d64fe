"""The bi-encoder's joins: embeddings back to the pairs that need them.

ScoreBiEncoder (teacher.py) keys pairs and embeddings by a hash of the text
(common.text_key) and CoGroupByKeys them, first on the document, then on
the query; these functions turn each key's group into joined pairs, or into
`scoring_error` dead letters when the teacher could not embed the text.
The query join also forms the score_embeddings batches: one query's rows.
"""

import apache_beam as beam

from components.pseudo_labeler import spec as S
from components.pseudo_labeler.common import DEAD_LETTER
from components.pseudo_labeler.common import EMB
from components.pseudo_labeler.common import inc
from components.pseudo_labeler.common import pair_dead_letter
from components.pseudo_labeler.common import PAIRS
from components.pseudo_labeler.common import SPLIT
from components.pseudo_labeler.common import text_key
from rankdata import features as F


def attach_doc_embedding(element):
  """CoGroupByKey on the doc text: (doc key, {pairs, emb}) -> (query key, (pair, d_emb))."""
  _, grouped = element
  found = list(grouped[EMB])
  for pair in grouped[PAIRS]:
    if not found:
      inc(pair[SPLIT], S.dead_letter_name(S.DEAD_SCORING_ERROR))
      yield beam.pvalue.TaggedOutput(DEAD_LETTER, pair_dead_letter(
          S.DEAD_SCORING_ERROR, pair, 'the teacher could not embed the document'))
    else:
      yield text_key(pair[F.QUERY]), (pair, found[0])


# Joined rows per score_embeddings call (one query's candidates, cut).
SCORE_ROWS = 256


def _doc_order(row) -> tuple:
  pair = row[0]
  return (text_key(pair[F.DOC]), pair[SPLIT], str(pair[F.QUERY_ID]), str(pair[F.DOC_ID]))


def attach_query_embedding(element):
  """(query key, {pairs: (pair, d_emb), emb}) -> lists of (pair, q_emb, d_emb).

  A list holds one query's rows, sorted by document and cut into at most
  SCORE_ROWS: the batch each score is computed in is fixed by the data (a
  score's last bits depend on its batch; see canonical.py).
  """
  _, grouped = element
  found = list(grouped[EMB])
  rows = []
  for pair, doc_emb in grouped[PAIRS]:
    if not found:
      inc(pair[SPLIT], S.dead_letter_name(S.DEAD_SCORING_ERROR))
      yield beam.pvalue.TaggedOutput(DEAD_LETTER, pair_dead_letter(
          S.DEAD_SCORING_ERROR, pair, 'the teacher could not embed the query'))
    else:
      rows.append((pair, found[0], doc_emb))
  rows.sort(key=_doc_order)
  for start in range(0, len(rows), SCORE_ROWS):
    yield rows[start:start + SCORE_ROWS]
