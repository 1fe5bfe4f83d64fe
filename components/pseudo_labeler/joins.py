"""The bi-encoder's joins: embeddings back to the pairs that need them.

ScoreBiEncoder (teacher.py) keys pairs and embeddings by a hash of the text
(common.text_key) and CoGroupByKeys them, first on the document, then on
the query; these functions turn each key's group into joined pairs, or into
`scoring_error` dead letters when the teacher could not embed the text.
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


def attach_query_embedding(element):
  """(query key, {pairs: (pair, d_emb), emb}) -> (pair, q_emb, d_emb)."""
  _, grouped = element
  found = list(grouped[EMB])
  for pair, doc_emb in grouped[PAIRS]:
    if not found:
      inc(pair[SPLIT], S.dead_letter_name(S.DEAD_SCORING_ERROR))
      yield beam.pvalue.TaggedOutput(DEAD_LETTER, pair_dead_letter(
          S.DEAD_SCORING_ERROR, pair, 'the teacher could not embed the query'))
    else:
      yield pair, found[0], doc_emb
