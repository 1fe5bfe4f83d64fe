"""Checks a loaded config before anything expensive runs (`ssd validate`).

`runconfig/config.py` checks the shape of a config (known keys, types); this module
checks what the values mean: every name (metrics, losses, architectures,
pooling, similarity, modes, Beam running modes, pseudo-label keys) against
what the code accepts, paths that must exist on this machine, whether the
pipeline root and the ML Metadata store can be used, and that T' is not
smaller than T. It collects every problem, not only the first, and each
message names the key path and, for names, the allowed values.

It must stay fast (well under a second) and import nothing heavy: no TFX, no
TensorFlow; Beam only to look up a `beam.runner` other than the default.
The names it checks against come from the lowest layer that owns them
(rankdata.metrics, rankers.config, the pseudo-labeller's TFX-free config
module, Beam's own runner lookup), so a new metric or loss is accepted here
without an edit.

Remote paths (`gs://...`, any `scheme://`) are only checked for syntax: they
cannot be reached from here, and the components read them with tf.io.gfile.
"""

import json
import os
import re
from typing import Any, Iterable, List, Optional, Tuple

from components.pseudo_labeler import config as pl_config
from pipelines import stage_configs
from rankdata import cranfield
from rankdata import features as F
from rankdata import loaders
from rankdata import metrics
from rankdata import splits as rsplits
from rankdata import trec
from rankers import config as RC
from runconfig import checkpoints
from runconfig import config as C
from pipelines import storage

BEAM_RUNNING_MODES = ('in_memory', 'multi_threading', 'multi_processing')
DATA_VALIDATION_MODES = ('warn', 'fail')
# What a Hugging Face-format BERT checkpoint directory must hold.
CHECKPOINT_FILES = ('config.json', 'vocab.txt', 'model.safetensors')
DEFAULT_MAX_POSITIONS = 512
VOCAB_SPECIAL_TOKENS = ('[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]')

_URI = re.compile(r'^([a-zA-Z][a-zA-Z0-9+.-]*)://(\S+)$')


class ValidationError(C.ConfigError):
  """One or more config problems; `problems` lists them all."""

  def __init__(self, source: str, problems: List[str]):
    self.problems = list(problems)
    lines = '\n'.join(f'  - {p}' for p in self.problems)
    super().__init__(f'{source}: {len(self.problems)} problem(s):\n{lines}')


def is_uri(path: str) -> bool:
  """True for `scheme://...` (gs://, s3://, hdfs://, ...)."""
  return bool(_URI.match(path or ''))


class _Problems:
  """Problems by key. With `files` False, nothing of this machine is looked at
  (paths, stores, checkpoint files): the config's own rules only, which is
  what create_pipeline checks for a pipeline that may run elsewhere."""

  def __init__(self, files: bool = True):
    self.items: List[str] = []
    self.files = files

  def add(self, key: str, problem: str) -> None:
    self.items.append(f'{key}: {problem}')

  def one_of(self, key: str, value: Any, allowed: Iterable[str]) -> bool:
    allowed = tuple(allowed)
    if value not in allowed:
      self.add(key, f'unknown value {value!r}; allowed: {", ".join(allowed)}')
      return False
    return True

  def at_least(self, key: str, value: Optional[float], low: float) -> None:
    if value is not None and value < low:
      self.add(key, f'must be >= {low:g}, got {value!r}')

  def rate(self, key: str, value: Optional[float], high_open: bool = True) -> None:
    if value is None:
      return
    ok = 0.0 <= value < 1.0 if high_open else 0.0 <= value <= 1.0
    if not ok:
      self.add(key, f'must be in [0, 1{")" if high_open else "]"}, got {value!r}')


# --- paths -------------------------------------------------------------------


def _local(path: str) -> str:
  return os.path.abspath(os.path.expanduser(path))


