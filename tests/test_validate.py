"""pipelines.validation: every name and path of a config checked up front, all at once."""

import json
import os
import sqlite3
import subprocess
import sys
import time

from absl import flags
import pytest

from rankdata import metrics
from rankers import config as RC
from ssd import cli
from runconfig import config as C
from pipelines import validation as V
from tests import e2e_util

DEMO = os.path.join(e2e_util.ROOT, 'configs', 'cranfield_demo.yaml')


def _cfg(tmp_path, **overrides):
  raw = e2e_util.tiny_pipeline_config(tmp_path)
  raw.update(overrides)
  return C.from_dict(C.PipelineConfig, raw)


def _problems(tmp_path, sets):
  raw = C.apply_overrides(e2e_util.tiny_pipeline_config(tmp_path), sets)
  return V.problems(C.from_dict(C.PipelineConfig, raw))


def _main(argv, flag_args=()):
  flags.FLAGS.unparse_flags()
  flags.FLAGS(['ssd', *flag_args])
  return cli.main(['ssd'] + argv)


def test_tiny_and_demo_configs_are_valid(tmp_path, monkeypatch):
  assert V.problems(_cfg(tmp_path)) == []
  monkeypatch.chdir(e2e_util.ROOT)   # the demo's data path is relative to the project
  assert V.problems(C.load_config(DEMO, [f'pipeline_root={tmp_path}/demo'])) == []


def test_every_problem_is_reported_with_key_and_allowed_values(tmp_path):
  found = _problems(tmp_path, [
      'evaluation.decision_metric=ndcg@100',
      'teacher.train.loss=hinge',
      'teacher.model.architecture=tri_encoder',
      'teacher.model.pooling=max',
      'teacher.model.similarity=l2',
      'teacher_prime.mode=noisy',
      'teacher_prime.selection=best',
      'beam.direct_running_mode=threads',
      'teacher_prime.pseudo_label={temprature: 2}',
      'student.transfer={temperature: 0}',
      'teacher_prime.objective.soft_loss=kl',
      f'data.path={tmp_path}/nowhere',
      'data_validation_mode=maybe',
  ])
  text = '\n'.join(found)
  expected = {
      'evaluation.decision_metric': ', '.join(metrics.metric_names()),
      'teacher.train.loss': ', '.join(RC.HARD_LOSSES),
      'teacher.model.architecture': ', '.join(RC.ARCHITECTURES),
      'teacher.model.pooling': ', '.join(RC.POOLINGS),
      'teacher.model.similarity': ', '.join(RC.SIMILARITIES),
      'teacher_prime.mode': ', '.join(C.MODES),
      'teacher_prime.selection': 'dev, always',
      'beam.direct_running_mode': ', '.join(V.BEAM_RUNNING_MODES),
      'teacher_prime.objective.soft_loss': ', '.join(RC.SOFT_LOSSES),
      'data_validation_mode': 'warn, fail',
  }
  for key, allowed in expected.items():
    line = next((p for p in found if p.startswith(key + ':')), None)
    assert line is not None, f'{key} not reported in:\n{text}'
    assert f'allowed: {allowed}' in line
  assert 'teacher_prime.pseudo_label.temprature' in text
  assert 'student.transfer.temperature must be > 0' in text
  assert f'data.path: {tmp_path}/nowhere: directory not found' in text
  assert len(found) == len(expected) + 3


def test_loss_names_match_the_loss_registries():
  from rankers import losses  # pylint: disable=g-import-not-at-top  (TensorFlow)
  assert sorted(RC.HARD_LOSSES) == sorted(losses.LOSSES)
  assert sorted(RC.SOFT_LOSSES) == sorted(losses.SOFT_LOSSES)


def test_train_loss_is_refused_when_an_objective_decides(tmp_path):
  found = _problems(tmp_path, ['teacher_prime.train.loss=pointwise_mse'])
  assert len(found) == 1
  assert found[0].startswith("teacher_prime.train.loss: 'pointwise_mse' is ignored because "
                             'teacher_prime.objective is set')
  assert _problems(tmp_path, ['teacher_prime.train.loss=pointwise_mse',
                              'teacher_prime.objective.hard_loss=pointwise_mse']) == []


def test_smaller_teacher_prime_is_rejected(tmp_path):
  found = _problems(tmp_path, ['teacher_prime.model={checkpoint: null, vocab_file: '
                               f'{tmp_path}/vocab.txt, encoder: {{num_layers: 1, '
                               'hidden_size: 16, num_heads: 2}}'])
  assert len(found) == 1 and found[0].startswith('teacher_prime.model: smaller than')
  assert '1 layers x 16 hidden < 1 x 32' in found[0]


