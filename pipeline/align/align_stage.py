"""The L2 ``align`` stage: register every section, render ``aligned`` from the tiles.

``prepare`` registers all sections at once (``register.py``, in the driver: it
needs every pair), flags faults and writes the tables; blocks of
``blocks.block_shape`` then render the aligned volume from the tiles.

Outputs: ``volumes.zarr/aligned`` (Z, Y, X) uint8 in the nominal frame of the
manifest, 0 = no data. Missing sections stay 0 and are listed in the array's
``missing_sections`` attribute and flagged in the quality table
(``section_missing``); they are not interpolated, so nothing downstream mistakes
invented pixels for data.

Gauge (the one global constant a translation solve leaves free): tile
positions are fixed so the mean (solved - nominal) position of a section's
tiles is zero, and section translations so their mean over usable sections is
zero. Benchmarks compare with the truth after removing that one constant.

Tables: ``section_transforms`` (z, dy, dx, usable, section_missing,
alignment_failed, alignment_fault, field_max_px), ``align_pairs`` (z, z_ref, dy,
dx, ncc, peak_ratio, sharpness, accepted, kept, residual_px), ``align_field``
(z, iy, ix, node_y, node_x, uy, ux), all px.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.align import register as reg
from pipeline.align.inputs import frame, section_tiles, to_uint8, used_by_section
from pipeline.align.params import AlignParams
from pipeline.align.warp import Field, render
from pipeline.engine import Block, BlockContext, BlockGrid, StageContext
from pipeline.engine.executors import progress


@dataclasses.dataclass(frozen=True)
class Plan:
    shape: tuple[int, int, int]
    used: np.ndarray  # (Z, N) bool
    positions: np.ndarray  # (Z, N, 2) solved tile top-lefts px
    translations: dict[int, np.ndarray]  # section z -> (dy, dx) px
    fields: dict[int, Field]  # section z -> local field ({} without local fields)


def _positions(table: pa.Table, z_total: int, n: int) -> np.ndarray:
    t = table.select(["z", "tile_index", "y", "x"]).to_pydict()
    pos = np.full((z_total, n, 2), np.nan)
    for z, i, y, x in zip(t["z"], t["tile_index"], t["y"], t["x"], strict=True):
        pos[z, i] = (y, x)
    return pos


def render_block(ctx: BlockContext, block: Block) -> list[dict[str, Any]]:
    plan: Plan = ctx.plan
    params: AlignParams = ctx.params
    tiles_arr = ctx.array("tiles")
    (z0, y0, x0), (z1, y1, x1) = block.write_roi.begin, block.write_roi.end
    data = np.zeros(block.write_roi.shape, np.uint8)
    for z in range(z0, z1):
        if z not in plan.translations:
            continue
        tiles = section_tiles(tiles_arr, z, plan.used[z])
        img, wgt = render(tiles, plan.positions[z], (y0, x0), (y1 - y0, x1 - x0),
                          plan.translations[z], plan.fields.get(z), params.blend_px,
                          params.interpolation_order)
        data[z - z0] = to_uint8(img, wgt)
    ctx.write("aligned", block.write_roi, data)
    present = [z for z in range(z0, z1) if z in plan.translations]
    cov = float((data[[z - z0 for z in present]] > 0).mean()) if present else 0.0
    return [{"metric": "coverage", "value": cov},
            {"metric": "sections_missing", "value": float(z1 - z0 - len(present))}]


def grid(ctx: StageContext, plan: Plan) -> BlockGrid:
    return BlockGrid(plan.shape, ctx.ws.config["blocks"].block_shape)


def prepare(ctx: StageContext) -> Plan:
    """Register all sections, record section/block quality and the tables, create
    ``aligned``; returns what the render blocks need."""
    params: AlignParams = ctx.params
    tiles = ctx.input_array("tiles")
    f = frame(tiles)
    shape = f["shape"]
    z_total = shape[0]
    used = used_by_section(ctx.read_table("tiles"), z_total, f["n"])
    positions = _positions(ctx.read_table("tile_positions"), z_total, f["n"])
    usable = [z for z in range(z_total) if used[z].any()]
    missing = [z for z in range(z_total) if not used[z].any()]
    r = _register(ctx.input_array("raw"), params, usable, shape)
    d, pairs, index, fields = r["d"], r["pairs"], r["index"], r["fields"]
    flags = _flags(usable, d, pairs, params)
    ctx.quality_rows(_section_quality(usable, missing, d, index, pairs, r["residuals"],
                                      fields, flags))
    g = BlockGrid(shape, ctx.ws.config["blocks"].block_shape)
    ctx.quality_rows(_block_quality(g, r["residuals"], r["mesh"]))
    _write_tables(ctx, usable, missing, d, index, pairs, fields, flags, r["mesh"])
    ctx.create_array("aligned", shape, np.uint8, None, f["voxel_size"], (0.0, 0.0, 0.0),
                     attrs={"frame": "nominal", "no_data_value": 0, "missing_sections": missing,
                            "flagged_sections": sorted(
                                z for z, fl in flags.items()
                                if fl["alignment_fault"] or fl["alignment_failed"])})
    return Plan(tuple(shape), used, positions, {z: d[index[z]] for z in usable},  # type: ignore[arg-type]
                fields if params.local_fields else {})


def _register(raw, params: AlignParams, usable: list[int], shape) -> dict[str, Any]:

    def load(z: int) -> reg.Mosaic:
        img = np.asarray(raw[z]).astype(np.float32)
        return img, img > 0

    with progress(len(usable), "align: matching sections", "section") as bar:
        def load_counted(z: int) -> reg.Mosaic:  # match_sections loads each section once
            bar.update()
            return load(z)

        pairs = reg.match_sections(usable, load_counted, params)
    d, pairs = reg.solve_translations(usable, pairs, params)
    index = {z: k for k, z in enumerate(usable)}
    mesh = reg.Mesh.for_canvas(shape[1:], params.patch_px, params.patch_stride_px)
    kept = [p for p in pairs if p.kept]
    patches = []
    cache: dict[int, reg.Mosaic] = {}
    bar = progress(len(kept), "align: local patch matching", "pair")
    for p in sorted(kept, key=lambda p: p.z):
        for z in (p.z_ref, p.z):
            if z not in cache:
                cache[z] = reg.matching_image(load(z), params)
        patches.append(reg.match_patches(cache[p.z_ref], cache[p.z], d[index[p.z_ref]],
                                         d[index[p.z]], mesh, params, p.z, p.z_ref))
        for old in [q for q in cache if q < p.z - 2 * params.neighbours]:
            del cache[old]
        bar.update()
    bar.close()
    if params.local_fields and patches:
        with progress(1, "align: solving local fields", "solve") as solve:
            fields = reg.solve_fields(usable, patches, mesh, params)
            solve.update()
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


def _write_tables(ctx, usable, missing, d, index, pairs, fields, flags, mesh) -> None:
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
    ctx.write_table("section_transforms", pa.Table.from_pylist(rows))
    ctx.write_table("align_pairs", pa.Table.from_pylist([
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
    ctx.write_table("align_field", pa.Table.from_pylist(field_rows, schema=pa.schema(
        [(c, pa.int64()) for c in ("z", "iy", "ix")]
        + [(c, pa.float64()) for c in ("node_y", "node_x", "uy", "ux")])))
