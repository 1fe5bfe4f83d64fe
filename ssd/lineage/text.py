"""Text renderings of the lineage JSON (`--format=text`, the default).

The JSON is the contract (docs/lineage.md); these functions only lay it out
for a terminal, so every fact printed here is also in the JSON.
"""

import json
from typing import Any, Dict, List


def _short(value: Any, width: int = 100) -> str:
  text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
  return text if len(text) <= width else text[:width - 3] + '...'


def _plain(value: Any) -> Any:
  """An artifact property's whole-number float as an int (a KFP store keeps every int as a double)."""
  return int(value) if isinstance(value, float) and value.is_integer() else value


def _id(value: Any) -> str:
  return '?' if value is None else str(value)


def runs(doc: Dict[str, Any]) -> str:
  if not doc['runs']:
    return 'no pipeline runs in this store'
  lines = []
  for r in doc['runs']:
    steps = ', '.join(f'{n} {k.lower()}' for k, n in r['steps'].items())
    lines.append(f'#{r["index"]} {r["run_id"]}  {r["pipeline"]}  {r["started"]}  '
                 f'{r["status"].upper()}  ({steps})')
    if r['unfinished']:
      lines.append(f'    unfinished: {", ".join(r["unfinished"])}')
    if r['cached']:
      lines.append(f'    cached: {len(r["cached"])} steps; executed: {", ".join(r["executed"]) or "none"}')
    cfg = ', '.join(f'{k}={v}' for k, v in r['config'].items() if v not in (None, ''))
    if cfg:
      lines.append(f'    config: {cfg}')
    d = r['final_decision']
    if d:
      pushed = '' if d.get('pushed') is None else (' · pushed' if d['pushed'] else ' · not pushed')
      lines.append(f'    decision ({d["node"]}): {"BLESSED" if d["blessed"] else "NOT BLESSED"}{pushed}')
      lines.append(f'      {_short(d["reason"], 160)}')
  return '\n'.join(lines)


def _model(m: Dict[str, Any]) -> str:
  return f'{m["type"]}#{m["id"]} ({m["node"] or "external"}, run {m["run"] or "?"})'


def _checkpoint(c: Dict[str, Any]) -> str:
  if c is None:
    return 'unknown'
  if c.get('source') is None:
    return 'random initialisation (model.checkpoint: null)'
  text = f'{c.get("source")}'
  text += f' sha256={c["sha256"]}' if c.get('sha256') else ' (sha256 not recorded)'
  if c.get('keep_layers'):
    text += f', first {c["keep_layers"]} layers'
  if c.get('warm_start_from'):
    text += f', warm start from {c["warm_start_from"]}'
  return text


_GROUPS = ('train', 'dev', 'test', 'unlabelled', 'source')


def _grouped_properties(props: Dict[str, Any]) -> List[str]:
  """Every property; per-split counters (`train_pairs`, ...) one line per split."""
  groups: Dict[str, List[str]] = {}
  lines = []
  for key, value in props.items():
    prefix = key.split('_', 1)[0]
    if prefix in _GROUPS and '_' in key and isinstance(value, (int, float)):
      groups.setdefault(prefix, []).append(f'{key.split("_", 1)[1]}={_plain(value)}')
    else:
      lines.append(f'  {key}: {_short(_plain(value), 120)}')
  for prefix in _GROUPS:
    if prefix in groups:
      lines.append(f'  {prefix}: {", ".join(groups[prefix])}')
  return lines


