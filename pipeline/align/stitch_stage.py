"""The L2 ``stitch`` stage: tile positions of every section, and its mosaic (``raw``).

Blocks of ``blocks.block_shape[0]`` whole sections. Per section: tile positions
from overlap cross-correlation + global least squares (``stitch.py``) and the
blended mosaic in the section's own (displaced) frame.

Outputs: ``volumes.zarr/raw`` (Z, Y, X) uint8 on the nominal canvas, 0 = no data;
``tables/tile_positions`` (z, tile_index, nominal_y, nominal_x, y, x, used,
edges_kept, block) and ``tables/stitch_edges`` (z, i, j, dy, dx, peak_ratio,
sharpness, ncc, accepted, kept, residual_px, block), all px; L2 quality per
section (edges, rejected edges, unplaced tiles, residuals, NCC).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from cxgraph.errors import WorkspaceError
from pipeline.align.inputs import (
    frame,
    nominal_by_section,
    section_tiles,
    to_uint8,
    used_by_section,
)
from pipeline.align.params import StitchParams
from pipeline.align.stitch import stitch_section
from pipeline.align.warp import render
from pipeline.engine import Block, BlockContext, BlockGrid, StageContext


@dataclasses.dataclass(frozen=True)
class Plan:
    shape: tuple[int, int, int]  # nominal volume (z, y, x) voxels
    used: np.ndarray  # (Z, N) bool
    nominal: np.ndarray  # (Z, N, 2) nominal tile top-lefts px, each section's own


def prepare(ctx: StageContext) -> Plan:
    tiles = ctx.input_array("tiles")
    f = frame(tiles)
    table = ctx.read_table("tiles")
    used = used_by_section(table, f["shape"][0], f["n"])
    if not used.any():
        raise WorkspaceError("stitch: no section has a usable tile; nothing to align")
    bz = ctx.ws.config["blocks"].block_shape[0]
    chunks = (bz, *ctx.ws.config["blocks"].chunk_shape[1:])
    ctx.create_array("raw", f["shape"], np.uint8, chunks, f["voxel_size"],
                     attrs={"frame": "section (stitched, not registered)", "no_data_value": 0})
    nominal = nominal_by_section(table, f["nominal"], f["shape"][0])
    return Plan(tuple(f["shape"]), used, nominal)  # type: ignore[arg-type]


def grid(ctx: StageContext, plan: Plan) -> BlockGrid:
    z, y, x = plan.shape
    return BlockGrid((z, y, x), (ctx.ws.config["blocks"].block_shape[0], y, x))


def stitch_block(ctx: BlockContext, block: Block) -> list[dict[str, Any]]:
    plan: Plan = ctx.plan
    params: StitchParams = ctx.params
    tiles_arr = ctx.array("tiles")
    _, h, w = plan.shape
    quality, pos_rows, edge_rows = [], [], []
    used = plan.used
    z0, z1 = block.write_roi.begin[0], block.write_roi.end[0]
    raw = np.zeros((z1 - z0, h, w), np.uint8)
    for z in range(z0, z1):
        tiles = section_tiles(tiles_arr, z, used[z])
        if not used[z].any():
            continue
        nominal = plan.nominal[z]
        pos, edges = stitch_section(tiles, nominal, params)
        img, wgt = render(tiles, pos, (0, 0), (h, w), blend_px=params.blend_px,
                          order=params.interpolation_order)
        raw[z - z0] = to_uint8(img, wgt)
        kept_by_tile = np.zeros(len(tiles), int)
        for e in edges:
            edge_rows.append({"z": z, "i": e.i, "j": e.j, "dy": e.match.dy, "dx": e.match.dx,
                              "peak_ratio": e.match.peak_ratio, "sharpness": e.match.sharpness,
                              "ncc": e.match.ncc, "accepted": e.accepted, "kept": e.kept,
                              "residual_px": e.residual_px})
            if e.kept:
                kept_by_tile[[e.i, e.j]] += 1
        for i in range(len(tiles)):
            pos_rows.append({"z": z, "tile_index": i, "nominal_y": float(nominal[i, 0]),
                             "nominal_x": float(nominal[i, 1]), "y": float(pos[i, 0]),
                             "x": float(pos[i, 1]), "used": bool(used[z, i]),
                             "edges_kept": int(kept_by_tile[i])})
        kept = [e.residual_px for e in edges if e.kept]
        unplaced = int(sum(1 for i in range(len(tiles))
                           if used[z, i] and kept_by_tile[i] == 0 and used[z].sum() > 1))
        quality += [
            {"metric": "stitch_edges", "value": float(len(edges)), "section": z},
            {"metric": "stitch_edges_rejected", "value": float(len(edges) - len(kept)),
             "section": z},
            {"metric": "stitch_tiles_unplaced", "value": float(unplaced), "section": z},
        ]
        if kept:
            quality += [
                {"metric": "stitch_residual_mean_px", "value": float(np.mean(kept)), "section": z},
                {"metric": "stitch_residual_max_px", "value": float(np.max(kept)), "section": z},
                {"metric": "stitch_ncc_mean", "section": z,
                 "value": float(np.mean([e.match.ncc for e in edges if e.kept]))},
            ]
    ctx.write("raw", block.write_roi, raw)
    ctx.rows("tile_positions", block, pos_rows)
    ctx.rows("stitch_edges", block, edge_rows)
    return quality
