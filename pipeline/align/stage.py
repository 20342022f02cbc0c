"""The L2 stages: ``stitch`` (tiles → ``raw`` mosaics) and ``align`` (→ ``aligned``).

Two stage runs, each recorded by ``stage_run`` and run blockwise where the work
is local:

``stitch`` (blocks of sections): per section, tile positions from overlap
cross-correlation + global least squares (``stitch.py``) and the blended mosaic
of the section in its own (displaced) frame → ``volumes.zarr/raw`` (Z, Y, X)
uint8 on the nominal canvas, 0 = no data; ``tables/tile_positions.parquet``.

``align``: registration of all sections at once (``register.py``, in the driver
process: it needs every pair), then the aligned volume rendered from the tiles
in blocks of ``blocks.block_shape`` → ``volumes.zarr/aligned`` (Z, Y, X) uint8
in the nominal frame of the manifest, 0 = no data. Missing sections stay 0 and
are listed in the array's ``missing_sections`` attribute and flagged in the
quality table (``section_missing``); they are not interpolated, so nothing
downstream mistakes invented pixels for data.

Gauge (the one global constant a translation solve leaves free): tile
positions are fixed so the mean (solved - nominal) position of a section's
tiles is zero, and section translations so their mean over usable sections is
zero. Benchmarks compare with the truth after removing that one constant.

Tables: ``tile_positions`` (z, tile_index, row, col, nominal_y, nominal_x, y, x,
used, edges_kept), ``stitch_edges`` (z, i, j, dy, dx, peak_ratio, sharpness,
ncc, accepted, kept, residual_px), ``section_transforms`` (z, dy, dx, usable,
section_missing, alignment_failed, alignment_fault, field_max_px),
``align_pairs`` (z, z_ref, dy, dx, ncc, peak_ratio, sharpness, accepted, kept,
residual_px), ``align_field`` (z, iy, ix, node_y, node_x, uy, ux), all px.
"""

from __future__ import annotations

import functools
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import zarr

from cxgraph.errors import WorkspaceError
from cxgraph.provenance import stage_run
from cxgraph.workspace import Workspace
from pipeline.align import register as reg
from pipeline.align.params import AlignParams
from pipeline.align.stitch import stitch_section
from pipeline.align.warp import Field, render
from pipeline.blocks import (
    Block,
    BlockGrid,
    check_chunk_aligned,
    collect_block_rows,
    write_block_rows,
)
from pipeline.runner import run_blockwise

log = logging.getLogger(__name__)


def _to_uint8(img: np.ndarray, weight: np.ndarray) -> np.ndarray:
    out = np.clip(np.rint(img), 1, 255).astype(np.uint8)
    out[weight <= 1e-6] = 0
    return out


def _section_tiles(arr: zarr.Array, z: int, used: np.ndarray) -> list[np.ndarray | None]:
    data = np.asarray(arr[z])
    return [data[i] if used[i] else None for i in range(len(used))]


def _used_by_section(ws: Workspace, z_total: int, n: int) -> np.ndarray:
    """(Z, N) bool: tile i of section z enters alignment."""
    t = ws.read_table("tiles").to_pydict()
    used = np.zeros((z_total, n), bool)
    for z, i, u in zip(t["z"], t["tile_index"], t["used"], strict=True):
        used[z, i] = u
    return used


# --- stitch -------------------------------------------------------------------------


def _stitch_block(
    tiles_path: str, raw_path: str, used: np.ndarray, nominal: np.ndarray,
    params: AlignParams, parts_dir: str, block: Block,
) -> dict[str, Any]:
    tiles_arr = zarr.open_array(tiles_path, mode="r")
    raw = zarr.open_array(raw_path, mode="r+")
    _, h, w = raw.shape
    quality, pos_rows, edge_rows = [], [], []
    for z in range(block.write_roi.begin[0], block.write_roi.end[0]):
        tiles = _section_tiles(tiles_arr, z, used[z])
        if not used[z].any():
            raw[z] = np.zeros((h, w), np.uint8)
            continue
        pos, edges = stitch_section(tiles, nominal, params)
        img, wgt = render(tiles, pos, (0, 0), (h, w), blend_px=params.blend_px,
                          order=params.interpolation_order)
        raw[z] = _to_uint8(img, wgt)
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
    write_block_rows(parts_dir, "pos", block.block_id, pos_rows)
    write_block_rows(parts_dir, "edges", block.block_id, edge_rows)
    return {"quality": quality}


def _meta(ws: Workspace) -> dict[str, Any]:
    arr = ws.array("tiles")
    a = dict(arr.attrs)
    return {"shape": tuple(a["volume_shape"]), "n": arr.shape[1],
            "nominal": np.asarray(a["nominal_yx"], float), "voxel_size": a["voxel_size"]}


