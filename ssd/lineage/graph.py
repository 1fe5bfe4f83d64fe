"""`ssd lineage graph <model> --output x.png|svg|dot`: the upstream DAG as a picture.

Node labels say what a reader looks for: executions show the pipeline node,
its round and state; models show their role (the trainer's `role`, or the
evaluator's selection) and the dev decision metric of their latest
evaluation; blessings show the decision; pseudo-labelled examples show how
many pairs were kept.

Rendering: the DOT text is always built. With graphviz's `dot` on PATH,
`.png`/`.svg` are rendered by it. Without it, the picture is drawn with
matplotlib (a layered layout, no crossing minimisation), so `--output x.png`
works on a fresh machine, and the DOT is written beside it with a message
saying how to render it with graphviz.
"""

import collections
import json
import os
import shutil
import subprocess
from typing import Any, Dict, List

from ssd.lineage import explain as X
from pipelines import mlmd_store as S
from ssd.lineage import upstream as U

FORMATS = ('png', 'svg', 'dot')
DECISION_METRIC = 'ndcg@10'
_EXEC_STYLE = 'shape=box, style="rounded,filled", fillcolor="#cfe2ff"'
_ART_STYLE = 'shape=note, style=filled, fillcolor="#fff3cd"'


def _count(value: Any) -> Any:
  """A count as an int (a KFP store keeps every int as a double)."""
  return int(value) if isinstance(value, float) and value.is_integer() else value


def _model_label(store, artifact, execution, names: S.Names) -> List[str]:
  kind = names.kind(execution) if execution else ''
  if kind.endswith(X.EVALUATOR_SUFFIX):
    props = names.artifact_props(artifact)
    source = X.model_named(store, props, X.EV.SOURCE_MODEL_PROPERTY, names, X.LEGACY_SOURCE_MODEL_ID)
    return [f'selected: {props.get("selected_role")} (#{source.id if source is not None else "?"})']
  if not kind.endswith(X.TRAINER_SUFFIX):
    return []
  role = X._json_prop(names.exec_props(execution), 'custom_config').get('role')  # pylint: disable=protected-access
  lines = [f'role: {role}']
  evals = X.evaluations_of(store, artifact, names)
  dev = evals[-1]['metrics'].get('dev', {}) if evals else {}
  # The plain score (what blessing compares by default), and the hybrid one
  # beside it when the model has a fitted BM25 weight (docs/design.md).
  plain = (dev.get(role) or {}).get(DECISION_METRIC)
  hybrid = (dev.get(f'{role}_hybrid') or {}).get(DECISION_METRIC)
  if plain is not None:
    line = f'dev {DECISION_METRIC} {plain:.4f}'
    if hybrid is not None and abs(hybrid - plain) > 5e-5:
      line += f' (hybrid {hybrid:.4f})'
    lines.append(line)
  return lines


def labels(store, graph: U.Graph, names: S.Names) -> Dict[str, List[str]]:
  out: Dict[str, List[str]] = {}
  for eid, e in graph.executions.items():
    node = graph.node_of[eid]
    head = node + (f' (round {U.round_of(node)})' if U.round_of(node) else '')
    out[f'e{eid}'] = [head, f'execution #{eid} · {S.state_name(e)}']
  for aid, a in graph.artifacts.items():
    kind = names.artifact_type_of(a)
    lines = [f'{kind} #{aid}']
    execution = graph.executions.get(graph.made_by.get(aid, -1))
    props = names.artifact_props(a)
    if kind == 'Model':
      lines += _model_label(store, a, execution, names)
    elif kind == 'ModelBlessing':
      lines.append('blessed' if props.get('blessed') else 'not blessed')
    elif kind == 'Examples' and 'total_kept' in props:
      lines.append(f'kept {_count(props["total_kept"])} of {_count(props.get("total_pairs_in"))} pairs')
    elif kind == 'Examples':
      counts = [f'{s} {_count(props[f"{s}_queries"])}q' for s in ('train', 'dev', 'unlabelled', 'test')
                if f'{s}_queries' in props]
      if counts:
        lines.append(', '.join(counts))
    elif kind == X.CHECKPOINT_TYPE:
      lines.append(f'{props.get("source")} sha256 {str(props.get("sha256"))[:12]}')
    out[f'a{aid}'] = lines
  return out


