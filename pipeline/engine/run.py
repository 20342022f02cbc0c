"""The one engine: run any ``Stage`` — identity, ledger, provenance, outputs, clean-up.

``run_stage(ws, stage, region=None, sources=None)``:

1. **Identity** = stage name + the stage's own parameters + the content hashes of
   its inputs + its code fingerprint (+ model weights hash, + region and the run
   it patches, for a regional run). See ``pipeline.engine.identity``.
2. **Reuse**: a finished run with that identity whose outputs on disk carry its
   stamp means there is nothing to do — no volume is read, nothing is written
   but a ``run_stages`` row saying it was reused.
3. **Resume**: an unfinished run with that identity whose work directory
   survives continues: its block ledger skips finished blocks, its plan (the
   result of ``prepare``) is read back instead of recomputed.
4. Otherwise a **new run**: ``prepare`` (global step; creates outputs), the blocks
   on the executor, ``finalize``; outputs are written to ``WS/.work/<run>/``.
5. **Commit**: output hashes from the chunk ledger (a regional run inherits its
   base run's blocks outside the region), stamps, then the outputs put in place —
   a whole run by renaming the work copy over the live one, a regional run by
   copying only the chunks its blocks wrote, so every other chunk stays
   byte-identical. Per-block tables: a regional run replaces only its blocks'
   rows. The commit is idempotent: a crash inside it is finished by the resume.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import pickle
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zarr

from cxgraph.config import ExecutorParams
from cxgraph.errors import WorkspaceError
from cxgraph.provenance import ProvenanceStore, content_hash, hash_json, now, stage_run
from cxgraph.workspace import Workspace, data_path, write_parquet
from pipeline.engine import identity as ident
from pipeline.engine.blocks import Block, Roi
from pipeline.engine.context import WHOLE, StageContext, WorkDir, remove_tree
from pipeline.engine.executors import run_blockwise
from pipeline.engine.stage import Artifact, Stage

log = logging.getLogger(__name__)

PLAN = "plan.pkl"
# Readers of stamps for artifact kinds that live outside the workspace (the graph).
STAMP_READERS: dict[str, Callable[[Workspace, str], dict[str, Any] | None]] = {}


@dataclasses.dataclass(frozen=True)
class StageResult:
    """What ``run_stage`` did: ``action`` is ran | resumed | reused."""

    stage: str
    stage_run_id: str
    action: str
    blocks: int = 0
    blocks_run: int = 0
    seconds: float = 0.0
    region: Roi | None = None
    changed: Roi | None = None  # bounding box of the blocks a regional run rewrote


# --- the workspace lock -------------------------------------------------------------

_held: dict[Path, int] = {}


@contextlib.contextmanager
def workspace_lock(ws: Workspace) -> Iterator[None]:
    """One pipeline process per workspace. Taking the lock marks runs a dead process left
    'running' as interrupted. Re-entrant within a process."""
    key = ws.root
    if _held.get(key):
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    path = ws.root / ".lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            raise WorkspaceError(f"{ws.root} is in use by another cxgraph process "
                                 f"(pid {fh.read().strip() or '?'}); wait for it to end") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        _held[key] = 1
        try:
            n = ProvenanceStore(ws.provenance_path).mark_interrupted()
            if n:
                log.warning("%d stage run(s) left 'running' by an earlier process: marked "
                            "interrupted (they resume where they stopped)", n)
            yield
        finally:
            _held.pop(key, None)
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- stamps ---------------------------------------------------------------------------


def current_stamp(ws: Workspace, artifact: Artifact) -> dict[str, Any] | None:
    if artifact.kind in STAMP_READERS:
        return STAMP_READERS[artifact.kind](ws, artifact.name)
    return ident.read_stamp(ws, artifact)


def outputs_belong(ws: Workspace, stage: Stage, stage_run_id: str) -> bool:
    """True when every output on disk carries ``stage_run_id``'s stamp."""
    for a in stage.outputs:
        stamp = current_stamp(ws, a)
        if not stamp or stamp.get("stage_run_id") != stage_run_id:
            return False
    return True