def _check_existing(out: _Problems, key: str, path: Optional[str], kind: str = 'any',
                    non_empty: bool = False) -> bool:
  """A local path that must exist (a URI: syntax only). True when usable."""
  if not path:
    out.add(key, 'must be set')
    return False
  if is_uri(path) or not out.files:
    return False   # checked by the component that reads it, where it runs
  local = _local(path)
  if kind == 'dir' and not os.path.isdir(local):
    out.add(key, f'{local}: directory not found' if not os.path.exists(local)
            else f'{local}: is not a directory')
    return False
  if kind == 'file' and not os.path.isfile(local):
    out.add(key, f'{local}: file not found' if not os.path.exists(local)
            else f'{local}: is not a file')
    return False
  if kind == 'any' and not os.path.exists(local):
    out.add(key, f'{local}: not found')
    return False
  if non_empty and os.path.isfile(local) and os.path.getsize(local) == 0:
    out.add(key, f'{local}: file is empty')
    return False
  return True


# --- data --------------------------------------------------------------------


def _required_data_files(fmt: str, official: bool) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
  """(files, directories) a dataset directory of `fmt` must hold; with
  `official`, the per-split files are checked by `_check_official_splits`."""
  if fmt == 'cranfield':
    return (cranfield.DOCS_FILE, cranfield.QUERIES_FILE, cranfield.QRELS_FILE), ()
  if fmt == 'beir':
    qrels = () if official else (os.path.join('qrels', 'test.tsv'),)
    return ('corpus.jsonl', 'queries.jsonl') + qrels, ('qrels',)
  if fmt == 'trec':
    return (() if official else (trec.TOPICS_FILE, trec.QRELS_FILE)), ()
  return (), ()


def _check_official_splits(cfg: C.PipelineConfig, out: _Problems, root: str) -> None:
  """The dataset's own splits, from its file list alone (nothing is read):
  ingestion's rule (rankdata.splits.official_splits_problem), up front."""
  files = loaders.official_split_files(cfg.data.format, root)
  present = [split for split, path in files.items() if os.path.isfile(path)]
  problem = rsplits.official_splits_problem(present, cfg.splits)
  if problem:
    out.add('data.path', f'{root}: {problem}')


def _check_data(cfg: C.PipelineConfig, out: _Problems) -> None:
  data = cfg.data
  if not out.one_of('data.format', data.format, loaders.FORMATS):
    return
  official = cfg.splits.source == rsplits.SOURCE_OFFICIAL
  kind = 'file' if data.format == 'pairs' else 'dir'
  if _check_existing(out, 'data.path', data.path, kind, non_empty=True) and kind == 'dir':
    root = _local(data.path)
    files, dirs = _required_data_files(data.format, official)
    for name in files:
      _check_existing(out, 'data.path', os.path.join(root, name), 'file', non_empty=True)
    for name in dirs:
      _check_existing(out, 'data.path', os.path.join(root, name), 'dir')
    if data.format == 'trec' and not any(
        os.path.isfile(os.path.join(root, n)) for n in (trec.CORPUS_JSONL, trec.DOCS_TSV)):
      out.add('data.path', f'{root}: no corpus ({trec.CORPUS_JSONL} or {trec.DOCS_TSV})')
    if official and data.format in loaders.OFFICIAL_SPLIT_FORMATS:
      _check_official_splits(cfg, out, root)
  format_problem = official and loaders.official_format_problem(data.format)
  if format_problem:
    out.add('splits.source', format_problem)
  out.at_least('data.max_queries', data.max_queries, 1)
  if data.unlabelled_pairs:
    _check_existing(out, 'data.unlabelled_pairs', data.unlabelled_pairs, 'file', non_empty=True)
  s = cfg.splits
  for name, low in (('train_queries', 1), ('dev_queries', 1), ('test_queries', 0),
                    ('candidates_k', 1), ('max_title_queries', 0), ('title_candidates_k', 1)):
    out.at_least(f'splits.{name}', getattr(s, name), low)
  out.at_least('splits.bm25.k1', s.bm25.k1, 0)
  out.rate('splits.bm25.b', s.bm25.b, high_open=False)


# --- models ------------------------------------------------------------------


def _count_lines(path: str) -> int:
  """Tokens in a vocab.txt: its lines (a final newline ends the last one)."""
  with open(path, 'rb') as f:
    return sum(1 for _ in f)


