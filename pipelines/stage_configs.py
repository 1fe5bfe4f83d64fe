"""The pseudo-labellers' configs as the pipeline runs them (no TFX import).

`teacher_prime.pseudo_label` and `student.transfer` are completed here with
what the pipeline decides (teacher role, embeddings, splits, the first
stage's K), for pipeline.py and for `ssd validate` alike, so validation
judges the config that will run.
"""

from typing import Any, Dict

from components.pseudo_labeler import config as pl_config
from runconfig import config as C


def teacher_prime_labelling(cfg: C.PipelineConfig, teacher_role: str) -> Dict[str, Any]:
  """PseudoLabelConfig fields of a T' round's labeller."""
  tp = cfg.teacher_prime
  return pl_config.stage_config(
      tp.pseudo_label, teacher_role=teacher_role,
      emit_embeddings=C.uses_teacher_embeddings(tp.objective),
      calibration_split=bool(cfg.splits.calibration_queries),
      candidates_k=cfg.splits.candidates_k)


def transfer_labelling(cfg: C.PipelineConfig, teacher_role: str) -> Dict[str, Any]:
  """PseudoLabelConfig fields of the transfer labeller. The calibration split
  is scored too (never trained on), so the student trainer can fit its
  hybrid weight there."""
  st = cfg.student
  return pl_config.stage_config(
      st.transfer, teacher_role=teacher_role,
      emit_embeddings=C.uses_teacher_embeddings(st.objective),
      calibration_split=bool(cfg.splits.calibration_queries),
      candidates_k=cfg.splits.candidates_k, score_calibration=True)
