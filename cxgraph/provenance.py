"""The provenance store (DuckDB, ``WS/provenance.duckdb``) and the stage-run recorder.

The stage engine (``pipeline.engine``) runs every stage inside ``stage_run(...)``;
nothing else writes stage provenance::

    with stage_run(ws, stage="align", layer="L2", params=p, inputs=described,
                   identity=key, code_fingerprint=fp) as run:
        ...                                   # blockwise work: run.block_started/finished
        run.quality(metric="residual_mean_px", value=0.3, section=12)   # written at once
        run.output("aligned", path, sha256)   # its content hash (from the chunk ledger)

It records the code revision (git hash + dirty flag) and the stage's code
fingerprint, the full parameters, the environment (host, OS, Python, library
versions, device), input and output content hashes, timings and status, and
one ``stage_attempts`` row per attempt (a resume is a new attempt; nothing of an
earlier attempt is overwritten). Quality rows and block records are written as
each block finishes, so a killed run keeps what it finished. Only the process
that drives a stage writes here (DuckDB allows one writer).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as dt
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb

from cxgraph.errors import ProvenanceError
from cxgraph.params import Params
from cxgraph.resources import SOURCE_ROOT, schema_dir
from cxgraph.workspace import Workspace

log = logging.getLogger(__name__)

TABLES = ("runs", "stage_runs", "stage_attempts", "run_stages", "block_runs", "output_blocks",
          "artifacts", "models", "quality")
LIBRARIES = ("numpy", "scipy", "torch", "zarr", "scikit-image", "waterz", "duckdb", "pyarrow",
             "polars", "neo4j", "dask", "strawberry-graphql")

_current_run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("run_id", default=None)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class ProvenanceStore:
    """Short-lived DuckDB connections to one workspace's store (so readers are not locked out)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        files = sorted(schema_dir("provenance").glob("*.sql"))
        with self.connect() as con:
            for sql in files:
                con.execute(sql.read_text())
            version = int(files[-1].name.split("_")[0])
            found = con.execute("SELECT max(version) FROM schema_version").fetchone()[0]
            if found is not None and found > version:
                raise ProvenanceError(
                    f"{self.path} has provenance schema version {found}; this cxgraph knows up to "
                    f"{version}. Use a newer cxgraph to read it."
                )
            if found is None or found < version:
                con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, now()])

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + 30
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.IOException as e:  # another process holds the write lock
                if "lock" not in str(e).lower() or time.monotonic() > deadline:
                    raise ProvenanceError(f"cannot open {self.path}: {e}") from e
                time.sleep(0.2)
        try:
            yield con
        finally:
            con.close()

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql, params or []).fetchall()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.connect() as con:
                con.executemany(sql, rows)

    def query(self, sql: str, params: Sequence[Any] | None = None):
        """A read query as a pyarrow Table."""
        with self.connect() as con:
            return con.sql(sql, params=params or None).to_arrow_table()

    def mint_ids(self, kind: str, n: int) -> range:
        """Reserve ``n`` consecutive counter values for ``kind`` (e.g. "body"); never reused."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            row = con.execute("SELECT next_id FROM id_counters WHERE kind = ?", [kind]).fetchone()
            first = row[0] if row else 1
            con.execute("INSERT OR REPLACE INTO id_counters VALUES (?, ?)", [kind, first + n])
            con.execute("COMMIT")
        return range(first, first + n)

    def mark_interrupted(self) -> int:
        """Mark every run still 'running' as interrupted (call with the workspace lock held:
        then no other process is running one), except this process's own pipeline run,
        opened before the lock was taken. Returns how many stage runs it marked."""
        own = _current_run_id.get() or ""
        with self.connect() as con:
            n = con.execute("SELECT count(*) FROM stage_runs WHERE status = 'running'"
                            ).fetchone()[0]
            con.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'running' "
                        "AND run_id <> ?", [own])
            for table in ("stage_runs", "stage_attempts", "block_runs"):
                con.execute(f"UPDATE {table} SET status = 'interrupted' WHERE status = 'running'")
        return int(n)

    def export_parquet(self, ws: Workspace) -> None:
        """Write every table to Parquet beside the store; quality also to tables/quality.parquet."""
        out = ws.tables_dir / "provenance"
        out.mkdir(parents=True, exist_ok=True)
        for table in TABLES:
            ws.write_table(f"provenance/{table}", self.query(f"SELECT * FROM {table}"))
        ws.write_table("quality", self.query("SELECT * FROM quality"))


# --- hashing and environment -------------------------------------------------


def content_hash(path: Path) -> str:
    """sha256 over a file, or over a directory's files (relative names and bytes, sorted)."""
    path = Path(path)
    h = hashlib.sha256()
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.endswith(".tmp"))
    else:
        raise ProvenanceError(f"cannot hash {path}: it does not exist")
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def hash_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def code_revision() -> tuple[str, bool | None]:
    """(git commit, dirty) of the cxgraph source tree, or ('unknown', None) outside git."""
    src = SOURCE_ROOT
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True,
                             text=True, timeout=10)
        if rev.returncode != 0:
            return "unknown", None
        dirty = subprocess.run(["git", "status", "--porcelain"],
                               cwd=src, capture_output=True, text=True, timeout=10)
        return rev.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return "unknown", None


