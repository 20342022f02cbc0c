"""Analyst Cypher in worker processes of its own, at a lower CPU priority.

A big analyst result costs the API process seconds of Python (the driver decodes every
record, ``plain`` converts it, JSON encodes it: about 3.5 s per 100 000 small rows on the
2-core test machine). On threads that work holds the GIL the event loop needs, so one
token fetching large results slowed every GraphQL read. In a worker process, niced by
``[api] cypher_worker_nice``, it competes only for CPU, and the OS gives the API and Neo4j
the first share.

``AnalystWorkers(n)`` runs at most ``n`` queries at once, each in a worker process
(``python -m cxgraph.api.cypher_worker``, started on first use, with its own Neo4j
driver). A worker is a plain subprocess, not ``multiprocessing``: that would re-run an
unguarded ``__main__`` script of whoever embeds the API (``cxgraph.Client``). A worker
that dies under a query is a ``GraphUnavailable`` for that query; the next one starts a
new worker. A worker acknowledges each query when it takes it, so one that died while idle
(killed between queries) costs nothing: the query goes to a fresh worker instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection as Pipe
from typing import Any

from cxgraph.errors import CxgraphError, GraphError, GraphUnavailable, ResultTooLarge
from cxgraph.graph.store import GraphStore, QueryResult
from cxgraph.neo4j_server import Connection

TAKEN = "taken"  # a worker's receipt for a query: from here on the query runs


class _GoneBeforeTaken(Exception):
    """The worker process was gone before it took the query: the query never ran."""


class _Worker:
    """One worker process and the two pipes to it."""

    def __init__(self, nice: int) -> None:
        to_child, from_parent = os.pipe()
        to_parent, from_child = os.pipe()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cxgraph.api.cypher_worker", str(to_child), str(from_child),
             str(nice)],
            pass_fds=(to_child, from_child), stdin=subprocess.DEVNULL, env=env)
        os.close(to_child)
        os.close(from_child)
        self.send = Pipe(from_parent, readable=False)
        self.recv = Pipe(to_parent, writable=False)

    def call(self, args: tuple) -> Any:
        try:
            self.send.send(args)
            self.recv.recv()  # TAKEN
        except (EOFError, OSError) as e:
            raise _GoneBeforeTaken from e
        ok, value = self.recv.recv()
        if not ok:
            raise value
        return value

    def close(self) -> None:
        self.send.close()
        self.recv.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class AnalystWorkers:
    """At most ``size`` analyst queries at once, each in a worker process of its own,
    ``nice`` below the caller's CPU priority."""

    def __init__(self, size: int, nice: int):
        self.size, self.nice = size, nice
        self._threads = ThreadPoolExecutor(max_workers=size,
                                           thread_name_prefix="cxgraph-api-cypher")
        self._local = threading.local()  # each thread's worker
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []

    def pids(self) -> list[int]:
        """The live workers' process ids."""
        with self._lock:
            return [w.proc.pid for w in self._workers if w.proc.poll() is None]

    def warm(self) -> None:
        """Start the workers now (``cxgraph serve``), not on the first queries."""
        for _ in range(self.size):
            self._threads.submit(self._worker)

    async def run(self, conn: Connection, database: str, query: str, params: dict[str, Any],
                  timeout_s: float, max_rows: int, max_bytes: int,
                  convert: Callable[[Any], Any] | None, as_json: bool) -> QueryResult | bytes:
        """``run`` (below) in a worker; ``convert`` must be a module-level function."""
        args = (conn, database, query, params, timeout_s, max_rows, max_bytes, convert,
                as_json)
        return await asyncio.get_running_loop().run_in_executor(
            self._threads, self._call, args, query)

    def _worker(self) -> _Worker:
        worker = getattr(self._local, "worker", None)
        if worker is not None and worker.proc.poll() is not None:  # died while idle
            self._drop(worker)
            worker = None
        if worker is None:
            worker = self._local.worker = _Worker(self.nice)
            with self._lock:
                self._workers.append(worker)
        return worker

    def _call(self, args: tuple, query: str) -> Any:
        try:
            try:
                return self._call_once(args)
            except _GoneBeforeTaken:  # died while idle: the query never ran, so once more
                return self._call_once(args)
        except _GoneBeforeTaken as e:
            raise GraphUnavailable(
                "could not start an analyst worker process (out of memory, or too many "
                f"processes?)\nquery: {query.strip()}") from e
        except (EOFError, OSError) as e:  # the process died under the query
            raise GraphUnavailable(
                "the analyst worker running this query stopped (killed, or out of memory); "
                f"run it again, or narrow it (LIMIT, fewer columns)\nquery: {query.strip()}"
            ) from e

    def _call_once(self, args: tuple) -> Any:
        worker = self._worker()
        try:
            return worker.call(args)
        except (_GoneBeforeTaken, EOFError, OSError):
            self._drop(worker)
            raise

    def _drop(self, worker: _Worker) -> None:
        self._local.worker = None
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
        worker.proc.kill()
        worker.proc.wait()

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            workers, self._workers = self._workers, []
        for w in workers:
            w.close()


# --- in the worker process ------------------------------------------------------------
_store: GraphStore | None = None  # the worker's own store, made on its first query


def run(conn: Connection, database: str, query: str, params: dict[str, Any],
        timeout_s: float, max_rows: int, max_bytes: int,
        convert: Callable[[Any], Any] | None, as_json: bool) -> QueryResult | bytes:
    """``GraphStore.analyst``; with ``as_json`` the response body of ``POST /cypher``
    (``{"columns", "data", "truncated"}`` as JSON bytes, at most ``max_bytes``)."""
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
        except CxgraphError as e:  # Neo4j down: the same answer as a query cut off
            raise GraphUnavailable(str(e)) from None
    return _store


def main(argv: list[str]) -> None:
    """Answer ``(ok, value)`` to each ``run`` argument tuple, until the parent hangs up."""
    os.nice(int(argv[2]))
    inbox, outbox = Pipe(int(argv[0]), writable=False), Pipe(int(argv[1]), readable=False)
    while True:
        try:
            args = inbox.recv()
        except EOFError:
            return
        outbox.send(TAKEN)
        try:
            outbox.send((True, run(*args)))
        except CxgraphError as e:
            outbox.send((False, e))
        except Exception as e:  # noqa: BLE001 - a bug here is a clear error there
            outbox.send((False, GraphError(f"the analyst worker failed: "
                                           f"{type(e).__name__}: {e}")))


if __name__ == "__main__":
    main(sys.argv[1:])
