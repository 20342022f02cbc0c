"""``GraphStore``: the one way cxgraph reads and writes Neo4j.

- ``apply_schema()`` runs ``schema/neo4j/NNN_*.cypher`` in order (every statement
  is ``IF NOT EXISTS``) and records each file as ``(:SchemaMigration {version,
  name, sha256})``; the highest version is the applied schema version.
- ``write_batches(query, rows)`` sends ``rows`` in batches of ``batch_size`` to a
  query that starts ``UNWIND $rows AS row`` and MERGEs on unique keys, so a
  re-run changes nothing.
- ``read(query, params)`` runs a read with a server-side transaction timeout.
- ``analyst(query, params)`` is the read-only entry for people: the query is
  planned first (``EXPLAIN``) and refused unless its plan passes the policy of
  ``cxgraph.graph.readonly`` (reads only; no LOAD CSV, no other users'
  transactions, allowlisted procedures and functions), then run once (no retries)
  in a READ-mode transaction with a timeout, so a write fails twice over; its
  result is streamed and cut at ``max_rows`` / refused past ``max_bytes``.

Every driver error is re-raised as ``GraphError`` (or a subclass saying which:
timeout, terminated, Neo4j unavailable) carrying the query text.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import neo4j
import neo4j.exceptions
import neo4j.graph
import neo4j.spatial

from cxgraph import resources
from cxgraph.errors import (
    GraphError,
    GraphUnavailable,
    QueryRefused,
    QueryTerminated,
    QueryTimeout,
    ResultTooLarge,
)
from cxgraph.graph import readonly
from cxgraph.neo4j_server import Connection

log = logging.getLogger(__name__)

_SCHEMA_FILE = re.compile(r"^(\d{3})_[a-z0-9_]+\.cypher$")


@dataclass(frozen=True)
class SchemaFile:
    version: int
    name: str
    path: Path
    sha256: str
    statements: tuple[str, ...]


@dataclass(frozen=True)
class QueryResult:
    """Columns and rows of a read; values are plain Python (see ``plain``)."""

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = False  # more rows existed than the entry's row cap

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]


def schema_files(schema_dir: Path | None = None) -> list[SchemaFile]:
    """The schema files in apply order; statements split on ``;`` at line ends."""
    schema_dir = Path(schema_dir or resources.schema_dir("neo4j"))
    files = []
    for path in sorted(schema_dir.glob("*.cypher")):
        m = _SCHEMA_FILE.match(path.name)
        if not m:
            raise GraphError(f"{path}: schema files are named NNN_words.cypher, "
                             "e.g. 005_regions.cypher")
        text = path.read_text()
        files.append(SchemaFile(int(m.group(1)), path.stem, path,
                                hashlib.sha256(text.encode()).hexdigest(), split_statements(text)))
    versions = [f.version for f in files]
    if len(set(versions)) != len(versions):
        raise GraphError(f"{schema_dir}: two schema files share a number: {versions}")
    if not files:
        raise GraphError(f"no schema files (NNN_*.cypher) in {schema_dir}")
    return files


def split_statements(text: str) -> tuple[str, ...]:
    """Cypher statements of a file: ``//`` comment lines dropped, split on a final ``;``."""
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("//")]
    out, cur = [], []
    for ln in lines:
        cur.append(ln)
        if ln.rstrip().endswith(";"):
            stmt = "\n".join(cur).strip().rstrip(";").strip()
            if stmt:
                out.append(stmt)
            cur = []
    rest = "\n".join(cur).strip()
    if rest:
        out.append(rest)
    return tuple(out)


