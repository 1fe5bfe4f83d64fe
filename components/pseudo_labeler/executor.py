"""PseudoLabeler executor: wire the Beam pipeline, then record what it did.

The per-pair work runs in Beam (parse.py, teacher.py, labelling.py,
outputs.py; common.py has the module map), built with
`self._make_beam_pipeline()` so the pipeline's `beam_pipeline_args` (runner, `--direct_num_workers`,
`--direct_running_mode`, ...) apply. The driver only fingerprints the
teacher, reads back the small files the pipeline wrote (exact counts, a
sample for the plot), checks that every input pair is accounted for, and
records counts and teacher identity on both output artifacts.
"""

import hashlib
import json
import os
import time
from typing import Any, Dict, List

from absl import logging
import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
import tensorflow as tf
from tfx import types
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import io_utils
from tfx.utils import path_utils

from components.common import example_io
from components.common import teacher_embeddings as TE
from components.pseudo_labeler import common as K
from components.pseudo_labeler import labelling as L
from components.pseudo_labeler import outputs as O
from components.pseudo_labeler import parse as P
from components.pseudo_labeler import report as R
from components.pseudo_labeler import spec as S
from components.pseudo_labeler import teacher as T
from rankdata import features as F
from rankers import export as rexport
from runconfig import config as C

# Config of the exported ranker (rankers/export.py writes it).
_RANKER_CONFIG = os.path.join(rexport.ASSETS_EXTRA, rexport.CONFIG_FILE)


def teacher_fingerprint(model_dir: str, length: int = 16) -> str:
  """sha256 over saved_model.pb and the variables files (names and bytes).

  Identifies the teacher's content independently of where it is stored or
  of its MLMD id; assets (vocabulary) are covered through saved_model.pb's
  asset references and the variables hold every weight.
  """
  h = hashlib.sha256()
  paths = [os.path.join(model_dir, 'saved_model.pb')]
  variables_dir = os.path.join(model_dir, 'variables')
  if tf.io.gfile.isdir(variables_dir):
    paths += [os.path.join(variables_dir, name)
              for name in sorted(tf.io.gfile.listdir(variables_dir))]
  for path in paths:
    if tf.io.gfile.isdir(path):
      continue
    h.update(os.path.relpath(path, model_dir).encode('utf-8') + b'\0')
    with tf.io.gfile.GFile(path, 'rb') as f:
      while True:
        chunk = f.read(1 << 20)
        if not chunk:
          break
        h.update(chunk)
  return h.hexdigest()[:length]


def is_bi_encoder(model_dir: str) -> bool:
  """From the exported ranker config; falls back to the model's signatures."""
  path = os.path.join(model_dir, _RANKER_CONFIG)
  if tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path) as f:
      return json.load(f).get('architecture') == 'bi_encoder'
  return T.load_teacher(model_dir).is_bi_encoder


def beam_counters(result) -> Dict[str, int]:
  """Counters of the pseudo_labeler namespace, summed over steps ({} if the
  runner does not report metrics)."""
  try:
    found = result.metrics().query(MetricsFilter().with_namespace(K.NAMESPACE))
  except Exception as e:  # pylint: disable=broad-except
    logging.warning('Beam metrics unavailable on this runner: %s', e)
    return {}
  out: Dict[str, int] = {}
  for counter in found.get('counters', []):
    value = counter.committed if counter.committed is not None else counter.attempted
    out[counter.key.metric.name] = out.get(counter.key.metric.name, 0) + int(value or 0)
  return out


def _read_json(path: str) -> Any:
  with tf.io.gfile.GFile(path) as f:
    return json.loads(f.read())


def set_count_properties(artifact: types.Artifact, counts: Dict[str, Dict[str, int]]) -> None:
  for split, values in counts.items():
    for name, n in values.items():
      artifact.set_int_custom_property(f'{split}_{name}', int(n))


def check_counts(counts: Dict[str, Dict[str, int]], report_uri: str) -> None:
  """Raises if a pair is unaccounted for, or if the teacher scored nothing.

  One pair the teacher fails on is a dead letter; a teacher that fails on
  every pair is broken, and a run that "succeeds" with no output would hide it.
  """
  for split, values in counts.items():
    lost = O.unaccounted(values)
    if lost:
      raise RuntimeError(f'{split}: {lost} pairs neither kept, filtered nor dead-lettered: '
                         f'{values}')
  total = counts[S.TOTAL]
  scoring_errors = total[S.dead_letter_name(S.DEAD_SCORING_ERROR)]
  scored = total[S.KEPT] + sum(total[S.filtered_name(r)] for r in S.FILTER_REASONS)
  if scoring_errors and not scored:
    raise RuntimeError(f'the teacher failed on all {scoring_errors} scorable pairs; see '
                       f'{report_uri}/{S.DEAD_LETTER_PREFIX}-*{S.DEAD_LETTER_SUFFIX}')