def _sections_per_block(ws: Workspace, params: AlignParams) -> int:
    return params.sections_per_block or ws.config["blocks"].chunk_shape[0]


def run_stitch(ws: Workspace, input_dir: Path | str | None = None) -> str:
    """Stitch every section: ``raw`` mosaics and ``tile_positions``; returns the stage run id."""
    params: AlignParams = ws.config["align"]
    meta = _meta(ws)
    z_total, h, w = meta["shape"]
    used = _used_by_section(ws, z_total, meta["n"])
    bz = _sections_per_block(ws, params)
    chunks = (bz, *ws.config["blocks"].chunk_shape[1:])
    with stage_run(ws, "stitch", "L2", params, inputs={"tiles": "tiles"}) as run:
        grid = BlockGrid((z_total, 1, 1), (bz, 1, 1))
        done = run.done_blocks()
        tmp = "_raw_tmp"
        if len(done) == len(grid.blocks()) and not ws.has_array(tmp) and ws.has_array("raw"):
            log.info("stitch: stage run %s already complete", run.stage_run_id)
            return run.stage_run_id
        if not (done and ws.has_array(tmp)):
            ws.create_array(tmp, (z_total, h, w), np.uint8, chunks, meta["voxel_size"],
                            attrs={"frame": "section (stitched, not registered)",
                                   "no_data_value": 0})
        parts = ws.parts_dir(run.stage_run_id)
        process = functools.partial(_stitch_block, str(ws.zarr_path / "tiles"),
                                    str(ws.zarr_path / tmp), used, meta["nominal"], params,
                                    str(parts))
        run_blockwise(run, process, grid, description="stitch")
        ws.replace_array(tmp, "raw")
        pos = collect_block_rows(parts, "pos")
        if pos is None:
            raise WorkspaceError("stitch: no section has a usable tile; nothing to align")
        ws.write_table("tile_positions", pos.sort_by([("z", "ascending"),
                                                      ("tile_index", "ascending")]))
        edges = collect_block_rows(parts, "edges")
        if edges is not None:
            ws.write_table("stitch_edges", edges)
        shutil.rmtree(parts, ignore_errors=True)
        run.output("raw", "raw")
        run.output("tile_positions", "tile_positions")
    return run.stage_run_id


# --- register + render ---------------------------------------------------------------


def _positions(ws: Workspace, z_total: int, n: int) -> np.ndarray:
    t = ws.read_table("tile_positions").to_pydict()
    pos = np.full((z_total, n, 2), np.nan)
    for z, i, y, x in zip(t["z"], t["tile_index"], t["y"], t["x"], strict=True):
        pos[z, i] = (y, x)
    return pos


def _render_block(
    tiles_path: str, out_path: str, used: np.ndarray, positions: np.ndarray,
    translations: dict[int, np.ndarray], fields: dict[int, Field], params: AlignParams,
    block: Block,
) -> dict[str, Any]:
    tiles_arr = zarr.open_array(tiles_path, mode="r")
    out = zarr.open_array(out_path, mode="r+")
    (z0, y0, x0), (z1, y1, x1) = block.write_roi.begin, block.write_roi.end
    data = np.zeros(block.write_roi.shape, np.uint8)
    for z in range(z0, z1):
        if z not in translations:
            continue
        tiles = _section_tiles(tiles_arr, z, used[z])
        img, wgt = render(tiles, positions[z], (y0, x0), (y1 - y0, x1 - x0),
                          translations[z], fields.get(z), params.blend_px,
                          params.interpolation_order)
        data[z - z0] = _to_uint8(img, wgt)
    out[block.write_roi.slices] = data
    present = [z for z in range(z0, z1) if z in translations]
    cov = float((data[[z - z0 for z in present]] > 0).mean()) if present else 0.0
    return {"quality": [{"metric": "coverage", "value": cov},
                        {"metric": "sections_missing", "value": float(z1 - z0 - len(present))}]}


def _register(ws: Workspace, params: AlignParams, usable: list[int], shape) -> dict[str, Any]:
    raw = ws.array("raw")

    def load(z: int) -> reg.Mosaic:
        img = np.asarray(raw[z]).astype(np.float32)
        return img, img > 0

    pairs = reg.match_sections(usable, load, params)
    d, pairs = reg.solve_translations(usable, pairs, params)
    index = {z: k for k, z in enumerate(usable)}
    mesh = reg.Mesh.for_canvas(shape[1:], params.patch_px, params.patch_stride_px)
    kept = [p for p in pairs if p.kept]
    patches = []
    cache: dict[int, reg.Mosaic] = {}
    for p in sorted(kept, key=lambda p: p.z):
        for z in (p.z_ref, p.z):
            if z not in cache:
                cache[z] = reg.matching_image(load(z), params)
        patches.append(reg.match_patches(cache[p.z_ref], cache[p.z], d[index[p.z_ref]],
                                         d[index[p.z]], mesh, params, p.z, p.z_ref))
        for old in [q for q in cache if q < p.z - 2 * params.neighbours]:
            del cache[old]
    if params.local_fields and patches:
        fields = reg.solve_fields(usable, patches, mesh, params)
    else:
        zero = np.zeros((*mesh.shape, 2))
        fields = {z: Field(zero, mesh.origin, mesh.stride) for z in usable}
    residuals = reg.patch_residuals(patches, fields, mesh)
    return {"d": d, "pairs": pairs, "mesh": mesh, "patches": patches, "fields": fields,
            "residuals": residuals, "index": index}