def current_run(ws: Workspace, stage: Stage) -> str | None:
    """The run whose outputs a regional run patches: the one all current outputs belong to."""
    ids = {(current_stamp(ws, a) or {}).get("stage_run_id") for a in stage.outputs}
    return ids.pop() if len(ids) == 1 and None not in ids else None


# --- running one stage ----------------------------------------------------------------


def run_stage(
    ws: Workspace,
    stage: Stage,
    region: Roi | None = None,
    sources: dict[str, Path] | None = None,
    executor: ExecutorParams | None = None,
    producers: dict[Artifact, str] | None = None,
) -> StageResult:
    """Run ``stage`` in ``ws`` (see the module docstring); returns what it did."""
    t0 = time.perf_counter()
    sources = {k: Path(v).resolve() for k, v in (sources or {}).items()}
    params = ws.config[stage.section]
    executor = executor or ws.config["executor"]
    store = ProvenanceStore(ws.provenance_path)
    with workspace_lock(ws):
        inputs = {a.key: ident.describe_input(ws, a, sources, producers or {})
                  for a in stage.inputs}
        model = stage.model(params) if stage.model else None
        model_id = content_hash(Path(model)) if model else None
        code_fp = ident.code_fingerprint(stage)
        base = current_run(ws, stage) if region is not None else None

        regional = tuple((Roi.from_list(r), p) for r, p in
                         ws.config.regional_params(stage.section))

        def identity(region_list, base_id) -> str:
            spec = {"stage": stage.name, "params": params.to_dict(),
                    "inputs": {n: d["sha256"] for n, d in inputs.items()},
                    "code": code_fp, "model": model_id, "region": region_list,
                    "base": base_id}
            if regional:  # (absent otherwise: identities from before regional entries hold)
                spec["regional"] = [[r.as_list(), p.to_dict()] for r, p in regional]
            return hash_json(spec)

        key = identity(region.as_list() if region else None, base)
        base_identity, base_base, base_region = _identity_of(store, base)
        if base is not None and base_identity == identity(base_region, base_base) and (
                base_region is None or base_region == region.as_list()):  # type: ignore[union-attr]
            # the outputs come from a run of exactly this stage, parameters, inputs and code
            # on the whole volume (or this same region): the region would come out the same
            log.info("%s: up to date in %s (stage run %s)", stage.name, region, base)
            _record_action(store, stage, base, "reused", region)
            return StageResult(stage.name, base, "reused", region=region,
                               seconds=time.perf_counter() - t0)
        candidates = store.execute(
            "SELECT stage_run_id, status FROM stage_runs WHERE identity = ? "
            "ORDER BY started_at DESC", [key])
        resume = None
        for run_id, status in candidates:
            if status == "done" and outputs_belong(ws, stage, run_id):
                log.info("%s: up to date (stage run %s)", stage.name, run_id)
                _record_action(store, stage, run_id, "reused", region)
                changed = bbox([Roi.from_list(r[0]) for r in store.execute(
                    "SELECT write_roi FROM block_runs WHERE stage_run_id = ?", [run_id])]
                ) if region is not None else None
                return StageResult(stage.name, run_id, "reused", region=region,
                                   seconds=time.perf_counter() - t0, changed=changed)
            if status != "done" and (ws.work_dir / run_id).is_dir() and resume is None:
                resume = run_id
        recorded = {**params.to_dict(), "regional": [
            {"region": r.as_list(), **{k: v for k, v in p.to_dict().items()
                                       if v != params.to_dict()[k]}} for r, p in regional]
        } if regional else params
        with stage_run(ws, stage.name, stage.layer, recorded, inputs=inputs, model=model,
                       region=region.as_list() if region else None, identity=key,
                       code_fingerprint=code_fp, base_stage_run_id=base, resume=resume) as run:
            work = WorkDir(ws.work_dir / run.stage_run_id)
            work.root.mkdir(parents=True, exist_ok=True)
            ctx = StageContext(ws, stage, params, run, work, region, sources, regional)
            plan = _prepare(ctx, work)
            blocks: list[Block] = []
            n_run = 0
            if stage.grid is not None:
                grid = stage.grid(ctx, plan)
                if region is not None and stage.widen is not None:
                    region_blocks = stage.widen(ctx, plan, region)
                else:
                    region_blocks = region
                blocks = (grid.blocks_in(region_blocks) if region_blocks is not None
                          else grid.blocks())
                ctx.blocks = blocks
                n_run = run_blockwise(run, stage.process_block, ctx.block_context(plan), blocks,
                                      executor, description=stage.name)["ran"]
            if stage.finalize is not None:
                stage.finalize(ctx, plan)
            _commit(ctx, blocks, key, base)
        remove_tree(work.root)
        action = "resumed" if resume else "ran"
        _record_action(store, stage, run.stage_run_id, action, region)
        changed = bbox([b.write_roi for b in blocks]) if region is not None else None
        return StageResult(stage.name, run.stage_run_id, action, len(blocks), n_run,
                           time.perf_counter() - t0, region, changed)