def _checkpoint_config(out: _Problems, key: str, directory: str) -> Optional[dict]:
  """config.json of a local checkpoint dir, after checking its files."""
  missing = [n for n in CHECKPOINT_FILES if not os.path.isfile(os.path.join(directory, n))]
  if missing:
    out.add(key, f'{directory}: checkpoint directory lacks {", ".join(missing)}; a Hugging '
            f'Face-format BERT needs {", ".join(CHECKPOINT_FILES)}')
    return None
  path = os.path.join(directory, 'config.json')
  try:
    with open(path, encoding='utf-8') as f:
      hf = json.load(f)
  except (ValueError, UnicodeDecodeError) as e:
    out.add(key, f'{path}: not valid JSON ({e})')
    return None
  try:   # the loader's own rules (rankers.config), so both accept the same checkpoints
    encoder = RC.encoder_from_hf(hf, path)
  except ValueError as e:
    out.add(key, str(e))
    return None
  vocab = os.path.join(directory, 'vocab.txt')
  problem = RC.vocab_size_problem(_count_lines(vocab), encoder.vocab_size)
  if problem:
    out.add(key, f'{vocab}: {problem}')
  return hf


def _check_vocab_file(out: _Problems, key: str, path: str) -> None:
  if not _check_existing(out, key, path, 'file', non_empty=True):
    return
  with open(_local(path), encoding='utf-8', errors='replace') as f:
    tokens = {line.rstrip('\r\n') for line in f}
  missing = [t for t in VOCAB_SPECIAL_TOKENS if t not in tokens]
  if missing:
    out.add(key, f'{_local(path)}: vocabulary lacks special token(s) {", ".join(missing)}')


def model_size(out: _Problems, key: str, model: C.ModelConfig,
               cache_dir: str) -> Optional[Tuple[int, int]]:
  """Checks one ModelConfig; returns its (layers, hidden size) when known."""
  out.one_of(f'{key}.architecture', model.architecture, RC.ARCHITECTURES)
  out.one_of(f'{key}.pooling', model.pooling, RC.POOLINGS)
  out.one_of(f'{key}.similarity', model.similarity, RC.SIMILARITIES)
  out.at_least(f'{key}.keep_layers', model.keep_layers, 1)
  out.at_least(f'{key}.max_length', model.max_length, 4)
  out.at_least(f'{key}.query_max_length', model.query_max_length, 3)
  e = model.encoder
  out.rate(f'{key}.encoder.hidden_dropout', e.hidden_dropout)
  out.rate(f'{key}.encoder.attention_dropout', e.attention_dropout)
  size, positions = None, DEFAULT_MAX_POSITIONS
  if model.checkpoint is None:
    for name in ('num_layers', 'hidden_size', 'num_heads', 'intermediate_size'):
      out.at_least(f'{key}.encoder.{name}', getattr(e, name), 1)
    if e.num_heads >= 1 and e.hidden_size % e.num_heads:
      out.add(f'{key}.encoder.hidden_size', f'{e.hidden_size} is not divisible by '
              f'num_heads {e.num_heads}')
    if not model.vocab_file:
      out.add(f'{key}.vocab_file', 'a randomly initialised model (checkpoint: null) needs a '
              'vocab_file')
    else:
      _check_vocab_file(out, f'{key}.vocab_file', model.vocab_file)
    size = (e.num_layers, e.hidden_size)
  else:
    if model.vocab_file:
      out.add(f'{key}.vocab_file', f'is ignored when {key}.checkpoint is set (the '
              'checkpoint brings its vocab.txt); remove one of them')
    if checkpoints.is_named(model.checkpoint):
      named = checkpoints.named(model.checkpoint)
      size, positions = (named.num_layers, named.hidden_size), named.max_tokens
    elif is_uri(model.checkpoint):
      pass
    elif _check_existing(out, f'{key}.checkpoint', model.checkpoint, 'dir'):
      hf = _checkpoint_config(out, f'{key}.checkpoint', _local(model.checkpoint))
      if hf is not None:
        size = (int(hf['num_hidden_layers']), int(hf['hidden_size']))
        positions = int(hf.get('max_position_embeddings', DEFAULT_MAX_POSITIONS))
        if model.keep_layers and model.keep_layers > size[0]:
          out.add(f'{key}.keep_layers', f'{model.keep_layers} > the checkpoint\'s '
                  f'{size[0]} layers')
  longest = max(model.max_length, model.query_max_length)
  if longest > positions:
    out.add(f'{key}.max_length', f'{longest} tokens exceed the encoder\'s '
            f'max_position_embeddings ({positions})')
  if size is not None and model.keep_layers:
    size = (min(size[0], model.keep_layers), size[1])
  return size