def device_name() -> str:
    """The torch device stages use: CUDA when present, else CPU."""
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda:0" if torch.cuda.is_available() else "cpu"


def environment() -> dict[str, Any]:
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            versions[lib] = None
    return {"host": socket.gethostname(), "os": platform.platform(),
            "python": sys.version.split()[0], "cpus": os.cpu_count(), "libraries": versions}


# --- recording a stage run ------------------------------------------------------


@contextlib.contextmanager
def pipeline_run(ws: Workspace, command: str) -> Iterator[str]:
    """Group the stage runs of one pipeline invocation under a run id."""
    store = ProvenanceStore(ws.provenance_path)
    run_id = uuid.uuid4().hex[:16]
    store.execute("INSERT INTO runs VALUES (?, ?, ?, NULL, 'running')", [run_id, command, now()])
    token = _current_run_id.set(run_id)
    status = "failed"
    try:
        yield run_id
        status = "done"
    finally:
        _current_run_id.reset(token)
        store.execute("UPDATE runs SET finished_at = ?, status = ? WHERE run_id = ?",
                      [now(), status, run_id])
        try:
            store.export_parquet(ws)  # the Parquet mirror ends with the run's own status
        except Exception as e:  # noqa: BLE001 - a failing run's own error is the one to report
            if status == "done":
                raise
            log.warning("provenance Parquet mirror not refreshed: %s", e)




