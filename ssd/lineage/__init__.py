"""Reading ML Metadata: runs, model lineage, diffs and graphs.

Modules, one job each:
  (pipelines/mlmd_store.py: connecting, SQLite or MySQL, and the small shared
   queries; the local runner reads its summary with them too)
  upstream.py  the lineage DAG above an artifact (MLMD lineage subgraph)
  resolve.py   model and run references (`42`, a URI, `latest-blessed`, `run:2`)
  runs.py      `ssd lineage runs`
  explain.py   `ssd lineage explain`
  diff.py      `ssd lineage diff`
  graph.py     `ssd lineage graph` (DOT; graphviz or matplotlib)
  text.py      text layouts of the JSON documents

Reports (`ssd run`) and tests import the shared queries from here.
"""

from pipelines.mlmd_store import _STATE  # noqa: F401  (tests compare execution states)
from pipelines.mlmd_store import custom_props  # noqa: F401
from pipelines.mlmd_store import execution_io  # noqa: F401
from pipelines.mlmd_store import execution_node  # noqa: F401
from pipelines.mlmd_store import execution_table  # noqa: F401
from pipelines.mlmd_store import latest_execution  # noqa: F401
from pipelines.mlmd_store import latest_output  # noqa: F401
from pipelines.mlmd_store import node_executions  # noqa: F401
from pipelines.mlmd_store import open_store  # noqa: F401
from pipelines.mlmd_store import producer  # noqa: F401
from ssd.lineage.upstream import describe  # noqa: F401
from ssd.lineage.graph import draw  # noqa: F401