def _flags(usable: list[int], d: np.ndarray, pairs: list[reg.PairMatch],
           params: AlignParams) -> dict[int, dict[str, bool]]:
    """Per usable section: alignment_failed (no kept match to an earlier section, the first
    excepted) and alignment_fault (a jump)."""
    kept_by = {z: 0 for z in usable}  # kept matches to earlier sections
    inconsistent = {z: 0 for z in usable}
    for p in pairs:
        if p.kept:
            kept_by[p.z] += 1
        elif p.accepted:  # passed quality, dropped as inconsistent with the others
            inconsistent[p.z] += 1
            inconsistent[p.z_ref] += 1
    half = max(3, params.neighbours)
    out = {}
    for k, z in enumerate(usable):
        lo, hi = max(0, k - half), min(len(usable), k + half + 1)
        med = np.median(d[lo:hi], axis=0)
        jump = float(np.hypot(*(d[k] - med)))
        out[z] = {"alignment_failed": kept_by[z] == 0 and k > 0,
                  "alignment_fault": jump > params.fault_jump_px or inconsistent[z] >= 2,
                  "jump_px": jump}
    return out


def run_align(ws: Workspace, input_dir: Path | str | None = None) -> str:
    """Register the stitched sections and render ``aligned``; returns the stage run id."""
    params: AlignParams = ws.config["align"]
    blocks = ws.config["blocks"]
    meta = _meta(ws)
    shape = meta["shape"]
    z_total = shape[0]
    used = _used_by_section(ws, z_total, meta["n"])
    positions = _positions(ws, z_total, meta["n"])
    usable = [z for z in range(z_total) if used[z].any()]
    missing = [z for z in range(z_total) if not used[z].any()]
    check_chunk_aligned(blocks.block_shape, blocks.chunk_shape)
    with stage_run(ws, "align", "L2", params,
                   inputs={"raw": "raw", "tile_positions": "tile_positions"}) as run:
        r = _register(ws, params, usable, shape)
        d, pairs, index, fields = r["d"], r["pairs"], r["index"], r["fields"]
        flags = _flags(usable, d, pairs, params)
        translations = {z: d[index[z]] for z in usable}
        q = _section_quality(usable, missing, d, index, pairs, r["residuals"], fields, flags)
        run.quality_rows(q)
        grid = BlockGrid(shape, blocks.block_shape)
        run.quality_rows(_block_quality(grid, r["residuals"], r["mesh"]))
        tmp = "_aligned_tmp"
        done = run.done_blocks()
        if not (len(done) == len(grid.blocks()) and not ws.has_array(tmp)
                and ws.has_array("aligned")):
            if not (done and ws.has_array(tmp)):
                ws.create_array(tmp, shape, np.uint8, blocks.chunk_shape, meta["voxel_size"],
                                (0.0, 0.0, 0.0),
                                attrs={"frame": "nominal", "no_data_value": 0,
                                       "missing_sections": missing,
                                       "flagged_sections": sorted(
                                           z for z, f in flags.items()
                                           if f["alignment_fault"] or f["alignment_failed"])})
            process = functools.partial(_render_block, str(ws.zarr_path / "tiles"),
                                        str(ws.zarr_path / tmp), used, positions, translations,
                                        fields if params.local_fields else {}, params)
            run_blockwise(run, process, grid, description="align")
            ws.replace_array(tmp, "aligned")
        _write_tables(ws, usable, missing, d, index, pairs, fields, flags, r["mesh"])
        run.output("aligned", "aligned")
        run.output("section_transforms", "section_transforms")
    return run.stage_run_id