@dataclasses.dataclass
class StageRun:
    """Handle a stage run records through: quality, outputs, and the block ledger."""

    ws: Workspace
    store: ProvenanceStore
    stage_run_id: str
    stage: str
    layer: str
    attempt: int = 1
    outputs: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)

    def quality(self, metric: str, value: float | None, *, layer: str | None = None,
                block: int | None = None, section: int | None = None, tile: str | None = None,
                region: str | None = None) -> None:
        """Record one quality figure (written at once)."""
        self.quality_rows([{"metric": metric, "value": value, "layer": layer, "block": block,
                            "section": section, "tile": tile, "region": region}])

    def quality_rows(self, rows: Sequence[dict[str, Any]], con=None) -> None:
        """Write quality rows now; a row with the same key from this run replaces the old."""
        if not rows:
            return
        full = [(r.get("layer") or self.layer, self.stage, self.stage_run_id, r.get("block"),
                 r.get("section"), r.get("tile"), r.get("region"), r["metric"],
                 None if r.get("value") is None else float(r["value"])) for r in rows]
        keys = {(q[0], q[3], q[4], q[5], q[6], q[7]) for q in full}
        with contextlib.ExitStack() as stack:
            con = con or stack.enter_context(self.store.connect())
            con.executemany(
                "DELETE FROM quality WHERE stage_run_id = ? AND layer = ? AND metric = ? "
                "AND block IS NOT DISTINCT FROM ? AND section IS NOT DISTINCT FROM ? "
                "AND tile IS NOT DISTINCT FROM ? AND region IS NOT DISTINCT FROM ?",
                [(self.stage_run_id, k[0], k[5], k[1], k[2], k[3], k[4]) for k in keys])
            con.executemany(f"INSERT INTO quality VALUES ({', '.join('?' * 9)})", full)

    def output(self, name: str, path: str | Path, sha256: str | None = None) -> None:
        """Declare an output (a path, or an array/table name of the workspace) and its
        content hash (computed from the file(s) when not given)."""
        p = _resolve(self.ws, path)
        self.outputs[name] = {"path": str(p), "sha256": sha256 or content_hash(p)}

    # ledger ----------------------------------------------------------------
    def done_blocks(self) -> set[int]:
        rows = self.store.execute(
            "SELECT block_id FROM block_runs WHERE stage_run_id = ? AND status = 'done'",
            [self.stage_run_id])
        return {r[0] for r in rows}

    def block_started(self, block, worker: str | None = None) -> None:
        """Mark a block running and count the attempt (before it runs, so a crash still counts)."""
        self.store.execute(
            "INSERT INTO block_runs (stage_run_id, block_id, status, attempts, write_roi, "
            "read_roi, worker, started_at) VALUES (?, ?, 'running', 1, ?, ?, ?, ?) "
            "ON CONFLICT (stage_run_id, block_id) DO UPDATE SET status = 'running', "
            "attempts = block_runs.attempts + 1, worker = excluded.worker, "
            "started_at = excluded.started_at, error = NULL",
            [self.stage_run_id, block.block_id, block.write_roi.as_list(),
             block.read_roi.as_list(), worker, now()])

    def block_finished(self, block_id: int, stats: dict[str, Any],
                       error: str | None = None) -> None:
        """Record a block's outcome, its chunk hashes and its quality rows in one go."""
        hashes = stats.get("chunk_hashes")
        with self.store.connect() as con:
            con.execute("BEGIN TRANSACTION")
            con.execute(
                "UPDATE block_runs SET status = ?, io_s = ?, compute_s = ?, bytes_read = ?, "
                "bytes_written = ?, peak_rss_mb = ?, worker = coalesce(?, worker), "
                "finished_at = ?, error = ?, output_hashes_json = ? "
                "WHERE stage_run_id = ? AND block_id = ?",
                ["failed" if error else "done", stats.get("io_s"), stats.get("compute_s"),
                 stats.get("bytes_read"), stats.get("bytes_written"), stats.get("peak_rss_mb"),
                 stats.get("worker"), now(), error,
                 json.dumps(hashes, sort_keys=True) if hashes and not error else None,
                 self.stage_run_id, block_id])
            if not error:
                self.quality_rows([{**row, "block": block_id}
                                   for row in stats.get("quality") or []], con=con)
            con.execute("COMMIT")

    def block_hashes(self) -> dict[int, dict[str, dict[str, str]]]:
        """{block_id: {output: {chunk: sha256}}} of this run's finished blocks."""
        rows = self.store.execute(
            "SELECT block_id, output_hashes_json FROM block_runs WHERE stage_run_id = ? "
            "AND status = 'done'", [self.stage_run_id])
        return {b: json.loads(h) if h else {} for b, h in rows}


def _resolve(ws: Workspace, path_or_array: str | Path) -> Path:
    p = Path(path_or_array)
    if p.is_absolute() or p.exists():
        return p
    if (ws.zarr_path / str(path_or_array)).exists():
        return ws.zarr_path / str(path_or_array)
    if ws.table_path(str(path_or_array)).exists():
        return ws.table_path(str(path_or_array))
    raise ProvenanceError(
        f"{path_or_array!r} is neither a path nor an array/table of workspace {ws.root}")


def describe_paths(ws: Workspace, items: dict[str, str | Path]) -> dict[str, dict[str, str]]:
    """{name: {path, sha256}} of files, directories or workspace arrays/tables (full hash)."""
    out = {}
    for name, item in sorted(items.items()):
        p = _resolve(ws, item)
        out[name] = {"path": str(p), "sha256": content_hash(p)}
    return out


