"""The L3 ``supervoxels`` stage: fragments per block from the affinities (``fragments.py``).

Each block's fragments get ids from ``cxgraph.ids.supervoxel_ids``: the block's
grid position plus a local id, so blocks never collide and one block can be
recomputed alone. Nothing crosses a block face: agglomeration joins fragments
across faces.

Outputs ``volumes.zarr/supervoxels`` (uint64 (Z, Y, X)) and ``tables/fragments``
(sv_id, size, z0, y0, x0, z1, y1, x1 bounding box in voxels, centroid_z/y/x, block).
L3 quality per block: ``fragments``, ``fragment_size_median``, ``small_fragments``
(< ``small_fragment_voxels``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import cc3d
import numpy as np

from cxgraph.ids import supervoxel_ids
from cxgraph.params import Params
from pipeline.engine import Block, BlockContext, BlockGrid, StageContext
from pipeline.segment.fragments import fragments_xy


@dataclasses.dataclass(frozen=True)
class SupervoxelParams(Params):
    """L3 supervoxels (watershed per xy section)."""

    boundary_threshold: float = 0.5  # xy boundary map below this is a fragment's inside
    seed_distance_px: int = 6  # one seed per this radius of the inside's distance map
    min_seed_px: float = 1.0  # seeds at least this far from a boundary
    small_fragment_voxels: int = 50  # quality: fragments smaller than this count as small


def prepare(ctx: StageContext) -> None:
    affs = ctx.input_array("affinities")
    ctx.create_array("supervoxels", affs.shape[1:], np.uint64, None,
                     affs.attrs.get("voxel_size", (1, 1, 1)), affs.attrs.get("offset", (0, 0, 0)),
                     attrs={"ids": "cxgraph.ids supervoxel ids (block position + local id)"})


def grid(ctx: StageContext, plan: None) -> BlockGrid:
    return BlockGrid(tuple(ctx.input_array("affinities").shape[1:]),
                     ctx.ws.config["blocks"].block_shape)


def supervoxels_block(ctx: BlockContext, block: Block) -> list[dict[str, Any]]:
    p: SupervoxelParams = ctx.params
    affs = ctx.read("affinities", block.write_roi).astype(np.float32) / 255.0
    local = fragments_xy(affs, p.boundary_threshold, p.seed_distance_px, p.min_seed_px)
    ctx.write("supervoxels", block.write_roi, supervoxel_ids(block.index, local))
    stats = cc3d.statistics(local.astype(np.uint32))
    counts = stats["voxel_counts"]
    rows = []
    origin = block.write_roi.begin
    for lab in range(1, len(counts)):
        if counts[lab] == 0:
            continue
        bb = stats["bounding_boxes"][lab]
        c = stats["centroids"][lab]
        rows.append({
            "sv_id": int(supervoxel_ids(block.index, np.array([lab]))[0]),
            "size": int(counts[lab]),
            "z0": bb[0].start + origin[0], "y0": bb[1].start + origin[1],
            "x0": bb[2].start + origin[2], "z1": bb[0].stop + origin[0],
            "y1": bb[1].stop + origin[1], "x1": bb[2].stop + origin[2],
            "centroid_z": float(c[0] + origin[0]), "centroid_y": float(c[1] + origin[1]),
            "centroid_x": float(c[2] + origin[2])})
    ctx.rows("fragments", block, rows)
    sizes = np.array([r["size"] for r in rows]) if rows else np.zeros(0)
    return [{"metric": "fragments", "value": float(len(rows))},
            {"metric": "fragment_size_median",
             "value": float(np.median(sizes)) if sizes.size else 0.0},
            {"metric": "small_fragments", "value": float((sizes < p.small_fragment_voxels).sum())}]
