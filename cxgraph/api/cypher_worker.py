"""Analyst Cypher in worker processes of its own, at a lower CPU priority.

A big analyst result costs the API process seconds of Python (the driver decodes every
record, ``plain`` converts it, JSON encodes it: about 3.5 s per 100 000 rows). On threads
that work holds the GIL the event loop needs, so one token fetching large results slowed
every GraphQL read (p99 of a trivial query 7x that of an idle server). In a worker
process, niced by ``NICE``, it competes only for CPU, and the OS gives the API and Neo4j
the first share. Each worker runs one query at a time with its own Neo4j driver.

Only this module and ``cxgraph.graph`` are imported by a worker (spawned, not forked:
the API process has threads).
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from cxgraph.errors import GraphUnavailable, Neo4jServerError, ResultTooLarge
from cxgraph.graph.store import GraphStore, QueryResult
from cxgraph.neo4j_server import Connection

NICE = 5  # how much lower a worker's CPU priority is than the API process's

_store: GraphStore | None = None  # the worker's own store, made on its first query


def pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` spawned processes (started on demand) that run ``run``."""
    return ProcessPoolExecutor(max_workers=workers, initializer=_lower_priority,
                               mp_context=multiprocessing.get_context("spawn"))


def _lower_priority() -> None:
    os.nice(NICE)


def warm() -> int:
    """Nothing (a worker's first task: it starts the process ahead of a query)."""
    return os.getpid()


def run(conn: Connection, database: str, query: str, params: dict[str, Any],
        timeout_s: float, max_rows: int, max_bytes: int,
        convert: Callable[[Any], Any] | None, as_json: bool) -> QueryResult | bytes:
    """``GraphStore.analyst`` in this worker; with ``as_json`` the response body of
    ``POST /cypher`` (``{"columns", "data", "truncated"}`` as JSON bytes, at most
    ``max_bytes``) instead of the result."""
    result = _worker_store(conn, database).analyst(
        query, params, timeout_s, max_rows=max_rows, max_bytes=max_bytes, convert=convert)
    if not as_json:
        return result
    body = json.dumps({"columns": result.columns, "data": result.rows,
                       "truncated": result.truncated},
                      separators=(",", ":"), default=str).encode()
    if len(body) > max_bytes:
        raise ResultTooLarge(
            f"the response ({len(body)} bytes) is larger than the response-size limit of "
            f"{max_bytes} bytes; return fewer or smaller values (LIMIT, fewer columns, ids "
            f"instead of whole nodes)\nquery: {query.strip()}")
    return body


def _worker_store(conn: Connection, database: str) -> GraphStore:
    global _store
    if _store is None or _store.conn != conn or _store.database != database:
        if _store is not None:
            _store.close()
            _store = None
        try:
            _store = GraphStore(conn, database=database)
        except Neo4jServerError as e:  # Neo4j down: the same answer as a query cut off
            raise GraphUnavailable(str(e)) from None
    return _store
