"""provenance(objectId): the stage runs behind a body, synapse or supervoxel."""

from __future__ import annotations

import asyncio
from typing import Any

from cxgraph.api.scalars import Id64
from cxgraph.api.types import Artifact, AsOf, BlockRun, Info, ObjectKind, Provenance, StageRun


def stage_run_from_row(r: dict[str, Any]) -> StageRun:
    return StageRun(
        stage_run_id=r["stage_run_id"], run_id=r.get("run_id"), stage=r["stage"],
        layer=r["layer"], status=r["status"], attempts=r.get("attempts"),
        params=r.get("params_json"), params_hash=r.get("params_hash"),
        inputs=r.get("inputs_json"), input_hash=r.get("input_hash"),
        outputs=r.get("outputs_json"), output_hash=r.get("output_hash"),
        code_revision=r.get("code_revision"), code_dirty=r.get("code_dirty"),
        model_id=r.get("model_id"), environment=r.get("environment_json"),
        device=r.get("device"), region=r.get("region_json"), started_at=r.get("started_at"),
        finished_at=r.get("finished_at"), wall_s=r.get("wall_s"), error=r.get("error"),
        artifacts=[Artifact(role=a["role"], name=a["name"], path=a["path"], sha256=a["sha256"],
                            bytes=a.get("bytes")) for a in r.get("artifacts", [])],
        model=r.get("model"),
    )


def block_run_from_row(r: dict[str, Any]) -> BlockRun:
    return BlockRun(
        block_id=r["block_id"], status=r["status"], attempts=r.get("attempts"),
        write_roi=r.get("write_roi"), read_roi=r.get("read_roi"), worker=r.get("worker"),
        io_s=r.get("io_s"), compute_s=r.get("compute_s"), bytes_read=r.get("bytes_read"),
        bytes_written=r.get("bytes_written"), peak_rss_mb=r.get("peak_rss_mb"),
        started_at=r.get("started_at"), finished_at=r.get("finished_at"), error=r.get("error"))


async def provenance(info: Info, object_id: Id64, kind: ObjectKind | None = None,
                     as_of: AsOf = None) -> list[Provenance]:
    """The stage run and block that produced the object(s) with this id, with every
    provenance field, and the runs upstream of it. Body, synapse and supervoxel ids are
    separate spaces: without `kind` every kind with that id is returned. `asOf` is accepted
    for uniformity; an object's producer never changes, so it does not alter the answer."""
    ctx = info.context
    kinds = [kind.value] if kind else [k.value for k in ObjectKind]
    rows = await ctx.graph.read("api_object_provenance", {"id": int(object_id), "kinds": kinds},
                                "provenance")
    reader = ctx.services.provenance

    def lookup() -> list[Provenance]:
        out = []
        for r in sorted(rows, key=lambda r: r["kind"]):
            run_id = r.get("stageRun")
            upstream_ids = reader.upstream(run_id) if run_id else []
            runs = reader.stage_runs([run_id, *upstream_ids]) if run_id else {}
            block = r.get("block")
            block_row = reader.block_run(run_id, block) if run_id and block is not None else None
            out.append(Provenance(
                object_id=int(object_id), kind=ObjectKind(r["kind"]), stage_run_id=run_id,
                block=block, valid_from=r.get("validFrom"), valid_to=r.get("validTo"),
                stage_run=stage_run_from_row(runs[run_id]) if run_id in runs else None,
                block_run=block_run_from_row(block_row) if block_row else None,
                upstream=[stage_run_from_row(runs[u]) for u in upstream_ids if u in runs]))
        return out

    return await asyncio.to_thread(lookup)