class TooManyDeadLettersError(RuntimeError):
  """More pairs were dead-lettered than `max_dead_letter_fraction` allows."""


# How many failing records the error message names.
MAX_NAMED_FAILURES = 5


def first_dead_letters(report_uri: str, n: int = MAX_NAMED_FAILURES) -> List[str]:
  """'split query/doc: reason (detail)' of the first `n` dead letters, in a
  stable order (split, query id, doc id), read back from the report."""
  rows = []
  pattern = os.path.join(report_uri, f'{S.DEAD_LETTER_PREFIX}*{S.DEAD_LETTER_SUFFIX}')
  for path in sorted(tf.io.gfile.glob(pattern)):
    with tf.io.gfile.GFile(path) as f:
      for line in f:
        if line.strip():
          rows.append(json.loads(line))
  def key(d):
    r = d.get('record', {})
    return (d.get('split', ''), str(r.get('query_id', '')), str(r.get('doc_id', '')))
  out = []
  for d in sorted(rows, key=key)[:n]:
    r = d.get('record', {})
    ids = (f'{r["query_id"]}/{r["doc_id"]}' if 'query_id' in r and 'doc_id' in r
           else f'{r.get("raw_bytes", "?")}-byte record')
    detail = str(r.get('detail', ''))[:120]
    out.append(f'{d.get("split")} {ids}: {d.get("reason")}' + (f' ({detail})' if detail else ''))
  return out


def check_dead_letter_fraction(counts: Dict[str, Dict[str, int]], max_fraction: float,
                               report_uri: str) -> None:
  """Raises TooManyDeadLettersError when dead letters exceed the tolerated share."""
  total = counts[S.TOTAL]
  dead = sum(n for k, n in total.items() if k.startswith('dead_letter_'))
  pairs_in = total[S.PAIRS_IN]
  if not pairs_in or dead / pairs_in <= max_fraction:
    return
  reasons = {k[len('dead_letter_'):]: n for k, n in total.items()
             if k.startswith('dead_letter_') and n}
  first = first_dead_letters(report_uri)
  raise TooManyDeadLettersError(
      f'{dead} of {pairs_in} pairs ({dead / pairs_in:.2%}) were dead-lettered, more than '
      f'max_dead_letter_fraction={max_fraction:g} allows; by reason: {reasons}; first: '
      f'{"; ".join(first)}. All dead letters: {report_uri}/{S.DEAD_LETTER_PREFIX}-*'
      f'{S.DEAD_LETTER_SUFFIX}. Fix the input or the teacher, or raise '
      'max_dead_letter_fraction (teacher_prime.pseudo_label / student.transfer).')


def add_embedding_outputs(texts, labelled_uri: str, report_uri: str) -> None:
  """emit_embeddings: writes the teacher's embedding of every unique text into
  the pseudo_labelled artifact, and their exact counts into the report."""
  _ = texts | 'WriteEmbeddings' >> O.WriteEmbeddings(labelled_uri)
  _ = (texts
       | 'CountTexts' >> O.CountTexts()
       | 'WriteTextCounts' >> O.WriteJson(os.path.join(report_uri, S.EMBEDDING_COUNTS_FILE)))


def read_text_counts(report_uri: str) -> Dict[str, Dict[str, int]]:
  """The embedding counts the pipeline wrote; raises unless every unique text
  was either written once or failed (and then dead-lettered its pairs)."""
  counts = O.text_counts_from_rows(_read_json(os.path.join(report_uri,
                                                           S.EMBEDDING_COUNTS_FILE)))
  for side, values in counts.items():
    if values[S.TEXTS_UNIQUE] != values[S.TEXTS_EMBEDDED] + values[S.TEXTS_FAILED]:
      raise RuntimeError(f'{side} texts: {values[S.TEXTS_UNIQUE]} unique but '
                         f'{values[S.TEXTS_EMBEDDED]} embeddings written and '
                         f'{values[S.TEXTS_FAILED]} failed')
  return counts