def static_size(model: C.ModelConfig, cache_dir: str) -> Optional[Tuple[int, int]]:
  """(layers, hidden size) the config alone gives (random init, a named
  checkpoint), else None; reads no file."""
  return model_size(_Problems(files=False), 'model', model, cache_dir)


def _check_train(out: _Problems, key: str, train: C.TrainConfig) -> None:
  out.one_of(f'{key}.loss', train.loss, RC.HARD_LOSSES)
  out.at_least(f'{key}.epochs', train.epochs, 0)
  out.at_least(f'{key}.list_size', train.list_size, 1)
  out.at_least(f'{key}.batch_lists', train.batch_lists, 1)
  out.at_least(f'{key}.log_every', train.log_every, 1)
  if not train.learning_rate > 0:
    out.add(f'{key}.learning_rate', f'must be > 0, got {train.learning_rate}')
  out.rate(f'{key}.warmup_fraction', train.warmup_fraction)


def _check_objective(out: _Problems, key: str, objective: C.ObjectiveConfig,
                     train_key: str, train: C.TrainConfig) -> None:
  out.one_of(f'{key}.hard_loss', objective.hard_loss, RC.HARD_LOSSES)
  out.one_of(f'{key}.soft_loss', objective.soft_loss, RC.SOFT_LOSSES)
  out.at_least(f'{key}.hard_weight', objective.hard_weight, 0)
  out.at_least(f'{key}.soft_weight', objective.soft_weight, 0)
  out.at_least(f'{key}.max_soft_lists', objective.max_soft_lists, 1)
  # One temperature per stage: the pseudo-labeller's (pseudo_label /
  # transfer `temperature`), not the objective's.
  out.one_of(f'{key}.pseudo_targets', objective.pseudo_targets, C.PSEUDO_TARGETS)
  out.one_of(f'{key}.embedding_loss', objective.embedding_loss,
             (C.EMBEDDING_LOSS_OFF,) + RC.EMBEDDING_LOSSES)
  out.at_least(f'{key}.embedding_weight', objective.embedding_weight, 0)
  # The trainer takes the hard loss from the objective; a different
  # train.loss would be silently ignored, so it is refused instead.
  if train.loss != objective.hard_loss:
    out.add(f'{train_key}.loss', f'{train.loss!r} is ignored because {key} is set (its '
            f'hard_loss {objective.hard_loss!r} is used); set {key}.hard_loss instead, or '
            'make both equal')


def _check_embedding_targets(out: _Problems, key: str, objective: C.ObjectiveConfig,
                             model: C.ModelConfig, teachers: List[C.ModelConfig]) -> None:
  """Embedding-level pseudo-labels need a bi-encoder learner and teachers."""
  if not C.uses_teacher_embeddings(objective):
    return
  found = [model.architecture] + [t.architecture for t in teachers]
  if any(a != 'bi_encoder' for a in found):
    if objective.embedding_loss != C.EMBEDDING_LOSS_OFF:
      what, setting = f'{key}.embedding_loss', repr(objective.embedding_loss)
    else:
      what, setting = f'{key}.in_batch_negatives', 'true'
    out.add(what, f'{setting} needs a bi_encoder model and bi_encoder teachers (embeddings '
            f'of single texts); got model {model.architecture}, teachers {found[1:]}')
  if objective.in_batch_negatives and objective.pseudo_targets != 'soft':
    out.add(f'{key}.in_batch_negatives', 'needs pseudo_targets: soft (it distils the '
            f"teacher's scores), got {objective.pseudo_targets!r}")


def _check_noise(out: _Problems, key: str, noise: C.NoiseConfig) -> None:
  for name in ('token_dropout', 'mask_prob', 'hidden_dropout', 'attention_dropout',
               'stochastic_depth'):
    out.rate(f'{key}.{name}', getattr(noise, name))
  out.at_least(f'{key}.shuffle_window', noise.shuffle_window, 0)


