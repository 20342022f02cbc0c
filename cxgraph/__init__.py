"""cxgraph: connectome reconstruction whose results live in a Neo4j graph.

Layers L1–L4 live in the ``pipeline`` package; this package holds the store
and the service: configuration and workspace, the Neo4j server manager and
graph store, the provenance store, the API and the command line.

``from cxgraph import Client`` is the analysts' client (DataFrames from the API;
docs/client.md). It is imported on first use, so ``import cxgraph`` stays light.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Client", "ClientError"]


def __getattr__(name: str) -> Any:  # lazy: pandas loads only for the client
    if name in __all__:
        import cxgraph.client

        return getattr(cxgraph.client, name)
    raise AttributeError(f"module 'cxgraph' has no attribute {name!r}")