def set_text_count_properties(artifact: types.Artifact,
                              counts: Dict[str, Dict[str, int]]) -> None:
  artifact.set_string_custom_property(S.TEACHER_EMBEDDINGS_PROPERTY, TE.DIR)
  for side, values in counts.items():
    for name, n in values.items():
      artifact.set_int_custom_property(f'embeddings_{side}_{name}', int(n))


def discard_outputs(labelled_out: types.Artifact, split_dirs: Dict[str, str]) -> None:
  """Deletes what the pipeline wrote for the pseudo-labelled splits (and the
  teacher's embeddings), so a failed execution leaves no data that looks
  complete (TFX does not publish its artifacts; this also keeps anyone
  reading the folder from using it)."""
  embeddings_dir = TE.embeddings_dir(labelled_out.uri)
  for directory in list(split_dirs.values()) + [embeddings_dir]:
    if tf.io.gfile.exists(directory):
      tf.io.gfile.rmtree(directory)
  labelled_out.split_names = artifact_utils.encode_split_names([])


def splits_to_label(configured: List[str], examples: types.Artifact):
  """(the configured splits the input Examples have, those it lacks); raises
  when it lacks the unlabelled split or has none of them."""
  available = artifact_utils.decode_split_names(examples.split_names)
  splits = [s for s in configured if s in available]
  skipped = [s for s in configured if s not in available]
  if F.SPLIT_UNLABELLED in skipped:
    # Scoring only labelled data would quietly turn SSD into supervised training.
    raise ValueError(f'the {F.SPLIT_UNLABELLED!r} split is not in the input Examples '
                     f'{examples.uri} (has {available}); semi-supervised training needs it')
  if skipped:
    logging.warning('splits %s are not in the input Examples (has %s); skipping them',
                    skipped, available)
  if not splits:
    raise ValueError(f'none of the configured splits {configured} is in the input '
                     f'Examples {examples.uri} (has {available})')
  return splits, skipped


def checked_counts(cfg, splits: List[str], labelled_out: types.Artifact,
                   split_dirs: Dict[str, str], report_uri: str):
  """The pipeline's counts per split (and, with emit_embeddings, per text
  side), checked; on a failed check the outputs are discarded and the report
  says why before the error is raised."""
  counts = O.counts_from_rows(_read_json(os.path.join(report_uri, S.PIPELINE_COUNTS_FILE)),
                              splits)
  text_counts = None
  try:
    check_counts(counts, report_uri)
    check_dead_letter_fraction(counts, cfg.max_dead_letter_fraction, report_uri)
    if cfg.emit_embeddings:
      text_counts = read_text_counts(report_uri)
  except Exception as e:
    discard_outputs(labelled_out, split_dirs)
    io_utils.write_string_file(os.path.join(report_uri, S.COUNTS_FILE), json.dumps(
        {'failed': True, 'error': str(e), 'counts': counts}, indent=1, sort_keys=True))
    raise
  return counts, text_counts


def log_outcome(result, counts: Dict[str, Dict[str, int]], seconds: float) -> Dict[str, int]:
  """Logs what happened to the pairs (warning where Beam's metrics disagree
  with the counted outputs); returns Beam's metrics."""
  metrics = beam_counters(result)
  mismatched = {f'{split}_{name}': (n, metrics[f'{split}_{name}'])
                for split, values in counts.items() if split != S.TOTAL
                for name, n in values.items()
                if f'{split}_{name}' in metrics and metrics[f'{split}_{name}'] != n}
  if mismatched:
    logging.warning('Beam metrics differ from the counted outputs (outputs are '
                    'authoritative): %s', mismatched)
  total = counts[S.TOTAL]
  logging.info('pseudo-labelled %d pairs in %.1fs (%.1f pairs/s): kept %d, filtered %d, '
               'dead-lettered %d', total[S.PAIRS_IN], seconds,
               total[S.PAIRS_IN] / max(seconds, 1e-9), total[S.KEPT],
               sum(n for k, n in total.items() if k.startswith('filtered_')),
               sum(n for k, n in total.items() if k.startswith('dead_letter_')))
  return metrics


def read_fusion(cfg, report_uri: str):
  """fuse_first_stage: the weight and its fit the pipeline wrote (logged); else None."""
  if not cfg.fuse_first_stage:
    return None
  fusion = _read_json(os.path.join(report_uri, S.FUSION_FILE))
  if fusion['source'] == 'config':
    logging.info('targets fuse the teacher with the first stage at w = %g (config)',
                 fusion['weight'])
  else:
    logging.info('targets fuse the teacher with the first stage at w = %g, fitted on %d '
                 'calibration queries: nDCG@10 %.4f fused, %.4f teacher, %.4f first stage',
                 fusion['weight'], fusion['calibration_queries'], fusion['calibration_ndcg@10'],
                 fusion['calibration_ndcg@10_model_only'],
                 fusion['calibration_ndcg@10_first_stage'])
  return fusion