def _check_pseudo_label(out: _Problems, key: str, raw: dict, completed: dict,
                        cfg: C.PipelineConfig) -> None:
  """`raw` as the user wrote it, `completed` as the pipeline will run it
  (pipelines/stage_configs.py)."""
  if (raw.get('fuse_first_stage') and raw.get('first_stage_weight') is None
      and not cfg.splits.calibration_queries):
    out.add(f'{key}.fuse_first_stage', 'fits the fusion weight on the calibration split, '
            'so it needs splits.calibration_queries > 0 (or set '
            f'{key}.first_stage_weight); never on dev, which decides blessing')
    return
  try:
    C.from_dict(pl_config.PseudoLabelConfig, dict(raw), prefix=key)
    parsed = C.from_dict(pl_config.PseudoLabelConfig, dict(completed), prefix=key)
    parsed.validate()
  except C.ConfigError as e:
    message = str(e)
    out.items.append(message if message.startswith(key) or 'unknown config key' in message
                     else f'{key}.{message}')
    return
  for split in parsed.splits:
    out.one_of(f'{key}.splits', split, F.ALL_SPLITS)


# --- Beam --------------------------------------------------------------------


def _check_beam_runner(out: _Problems, runner: str) -> None:
  """A runner Beam accepts, looked up by Beam itself (`create_runner`): a known
  name, or the dotted path of a PipelineRunner subclass that imports.

  The default (DirectRunner) is in every Beam; only another name pays for
  importing Beam here (~2 s), instead of failing when the first Beam step starts.
  """
  if runner == C.BeamConfig.runner:
    return
  # pylint: disable=g-import-not-at-top
  from apache_beam.options import pipeline_options
  from apache_beam.runners import runner as beam_runner
  known = ', '.join(pipeline_options.StandardOptions.KNOWN_RUNNER_NAMES)
  try:
    made = beam_runner.create_runner(runner)
  except ValueError:
    out.add('beam.runner', f'unknown runner {runner!r}; known runners: {known}, or the dotted '
            'path of a PipelineRunner subclass')
    return
  except (ImportError, AttributeError, TypeError) as e:
    out.add('beam.runner', f'{runner!r} does not import as a runner ({e}); known runners: '
            f'{known}')
    return
  if not isinstance(made, beam_runner.PipelineRunner):
    out.add('beam.runner', f'{runner!r} is a {type(made).__name__}, not a Beam PipelineRunner; '
            f'known runners: {known}')


# --- the whole config --------------------------------------------------------


def _check_local_storage(cfg: C.PipelineConfig, out: _Problems) -> None:
  """The pipeline root and the ML Metadata store, on this machine."""
  root_problem = (None if is_uri(cfg.pipeline_root)
                  else storage.writable_dir_problem(cfg.pipeline_root))
  if root_problem:
    out.add('pipeline_root', root_problem)
  if is_uri(cfg.metadata_sqlite):
    out.add('metadata_path', f'{cfg.metadata_sqlite}: the local runner\'s SQLite store must '
            'be a local file')
  else:
    store = storage.mlmd_store_problem(cfg.metadata_sqlite)
    if store:
      out.add('metadata_path', store)
    elif cfg.metadata_path:
      parent = storage.writable_dir_problem(os.path.dirname(_local(cfg.metadata_path)))
      if parent:
        out.add('metadata_path', parent)