def plain(value: Any) -> Any:
    """Driver values as plain Python: nodes/relationships as property dicts (with
    ``_labels`` / ``_type``), points as ``[x, y, z]`` (neuPrint order), paths as lists."""
    if isinstance(value, neo4j.graph.Node):
        return {"_labels": sorted(value.labels), **{k: plain(v) for k, v in value.items()}}
    if isinstance(value, neo4j.graph.Relationship):
        return {"_type": value.type, **{k: plain(v) for k, v in value.items()}}
    if isinstance(value, neo4j.graph.Path):
        return [plain(n) for n in value.nodes]
    if isinstance(value, neo4j.spatial.Point):
        return list(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if hasattr(value, "iso_format"):  # neo4j.time types
        return value.iso_format()
    return value


def batched(rows: Iterable[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    batch: list[Mapping[str, Any]] = []
    for r in rows:
        batch.append(r)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class GraphStore:
    """A Neo4j database seen through cxgraph.

    >>> store = GraphStore(conn)                      # doctest: +SKIP
    >>> store.apply_schema()                          # doctest: +SKIP
    >>> store.read("MATCH (n:Neuron) RETURN count(n) AS n").rows   # doctest: +SKIP
    [[0]]
    """

    def __init__(
        self,
        conn: Connection,
        database: str = "neo4j",
        batch_size: int = 5000,
        query_timeout_s: float = 30.0,
        retry_s: float | None = None,
    ):
        self.conn = conn
        self.database = database
        self.batch_size = int(batch_size)
        self.query_timeout_s = float(query_timeout_s)
        self.driver = conn.driver(retry_s=retry_s)  # retry_s: the driver's retry budget

    @classmethod
    def for_workspace(cls, ws: Any, start: bool = True) -> GraphStore:
        """The store of a workspace's Neo4j, with its ``[neo4j]`` batch size and timeout."""
        from cxgraph.neo4j_server import connect

        p = ws.config["neo4j"]
        return cls(connect(ws, start=start), batch_size=p.batch_size,
                   query_timeout_s=p.query_timeout_s, retry_s=p.retry_s)

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- schema --------------------------------------------------------------
    def apply_schema(self, schema_dir: Path | None = None) -> list[int]:
        """Apply every schema file in order; return the versions newly recorded.

        Statements are ``IF NOT EXISTS``, so applying twice changes nothing. A
        file whose text changed after it was recorded is re-applied and its new
        hash recorded, with a warning (add a new file instead of editing one).
        """
        files = schema_files(schema_dir)
        recorded = {r["version"]: r["sha256"] for r in self.read(
            "MATCH (m:SchemaMigration) RETURN m.version AS version, m.sha256 AS sha256"
        ).records()}
        new = []
        for f in files:
            if recorded.get(f.version) == f.sha256:
                continue
            if f.version in recorded:
                log.warning("schema file %s changed after it was applied; re-applying", f.path.name)
            for stmt in f.statements:
                self._run_auto(stmt, {})
            self.write(
                "MERGE (m:SchemaMigration {version: $version}) "
                "SET m.name = $name, m.sha256 = $sha256, m.appliedAt = datetime()",
                {"version": f.version, "name": f.name, "sha256": f.sha256},
            )
            new.append(f.version)
        self._run_auto("CALL db.awaitIndexes(300)", {})
        if new:
            log.info("applied graph schema files %s", new)
        return new

    def schema_version(self) -> int | None:
        """The highest applied schema file number, or None on an empty database."""
        rows = self.read("MATCH (m:SchemaMigration) RETURN max(m.version) AS v").rows
        return rows[0][0] if rows else None

    # --- writes --------------------------------------------------------------
    def write(self, query: str, params: Mapping[str, Any] | None = None) -> dict[str, int]:
        """One write transaction; returns the summary counters that are non-zero."""
        def work(tx: neo4j.ManagedTransaction) -> dict[str, int]:
            summary = tx.run(query, dict(params or {})).consume()
            return {k: v for k, v in vars(summary.counters).items()
                    if isinstance(v, int) and not isinstance(v, bool) and v}

        try:
            with self.driver.session(database=self.database) as s:
                return s.execute_write(work)
        except neo4j.exceptions.Neo4jError as e:
            raise _graph_error(e, query) from e
        except neo4j.exceptions.DriverError as e:
            raise self._unavailable(e, query) from e

    def write_batches(
        self,
        query: str,
        rows: Iterable[Mapping[str, Any]],
        batch_size: int | None = None,
        params: Mapping[str, Any] | None = None,
        what: str = "rows",
    ) -> dict[str, int]:
        """Run ``query`` (which begins ``UNWIND $rows AS row``) once per batch of rows.

        ``params`` are passed to every batch beside ``rows``. Returns the summed
        counters; each batch is its own transaction (retried on transient errors).
        """
        if "$rows" not in query:
            raise GraphError(f"a batched write must UNWIND $rows; got:\n{query}")
        total: dict[str, int] = {}
        n = 0
        t0 = time.perf_counter()
        for batch in batched(rows, batch_size or self.batch_size):
            counters = self.write(query, {**dict(params or {}), "rows": batch})
            for k, v in counters.items():
                total[k] = total.get(k, 0) + v
            n += len(batch)
        if n:
            log.debug("wrote %d %s in %.2fs", n, what, time.perf_counter() - t0)
        return total

    def run_in_transactions(self, query: str, params: Mapping[str, Any] | None = None) -> None:
        """An auto-commit query, for ``CALL { ... } IN TRANSACTIONS`` sweeps."""
        self._run_auto(query, dict(params or {}))

    def clear(self) -> None:
        """Delete every node and relationship (the schema stays). For tests and benchmarks."""
        self._run_auto(
            "MATCH (n) WHERE NOT n:SchemaMigration "
            "CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 20000 ROWS", {})

    # --- reads ---------------------------------------------------------------
    def read(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> QueryResult:
        """A read in a READ-mode transaction with a server-side timeout."""
        return self._read(query, dict(params or {}), timeout_s or self.query_timeout_s)

    def analyst(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
        max_rows: int | None = None,
        max_bytes: int | None = None,
        convert: Callable[[Any], Any] | None = None,
    ) -> QueryResult:
        """The read-only entry for analysts: refuses anything but a pure read of the graph.

        The query is planned with ``EXPLAIN`` and refused (``QueryRefused``) unless its
        plan passes ``readonly.refusal``; it then runs once in a READ-mode transaction,
        which the server also refuses to let write. Rows stream in: past ``max_rows`` the
        result is cut (``truncated``), past ``max_bytes`` (approximate JSON size) the query
        is stopped and ``ResultTooLarge`` raised. ``convert`` turns each driver value into
        JSON-able Python (default ``plain``; the neuPrint front door passes its own).
        """
        params = dict(params or {})
        qtype, plan = self.explain(query, params)
        why = readonly.refusal(plan, qtype)
        if why:
            raise QueryRefused(f"read-only Cypher: {why}.\nquery: {query}")
        return self._read_once(query, params, timeout_s or self.query_timeout_s,
                               max_rows, max_bytes, convert or plain)

    def query_type(self, query: str, params: Mapping[str, Any] | None = None) -> str:
        """The planner's query type: ``r``, ``rw``, ``w`` or ``s`` (schema)."""
        return self.explain(query, params)[0]

    def explain(self, query: str, params: Mapping[str, Any] | None = None
                ) -> tuple[str, dict[str, Any]]:
        """The planner's query type (``r``, ``rw``, ``w``, ``s``) and plan (a dict tree)."""
        text = query.lstrip()
        if re.match(r"(?i)(explain|profile)\b", text):
            raise QueryRefused(f"pass the query without EXPLAIN/PROFILE.\nquery: {query}")
        try:
            with self.driver.session(database=self.database,
                                     default_access_mode=neo4j.READ_ACCESS) as s:
                summary = s.run("EXPLAIN " + text, dict(params or {})).consume()
        except neo4j.exceptions.Neo4jError as e:
            raise _graph_error(e, query) from e
        except neo4j.exceptions.DriverError as e:
            raise self._unavailable(e, query) from e
        return str(summary.query_type), dict(summary.plan or {})

    def _read_once(self, query: str, params: dict[str, Any], timeout_s: float,
                   max_rows: int | None, max_bytes: int | None,
                   convert: Callable[[Any], Any] = plain) -> QueryResult:
        """One attempt (a person's query is not retried), streamed under the caps."""
        fetch = max(1, min(1000, (max_rows or 1000) + 1))
        try:
            with self.driver.session(database=self.database, fetch_size=fetch,
                                     default_access_mode=neo4j.READ_ACCESS) as s, \
                    s.begin_transaction(timeout=timeout_s) as tx:
                res = tx.run(query, params)
                cols, rows, size = list(res.keys()), [], 0
                for rec in res:
                    if max_rows is not None and len(rows) >= max_rows:
                        return QueryResult(cols, rows, truncated=True)
                    row = [convert(v) for v in rec.values()]
                    size += approx_json_bytes(row)
                    if max_bytes is not None and size > max_bytes:
                        raise ResultTooLarge(
                            f"the result passed the response-size limit of {max_bytes} bytes "
                            f"after {len(rows)} row(s); return fewer or smaller values "
                            f"(LIMIT, fewer columns, ids instead of whole nodes)\n"
                            f"query: {query.strip()}")
                    rows.append(row)
                return QueryResult(cols, rows)
        except neo4j.exceptions.Neo4jError as e:
            raise _graph_error(e, query, timeout_s) from e
        except neo4j.exceptions.DriverError as e:
            raise self._unavailable(e, query) from e

    def _unavailable(self, e: Exception, query: str) -> GraphUnavailable:
        return GraphUnavailable(
            f"Neo4j at {self.conn.uri} stopped answering ({type(e).__name__}: {e}). Start it "
            "again (`cxgraph neo4j start`, or check the server NEO4J_URI names) and re-run "
            "the same command: loads are idempotent and resume safely.\n"
            f"query: {query.strip()[:500]}")

    def _read(self, query: str, params: dict[str, Any], timeout_s: float) -> QueryResult:
        @neo4j.unit_of_work(timeout=timeout_s)
        def work(tx: neo4j.ManagedTransaction) -> QueryResult:
            res = tx.run(query, params)
            cols = list(res.keys())
            return QueryResult(cols, [[plain(v) for v in rec.values()] for rec in res])

        try:
            with self.driver.session(database=self.database,
                                     default_access_mode=neo4j.READ_ACCESS) as s:
                return s.execute_read(work)
        except neo4j.exceptions.Neo4jError as e:
            raise _graph_error(e, query, timeout_s) from e
        except neo4j.exceptions.DriverError as e:
            raise self._unavailable(e, query) from e

    def _run_auto(self, query: str, params: dict[str, Any]) -> None:
        try:
            with self.driver.session(database=self.database) as s:
                s.run(query, params).consume()
        except neo4j.exceptions.Neo4jError as e:
            raise _graph_error(e, query) from e
        except neo4j.exceptions.DriverError as e:
            raise self._unavailable(e, query) from e


def approx_json_bytes(value: Any) -> int:
    """About how many bytes ``value`` takes as JSON (exact for plain ASCII strings and
    ints; cheap: no encoding is built)."""
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, (list, tuple)):
        return 2 + sum(approx_json_bytes(v) + 1 for v in value)
    if isinstance(value, dict):
        return 2 + sum(len(str(k)) + 4 + approx_json_bytes(v) for k, v in value.items())
    if isinstance(value, (bytes, bytearray)):
        return 2 * len(value) + 2
    return 24


def _graph_error(e: neo4j.exceptions.Neo4jError, query: str,
                 timeout_s: float | None = None) -> GraphError:
    code = e.code or ""
    cls: type[GraphError] = GraphError
    if "TransactionTimedOut" in code:
        cls = QueryTimeout
        limit = f"after {timeout_s:g} s" if timeout_s else "by the server's transaction timeout"
        hint = (f"timed out {limit}; narrow the query (fewer bodies, LIMIT) "
                "or raise [neo4j] query_timeout_s / --timeout")
    elif "Transaction.Terminated" in code or "TransactionMarkedAsFailed" in code:
        # Not a timeout: something ended the transaction from outside.
        cls = QueryTerminated
        hint = ("the transaction was terminated before it finished, not by its time limit: "
                "an administrator ended it (TERMINATE TRANSACTIONS), or the server is "
                f"shutting down ({e.message or 'no reason given'}); run it again")
    elif "MemoryPoolOutOfMemoryError" in code:
        hint = ("the query needs more memory than one transaction may use "
                "([neo4j] transaction_memory_mb); aggregate less at once (LIMIT, a smaller "
                f"box, fewer bodies). Neo4j: {e.message}")
    elif "AccessMode" in code or "WriteOnReadOnlyAccess" in code:
        hint = "a write was attempted in a read-only transaction"
    else:
        hint = e.message or str(e)
    return cls(f"{code}: {hint}\nquery: {query.strip()}")
