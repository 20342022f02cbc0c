"""The API's path to Neo4j: the graph helper's ``GraphStore`` read path, off the event loop.

Every call runs one named query (``queries/<name>.cypher``, parsed by
``cxgraph.graph.queries``) through
``GraphStore.read`` (READ-mode transaction, server-side timeout) in a thread
pool, counts it in ``round_trips`` and turns a Neo4j transaction timeout into
the API's ``time`` limit error. Analyst Cypher (``POST /cypher``, the neuPrint door's
custom queries) runs in worker processes of its own (``cypher_worker.py``; ``[api]
cypher_db_threads`` of them, at a lower CPU priority), so however many slow or large
analyst queries are running, GraphQL reads keep their ``graphql_db_threads`` and the
event loop its GIL.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cxgraph.api import cypher_worker
from cxgraph.api.limits import time_limit_error
from cxgraph.api.params import ApiParams
from cxgraph.errors import GraphError, QueryTimeout
from cxgraph.graph import queries
from cxgraph.graph.store import QueryResult

log = logging.getLogger(__name__)

class ApiGraph:
    """Async reads of named queries for one server (shared by all requests)."""

    def __init__(self, store: Any, params: ApiParams):
        self.store = store
        self.params = params
        self.round_trips = 0
        self._pool = ThreadPoolExecutor(max_workers=params.graphql_db_threads,
                                        thread_name_prefix="cxgraph-api-db")
        self.analysts = cypher_worker.AnalystWorkers(params.cypher_db_threads,
                                                       params.cypher_worker_nice)

    def warm(self) -> None:
        """Start the analyst workers now (``cxgraph serve``), not on the first query."""
        self.analysts.warm()

    async def read(self, name: str, params: Mapping[str, Any], what: str) -> list[dict[str, Any]]:
        """Rows (as dicts) of the named query ``name`` (its header's defaults filled in, unknown
        parameters refused); ``what`` names the API field in errors."""
        q = queries.get(name)
        return await self.read_text(q.text, q.bind(dict(params)), what)

    async def read_text(self, text: str, params: Mapping[str, Any],
                        what: str) -> list[dict[str, Any]]:
        self.round_trips += 1
        loop = asyncio.get_running_loop()
        call = functools.partial(self.store.read, text, dict(params), self.params.timeout_s)
        try:
            result = await loop.run_in_executor(self._pool, call)
        except GraphError as e:
            if is_timeout(e):
                raise time_limit_error(what, self.params.timeout_s) from e
            raise
        return result.records()

    async def analyst(self, query: str, params: Mapping[str, Any], timeout_s: float,
                      convert: Callable[[Any], Any] | None = None) -> QueryResult:
        """The graph store's read-only analyst entry (plan check + READ transaction), with
        the row and response-size caps of ``[api]``, in an analyst worker process
        (``convert``: a module-level function, so that it can be sent there)."""
        return await self._analyst(query, params, timeout_s, convert, as_json=False)

    async def analyst_json(self, query: str, params: Mapping[str, Any],
                           timeout_s: float) -> bytes:
        """``analyst``, answered as the JSON body of ``POST /cypher`` (encoded in the
        worker, at most ``max_response_bytes``)."""
        return await self._analyst(query, params, timeout_s, None, as_json=True)

    async def _analyst(self, query: str, params: Mapping[str, Any], timeout_s: float,
                       convert: Callable[[Any], Any] | None, as_json: bool) -> Any:
        self.round_trips += 1
        return await self.analysts.run(
            self.store.conn, self.store.database, query, dict(params), timeout_s,
            self.params.cypher_max_rows, self.params.max_response_bytes, convert, as_json)

    async def write(self, name: str, params: Mapping[str, Any]) -> dict[str, int]:
        self.round_trips += 1
        loop = asyncio.get_running_loop()
        q = queries.get(name)
        call = functools.partial(self.store.write, q.text, q.bind(dict(params)))
        return await loop.run_in_executor(self._pool, call)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.analysts.close()


def is_timeout(e: BaseException) -> bool:
    if isinstance(e, QueryTimeout):
        return True
    cause = e.__cause__
    code = getattr(cause, "code", "") or ""
    return "TransactionTimedOut" in code or "TransactionTimedOut" in str(e)