def problems(cfg: C.PipelineConfig, files: bool = True) -> List[str]:
  """Every problem found in `cfg` ([] when it is fine).

  `files`: also check what this machine holds (data, checkpoints, the
  pipeline root, the store): `ssd validate` and `ssd run` do; create_pipeline
  (which may build for a cluster) checks the config's own rules only.
  """
  out = _Problems(files)
  _check_data(cfg, out)
  if files:
    _check_local_storage(cfg, out)
  out.one_of('data_validation_mode', cfg.data_validation_mode, DATA_VALIDATION_MODES)
  if cfg.data_validation_schema:
    if not cfg.data_validation:
      out.add('data_validation_schema', 'is set but data_validation is false; turn data '
              'validation on or remove the schema')
    _check_existing(out, 'data_validation_schema', cfg.data_validation_schema, 'file',
                    non_empty=True)

  teacher_size = model_size(out, 'teacher.model', cfg.teacher.model, cfg.cache_dir)
  _check_train(out, 'teacher.train', cfg.teacher.train)
  out.one_of('evaluation.decision_metric', cfg.evaluation.decision_metric,
             metrics.metric_names())
  out.one_of('evaluation.decision_score', cfg.evaluation.decision_score, ('plain', 'hybrid'))
  out.at_least('evaluation.batch_size', cfg.evaluation.batch_size, 1)
  out.one_of('beam.direct_running_mode', cfg.beam.direct_running_mode, BEAM_RUNNING_MODES)
  out.at_least('beam.direct_num_workers', cfg.beam.direct_num_workers, 1)
  _check_beam_runner(out, cfg.beam.runner)

  if cfg.semi_supervised:
    tp = cfg.teacher_prime
    out.one_of('teacher_prime.mode', tp.mode, C.MODES)
    out.one_of('teacher_prime.selection', tp.selection, C.SELECTIONS)
    out.at_least('teacher_prime.rounds', tp.rounds, 0)
    if tp.model is not None:
      tp_size = model_size(out, 'teacher_prime.model', tp.model, cfg.cache_dir)
    else:
      tp_size = teacher_size
    size_problem = teacher_size and tp_size and C.teacher_prime_size_problem(teacher_size,
                                                                             tp_size)
    if size_problem:
      out.add('teacher_prime.model', size_problem)
    tp_model = tp.model or cfg.teacher.model
    if tp.warm_start and tp_model.architecture != cfg.teacher.model.architecture:
      out.add('teacher_prime.warm_start', f'needs the teacher\'s architecture '
              f'({cfg.teacher.model.architecture}), got {tp_model.architecture}')
    _check_train(out, 'teacher_prime.train', tp.train)
    _check_objective(out, 'teacher_prime.objective', tp.objective, 'teacher_prime.train',
                     tp.train)
    _check_embedding_targets(out, 'teacher_prime.objective', tp.objective, tp_model,
                             [cfg.teacher.model, tp_model])
    _check_noise(out, 'teacher_prime.noise', tp.noise)
    _check_pseudo_label(out, 'teacher_prime.pseudo_label', tp.pseudo_label,
                        stage_configs.teacher_prime_labelling(cfg, 'teacher'), cfg)
    st = cfg.student
    model_size(out, 'student.model', st.model, cfg.cache_dir)
    _check_train(out, 'student.train', st.train)
    _check_objective(out, 'student.objective', st.objective, 'student.train', st.train)
    _check_embedding_targets(out, 'student.objective', st.objective, st.model,
                             [cfg.teacher.model] + ([tp_model] if tp.rounds else []))
    _check_pseudo_label(out, 'student.transfer', st.transfer,
                        stage_configs.transfer_labelling(cfg, 'best_teacher'), cfg)
    for stage, labelling, objective in (
        ('teacher_prime', 'pseudo_label', tp.objective), ('student', 'transfer', st.objective)):
      if getattr(getattr(cfg, stage), labelling).get('fuse_first_stage') and (
          objective.in_batch_negatives):
        out.add(f'{stage}.objective.in_batch_negatives', 'cannot be combined with '
                f'{stage}.{labelling}.fuse_first_stage: the in-batch pairs (a query with '
                "another list's documents) have no first-stage score, so their targets would "
                "be the teacher's alone beside fused in-list targets")
    out.at_least('blessing.retention', cfg.blessing.retention, 0)
    if st.hybrid and not cfg.splits.calibration_queries:
      out.add('student.hybrid', 'needs splits.calibration_queries > 0: the fusion weight is '
              'fitted on the calibration split, never on dev, which decides blessing')
  return out.items


def validate(cfg: C.PipelineConfig, source: str = 'config',
             files: bool = True) -> C.PipelineConfig:
  """Returns `cfg`, or raises ValidationError listing every problem (see `problems`)."""
  found = problems(cfg, files)
  if found:
    raise ValidationError(source, found)
  return cfg


def load_and_validate(path: Optional[str], overrides: Optional[List[str]] = None
                      ) -> C.PipelineConfig:
  """`config.load_config` then `validate`: what `ssd validate` and `ssd run` do."""
  return validate(C.load_config(path, overrides), source=path or 'config')