def test_named_checkpoints_are_sized_without_their_files(tmp_path):
  """T = minilm-l6, T' = mpnet-base (larger): valid; the other way round: smaller."""
  def model(name):
    return f'{{checkpoint: {name}, vocab_file: null}}'
  assert _problems(tmp_path, [f'teacher.model={model("minilm-l6")}',
                              f'teacher_prime.model={model("mpnet-base")}']) == []
  found = _problems(tmp_path, [f'teacher.model={model("mpnet-base")}',
                               f'teacher_prime.model={model("minilm-l6")}'])
  assert len(found) == 1 and '6 layers x 384 hidden < 12 x 768' in found[0]


def _checkpoint(tmp_path, vocab_lines=10, vocab_size=10, files=V.CHECKPOINT_FILES):
  directory = tmp_path / 'ckpt'
  directory.mkdir()
  if 'config.json' in files:
    (directory / 'config.json').write_text(json.dumps(
        {'num_hidden_layers': 2, 'hidden_size': 32, 'vocab_size': vocab_size,
         'num_attention_heads': 2, 'intermediate_size': 64}))
  if 'vocab.txt' in files:
    (directory / 'vocab.txt').write_text(''.join(f't{i}\n' for i in range(vocab_lines)))
  if 'model.safetensors' in files:
    (directory / 'model.safetensors').write_bytes(b'x')
  return str(directory)


def test_checkpoint_with_missing_files(tmp_path):
  ckpt = _checkpoint(tmp_path, files=('config.json',))
  found = _problems(tmp_path, [f'teacher.model.checkpoint={ckpt}', 'teacher.model.vocab_file=null'])
  assert found == [f'teacher.model.checkpoint: {ckpt}: checkpoint directory lacks vocab.txt, '
                   'model.safetensors; a Hugging Face-format BERT needs config.json, vocab.txt, '
                   'model.safetensors']


def test_vocab_larger_than_the_checkpoints_table(tmp_path):
  ckpt = _checkpoint(tmp_path, vocab_lines=11, vocab_size=10)
  found = _problems(tmp_path, [f'teacher.model.checkpoint={ckpt}', 'teacher.model.vocab_file=null'])
  assert found == [f"teacher.model.checkpoint: {ckpt}/vocab.txt: 11 tokens, more than the "
                   "encoder's vocab_size (10)"]


def test_a_padded_vocabulary_passes_as_the_loader_accepts_it(tmp_path):
  """Fewer tokens than embedding rows (a padded table) trains fine, so it validates too."""
  ckpt = _checkpoint(tmp_path, vocab_lines=9, vocab_size=10)
  assert _problems(tmp_path, [f'teacher.model.checkpoint={ckpt}',
                              'teacher.model.vocab_file=null']) == []


def test_a_config_json_the_loader_refuses_is_refused_up_front(tmp_path):
  ckpt = _checkpoint(tmp_path)
  (tmp_path / 'ckpt' / 'config.json').write_text(json.dumps(
      {'num_hidden_layers': 2, 'hidden_size': 32, 'vocab_size': 10, 'num_attention_heads': 2,
       'intermediate_size': 64, 'hidden_act': 'relu'}))
  found = _problems(tmp_path, [f'teacher.model.checkpoint={ckpt}', 'teacher.model.vocab_file=null'])
  assert found == [f'teacher.model.checkpoint: {ckpt}/config.json: hidden_act \'relu\' is not '
                   'supported (only exact "gelu")']


def test_vocab_file_beside_a_checkpoint_and_a_vocab_without_special_tokens(tmp_path):
  found = _problems(tmp_path, ['teacher.model.checkpoint=minilm-l6'])
  assert found == ['teacher.model.vocab_file: is ignored when teacher.model.checkpoint is set '
                   '(the checkpoint brings its vocab.txt); remove one of them']
  plain = tmp_path / 'plain.txt'
  plain.write_text('a\nb\n')
  found = _problems(tmp_path, [f'teacher.model.vocab_file={plain}'])
  assert found == [f'teacher.model.vocab_file: {plain}: vocabulary lacks special token(s) '
                   '[PAD], [UNK], [CLS], [SEP], [MASK]']


