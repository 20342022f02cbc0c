"""The connectome graph in Neo4j: schema, store, loaders, checks and named queries.

``GraphStore`` is the one way cxgraph talks to Neo4j; see docs/graph-schema.md
for the model (neuPrint core + supervoxel lineage + versions + provenance).
"""

from typing import Any

__all__ = ["GraphStore"]


def __getattr__(name: str) -> Any:  # lazy: importing cxgraph.graph.params needs no driver
    if name == "GraphStore":
        from cxgraph.graph.store import GraphStore

        return GraphStore
    raise AttributeError(name)
