"""The connectome graph in Neo4j: schema, store, loaders, checks and named queries.

``GraphStore`` is the one way cxgraph talks to Neo4j; see docs/graph-schema.md
for the model (neuPrint core + supervoxel lineage + versions + provenance).
"""

from cxgraph.graph.store import GraphStore

__all__ = ["GraphStore"]