def test_pipeline_root_that_is_not_writable(tmp_path):
  blocker = tmp_path / 'a_file'
  blocker.write_text('')
  found = _problems(tmp_path, [f'pipeline_root={blocker}/root'])
  assert found == [f'pipeline_root: {blocker}/root: cannot be used as a directory, '
                   f'{blocker} is a file']
  if os.path.isdir('/proc/self'):   # not writable even by root
    found = _problems(tmp_path, ['pipeline_root=/proc/self/ssd-root'])
    assert len(found) == 1 and found[0].startswith('pipeline_root: /proc/self/ssd-root: not '
                                                   'writable')


def test_metadata_path_that_is_not_a_store(tmp_path):
  text = tmp_path / 'notes.sqlite'
  text.write_text('hello, not a database\n')
  found = _problems(tmp_path, [f'metadata_path={text}'])
  assert found == [f'metadata_path: {text} is not an SQLite database (so not an ML Metadata '
                   'store); point metadata_path elsewhere or move the file away']
  other = tmp_path / 'other.sqlite'
  with sqlite3.connect(other) as db:
    db.execute('CREATE TABLE songs (title TEXT)')
  found = _problems(tmp_path, [f'metadata_path={other}'])
  assert len(found) == 1 and 'an SQLite database but not an ML Metadata store (tables: songs)' \
      in found[0]


def test_a_real_mlmd_store_and_an_empty_file_are_fine(tmp_path):
  from ml_metadata import metadata_store  # pylint: disable=g-import-not-at-top
  from ml_metadata.proto import metadata_store_pb2  # pylint: disable=g-import-not-at-top
  path = tmp_path / 'mlmd.sqlite'
  connection = metadata_store_pb2.ConnectionConfig()
  connection.sqlite.filename_uri = str(path)
  connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
  metadata_store.MetadataStore(connection)
  assert _problems(tmp_path, [f'metadata_path={path}']) == []
  empty = tmp_path / 'empty.sqlite'
  empty.write_bytes(b'')
  assert _problems(tmp_path, [f'metadata_path={empty}']) == []


def test_data_files_and_uris(tmp_path):
  data = tmp_path / 'cran'
  data.mkdir()
  (data / 'cran.all.1400').write_text('')
  (data / 'cran.qry').write_text('.I 1\n.W\nq\n')
  found = _problems(tmp_path, [f'data.path={data}'])
  assert found == [f'data.path: {data}/cran.all.1400: file is empty',
                   f'data.path: {data}/cranqrel: file not found']
  # URIs are only checked for syntax: they cannot be reached from here.
  assert _problems(tmp_path, ['data.path=gs://bucket/cranfield',
                              'data.unlabelled_pairs=gs://bucket/pairs.jsonl']) == []
  found = _problems(tmp_path, [f'data.unlabelled_pairs={tmp_path}/none.jsonl'])
  assert found == [f'data.unlabelled_pairs: {tmp_path}/none.jsonl: file not found']


def test_bad_numbers_are_named(tmp_path):
  found = _problems(tmp_path, ['splits.train_queries=0', 'teacher.train.learning_rate=0',
                               'teacher_prime.noise.mask_prob=1.5', 'beam.direct_num_workers=0'])
  assert found == ['splits.train_queries: must be >= 1, got 0',
                   'teacher.train.learning_rate: must be > 0, got 0.0',
                   'beam.direct_num_workers: must be >= 1, got 0',
                   'teacher_prime.noise.mask_prob: must be in [0, 1), got 1.5']


def test_cli_validate_exit_codes(tmp_path, capsys):
  raw = e2e_util.tiny_pipeline_config(tmp_path)
  path = tmp_path / 'tiny.yaml'
  path.write_text(json.dumps(raw))
  assert _main(['validate'], [f'--config={path}']) == 0
  assert ': OK' in capsys.readouterr().out
  assert _main(['validate'], [f'--config={path}', '--set=evaluation.decision_metric=ndgc@10',
                              '--set=teacher.train.loss=hinge']) == 2
  err = capsys.readouterr().err
  assert '2 problem(s)' in err and 'ndgc@10' in err and 'hinge' in err
  # `ssd run` validates first: nothing runs, no pipeline root appears.
  assert _main(['run'], [f'--config={path}', '--set=teacher.model.pooling=max']) == 2
  assert 'teacher.model.pooling' in capsys.readouterr().err
  assert not os.path.exists(raw['pipeline_root'])