def write_report(report_uri: str, cfg, teacher: Dict[str, str], splits: List[str],
                 skipped: List[str], counts: Dict[str, Dict[str, int]], text_counts,
                 metrics: Dict[str, int], seconds: float, fusion=None) -> None:
  """The report artifact's counts.json and plot."""
  total = counts[S.TOTAL]
  payload = {'counts': counts, 'teacher': teacher, 'splits': splits,
             'embeddings': text_counts, 'fusion': fusion,
             'skipped_splits': skipped, 'config': C.to_dict(cfg),
             'beam_metrics': metrics, 'pipeline_seconds': seconds,
             'pairs_per_second': total[S.PAIRS_IN] / max(seconds, 1e-9)}
  io_utils.write_string_file(os.path.join(report_uri, S.COUNTS_FILE),
                             json.dumps(payload, indent=1, sort_keys=True))
  fused = f' + {fusion["weight"]:g} x first stage' if fusion else ''
  png = R.plot_png(_read_json(os.path.join(report_uri, S.PLOT_SAMPLE_FILE)),
                   f'{cfg.teacher_role} {teacher["teacher_id"]}{fused}: {total[S.KEPT]} kept '
                   f'of {total[S.PAIRS_IN]} pairs')
  with tf.io.gfile.GFile(os.path.join(report_uri, S.PLOT_FILE), 'wb') as f:
    f.write(png)