def explain(doc: Dict[str, Any]) -> str:
  m = doc['model']
  lines = [f'model {_model(m)}', f'  uri: {m["uri"]}', '', 'teacher chain (this model first):']
  for step in doc['teacher_chain']:
    mm = step['model']
    if step['kind'] == 'selected':
      lost = (f'; candidate Model#{step["candidate_model_id"]} not selected'
              if step.get('candidate_model_id') not in (None, step['source_model_id']) else '')
      source = (f'Model#{step["source_model_id"]}' if step['source_model_id'] is not None
                else f'{step.get("source_model_uri")} (no artifact of this store)')
      lines.append(f'  {mm["type"]}#{mm["id"]} = {step["selected_role"]} {source}, '
                   f'selected by {mm["node"]}{lost}')
    elif step['kind'] == 'pushed':
      lines.append(f'  {mm["type"]}#{mm["id"]} pushed by {mm["node"]}')
    elif step['kind'] == 'trained':
      head = f'  Model#{mm["id"]} {step["role"]} ({mm["node"]}, {step["architecture"]}, {step["epochs"]} epochs'
      head += f', mode {step["mode"]})' if step.get('mode') else ')'
      lines.append(head)
      labels = step.get('labels') or {}
      if labels.get('source') == 'teacher':
        fused = labels.get('first_stage_weight')
        lines.append(f'      labels: pseudo-labels by {labels["node"]} from teacher Model#{_id(step["teacher_model_id"])}'
                     + (f' + {fused:g} x first stage' if fused is not None else '')
                     + (' (round skipped)' if labels.get('skipped') else ''))
        counts = labels.get('counts') or {}
        if counts:
          lines.append(f'      kept {_plain(counts.get("total_kept"))} of {_plain(counts.get("total_pairs_in"))} '
                       f'pairs; selection {_short(labels["selection"], 120)}')
      else:
        lines.append(f'      labels: true labels ({labels.get("node")})')
      if step.get('objective'):
        lines.append(f'      objective: {_short(step["objective"], 140)}')
      if step.get('noise') and any(v for v in step['noise'].values()):
        lines.append(f'      noise: {_short(step["noise"], 140)}')
      if step.get('base_model_id'):
        lines.append(f'      base model: Model#{step["base_model_id"]}'
                     f'{" (warm start)" if step.get("warm_start") else ""}')
      lines.append(f'      starts from: {_checkpoint(step["checkpoint"])}')
    else:
      lines.append(f'  {mm["type"]}#{mm["id"]} ({step["kind"]})')
  lines += ['', f'pretrained checkpoint: {_checkpoint(doc["checkpoint"])}']
  for d in doc['data']:
    ex = d['examples']
    lines += ['', f'data: Examples#{ex["id"]} ({ex["node"]}) {d["parameters"].get("data_format")}:'
                  f'{d["parameters"].get("data_path")}']
    lines += _grouped_properties(ex['properties'])
    u = d['unlabelled']
    lines.append(f'  unlabelled corpus: title queries={u["title_queries"]}, pairs file={u["pairs_file"]}, '
                 f'fingerprint={u["fingerprint"]}')
  s = doc['settings']
  lines += ['', f'settings: mode={s["mode"]}, rounds={len(s["rounds"])}']
  for name, r in s['rounds'].items():
    lines.append(f'  {name} ({r["node"]}): mode={r["mode"]}, warm_start={r["warm_start"]}, '
                 f'noise {_short(r["noise"], 110)}')
  for node, sel in s['pseudo_label_selection'].items():
    lines.append(f'  selection {node}: {_short(sel, 140)}')
  if s['objective']:
    lines.append(f'  objective: {_short(s["objective"], 140)}')
  lines.append('')
  if not doc['evaluations']:
    lines.append('evaluations: none')
  for ev in doc['evaluations']:
    lines.append(f'evaluation {ev["node"]} (execution #{ev["execution_id"]}): '
                 f'{"BLESSED" if ev["blessed"] else "NOT BLESSED"}')
    lines.append(f'  reason: {ev["reason"]}')
    if ev.get('production'):
      lines.append(f'  compared with the model in production: {_production(ev["production"])}')
    for split, by_role in ev['metrics'].items():
      for role, values in by_role.items():
        shown = ', '.join(f'{k} {v:.4f}' for k, v in values.items()
                          if k in ('ndcg@5', 'ndcg@10', 'mrr@10', 'map'))
        lines.append(f'  {split:<5} {role:<28} {shown}')
  for p in doc['pushes']:
    lines.append(f'push {p["node"]} (execution #{p["execution_id"]}, run {p.get("run") or "?"}): '
                 f'{"pushed to " + str(p["destination"]) if p["pushed"] else "not pushed"}')
  if not doc['pushes']:
    lines.append('push: none')
  return '\n'.join(lines)


def _production(p: Dict[str, Any]) -> str:
  if not p.get('directory'):
    return f'none ({p.get("note")}; push destination {p.get("push_destination")})'
  if p.get('model'):
    pusher = p['pusher']
    return (f'{_model(p["model"])}, pushed by {pusher["node"]} (execution #{pusher["execution_id"]}, '
            f'run {pusher["run"] or "?"}) to {p["directory"]}')
  return f'{p["directory"]} ({p.get("note")})'


def diff(doc: Dict[str, Any]) -> str:
  lines = [f'A: {doc["a"]["label"]}', f'B: {doc["b"]["label"]}']
  if doc['only_in_a'] or doc['only_in_b']:
    lines.append(f'nodes only in A: {", ".join(doc["only_in_a"]) or "-"}; '
                 f'only in B: {", ".join(doc["only_in_b"]) or "-"}')
  sections: List = [('parameters', doc['parameters']), ('data', doc['data']),
                    ('inputs', doc['inputs']), ('metrics', doc['metrics'])]
  for title, rows in sections:
    lines.append(f'{title}: {"no change" if not rows else ""}'.rstrip())
    for r in rows:
      delta = f'  ({r["delta"]:+.4f})' if isinstance(r.get('delta'), float) else ''
      lines.append(f'  {r["node"]}.{r["key"]}: {_short(r["a"], 60)} -> {_short(r["b"], 60)}{delta}')
  lines.append(f'states: {"no change" if not doc["states"] else ""}'.rstrip())
  for r in doc['states']:
    lines.append(f'  {r["node"]}: {r["a"]} -> {r["b"]}')
  lines.append(f'decisions: {"no change" if not doc["decisions"] else ""}'.rstrip())
  for r in doc['decisions']:
    lines += [f'  {r["node"]}:', f'    A: {_short(r["a"], 400)}', f'    B: {_short(r["b"], 400)}']
  return '\n'.join(lines)


def graph(doc: Dict[str, Any]) -> str:
  return f'{doc["message"]} ({doc["nodes"]} nodes, {doc["edges"]} edges)'
