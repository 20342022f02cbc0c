"""cxgraph: connectome reconstruction whose results live in a Neo4j graph.

Layers L1–L4 live in the ``pipeline`` package; this package holds the store
and the service: configuration and workspace, the Neo4j server manager and
graph store, the provenance store, the API and the command line.
"""

__version__ = "0.1.0"