def record_on_artifacts(labelled_out: types.Artifact, report: types.Artifact,
                        splits: List[str], counts: Dict[str, Dict[str, int]],
                        teacher: Dict[str, str], text_counts) -> None:
  """Split names, payload format, counts and the teacher on both outputs."""
  labelled_out.split_names = artifact_utils.encode_split_names(splits)
  examples_utils.set_payload_format(labelled_out,
                                    example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
  for artifact in (labelled_out, report):
    set_count_properties(artifact, counts)
    for key in (S.TEACHER_FINGERPRINT_PROPERTY, S.TEACHER_URI_PROPERTY,
                S.TEACHER_ROLE_PROPERTY):
      artifact.set_string_custom_property(key, teacher[key])
    if text_counts is not None:
      set_text_count_properties(artifact, text_counts)


class Executor(base_beam_executor.BaseBeamExecutor):
  """Scores splits with the teacher in Beam and writes pseudo-labelled Examples."""

  def _skip(self, cfg, examples, labelled_out, report, gate) -> None:
    """Gate closed: empty splits (so downstream Trainers see valid, empty data)."""
    splits = [s for s in cfg.splits
              if s in artifact_utils.decode_split_names(examples.split_names)]
    reason = (f'gate blessing {gate.uri} not blessed: '
              f'{gate.get_string_custom_property("reason")}')
    logging.info('pseudo-labelling skipped: %s', reason)
    for split in splits:
      example_io.write_split(labelled_out.uri, split, [])
    labelled_out.split_names = artifact_utils.encode_split_names(splits)
    examples_utils.set_payload_format(labelled_out, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
    for artifact in (labelled_out, report):
      artifact.set_int_custom_property('skipped', 1)
      artifact.set_string_custom_property('skip_reason', reason)
    io_utils.write_string_file(os.path.join(report.uri, S.COUNTS_FILE),
                               json.dumps({'skipped': True, 'reason': reason}))

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    cfg = S.parse_config(exec_properties[S.CONFIG_KEY])
    examples = artifact_utils.get_single_instance(input_dict[S.EXAMPLES_KEY])
    model = artifact_utils.get_single_instance(input_dict[S.MODEL_KEY])
    labelled_out = artifact_utils.get_single_instance(output_dict[S.PSEUDO_LABELLED_KEY])
    report = artifact_utils.get_single_instance(output_dict[S.REPORT_KEY])

    gates = input_dict.get(S.GATE_BLESSING_KEY) or []
    if gates and gates[0].get_int_custom_property('blessed') != 1:
      self._skip(cfg, examples, labelled_out, report, gates[0])
      return

    splits, skipped = splits_to_label(cfg.splits, examples)
    if cfg.fits_first_stage_weight and F.SPLIT_CALIBRATION not in splits:
      raise ValueError(f'fuse_first_stage fits its weight on the {F.SPLIT_CALIBRATION!r} split, '
                       f'which the input Examples {examples.uri} do not have (they have '
                       f'{artifact_utils.decode_split_names(examples.split_names)}); set '
                       'splits.calibration_queries > 0 or first_stage_weight')
    model_dir = path_utils.serving_model_path(model.uri)
    fingerprint = teacher_fingerprint(model_dir)
    # The teacher's content fingerprint: meaningful on every platform (an
    # artifact's MLMD id is not: TFX's Kubeflow entrypoint gives artifacts
    # hashed ids that exist in no store). Lineage finds the artifact by
    # `teacher_uri`.
    teacher_id = fingerprint
    bi_encoder = is_bi_encoder(model_dir)
    logging.info('pseudo-labelling %s with %s %s (%s, fingerprint %s) from %s',
                 splits, cfg.teacher_role, 'bi-encoder' if bi_encoder else 'cross-encoder',
                 model_dir, teacher_id, examples.uri)

    split_dirs = {s: example_io.split_dir(labelled_out.uri, s) for s in splits}
    result, seconds = self._label(cfg, examples, splits, split_dirs, model_dir, bi_encoder,
                                  teacher_id, labelled_out.uri, report.uri)
    counts, text_counts = checked_counts(cfg, splits, labelled_out, split_dirs, report.uri)
    metrics = log_outcome(result, counts, seconds)

    teacher = {S.TEACHER_FINGERPRINT_PROPERTY: fingerprint,
               S.TEACHER_URI_PROPERTY: model.uri,
               S.TEACHER_ROLE_PROPERTY: cfg.teacher_role,
               'teacher_id': teacher_id,
               'architecture': 'bi_encoder' if bi_encoder else 'cross_encoder'}
    fusion = read_fusion(cfg, report.uri)
    write_report(report.uri, cfg, teacher, splits, skipped, counts, text_counts, metrics,
                 seconds, fusion)
    record_on_artifacts(labelled_out, report, splits, counts, teacher, text_counts)
    labelled_out.set_float_custom_property(S.TEMPERATURE_PROPERTY, float(cfg.temperature))
    if fusion is not None:
      for artifact in (labelled_out, report):
        artifact.set_float_custom_property(S.FIRST_STAGE_WEIGHT_PROPERTY,
                                           float(fusion['weight']))

  def _label(self, cfg, examples: types.Artifact, splits: List[str],
             split_dirs: Dict[str, str], model_dir: str, bi_encoder: bool, teacher_id: str,
             labelled_uri: str, report_uri: str):
    """Builds and runs the Beam pipeline: reads the splits, scores and
    selects (labelling.PseudoLabel), writes the kept pairs, dead letters,
    counts, plot sample and (emit_embeddings) the teacher's embeddings.
    Returns the pipeline result and its wall time in seconds."""
    patterns = {s: os.path.join(artifact_utils.get_split_uri([examples], s), '*')
                for s in splits}
    t0 = time.time()
    pipeline = self._make_beam_pipeline()
    records = pipeline | 'ReadSplits' >> P.ReadSplits(patterns)
    outputs = records | 'PseudoLabel' >> L.PseudoLabel(
        model_dir, bi_encoder, cfg, teacher_id.encode('utf-8'))
    _ = outputs[K.KEPT] | 'WriteSplits' >> O.WriteSplits(split_dirs)
    _ = outputs[K.DEAD_LETTER] | 'WriteDeadLetters' >> O.WriteDeadLetters(report_uri)
    _ = (dict(outputs, records=records)
         | 'CountOutcomes' >> O.CountOutcomes()
         | 'WriteCounts' >> O.WriteJson(os.path.join(report_uri, S.PIPELINE_COUNTS_FILE)))
    _ = (outputs[K.STATS]
         | 'SampleForPlot' >> O.SampleForPlot()
         | 'WriteSample' >> O.WriteJson(os.path.join(report_uri, S.PLOT_SAMPLE_FILE)))
    if cfg.emit_embeddings:
      add_embedding_outputs(outputs[K.TEXTS], labelled_uri, report_uri)
    if cfg.fuse_first_stage:
      _ = (outputs[K.FUSION]
           | 'FusionJson' >> beam.Map(lambda fit: json.dumps(fit, sort_keys=True))
           | 'WriteFusion' >> O.WriteJson(os.path.join(report_uri, S.FUSION_FILE)))
    result = pipeline.run()
    result.wait_until_finish()
    return result, time.time() - t0
