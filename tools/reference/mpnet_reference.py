"""Reference outputs of Hugging Face `MPNetModel` for all-mpnet-base-v2: the parity oracle.

Writes tests/testdata/mpnet_reference.json, which tests/test_rankers_mpnet.py
compares the project's TensorFlow MPNet (rankers/mpnet.py) against. It needs
torch and transformers, which are NOT project dependencies, so it lives under
tools/reference/ (tools/gen_build.py does not build this folder) and runs in
a scratch virtual environment outside the project:

  python3.11 -m venv /tmp/mpnet-ref
  /tmp/mpnet-ref/bin/pip install torch==2.13.0      # the CPU wheel
  /tmp/mpnet-ref/bin/pip install transformers
  .venv/bin/ssd weights --model=mpnet-base           # the checkpoint, into ~/.cache/ssd-rankers
  /tmp/mpnet-ref/bin/python tools/reference/mpnet_reference.py \
      ~/.cache/ssd-rankers/all-mpnet-base-v2 tests/testdata/mpnet_reference.json

The committed file was made that way with Python 3.11.7, torch 2.13.0+cpu,
transformers 5.24.0, tokenizers 0.23.3 (the versions are also recorded in the
JSON under `versions`).

What it records, for TEXTS tokenised as one padded batch (HF's fast tokenizer
from the checkpoint's tokenizer.json, truncation at MAX_LENGTH tokens):
- `input_ids` / `attention_mask`: the token ids of the batch (the project's
  in-graph tokenizer must produce the same ids);
- `hidden`: last hidden states of MPNetModel (eager attention, float32, eval
  mode) at a few positions of each text (first, second, middle, last real
  token, and one padding position where the row is padded), every
  HIDDEN_STRIDE-th dimension;
- `embeddings`: sentence-transformers' all-mpnet-base-v2 sentence embeddings,
  i.e. mean of the last hidden states over real tokens (1_Pooling/config.json:
  pooling_mode_mean_tokens) then L2 normalisation (modules.json: Normalize),
  all 768 dimensions;
- `buckets`: MPNetEncoder.relative_position_bucket of every relative position
  in [-BUCKET_RANGE, BUCKET_RANGE] (32 buckets, max distance 128).
"""

import hashlib
import json
import os
import platform
import sys

import tokenizers
import torch
import transformers
from transformers import AutoTokenizer, MPNetModel
from transformers.models.mpnet.modeling_mpnet import MPNetEncoder

MAX_LENGTH = 128
HIDDEN_STRIDE = 8
BUCKET_RANGE = 520
DIGITS = 8  # significant digits kept per float (float32 has ~7.2)

# Mixed lengths (padding inside the batch), casing, accents, punctuation,
# digits, a CJK character, and one text longer than MAX_LENGTH (truncated).
TEXTS = [
    'What is the capital of France?',
    'Paris is the capital and most populous city of France.',
    'cheap flights',
    'Café naïve résumé: Über-fast 3.14% growth (2024) — see §12!',
    'Symptoms of influenza include fever, cough, sore throat, runny nose, '
    'muscle aches, headaches and fatigue; 東京 has many clinics.',
    ' '.join(['Low-dose aspirin reduces the risk of cardiovascular events in '
              'adults with diabetes, according to a randomised trial of '
              'fifteen thousand participants.'] * 6),
]


def _round(x: float) -> float:
  return float(f'{x:.{DIGITS}g}')


def _positions(length: int, padded_width: int):
  """Positions to record in a row with `length` real tokens."""
  picks = sorted({0, 1, length // 2, length - 1})
  if length < padded_width:
    picks.append(padded_width - 1)  # a padding position
  return picks


def _sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      h.update(block)
  return h.hexdigest()


def reference(checkpoint_dir: str) -> dict:
  torch.manual_seed(0)
  tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir)
  model = MPNetModel.from_pretrained(checkpoint_dir, attn_implementation='eager',
                                     torch_dtype=torch.float32).eval()
  batch = tokenizer(TEXTS, padding=True, truncation=True, max_length=MAX_LENGTH,
                    return_tensors='pt')
  with torch.no_grad():
    hidden = model(input_ids=batch['input_ids'],
                   attention_mask=batch['attention_mask']).last_hidden_state
  mask = batch['attention_mask'].unsqueeze(-1).float()
  pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
  embeddings = torch.nn.functional.normalize(pooled, p=2, dim=1)
  width = hidden.shape[1]
  records = []
  for row, length in enumerate(batch['attention_mask'].sum(1).tolist()):
    for position in _positions(length, width):
      values = hidden[row, position, ::HIDDEN_STRIDE].tolist()
      records.append({'row': row, 'position': position,
                      'values': [_round(v) for v in values]})
  relative = torch.arange(-BUCKET_RANGE, BUCKET_RANGE + 1)
  buckets = MPNetEncoder.relative_position_bucket(relative, num_buckets=32,
                                                  max_distance=128)
  return {
      'texts': TEXTS,
      'max_length': MAX_LENGTH,
      'input_ids': batch['input_ids'].tolist(),
      'attention_mask': batch['attention_mask'].tolist(),
      'hidden_stride': HIDDEN_STRIDE,
      'hidden': records,
      'embeddings': [[_round(v) for v in row] for row in embeddings.tolist()],
      'pooled_norms': [_round(v) for v in pooled.norm(dim=1).tolist()],
      'bucket_range': BUCKET_RANGE,
      'buckets': buckets.tolist(),
      'model_safetensors_sha256': _sha256(os.path.join(checkpoint_dir, 'model.safetensors')),
      'versions': {'python': platform.python_version(), 'torch': torch.__version__,
                   'transformers': transformers.__version__,
                   'tokenizers': tokenizers.__version__},
  }


def main(argv) -> int:
  if len(argv) != 3:
    print(__doc__, file=sys.stderr)
    return 2
  data = reference(argv[1])
  with open(argv[2], 'w') as f:  # one top-level key a line
    f.write('{\n' + ',\n'.join(f'{json.dumps(k)}: {json.dumps(v)}' for k, v in data.items())
            + '\n}\n')
  print(f'wrote {argv[2]}: {len(data["texts"])} texts, {len(data["hidden"])} hidden-state '
        f'rows, versions {data["versions"]}')
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv))