def bbox(rois: list[Roi | None]) -> Roi | None:
    """The bounding box of the rois given (None ones skipped)."""
    rois = [r for r in rois if r is not None]
    if not rois:
        return None
    return Roi(tuple(min(r.begin[k] for r in rois) for k in range(3)),  # type: ignore[union-attr,arg-type]
               tuple(max(r.end[k] for r in rois) for k in range(3)))  # type: ignore[union-attr]


def _identity_of(store: ProvenanceStore, stage_run_id: str | None
                 ) -> tuple[str | None, str | None, list[int] | None]:
    """(identity, base run, region) of a finished stage run."""
    rows = store.execute("SELECT identity, base_stage_run_id, region_json FROM stage_runs "
                         "WHERE stage_run_id = ? AND status = 'done'", [stage_run_id])
    if not rows:
        return None, None, None
    return rows[0][0], rows[0][1], json.loads(rows[0][2]) if rows[0][2] else None


def _record_action(store: ProvenanceStore, stage: Stage, run_id: str, action: str,
                   region: Roi | None) -> None:
    from cxgraph.provenance import _current_run_id

    store.execute("INSERT INTO run_stages VALUES (?, ?, ?, ?, ?, ?)",
                  [_current_run_id.get() or "", stage.name, run_id, action,
                   json.dumps(region.as_list()) if region else None, now()])


def _prepare(ctx: StageContext, work: WorkDir) -> Any:
    """The stage's plan: read back on a resume, else computed by ``prepare`` and saved."""
    path = work.root / PLAN
    if path.exists():
        return pickle.loads(path.read_bytes())
    plan = ctx.stage.prepare(ctx) if ctx.stage.prepare else None
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(plan))
    os.replace(tmp, path)
    return plan


# --- commit ---------------------------------------------------------------------------


def _commit(ctx: StageContext, blocks: list[Block], key: str, base: str | None) -> None:
    ws, stage, run, work = ctx.ws, ctx.stage, ctx.run, ctx.work
    store = run.store
    ledger = run.block_hashes()
    region = ctx.region.as_list() if ctx.region else None
    for a in stage.outputs:
        if a.kind == "array":
            chunks_by_block = {b: h.get(a.name, {}) for b, h in ledger.items() if h.get(a.name)}
            own = {b: ident.chunks_hash(h) for b, h in chunks_by_block.items()}
            work_path = work.zarr_path / a.name
            if not own and work_path.exists():  # written whole, not by blocks
                own = {WHOLE: _array_hash(work_path)}
            sha = _record_blocks(store, run.stage_run_id, a.name, own,
                                 base if ctx.region is not None and WHOLE not in own else None)
            stamp = {"stage": stage.name, "stage_run_id": run.stage_run_id, "identity": key,
                     "output_hash": sha, "region": region, "base_stage_run_id": base}
            _put_array(ws, a.name, work_path, stamp, chunks_by_block,
                       regional=ctx.region is not None and WHOLE not in own)
            run.output(a.key, ws.zarr_path / a.name, sha)
        elif a.kind == "table":
            table = _assemble_table(ctx, a.name)
            sha = ident.table_hash(table)
            _record_blocks(store, run.stage_run_id, a.name, {WHOLE: sha}, None)
            stamp = {"stage": stage.name, "stage_run_id": run.stage_run_id, "identity": key,
                     "output_hash": sha, "region": region, "base_stage_run_id": base,
                     "per_block": not ctx.work.table_path(a.name).exists()}
            write_parquet(ws.table_path(a.name), ident.with_stamp(table, stamp))
            run.output(a.key, ws.table_path(a.name), sha)
        else:  # the graph: written and stamped by the stage itself (in finalize)
            stamp = current_stamp(ws, a) or {}
            if stamp.get("stage_run_id") != run.stage_run_id:
                raise WorkspaceError(f"stage {stage.name} did not stamp its output {a}")
            run.outputs[a.key] = {"path": f"neo4j:{stamp.get('dataset', a.name)}",
                                  "sha256": stamp["output_hash"]}