def to_dot(store, graph: U.Graph, names: S.Names) -> str:
  text = labels(store, graph, names)
  lines = ['digraph lineage {', '  rankdir=TB;', '  node [fontname="Helvetica", fontsize=10];',
           f'  label={json.dumps(f"Lineage of artifact #{graph.root}", ensure_ascii=False)};', '  labelloc=t;']
  for n in sorted(text):
    style = _EXEC_STYLE if n.startswith('e') else _ART_STYLE
    if n == f'a{graph.root}':
      style += ', penwidth=2'
    lines.append(f'  {n} [label={json.dumps(chr(10).join(text[n]), ensure_ascii=False)}, {style}];')
  for src, dst in graph.edges:
    lines.append(f'  {src} -> {dst};')
  lines.append('}')
  return '\n'.join(lines) + '\n'


def _draw_matplotlib(graph: U.Graph, text: Dict[str, List[str]], path: str, fmt: str) -> None:
  """Layered drawing (depth = longest path from a source), matplotlib only."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  parents: Dict[str, List[str]] = collections.defaultdict(list)
  for src, dst in graph.edges:
    parents[dst].append(src)
  depth: Dict[str, int] = {}

  def level(n: str) -> int:
    if n not in depth:
      depth[n] = 0
      depth[n] = 1 + max((level(p) for p in parents.get(n, [])), default=-1)
    return depth[n]

  nodes = sorted(text)
  for n in nodes:
    level(n)
  by_level: Dict[int, List[str]] = collections.defaultdict(list)
  for n in nodes:
    by_level[depth[n]].append(n)
  pos = {}
  for lv, ns in by_level.items():
    for i, n in enumerate(ns):
      pos[n] = (i - (len(ns) - 1) / 2.0, -lv)
  width = max(len(ns) for ns in by_level.values())
  fig, ax = plt.subplots(figsize=(max(8, 2.8 * width), max(6, 1.3 * len(by_level))))
  for src, dst in graph.edges:
    (x0, y0), (x1, y1) = pos[src], pos[dst]
    ax.annotate('', xy=(x1, y1 + 0.2), xytext=(x0, y0 - 0.2),
                arrowprops=dict(arrowstyle='->', color='0.5', lw=0.8))
  for n, (x, y) in pos.items():
    style = (dict(boxstyle='round', fc='#cfe2ff') if n.startswith('e') else
             dict(boxstyle='square', fc='#fff3cd', lw=2 if n == f'a{graph.root}' else 1))
    ax.text(x, y, '\n'.join(text[n]), ha='center', va='center', fontsize=6.5, bbox=style)
  ax.set_xlim(-width / 2.0 - 0.6, width / 2.0 + 0.6)
  ax.set_ylim(-max(by_level) - 0.6, 0.6)
  ax.set_axis_off()
  ax.set_title(f'Lineage of artifact #{graph.root} (blue: executions, yellow: artifacts)')
  fig.savefig(path, format=fmt, dpi=110, bbox_inches='tight')
  plt.close(fig)


def render(store, artifact_id: int, output: str) -> Dict[str, Any]:
  """Writes the graph to `output` (format from its extension); says how."""
  fmt = os.path.splitext(output)[1].lstrip('.').lower()
  if fmt not in FORMATS:
    raise ValueError(f'--output must end in one of {", ".join("." + f for f in FORMATS)}: {output}')
  names = S.Names(store)
  graph = U.upstream(store, artifact_id, names)
  dot_text = to_dot(store, graph, names)
  result = {'schema_version': S.SCHEMA_VERSION, 'kind': 'graph', 'model_id': artifact_id,
            'output': os.path.abspath(output), 'format': fmt, 'dot': None,
            'nodes': len(graph.artifacts) + len(graph.executions), 'edges': len(graph.edges)}
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  if fmt == 'dot':
    with open(output, 'w', encoding='utf-8') as f:
      f.write(dot_text)
    result.update(renderer='none', dot=result['output'], message=f'DOT written to {output}')
    return result
  dot_bin = shutil.which('dot')
  if dot_bin:
    subprocess.run([dot_bin, f'-T{fmt}', '-o', output], input=dot_text, text=True, check=True)
    result.update(renderer='graphviz', message=f'{fmt.upper()} rendered by graphviz: {output}')
    return result
  dot_path = os.path.splitext(output)[0] + '.dot'
  with open(dot_path, 'w', encoding='utf-8') as f:
    f.write(dot_text)
  _draw_matplotlib(graph, labels(store, graph, names), output, fmt)
  result.update(renderer='matplotlib', dot=os.path.abspath(dot_path),
                message=(f'graphviz `dot` not found: drew {output} with the built-in layered layout; '
                         f'the DOT is in {dot_path} (install graphviz and run '
                         f'`dot -T{fmt} {dot_path} -o {output}` for a better layout)'))
  return result


def draw(store, artifact_id: int, path: str) -> str:
  """The old `ssd lineage --graph=FILE.png` entry point: a picture at `path`."""
  render(store, artifact_id, path)
  return path