def test_validate_is_fast_and_imports_no_tfx(tmp_path):
  """In a fresh interpreter: the CLI path of `ssd validate`, timed, and no
  TFX / TensorFlow module loaded by it."""
  raw = e2e_util.tiny_pipeline_config(tmp_path)
  path = tmp_path / 'tiny.yaml'
  path.write_text(json.dumps(raw))
  script = (
      'import sys, time\n'
      't = time.time()\n'
      'from pipelines import validation as validate\n'
      'try:\n'
      f'  validate.load_and_validate({str(path)!r}, ["evaluation.decision_metric=bogus"])\n'
      'except validate.ValidationError as e:\n'
      '  print("PROBLEMS", len(e.problems))\n'
      'print("SECONDS", time.time() - t)\n'
      'print("HEAVY", sorted(m for m in sys.modules if m.split(".")[0] in '
      '("tfx", "tensorflow", "apache_beam", "ml_metadata")))\n')
  t0 = time.time()
  result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          cwd=e2e_util.ROOT, timeout=60, check=True)
  lines = dict(line.split(' ', 1) for line in result.stdout.splitlines())
  assert lines['PROBLEMS'] == '1'
  assert float(lines['SECONDS']) < 5.0
  assert lines['HEAVY'] == '[]'
  assert time.time() - t0 < 30


def _beir_problems(tmp_path, queries_per_split, sets):
  directory = e2e_util.write_beir(str(tmp_path / 'beir'), queries_per_split)
  official = ['data.format=beir', f'data.path={directory}', 'splits.source=official',
              'splits.train_queries=null', 'splits.test_queries=null', 'splits.dev_queries=4']
  return directory, _problems(tmp_path, official + sets)


def test_beir_without_dev_from_its_file_list(tmp_path):
  """qrels/train.tsv + test.tsv, no dev: caught up front, with the fix named."""
  directory, found = _beir_problems(tmp_path, {'train': 10, 'test': 3}, [])
  assert found == [f'data.path: {directory}: no official dev split (official splits: train, '
                   'test), and models are selected on dev; set splits.dev_from_train: true to '
                   'carve splits.dev_queries seeded queries out of the official train split '
                   'into dev (never test)']
  assert _beir_problems(tmp_path, {'train': 10, 'test': 3}, ['splits.dev_from_train=true'])[1] == []
  # Nothing is read: a qrels file that would not parse still validates.
  (tmp_path / 'beir' / 'qrels' / 'train.tsv').write_text('not a qrels file\n')
  assert _beir_problems(tmp_path, {'train': 10, 'test': 3}, ['splits.dev_from_train=true'])[1] == []


def test_beir_with_only_a_test_split(tmp_path):
  directory, found = _beir_problems(tmp_path, {'test': 30}, ['splits.dev_from_train=true'])
  assert len(found) == 1 and found[0].startswith(
      f'data.path: {directory}: only the official test split (official splits: test)')
  assert 'use splits.source: seeded' in found[0]
  # The seeded alternative validates.
  assert _problems(tmp_path, ['data.format=beir', f'data.path={directory}']) == []


def test_run_on_a_test_only_beir_dataset_stops_before_anything_starts(tmp_path, capsys):
  directory = e2e_util.write_beir(str(tmp_path / 'beir'), {'test': 30})
  raw = e2e_util.tiny_pipeline_config(tmp_path)
  path = tmp_path / 'tiny.yaml'
  path.write_text(json.dumps(raw))
  official = [f'--set=data.path={directory}', '--set=data.format=beir',
              '--set=splits.source=official', '--set=splits.dev_from_train=true']
  assert _main(['run'], [f'--config={path}', *official]) == 2
  err = capsys.readouterr().err
  assert 'only the official test split' in err and 'use splits.source: seeded' in err
  assert not os.path.exists(raw['pipeline_root'])


def test_official_split_rules_that_the_file_list_shows(tmp_path):
  directory, found = _beir_problems(tmp_path, {'train': 5, 'dev': 2, 'test': 3},
                                    ['splits.dev_from_train=true'])
  assert found == [f'data.path: {directory}: splits.dev_from_train is set but the dataset has '
                   'an official dev split (official splits: train, dev, test); remove '
                   'splits.dev_from_train to use it']
  assert _beir_problems(tmp_path, {'train': 5, 'dev': 2, 'test': 3}, [])[1] == []
  (tmp_path / 'beir' / 'qrels' / 'test.tsv').unlink()
  assert _problems(tmp_path, ['data.format=beir', f'data.path={directory}']) == [
      f'data.path: {directory}/qrels/test.tsv: file not found']
  found = _problems(tmp_path, ['splits.source=official', 'splits.train_queries=null'])
  assert found == ["splits.source: format 'cranfield' has no official splits (splits.source: "
                   'official works with beir, trec); use splits.source: seeded']


