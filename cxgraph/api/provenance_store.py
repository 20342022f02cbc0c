"""Read-only access to a workspace's provenance and quality tables for the API.

Stage runs, block runs, artifacts and models are read from ``provenance.duckdb``
opened ``read_only``. DuckDB lets one process write; while a pipeline process
holds the file, the reader falls back to the Parquet exports beside it
(``tables/provenance/<table>.parquet``, written at the end of every stage run),
so the server never waits on or blocks the pipeline. Quality values come from
``tables/quality.parquet``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb

from cxgraph.errors import ProvenanceError

log = logging.getLogger(__name__)

TABLES = ("stage_runs", "block_runs", "artifacts", "models", "quality")
JSON_COLUMNS = ("params_json", "inputs_json", "outputs_json", "environment_json", "region_json",
                "metrics_json")
MAX_UPSTREAM_DEPTH = 20

_UPSTREAM_SQL = f"""
WITH RECURSIVE up(stage_run_id, depth) AS (
    SELECT ?::VARCHAR, 0
    UNION
    SELECT o.stage_run_id, up.depth + 1
    FROM up
    JOIN artifacts i ON i.stage_run_id = up.stage_run_id AND i.role IN ('input', 'model')
    JOIN artifacts o ON o.sha256 = i.sha256 AND o.role = 'output'
                    AND o.stage_run_id <> up.stage_run_id
    WHERE up.depth < {MAX_UPSTREAM_DEPTH}
)
SELECT stage_run_id, min(depth) AS depth FROM up WHERE depth > 0
GROUP BY stage_run_id ORDER BY depth, stage_run_id
"""


class ProvenanceReader:
    """Stage runs and quality of one workspace, read-only."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.db_path = self.root / "provenance.duckdb"
        self.export_dir = self.root / "tables" / "provenance"
        self.quality_path = self.root / "tables" / "quality.parquet"

    @contextlib.contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection | None]:
        con = None
        if self.db_path.exists():
            try:
                con = duckdb.connect(str(self.db_path), read_only=True)
            except duckdb.IOException as e:
                if "lock" not in str(e).lower():
                    raise ProvenanceError(f"cannot read {self.db_path}: {e}") from e
                log.debug("%s is locked by a writer; reading the Parquet exports", self.db_path)
        if con is None:
            exports = {t: self.export_dir / f"{t}.parquet" for t in TABLES}
            if not any(p.exists() for p in exports.values()):
                yield None
                return
            con = duckdb.connect(":memory:")
            for table, path in exports.items():
                if path.exists():
                    con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet(?)",
                                [str(path)])
        try:
            yield con
        finally:
            con.close()

    def stage_runs(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stage-run rows by id, each with its ``artifacts`` and ``model`` row."""
        ids = [i for i in dict.fromkeys(ids) if i]
        if not ids:
            return {}
        with self._connect() as con:
            if con is None:
                return {}
            runs = _rows(con, "SELECT * FROM stage_runs WHERE stage_run_id IN "
                         "(SELECT unnest(?::VARCHAR[]))", [ids])
            arts = _rows(con, "SELECT * FROM artifacts WHERE stage_run_id IN "
                         "(SELECT unnest(?::VARCHAR[])) ORDER BY role, name", [ids])
            models = {m["model_id"]: m for m in _rows(
                con, "SELECT * FROM models WHERE model_id IN (SELECT unnest(?::VARCHAR[]))",
                [[r["model_id"] for r in runs if r.get("model_id")]])}
        out = {}
        for r in runs:
            r["artifacts"] = [a for a in arts if a["stage_run_id"] == r["stage_run_id"]]
            r["model"] = models.get(r.get("model_id"))
            out[r["stage_run_id"]] = r
        return out

    def block_run(self, stage_run_id: str, block_id: int) -> dict[str, Any] | None:
        with self._connect() as con:
            if con is None:
                return None
            rows = _rows(con, "SELECT * FROM block_runs WHERE stage_run_id = ? AND block_id = ?",
                         [stage_run_id, int(block_id)])
        return rows[0] if rows else None

    def upstream(self, stage_run_id: str) -> list[str]:
        """Ids of the runs whose outputs ``stage_run_id`` read, transitively, nearest first."""
        with self._connect() as con:
            if con is None:
                return []
            return [r[0] for r in con.execute(_UPSTREAM_SQL, [stage_run_id]).fetchall()]

    # --- quality -------------------------------------------------------------------
    def quality(self, layer: str, metric: str, stage: str | None,
                stage_runs: Sequence[str] | None, offset: int,
                limit: int, region: str | None = None
                ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Summary (count, min, max, mean) and one page of quality rows (of one named
        region's rows only, if ``region``)."""
        if not self.quality_path.exists():
            return {"count": 0, "min": None, "max": None, "mean": None}, []
        where = ["layer = ?", "metric = ?"]
        args: list[Any] = [layer, metric]
        if stage is not None:
            where.append("stage = ?")
            args.append(stage)
        if region is not None:
            where.append("region = ?")
            args.append(region)
        if stage_runs is not None:
            where.append("stage_run_id IN (SELECT unnest(?::VARCHAR[]))")
            args.append(list(stage_runs))
        src = "read_parquet(?)"
        cond = " AND ".join(where)
        with duckdb.connect(":memory:") as con:
            count, lo, hi, mean = con.execute(
                f"SELECT count(*), min(value), max(value), avg(value) FROM {src} WHERE {cond}",
                [str(self.quality_path), *args]).fetchone()
            rows = _rows(con, f"SELECT * FROM {src} WHERE {cond} ORDER BY stage, stage_run_id, "
                         "block NULLS FIRST, section NULLS FIRST, tile NULLS FIRST, "
                         "region NULLS FIRST LIMIT ? OFFSET ?",
                         [str(self.quality_path), *args, int(limit), int(offset)])
        return {"count": count, "min": lo, "max": hi, "mean": mean}, rows


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cur = con.execute(sql, params)
    cols = [d[0] for d in cur.description]
    out = []
    for values in cur.fetchall():
        row = dict(zip(cols, values, strict=True))
        for c in JSON_COLUMNS:
            if isinstance(row.get(c), str):
                with contextlib.suppress(ValueError):
                    row[c] = json.loads(row[c])
        for k, v in row.items():
            if hasattr(v, "isoformat"):
                row[k] = v.isoformat()
        out.append(row)
    return out