def _section_quality(usable, missing, d, index, pairs, residuals, fields, flags) -> list[dict]:
    rows: list[dict[str, Any]] = []
    by_z: dict[int, list[float]] = {z: [] for z in usable}
    for z, z_ref, _, _, res in residuals:
        by_z[z].append(res)
        by_z[z_ref].append(res)
    for z in missing:
        rows.append({"metric": "section_missing", "value": 1.0, "section": z})
    for z in usable:
        k = index[z]
        mine = [p for p in pairs if z in (p.z, p.z_ref)]
        kept = [p for p in mine if p.kept]
        res = by_z[z]
        f = flags[z]
        rows += [
            {"metric": "section_missing", "value": 0.0, "section": z},
            {"metric": "drift_y_px", "value": float(d[k, 0]), "section": z},
            {"metric": "drift_x_px", "value": float(d[k, 1]), "section": z},
            {"metric": "drift_px", "value": float(np.hypot(*d[k])), "section": z},
            {"metric": "matches_kept", "value": float(len(kept)), "section": z},
            {"metric": "matches_rejected", "value": float(len(mine) - len(kept)), "section": z},
            {"metric": "alignment_failed", "value": float(f["alignment_failed"]), "section": z},
            {"metric": "alignment_fault", "value": float(f["alignment_fault"]), "section": z},
            {"metric": "jump_px", "value": f["jump_px"], "section": z},
            {"metric": "field_max_px", "value": fields[z].max_abs, "section": z},
        ]
        if kept:
            rows += [
                {"metric": "match_ncc_mean", "section": z,
                 "value": float(np.mean([p.match.ncc for p in kept]))},
                {"metric": "match_peak_ratio_min", "section": z,
                 "value": float(min(p.match.peak_ratio for p in kept))},
                {"metric": "pair_residual_max_px", "section": z,
                 "value": float(max(p.residual_px for p in kept))},
            ]
        if res:
            rows += [
                {"metric": "residual_mean_px", "value": float(np.mean(res)), "section": z},
                {"metric": "residual_p95_px", "value": float(np.percentile(res, 95)),
                 "section": z},
                {"metric": "residual_max_px", "value": float(np.max(res)), "section": z},
            ]
    return rows


def _block_quality(grid: BlockGrid, residuals, mesh: reg.Mesh) -> list[dict]:
    """Residual mean/p95/max per output block, from the patch vectors whose node lies in it."""
    nodes = mesh.nodes()
    per: dict[int, list[float]] = {}
    bz, by, bx = grid.block_shape
    gz, gy, gx = grid.grid_shape
    for z, _, iy, ix, res in residuals:
        y, x = nodes[iy, ix]
        idx = (min(z // bz, gz - 1), min(int(y) // by, gy - 1), min(int(x) // bx, gx - 1))
        per.setdefault(grid.block(idx).block_id, []).append(res)
    rows = []
    for b, res in sorted(per.items()):
        rows += [{"metric": "residual_mean_px", "value": float(np.mean(res)), "block": b},
                 {"metric": "residual_p95_px", "value": float(np.percentile(res, 95)), "block": b},
                 {"metric": "residual_max_px", "value": float(np.max(res)), "block": b}]
    return rows


def _write_tables(ws, usable, missing, d, index, pairs, fields, flags, mesh) -> None:
    rows = []
    for z in sorted(usable + missing):
        if z in index:
            k, f = index[z], flags[z]
            rows.append({"z": z, "dy": float(d[k, 0]), "dx": float(d[k, 1]), "usable": True,
                         "section_missing": False, "alignment_failed": f["alignment_failed"],
                         "alignment_fault": f["alignment_fault"],
                         "field_max_px": fields[z].max_abs})
        else:
            rows.append({"z": z, "dy": float("nan"), "dx": float("nan"), "usable": False,
                         "section_missing": True, "alignment_failed": False,
                         "alignment_fault": False, "field_max_px": float("nan")})
    ws.write_table("section_transforms", pa.Table.from_pylist(rows))
    ws.write_table("align_pairs", pa.Table.from_pylist([
        {"z": p.z, "z_ref": p.z_ref, "dy": p.match.dy, "dx": p.match.dx, "ncc": p.match.ncc,
         "peak_ratio": p.match.peak_ratio, "sharpness": p.match.sharpness,
         "accepted": p.accepted, "kept": p.kept, "residual_px": p.residual_px} for p in pairs],
        schema=pa.schema([("z", pa.int64()), ("z_ref", pa.int64()), ("dy", pa.float64()),
                          ("dx", pa.float64()), ("ncc", pa.float64()),
                          ("peak_ratio", pa.float64()), ("sharpness", pa.float64()),
                          ("accepted", pa.bool_()), ("kept", pa.bool_()),
                          ("residual_px", pa.float64())])))
    nodes = mesh.nodes()
    field_rows = [
        {"z": z, "iy": iy, "ix": ix, "node_y": float(nodes[iy, ix, 0]),
         "node_x": float(nodes[iy, ix, 1]), "uy": float(f.u[iy, ix, 0]),
         "ux": float(f.u[iy, ix, 1])}
        for z, f in fields.items() for iy in range(mesh.shape[0]) for ix in range(mesh.shape[1])
    ]
    if field_rows:
        ws.write_table("align_field", pa.Table.from_pylist(field_rows))
