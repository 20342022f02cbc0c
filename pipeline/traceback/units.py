"""Quality rows as spatial units: each recorded value with the box of volume it describes.

A row names a block (its grid position, ``cxgraph.ids``), a section (all of one z), or a
tile (its footprint from the ``tiles`` table); rows of the whole volume are left out. Only
rows of the runs that made the current outputs count: a stage's current run and, for a
regional re-run, the runs it patches, the newest one for each unit.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

from cxgraph import ids
from cxgraph.errors import WorkspaceError
from cxgraph.provenance import ProvenanceStore
from cxgraph.workspace import Workspace
from pipeline.engine import Roi


@dataclasses.dataclass(frozen=True)
class Volume:
    shape: tuple[int, int, int]
    block_shape: tuple[int, int, int]


def volume_of(ws: Workspace) -> Volume:
    for name in ("aligned", "raw", "segmentation"):
        if ws.has_array(name):
            return Volume(tuple(ws.array(name).shape[-3:]), ws.config["blocks"].block_shape)
    raise WorkspaceError(f"{ws.root} has no aligned volume yet: run the pipeline first")


def run_chains(ws: Workspace) -> dict[str, list[str]]:
    """{stage: [current run, the run it patches, ...]} for every stage with outputs."""
    from pipeline import registry
    from pipeline.engine.run import current_run

    store = ProvenanceStore(ws.provenance_path)
    base = dict(store.execute("SELECT stage_run_id, base_stage_run_id FROM stage_runs"))
    chains = {}
    for stage in registry.stages():
        run = current_run(ws, stage)
        chain = []
        while run and run not in chain:
            chain.append(run)
            run = base.get(run)
        if chain:
            chains[stage.name] = chain
    return chains


def quality_units(ws: Workspace) -> pl.DataFrame:
    """Columns layer, stage, stage_run_id, metric, value, kind (block|section|tile), unit,
    z0, z1, y0, y1, x0, x1: one row per unit and metric, from the current runs."""
    chains = run_chains(ws)
    runs = [r for chain in chains.values() for r in chain]
    if not runs:
        return pl.DataFrame()
    rank = {r: i for chain in chains.values() for i, r in enumerate(chain)}
    store = ProvenanceStore(ws.provenance_path)
    rows = pl.from_arrow(store.query(
        "SELECT layer, stage, stage_run_id, block, section, tile, metric, value FROM quality "
        "WHERE stage_run_id IN (SELECT unnest(?)) AND value IS NOT NULL "
        "AND (block IS NOT NULL OR section IS NOT NULL OR tile IS NOT NULL)", [runs]))
    if rows.is_empty():
        return rows
    vol = volume_of(ws)
    rows = rows.with_columns(
        pl.when(pl.col("tile").is_not_null()).then(pl.lit("tile"))
        .when(pl.col("section").is_not_null()).then(pl.lit("section"))
        .otherwise(pl.lit("block")).alias("kind"),
        pl.col("stage_run_id").replace_strict(rank, return_dtype=pl.Int64).alias("rank"))
    rows = rows.with_columns(pl.coalesce(
        pl.col("tile"), pl.col("section").cast(pl.Utf8),
        pl.col("block").cast(pl.Utf8)).alias("unit"))
    # the newest run of the chain that recorded this unit wins
    rows = rows.sort("rank").unique(["stage", "metric", "kind", "unit"], keep="first")
    boxes = _boxes(ws, vol, rows)
    return rows.join(boxes, on=["kind", "unit"], how="inner").drop("rank")


def _boxes(ws: Workspace, vol: Volume, rows: pl.DataFrame) -> pl.DataFrame:
    z, y, x = vol.shape
    out = []
    for kind, unit, block, section in rows.select(
            "kind", "unit", "block", "section").unique(["kind", "unit"]).iter_rows():
        if kind == "block":
            index = ids.block_index(int(block))
            b = [i * s for i, s in zip(index, vol.block_shape, strict=True)]
            e = [min(bb + s, n) for bb, s, n in zip(b, vol.block_shape, vol.shape, strict=True)]
            out.append((kind, unit, b[0], e[0], b[1], e[1], b[2], e[2]))
        elif kind == "section":
            out.append((kind, unit, int(section), int(section) + 1, 0, y, 0, x))
    out += _tile_boxes(ws, set(rows.filter(pl.col("kind") == "tile")["unit"].to_list()))
    return pl.DataFrame(out, schema=["kind", "unit", "z0", "z1", "y0", "y1", "x0", "x1"],
                        orient="row")


def _tile_boxes(ws: Workspace, files: set[str]) -> list[tuple]:
    if not files or not ws.table_path("tiles").exists() or not ws.has_array("tiles"):
        return []
    th, tw = (int(v) for v in ws.array("tiles").shape[-2:])
    t = ws.read_table("tiles").to_pydict()
    return [("tile", f, int(z), int(z) + 1, int(ny), int(ny) + th, int(nx), int(nx) + tw)
            for f, z, ny, nx in zip(t["file"], t["z"], t["nominal_y"], t["nominal_x"],
                                    strict=True) if f in files]


def box_of(roi: Roi) -> list[int]:
    return [roi.begin[0], roi.end[0], roi.begin[1], roi.end[1], roi.begin[2], roi.end[2]]


def fraction_inside(units: pl.DataFrame, roi: Roi) -> np.ndarray:
    """The fraction of each unit's box that lies in ``roi``."""
    frac = np.ones(units.height)
    for k, a in enumerate("zyx"):
        lo, hi = units[f"{a}0"].to_numpy(), units[f"{a}1"].to_numpy()
        inter = np.clip(np.minimum(hi, roi.end[k]) - np.maximum(lo, roi.begin[k]), 0, None)
        frac *= inter / np.maximum(hi - lo, 1)
    return frac


def grid_map(units: pl.DataFrame, vol: Volume, cell: tuple[int, int]) -> np.ndarray:
    """Mean value per (y, x) cell over z, NaN where no unit covers the cell centre."""
    ny, nx = -(-vol.shape[1] // cell[0]), -(-vol.shape[2] // cell[1])
    acc, cnt = np.zeros((ny, nx)), np.zeros((ny, nx))
    for y0, y1, x0, x1, v in units.select("y0", "y1", "x0", "x1", "value").iter_rows():
        r0, r1 = y0 // cell[0], max(y0 // cell[0] + 1, -(-y1 // cell[0]))
        c0, c1 = x0 // cell[1], max(x0 // cell[1] + 1, -(-x1 // cell[1]))
        acc[r0:r1, c0:c1] += v
        cnt[r0:r1, c0:c1] += 1
    with np.errstate(invalid="ignore"):
        return np.where(cnt > 0, acc / np.maximum(cnt, 1), np.nan)
