"""Settings of the GraphQL / HTTP API (section ``[api]`` of ``cxgraph.toml``)."""

from __future__ import annotations

import dataclasses

from cxgraph.errors import ConfigError
from cxgraph.params import Params


@dataclasses.dataclass(frozen=True)
class ApiParams(Params):
    """Limits and access of ``cxgraph serve``. Every limit names itself in its error."""

    host: str = "127.0.0.1"
    port: int = 8700
    # the neuPrint front door (docs/neuprint.md): HTTPS on its own port (0 = off), with this
    # certificate and key (PEM paths; "" = WS/tls/*.pem, self-signed, made on first use)
    neuprint_port: int = 8701
    tls_cert: str = ""
    tls_key: str = ""
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
    max_response_bytes: int = 16 << 20  # largest response body (POST /cypher stops the query)
    # per token (cxgraph/api/quota.py); anonymous callers share one quota
    max_inflight_per_token: int = 8  # requests running at once, all routes
    cypher_inflight_per_token: int = 1  # POST /cypher queries running at once
    rate_per_s: float = 50.0  # sustained requests per second (0 = no rate limit)
    rate_burst: int = 100  # requests allowed at once above the sustained rate
    # database threads: GraphQL reads get their own; analyst Cypher (all tokens together)
    # runs at most cypher_db_threads queries at once, each in a worker process of its own
    # at a lower CPU priority (cxgraph/api/cypher_worker.py), so GraphQL keeps its share
    graphql_db_threads: int = 12
    cypher_db_threads: int = 2
    # how far below the API's CPU priority the analyst workers run (Unix nice, 0-19)
    cypher_worker_nice: int = 15
    max_annotation_chars: int = 256  # annotateNeuron status/type, flagRegion name/flags
    max_reason_chars: int = 4000  # flagRegion reason

    def __post_init__(self) -> None:
        positive = ("max_first", "max_ids", "max_cost", "max_depth", "max_tokens",
                    "max_aliases", "max_path_hops", "cypher_max_rows", "max_response_bytes",
                    "max_inflight_per_token", "cypher_inflight_per_token", "rate_burst",
                    "graphql_db_threads", "cypher_db_threads", "max_annotation_chars",
                    "max_reason_chars")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"api.{name}: expected a positive number, got "
                                  f"{getattr(self, name)!r}")
        if not 0 <= self.cypher_worker_nice <= 19:
            raise ConfigError(f"api.cypher_worker_nice: expected 0-19 (Unix nice), got "
                              f"{self.cypher_worker_nice!r}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("api.tls_cert and api.tls_key go together: give both, or neither "
                              "for a generated self-signed certificate")
        if not 0 <= self.neuprint_port < 65536:
            raise ConfigError(f"api.neuprint_port: expected 0 (off) or a port, got "
                              f"{self.neuprint_port!r}")
        if not self.timeout_s > 0 or self.rate_per_s < 0:
            raise ConfigError(f"api.timeout_s must be > 0 and api.rate_per_s >= 0; got "
                              f"{self.timeout_s!r}, {self.rate_per_s!r}")