def test_beam_runner_is_looked_up_by_beam(tmp_path):
  found = _problems(tmp_path, ['beam.runner=NoSuchRunner'])
  assert len(found) == 1 and found[0].startswith(
      "beam.runner: unknown runner 'NoSuchRunner'; known runners: ")
  for name in ('DirectRunner', 'FlinkRunner', 'PortableRunner', 'SparkRunner'):
    assert name in found[0]
  # Any name Beam resolves: its own spellings, or a PipelineRunner class that imports.
  for ok in ('direct', 'PortableRunner',
             'apache_beam.runners.direct.direct_runner.BundleBasedDirectRunner'):
    assert _problems(tmp_path, [f'beam.runner={ok}']) == [], ok
  found = _problems(tmp_path, ['beam.runner=no_such_module.Runner'])
  assert len(found) == 1 and "'no_such_module.Runner' does not import as a runner" in found[0]
  found = _problems(tmp_path, ['beam.runner=collections.OrderedDict'])
  assert found == ["beam.runner: 'collections.OrderedDict' is a OrderedDict, not a Beam "
                   'PipelineRunner; known runners: ' + found[0].split('known runners: ')[1]]


def test_run_with_an_unknown_runner_stops_before_the_store_exists(tmp_path, capsys):
  raw = e2e_util.tiny_pipeline_config(tmp_path)
  path = tmp_path / 'tiny.yaml'
  path.write_text(json.dumps(raw))
  assert _main(['run'], [f'--config={path}', '--set=beam.runner=NoSuchRunner']) == 2
  err = capsys.readouterr().err
  assert "beam.runner: unknown runner 'NoSuchRunner'" in err and 'DirectRunner' in err
  store = C.load_config(str(path)).metadata_sqlite
  assert not os.path.exists(store) and not os.path.exists(raw['pipeline_root'])


def test_fusion_with_the_first_stage_is_checked_as_the_pipeline_runs_it(tmp_path):
  """fuse_first_stage fits w on the calibration split: the run needs one
  (the pipeline adds it to the labeller's splits); a set weight needs none."""
  no_calibration = _problems(tmp_path, ['student.transfer.fuse_first_stage=true'])
  assert no_calibration == [
      'student.transfer.fuse_first_stage: fits the fusion weight on the calibration split, so '
      'it needs splits.calibration_queries > 0 (or set student.transfer.first_stage_weight); '
      'never on dev, which decides blessing']
  assert _problems(tmp_path, ['student.transfer.fuse_first_stage=true',
                              'splits.calibration_queries=3']) == []
  assert _problems(tmp_path, ['teacher_prime.pseudo_label.fuse_first_stage=true',
                              'splits.calibration_queries=3']) == []
  assert _problems(tmp_path, ['student.transfer={fuse_first_stage: true, '
                              'first_stage_weight: 0.5}']) == []
  found = _problems(tmp_path, [
      'splits.calibration_queries=3',
      'teacher_prime.pseudo_label={first_stage_weight: 0.5}',
      'student.transfer={fuse_first_stage: true, first_stage_weight: -1}',
  ])
  assert found == [
      'teacher_prime.pseudo_label.first_stage_weight is set but fuse_first_stage is false; set '
      'fuse_first_stage: true to fuse, or drop the weight',
      'student.transfer.first_stage_weight must be a finite number >= 0 (null: fit it on the '
      'calibration split), got -1.0']
  # Listing splits by hand without the calibration split, the fit has no data.
  found = _problems(tmp_path, ['splits.calibration_queries=3',
                               'student.transfer={fuse_first_stage: true, '
                               'splits: [train, unlabelled]}'])
  assert found == ["student.transfer.fuse_first_stage fits its weight on the 'calibration' "
                   "split, which is not in splits ['train', 'unlabelled']; add it, or set "
                   'first_stage_weight']


@pytest.mark.parametrize('stage,labelling', [('student', 'transfer'),
                                              ('teacher_prime', 'pseudo_label')])
def test_fused_targets_refuse_in_batch_negatives(tmp_path, stage, labelling):
  raw = C.apply_overrides(e2e_util.tiny_pipeline_config(tmp_path, architecture='bi_encoder'), [
      'splits.calibration_queries=3', f'{stage}.{labelling}.fuse_first_stage=true',
      f'{stage}.objective.in_batch_negatives=true'])
  found = V.problems(C.from_dict(C.PipelineConfig, raw))
  assert len(found) == 1 and found[0].startswith(
      f'{stage}.objective.in_batch_negatives: cannot be combined with '
      f'{stage}.{labelling}.fuse_first_stage'), found