@contextlib.contextmanager
def stage_run(
    ws: Workspace,
    stage: str,
    layer: str,
    params: Params | dict[str, Any],
    inputs: dict[str, dict[str, str]] | dict[str, str | Path] | None = None,
    model: str | Path | None = None,
    region: Sequence[int] | None = None,
    identity: str | None = None,
    code_fingerprint: str | None = None,
    base_stage_run_id: str | None = None,
    resume: str | None = None,
) -> Iterator[StageRun]:
    """Record one attempt at stage run ``resume`` (an unfinished run to continue), or at a
    new stage run (see the module docstring).

    ``inputs``: {name: {path, sha256}} as the engine describes them, or {name: path}
    (hashed here). ``identity`` defaults to a hash of stage, params, inputs and region.
    """
    store = ProvenanceStore(ws.provenance_path)
    params_dict = params.to_dict() if isinstance(params, Params) else dict(params)
    inputs = inputs or {}
    inputs_desc = ({n: dict(v) for n, v in sorted(inputs.items())}  # type: ignore[arg-type]
                   if all(isinstance(v, dict) for v in inputs.values())
                   else describe_paths(ws, inputs))  # type: ignore[arg-type]
    model_id = content_hash(Path(model)) if model else None
    region_json = json.dumps(list(region)) if region is not None else None
    params_hash = hash_json(params_dict)
    input_hash = hash_json({k: v["sha256"] for k, v in inputs_desc.items()} | {"model": model_id})
    identity = identity or hash_json([stage, params_hash, input_hash, region_json])
    rev, dirty = code_revision()
    started = now()
    t0 = time.perf_counter()
    if resume:
        run_id = resume
        attempt = store.execute("SELECT attempts + 1 FROM stage_runs WHERE stage_run_id = ?",
                                [run_id])[0][0]
        log.info("%s: resuming stage run %s (attempt %d)", stage, run_id, attempt)
        store.execute("UPDATE stage_runs SET status = 'running', attempts = ?, error = NULL "
                      "WHERE stage_run_id = ?", [attempt, run_id])
    else:
        run_id, attempt = f"{stage}-{uuid.uuid4().hex[:12]}", 1
        store.execute(
            "INSERT INTO stage_runs (stage_run_id, run_id, stage, layer, status, attempts, "
            "params_json, params_hash, inputs_json, input_hash, code_revision, code_dirty, "
            "model_id, environment_json, device, region_json, started_at, identity, "
            "code_fingerprint, base_stage_run_id) "
            "VALUES (?, ?, ?, ?, 'running', 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, _current_run_id.get(), stage, layer, json.dumps(params_dict, sort_keys=True),
             params_hash, json.dumps(inputs_desc), input_hash, rev, dirty, model_id,
             json.dumps(environment()), device_name(), region_json, started, identity,
             code_fingerprint, base_stage_run_id])
        store.executemany(
            "INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, ?, ?)",
            [(d["sha256"], run_id, "input", n, d["path"], _size(Path(d["path"])))
             for n, d in inputs_desc.items()]
            + ([(model_id, run_id, "model", "model", str(model), _size(Path(model)))]
               if model else []))
    store.execute("INSERT INTO stage_attempts VALUES (?, ?, ?, 'running', ?, ?, ?, NULL, NULL, "
                  "NULL)", [run_id, attempt, _current_run_id.get(), rev, dirty, started])
    run = StageRun(ws, store, run_id, stage, layer, attempt)

    def finish(status: str, error: str | None) -> None:
        wall = time.perf_counter() - t0
        store.execute("UPDATE stage_attempts SET status = ?, finished_at = ?, wall_s = ?, "
                      "error = ? WHERE stage_run_id = ? AND attempt = ?",
                      [status, now(), wall, error, run_id, attempt])
        store.execute(
            "UPDATE stage_runs SET status = ?, finished_at = ?, error = ?, wall_s = "
            "(SELECT sum(wall_s) FROM stage_attempts WHERE stage_run_id = ?) "
            "WHERE stage_run_id = ?", [status, now(), error, run_id, run_id])

    try:
        yield run
    except BaseException as e:
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        finish(status, f"{type(e).__name__}: {e}"[:4000])
        store.export_parquet(ws)
        raise
    outputs = run.outputs
    store.executemany(
        "INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, ?, ?)",
        [(d["sha256"], run_id, "output", n, d["path"], _size(Path(d["path"])))
         for n, d in outputs.items()])
    store.execute("UPDATE stage_runs SET outputs_json = ?, output_hash = ? WHERE stage_run_id = ?",
                  [json.dumps(outputs), hash_json({k: v["sha256"] for k, v in outputs.items()}),
                   run_id])
    finish("done", None)
    store.export_parquet(ws)


def _size(p: Path) -> int:
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def register_model(ws: Workspace, name: str, path: Path, architecture: str,
                   params: dict[str, Any], trained_by: str | None,
                   metrics: dict[str, Any] | None = None) -> str:
    """Record a trained model; returns its id (sha256 of the weights file)."""
    store = ProvenanceStore(ws.provenance_path)
    model_id = content_hash(path)
    store.execute(
        "INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [model_id, name, str(path), architecture, json.dumps(params, sort_keys=True),
         trained_by, json.dumps(metrics or {}), now()])
    return model_id