def _array_hash(path: Path) -> str:
    arr = zarr.open_array(str(data_path(path.parent, path.name)), mode="r")
    return hashlib.sha256(np.ascontiguousarray(arr[...]).tobytes()).hexdigest()


def _record_blocks(store: ProvenanceStore, run_id: str, output: str, own: dict[int, str],
                   base: str | None) -> str:
    """Write the output's block map (inheriting ``base``'s other blocks); return its hash."""
    rows = {b: (h, run_id) for b, h in own.items()}
    if base is not None:
        for b, h, src in store.execute(
                "SELECT block_id, sha256, source_stage_run_id FROM output_blocks "
                "WHERE stage_run_id = ? AND output = ?", [base, output]):
            rows.setdefault(b, (h, src))
    with store.connect() as con:
        con.execute("DELETE FROM output_blocks WHERE stage_run_id = ? AND output = ?",
                    [run_id, output])
        con.executemany("INSERT INTO output_blocks VALUES (?, ?, ?, ?, ?)",
                        [(run_id, output, b, h, src) for b, (h, src) in rows.items()])
    return ident.blocks_hash({b: h for b, (h, _) in rows.items()})


def _put_array(ws: Workspace, name: str, work_path: Path, stamp: dict[str, Any],
               chunks_by_block: dict[int, dict[str, str]], regional: bool) -> None:
    live = ws.zarr_path / name
    if not work_path.exists():  # a resumed commit: already in place
        if (ident.read_stamp(ws, Artifact("array", name)) or {}).get("stage_run_id") \
                != stamp["stage_run_id"]:
            raise WorkspaceError(f"the work copy of {name} is gone and {live} is not this "
                                 "run's; run the stage again")
        return
    if regional and live.exists():
        src = zarr.open_array(str(data_path(work_path.parent, name.split("/")[-1])), mode="r")
        dst = zarr.open_array(str(ws.array_path(name)), mode="r+")
        for chunks in chunks_by_block.values():
            for key in chunks:
                idx = [int(i) for i in key.split(".")]
                sl = tuple(slice(i * c, min(s, (i + 1) * c))
                           for i, c, s in zip(idx, dst.chunks, dst.shape, strict=True))
                dst[sl] = src[sl]
        ident.stamp_array(live, stamp)
        remove_tree(work_path)
        return
    ident.stamp_array(work_path, stamp)
    if live.exists():
        remove_tree(live)
    live.parent.mkdir(parents=True, exist_ok=True)
    work_path.rename(live)
    ws.refresh_image(name)  # a new level of a volume joins its OME-Zarr multiscales


def _assemble_table(ctx: StageContext, name: str) -> pa.Table:
    """The output table: written whole by the stage, or assembled from block parts."""
    whole = ctx.work.table_path(name)
    if whole.exists():
        return pq.read_table(whole)
    table = ctx.block_table(name)
    if table is None:
        raise WorkspaceError(f"stage {ctx.stage.name} declared table {name!r} but wrote "
                             "no rows and no table")
    return table
