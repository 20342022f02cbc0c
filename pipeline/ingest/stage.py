"""L1 ingest: read microscope tiles, check them, flat-field and normalise, record quality.

Outputs (workspace):

- ``volumes.zarr/tiles`` — uint8 (Z, N, TH, TW): section z, tile index
  ``row * cols + col``, tile pixels (y, x); one chunk per tile. Values are
  normalised grey levels in 1..255; **0 means no data** (missing section,
  missing or rejected tile). Attributes: ``grid`` [rows, cols], ``tile_shape``,
  ``nominal_yx`` (N, 2) nominal top-left px, ``volume_shape`` and ``voxel_size``
  of the nominal frame, ``input_dir``, ``intensity_map``.
- ``volumes.zarr/flatfield`` — float32 (TH, TW) illumination profile, mean 1
  (all ones with ``ingest.flatfield = false``).
- ``tables/tiles.parquet`` — one row per (section, tile index): ``z, row, col,
  tile_index, file, nominal_y, nominal_x`` (px), ``status`` (ok | saturated |
  blank | corrupt | non_finite | wrong_shape | wrong_dtype | absent | section_missing),
  ``reason``, ``used`` (bool: the tile enters alignment), ``gain``, ``offset``,
  ``block``.
- L1 quality rows per tile (``tile`` = file) and per section (see ``TILE_METRICS``).

Policy for bad tiles (``ingest.on_bad_tile``): ``mark`` (default) records each
bad tile — file, section, row, column, reason — in the table, the quality
rows and the log, stores it as zeros and continues; ``stop`` raises
``InputDataError`` listing all of them. Every tile is checked (``prepare``)
before anything is written.

Intensity model: tile = gain * (illumination(u) * image) + offset. The
illumination profile is the median of the mean-normalised usable tiles
(every tile of the volume, sampled up to ``flatfield_max_tiles``), smoothed;
per-tile gain and offset are matched in the nominal overlaps (mean and standard
deviation of each strip) by least squares with a weak pull to (1, 0); finally
one volume-wide linear map sends the 0.5th/99.5th percentiles to
``target_low``/``target_high``. Contrast differences between regions (a
staining gradient, a low-contrast patch) are therefore kept, not erased, and
show in the quality metrics.

Float tiles (``float32``/``float64``) are put on the 0..255 grey scale first, linearly
from the manifest's ``intensity_range`` [low, high], or without one from the data's
own 0.01th/99.99th percentiles (``tiles.grey_range``); a tile with any NaN or infinite
pixel is bad (``non_finite``). Integer tiles keep their values.

Blocks are ``blocks.block_shape[0]`` whole sections.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from cxgraph.errors import InputDataError
from pipeline.engine import Block, BlockContext, BlockGrid, StageContext
from pipeline.ingest.manifest import Manifest, read_manifest, read_tile
from pipeline.ingest.params import IngestParams
from pipeline.ingest.tiles import (
    USABLE,
    check_tile,
    estimate_flatfield,
    grey_range,
    overlap_gains,
    tile_quality,
    to_grey,
)

log = logging.getLogger(__name__)

TILE_METRICS = ("membrane_contrast", "snr", "saturated_fraction", "mean_intensity")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What every block needs, computed once by ``prepare``."""

    manifest: Manifest
    rows: list[dict[str, Any]]  # one per (section, tile index), checked
    flat: np.ndarray | None  # (TH, TW) illumination profile
    mapping: tuple[float, float]  # grey values sent to target_low / target_high
    n_bad: int
    grey: tuple[float, float]  # the input's grey scale (see tiles.grey_range)


def _grey(manifest: Manifest) -> tuple[float, float]:
    """The grey scale; float tiles without a declared range are read once more for it."""
    if manifest.dtype.kind != "f" or manifest.intensity_range is not None:
        return grey_range(manifest.dtype, manifest.intensity_range, [])
    imgs = []
    for sec in manifest.sections:
        for t in sec.tiles if sec.status == "ok" else ():
            try:
                img = read_tile(manifest.root / t.file)
            except InputDataError:
                continue  # reported by the scan
            if img.dtype == manifest.dtype and img.shape == tuple(manifest.tile_shape):
                imgs.append(img)
    return grey_range(manifest.dtype, None, imgs)


