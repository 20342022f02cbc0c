"""The L3 ``segmentation`` stage: body ids per voxel, block by block.

Each block maps its supervoxels to their bodies (``tables/supervoxels``) into
``volumes.zarr/segmentation`` (uint64 (Z, Y, X), 0 = none). In a regional run the
blocks to rewrite are widened to every block holding a supervoxel whose body the
latest agglomeration changed, so a body crossing the region's border stays one id
everywhere.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import fastremap
import numpy as np

from cxgraph.params import Params
from pipeline.engine import Block, BlockContext, BlockGrid, Roi, StageContext


@dataclasses.dataclass(frozen=True)
class SegmentationParams(Params):
    """L3 segmentation (relabelling)."""

    min_body_voxels: int = 0  # bodies smaller than this are written as 0 (0 = keep all)


@dataclasses.dataclass(frozen=True)
class Plan:
    sv: np.ndarray  # uint64 supervoxel ids, sorted
    body: np.ndarray  # uint64 body id of each


def prepare(ctx: StageContext) -> Plan:
    svs = ctx.input_array("supervoxels")
    t = ctx.read_table("supervoxels").select(["sv_id", "body_id", "size"])
    ctx.create_array("segmentation", svs.shape, np.uint64, None,
                     svs.attrs.get("voxel_size", (1, 1, 1)), svs.attrs.get("offset", (0, 0, 0)),
                     attrs={"ids": "body ids (tables/bodies)"})
    sv = np.asarray(t["sv_id"].to_numpy(), np.uint64)
    body = np.asarray(t["body_id"].to_numpy(), np.uint64)
    if ctx.params.min_body_voxels > 0:
        ids, inverse = np.unique(body, return_inverse=True)
        size = np.bincount(inverse, weights=t["size"].to_numpy())
        body = np.where(size[inverse] < ctx.params.min_body_voxels, np.uint64(0), body)
    order = np.argsort(sv)
    return Plan(sv[order], body[order])


def grid(ctx: StageContext, plan: Plan) -> BlockGrid:
    return BlockGrid(tuple(ctx.input_array("supervoxels").shape),
                     ctx.ws.config["blocks"].block_shape)


def widen(ctx: StageContext, plan: Plan, region: Roi) -> Roi:
    """The region plus the bounding box of every supervoxel whose body an agglomeration
    run newer than the one the live segmentation was made from has changed."""
    from cxgraph.provenance import ProvenanceStore
    from pipeline.engine.identity import read_stamp
    from pipeline.engine.run import bbox
    from pipeline.engine.stage import array

    live = (read_stamp(ctx.ws, array("segmentation")) or {}).get("stage_run_id")
    if not live:
        return region
    store = ProvenanceStore(ctx.ws.provenance_path)
    inputs = store.execute("SELECT inputs_json FROM stage_runs WHERE stage_run_id = ?", [live])
    used = json.loads(inputs[0][0]).get("table:supervoxels", {}).get("stage_run_id") \
        if inputs else None
    newer = {r[0] for r in store.execute(
        "SELECT stage_run_id FROM stage_runs WHERE stage = 'agglomerate' AND started_at > "
        "(SELECT coalesce(max(started_at), TIMESTAMP '1970-01-01') FROM stage_runs "
        "WHERE stage_run_id = ?)", [used])}
    t = ctx.read_table("supervoxels")
    changed = t.filter(np.isin(np.asarray(t["stage_run"].to_pylist(), object), list(newer)))
    if changed.num_rows == 0:
        return region
    lo = [int(min(changed[c].to_pylist())) for c in ("z0", "y0", "x0")]
    hi = [int(max(changed[c].to_pylist())) for c in ("z1", "y1", "x1")]
    return bbox([region, Roi(tuple(lo), tuple(hi))])  # type: ignore[arg-type]


def segmentation_block(ctx: BlockContext, block: Block) -> list[dict[str, Any]]:
    plan: Plan = ctx.plan
    svs = ctx.read("supervoxels", block.write_roi)
    present = np.unique(svs)
    at = np.clip(np.searchsorted(plan.sv, present), 0, max(len(plan.sv) - 1, 0))
    known = plan.sv[at] == present if len(plan.sv) else np.zeros(len(present), bool)
    mapping = dict(zip(present[known].tolist(), plan.body[at][known].tolist(), strict=True))
    seg = fastremap.remap(svs, mapping, preserve_missing_labels=True, in_place=False)
    ctx.write("segmentation", block.write_roi, seg.astype(np.uint64))
    bodies = np.unique(seg)
    return [{"metric": "bodies_in_block", "value": float((bodies != 0).sum())}]
