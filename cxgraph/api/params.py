"""Settings of the GraphQL / HTTP API (section ``[api]`` of ``cxgraph.toml``)."""

from __future__ import annotations

import dataclasses

from cxgraph.params import Params


@dataclasses.dataclass(frozen=True)
class ApiParams(Params):
    """Limits and access of ``cxgraph serve``. Every limit names itself in its error."""

    host: str = "127.0.0.1"
    port: int = 8700
    anonymous_role: str = ""  # "" = anonymous access off; "read" lets requests without a token read
    max_first: int = 1000  # largest `first` (page size) of any list field
    max_ids: int = 1000  # largest id list argument (e.g. connections(pre, post))
    max_cost: int = 50000  # largest estimated number of result objects of one request
    max_depth: int = 10  # deepest field nesting of a query (introspection not counted)
    max_tokens: int = 5000  # largest query document, in GraphQL tokens
    max_aliases: int = 30  # most aliases in one query
    max_path_hops: int = 6  # longest shortestPath searched
    timeout_s: float = 10.0  # Neo4j transaction timeout of every API database call (seconds)
    cypher_max_rows: int = 100000  # rows returned by POST /cypher before it is cut off