def _scan(manifest: Manifest, params: IngestParams, grey: tuple[float, float]
          ) -> tuple[list[dict[str, Any]], list]:
    """Read and check every tile; returns the table rows and flat-field samples (grey)."""
    rows_n, cols_n = manifest.grid
    nominal = manifest.nominal_positions()
    rows: list[dict[str, Any]] = []
    n_usable = sum(len(s.tiles) for s in manifest.sections if s.status == "ok")
    every = max(1, n_usable // max(params.flatfield_max_tiles, 1))
    samples, seen = [], 0
    for sec in manifest.sections:
        by_index = {manifest.tile_index(t.row, t.col): t for t in sec.tiles}
        for idx in range(rows_n * cols_n):
            t = by_index.get(idx)
            row = {"z": sec.z, "row": idx // cols_n, "col": idx % cols_n, "tile_index": idx,
                   "file": t.file if t else "", "nominal_y": float(t.y if t else nominal[idx, 0]),
                   "nominal_x": float(t.x if t else nominal[idx, 1]), "status": "ok",
                   "reason": "", "saturated_fraction": float("nan")}
            if sec.status == "missing":
                row.update(status="section_missing", reason="section marked missing")
            elif t is None:
                row.update(status="absent", reason="no tile in the manifest at this position")
            else:
                try:
                    img = read_tile(manifest.root / t.file)
                    status, reason, sat = check_tile(img, manifest.tile_shape, manifest.dtype,
                                                     params, grey)
                    row.update(status=status, reason=reason, saturated_fraction=sat)
                    if status in USABLE:
                        if seen % every == 0 and len(samples) < params.flatfield_max_tiles:
                            samples.append(to_grey(img, manifest.dtype, grey))
                        seen += 1
                except InputDataError as e:
                    row.update(status="corrupt", reason=str(e))
            rows.append(row)
    return rows, samples


def ingest_block(ctx: BlockContext, block: Block) -> list[dict[str, Any]]:
    """Normalise and write the tiles of sections [z0, z1) of the block."""
    plan: Plan = ctx.plan
    params: IngestParams = ctx.params
    manifest, rows, flat = plan.manifest, plan.rows, plan.flat
    z0, z1 = block.write_roi.begin[0], block.write_roi.end[0]
    n = manifest.grid[0] * manifest.grid[1]
    quality: list[dict[str, Any]] = []
    out_rows = []
    for z in range(z0, z1):
        srows = [r for r in rows if r["z"] == z]
        tiles: list[np.ndarray | None] = [None] * n
        for r in srows:
            if r["status"] in USABLE:
                img = to_grey(read_tile(manifest.root / r["file"]), manifest.dtype, plan.grey)
                tiles[r["tile_index"]] = img / flat if flat is not None else img
        nominal = np.array([[r["nominal_y"], r["nominal_x"]] for r in srows])
        if params.normalize == "overlap":
            gain, offset = overlap_gains(tiles, nominal, params.min_overlap_px)
        else:
            gain, offset = np.ones(n), np.zeros(n)
        lo, hi = plan.mapping
        out = np.zeros((n, *manifest.tile_shape), np.uint8)
        sec_q: dict[str, list[float]] = {m: [] for m in TILE_METRICS}
        for r in srows:
            i = r["tile_index"]
            r = {**r, "gain": float(gain[i]), "offset": float(offset[i]),
                 "used": tiles[i] is not None}
            out_rows.append(r)
            if tiles[i] is None:
                if r["status"] != "section_missing":
                    quality.append({"metric": "tile_bad", "value": 1.0, "section": z,
                                    "tile": r["file"] or f"z{z}_r{r['row']}_c{r['col']}"})
                continue
            corrected = gain[i] * tiles[i] + offset[i]
            q = tile_quality(corrected) | {"saturated_fraction": r["saturated_fraction"]}
            for m in TILE_METRICS:
                quality.append({"metric": m, "value": q[m], "section": z, "tile": r["file"]})
                sec_q[m].append(q[m])
            scaled = params.target_low + (corrected - lo) * (
                (params.target_high - params.target_low) / max(hi - lo, 1e-6))
            out[i] = np.clip(np.rint(scaled), 1, 255).astype(np.uint8)
        ctx.write("tiles", (slice(z, z + 1),), out[None])
        n_bad = sum(1 for r in srows if r["status"] not in USABLE)
        missing = all(r["status"] == "section_missing" for r in srows)
        quality += [
            {"metric": "section_missing", "value": float(missing), "section": z},
            {"metric": "tiles_bad", "value": float(0 if missing else n_bad), "section": z},
        ]
        for m, vals in sec_q.items():
            if vals:
                quality.append({"metric": m, "value": float(np.mean(vals)), "section": z})
    ctx.rows("tiles", block, out_rows)
    return quality


def prepare(ctx: StageContext) -> Plan:
    """Check every tile, estimate the flat field and the intensity map, create ``tiles``."""
    params: IngestParams = ctx.params
    input_dir = ctx.source("tile_dir")
    manifest = read_manifest(input_dir)
    grey = _grey(manifest)
    rows, samples = _scan(manifest, params, grey)
    bad = [r for r in rows if r["status"] not in USABLE + ("section_missing",)]
    for r in bad:
        log.warning("bad tile z=%d row=%d col=%d file=%s: %s (%s)", r["z"], r["row"],
                    r["col"], r["file"] or "-", r["status"], r["reason"])
    if bad and params.on_bad_tile == "stop":
        listing = "; ".join(f"z={r['z']} row={r['row']} col={r['col']} {r['file']}: "
                            f"{r['status']} ({r['reason']})" for r in bad[:20])
        raise InputDataError(f"{len(bad)} bad tile(s) and ingest.on_bad_tile = 'stop': "
                             f"{listing}. Set ingest.on_bad_tile=mark to continue without "
                             f"them.")
    if not samples:
        raise InputDataError(f"{input_dir}: no usable tile in any section")
    flat = estimate_flatfield(samples, params.flatfield_sigma_px) if params.flatfield else None
    pooled = np.concatenate([(s / flat if flat is not None else s).ravel()[::7]
                             for s in samples])
    mapping = tuple(float(v) for v in np.percentile(pooled, [0.5, 99.5]))
    if not (np.isfinite(mapping).all() and mapping[1] > mapping[0]):
        raise InputDataError(f"{input_dir}: the usable tiles have no grey-value spread "
                             f"(0.5th/99.5th percentiles {mapping}); nothing to normalise")
    rows_n, cols_n = manifest.grid
    attrs = {"grid": [rows_n, cols_n], "tile_shape": list(manifest.tile_shape),
             "nominal_yx": manifest.nominal_positions().tolist(),
             "volume_shape": list(manifest.shape), "input_dir": str(input_dir.resolve()),
             "grey_range": list(grey),
             "intensity_map": {"low": mapping[0], "high": mapping[1],
                               "target_low": params.target_low,
                               "target_high": params.target_high},
             "no_data_value": 0, "axes": ["z", "tile", "y", "x"]}
    ctx.create_array("tiles", (manifest.shape[0], rows_n * cols_n, *manifest.tile_shape),
                     np.uint8, (1, 1, *manifest.tile_shape), manifest.voxel_size, attrs=attrs)
    ctx.write_array("flatfield", flat if flat is not None else
                    np.ones(manifest.tile_shape, np.float32),
                    voxel_size=manifest.voxel_size[1:], offset=(0.0, 0.0))
    ctx.quality("tiles_bad_total", float(len(bad)))
    return Plan(manifest, rows, flat, mapping, len(bad), grey)  # type: ignore[arg-type]


def grid(ctx: StageContext, plan: Plan) -> BlockGrid:
    """Blocks of ``blocks.block_shape[0]`` whole sections, in volume coordinates."""
    z, y, x = plan.manifest.shape
    return BlockGrid((z, y, x), (ctx.ws.config["blocks"].block_shape[0], y, x))
