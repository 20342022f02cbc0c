"""L1 ingest: read microscope tiles, check them, flat-field and normalise, record quality.

Outputs (workspace):

- ``volumes.zarr/tiles`` — uint8 (Z, N, TH, TW): section z, tile index
  ``row * cols + col``, tile pixels (y, x); one chunk per tile. Values are
  normalised grey levels in 1..255; **0 means no data** (missing section,
  missing or rejected tile). Attributes: ``grid`` [rows, cols], ``tile_shape``,
  ``nominal_yx`` (N, 2) nominal top-left px, ``volume_shape`` and ``voxel_size``
  of the nominal frame, ``input_dir``.
- ``tables/tiles.parquet`` — one row per (section, tile index): ``z, row, col,
  tile_index, file, nominal_y, nominal_x`` (px), ``status`` (ok | saturated |
  blank | corrupt | wrong_shape | wrong_dtype | absent | section_missing),
  ``reason``, ``used`` (bool: the tile enters alignment), ``gain``, ``offset``.
- L1 quality rows per tile (``tile`` = file) and per section (see ``TILE_METRICS``).

Policy for bad tiles (``ingest.on_bad_tile``): ``mark`` (default) records each
bad tile — file, section, row, column, reason — in the table, the quality
rows and the log, stores it as zeros and continues; ``stop`` raises
``InputDataError`` listing all of them. Every tile is checked before anything
is written, and arrays are written under a temporary name and swapped in at
the end, so a failure never leaves a half-written ``tiles`` array behind.

Intensity model: tile = gain * (illumination(u) * image) + offset. The
illumination profile is the median of the mean-normalised usable tiles
(every tile of the volume, sampled up to ``flatfield_max_tiles``), smoothed;
per-tile gain and offset are matched in the nominal overlaps (mean and standard
deviation of each strip) by least squares with a weak pull to (1, 0); finally
one volume-wide linear map sends the 0.5th/99.5th percentiles to
``target_low``/``target_high``. Contrast differences between regions (a
staining gradient, a low-contrast patch) are therefore kept, not erased, and
show in the quality metrics.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from scipy import ndimage

from cxgraph.errors import ConfigError, InputDataError
from cxgraph.params import Params
from cxgraph.provenance import stage_run
from cxgraph.workspace import Workspace
from pipeline.blocks import Block, BlockGrid, collect_block_rows, write_block_rows
from pipeline.manifest import Manifest, read_manifest
from pipeline.runner import run_blockwise

log = logging.getLogger(__name__)

USABLE = ("ok", "saturated")
TILE_METRICS = ("membrane_contrast", "snr", "saturated_fraction", "mean_intensity")


@dataclasses.dataclass(frozen=True)
class IngestParams(Params):
    """L1 ingest. Grey values refer to the input dtype's scale."""

    on_bad_tile: str = "mark"  # mark (record, zero-fill, continue) | stop (raise)
    blank_std: float = 2.0  # grey sd below which a tile is blank
    saturated_fraction_flag: float = 0.02  # fraction at dtype min/max that flags "saturated"
    saturated_fraction_reject: float = 0.5  # above this a saturated tile is not used
    flatfield: bool = True  # divide by the estimated illumination profile
    flatfield_sigma_px: float = 8.0  # Gaussian smoothing of the profile
    flatfield_max_tiles: int = 256  # tiles sampled for the profile
    normalize: str = "overlap"  # overlap (gain/offset matched in overlaps) | none
    min_overlap_px: int = 8  # nominal overlaps narrower than this are not used for gains
    target_low: float = 20.0  # output grey of the volume's 0.5th percentile
    target_high: float = 235.0  # output grey of the volume's 99.5th percentile
    sections_per_block: int = 8  # sections per blockwise work unit

    def __post_init__(self) -> None:
        if self.on_bad_tile not in ("mark", "stop"):
            raise ConfigError(f"ingest.on_bad_tile: expected 'mark' or 'stop', got "
                              f"{self.on_bad_tile!r}")
        if self.normalize not in ("overlap", "none"):
            raise ConfigError(f"ingest.normalize: expected 'overlap' or 'none', got "
                              f"{self.normalize!r}")


# --- pure functions on tiles ------------------------------------------------------


def read_tile(path: Path) -> np.ndarray:
    """A 2-D tile image; raises InputDataError when the file cannot be read as one."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            img = tifffile.imread(path)
        else:
            import imageio.v3 as iio

            img = iio.imread(path)
    except FileNotFoundError as e:
        raise InputDataError(f"{path}: file not found") from e
    except Exception as e:  # noqa: BLE001 - any decoder error means a corrupt tile
        raise InputDataError(f"{path}: unreadable ({type(e).__name__}: {e})") from e
    return np.asarray(img)


def check_tile(
    img: np.ndarray, tile_shape: tuple[int, int], dtype: np.dtype, params: IngestParams
) -> tuple[str, str, float]:
    """(status, reason, saturated fraction) of a tile that was read."""
    if img.shape != tuple(tile_shape):
        return "wrong_shape", f"shape {img.shape}, expected {tuple(tile_shape)}", 0.0
    if img.dtype != dtype:
        return "wrong_dtype", f"dtype {img.dtype}, expected {dtype}", 0.0
    lo, hi = _dtype_range(dtype)
    sat = float(np.mean((img <= lo) | (img >= hi)))
    sd = float(img.std())
    if sd < params.blank_std:
        return "blank", f"grey sd {sd:.2f} < {params.blank_std}", sat
    if sat > params.saturated_fraction_reject:
        return "blank", f"{sat:.0%} of pixels saturated", sat
    if sat > params.saturated_fraction_flag:
        return "saturated", f"{sat:.1%} of pixels saturated", sat
    return "ok", "", sat


def _dtype_range(dtype: np.dtype) -> tuple[float, float]:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return float(info.min), float(info.max)
    return 0.0, 1.0


def estimate_flatfield(samples: list[np.ndarray], sigma_px: float) -> np.ndarray:
    """Illumination profile (TH, TW) float32, mean 1: median of mean-normalised tiles, smoothed."""
    stack = np.stack([s.astype(np.float32) / max(float(s.mean()), 1e-6) for s in samples])
    prof = ndimage.gaussian_filter(np.median(stack, axis=0), sigma_px, mode="nearest")
    return (prof / prof.mean()).astype(np.float32)


def tile_quality(img: np.ndarray) -> dict[str, float]:
    """L1 metrics of a flat-fielded tile (float, grey units).

    - ``membrane_contrast`` = (p50 - p5) / p50 of the tile smoothed by sigma 1 px:
      how much darker the darkest 5 % (membranes, in EM) are than the typical
      (cytoplasm) pixel. Falls with weak staining or low contrast.
    - ``snr`` = signal sd / noise sd; noise sd from the median absolute
      difference of horizontally adjacent pixels (robust to edges), signal sd
      from the total variance minus the noise variance.
    - ``mean_intensity`` in grey values.
    """
    x = img.astype(np.float32)
    sm = ndimage.gaussian_filter(x, 1.0)
    p5, p50 = np.percentile(sm, [5, 50])
    contrast = float((p50 - p5) / p50) if p50 > 0 else 0.0
    diff = np.diff(x, axis=1)
    noise = float(np.median(np.abs(diff - np.median(diff)))) * 1.4826 / np.sqrt(2)
    signal = float(np.sqrt(max(float(x.var()) - noise**2, 0.0)))
    snr = signal / noise if noise > 0 else float("inf")
    return {"membrane_contrast": contrast, "snr": snr, "mean_intensity": float(x.mean())}


def overlap_gains(
    tiles: list[np.ndarray | None], nominal: np.ndarray, min_overlap_px: int,
    prior: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-tile (gain, offset) so that corrected = gain * tile + offset agree in overlaps.

    ``nominal``: (n, 2) top-left px. Log-gains match the strips' standard
    deviations, then offsets their means, by least squares with a weak pull
    (weight ``prior``) to gain 1, offset 0. Tiles that are None keep (1, 0).
    """
    n = len(tiles)
    stats = []
    for i in range(n):
        for j in range(i + 1, n):
            if tiles[i] is None or tiles[j] is None:
                continue
            th, tw = tiles[i].shape
            d = np.round(nominal[j] - nominal[i]).astype(int)
            oy, ox = th - abs(d[0]), tw - abs(d[1])
            if oy < min_overlap_px or ox < min_overlap_px:
                continue
            ai = tiles[i][max(d[0], 0) : max(d[0], 0) + oy, max(d[1], 0) : max(d[1], 0) + ox]
            aj = tiles[j][max(-d[0], 0) : max(-d[0], 0) + oy, max(-d[1], 0) : max(-d[1], 0) + ox]
            stats.append((i, j, ai.mean(), aj.mean(), ai.std() + 1e-6, aj.std() + 1e-6))
    if not stats:
        return np.ones(n), np.zeros(n)

    def solve(rows: list[tuple[int, int, float]]) -> np.ndarray:
        a = np.eye(n) * prior**2
        b = np.zeros(n)
        for i, j, m in rows:  # x_i - x_j = m
            a[i, i] += 1
            a[j, j] += 1
            a[i, j] -= 1
            a[j, i] -= 1
            b[i] += m
            b[j] -= m
        return np.linalg.solve(a, b)

    log_g = solve([(i, j, float(np.log(sj / si))) for i, j, _, _, si, sj in stats])
    g = np.exp(log_g)
    off = solve([(i, j, float(g[j] * mj - g[i] * mi)) for i, j, mi, mj, _, _ in stats])
    return g, off


# --- the stage ------------------------------------------------------------------


def _scan(manifest: Manifest, params: IngestParams) -> tuple[list[dict[str, Any]], list]:
    """Read and check every tile; returns the table rows and flat-field samples."""
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
                                                     params)
                    row.update(status=status, reason=reason, saturated_fraction=sat)
                    if status in USABLE:
                        if seen % every == 0 and len(samples) < params.flatfield_max_tiles:
                            samples.append(img)
                        seen += 1
                except InputDataError as e:
                    row.update(status="corrupt", reason=str(e))
            rows.append(row)
    return rows, samples


def _ingest_block(
    manifest: Manifest, rows: list[dict[str, Any]], flat: np.ndarray | None,
    mapping: tuple[float, float], params: IngestParams, array_path: str, parts_dir: str,
    block: Block,
) -> dict[str, Any]:
    """Normalise and write the tiles of sections [z0, z1) of the block."""
    arr = zarr.open_array(array_path, mode="r+")
    z0, z1 = block.write_roi.begin[0], block.write_roi.end[0]
    n = arr.shape[1]
    quality: list[dict[str, Any]] = []
    out_rows = []
    for z in range(z0, z1):
        srows = [r for r in rows if r["z"] == z]
        tiles: list[np.ndarray | None] = [None] * n
        for r in srows:
            if r["status"] in USABLE:
                img = read_tile(manifest.root / r["file"]).astype(np.float32)
                tiles[r["tile_index"]] = img / flat if flat is not None else img
        nominal = np.array([[r["nominal_y"], r["nominal_x"]] for r in srows])
        if params.normalize == "overlap":
            gain, offset = overlap_gains(tiles, nominal, params.min_overlap_px)
        else:
            gain, offset = np.ones(n), np.zeros(n)
        lo, hi = mapping
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
        arr[z] = out
        n_bad = sum(1 for r in srows if r["status"] not in USABLE)
        missing = all(r["status"] == "section_missing" for r in srows)
        quality += [
            {"metric": "section_missing", "value": float(missing), "section": z},
            {"metric": "tiles_bad", "value": float(0 if missing else n_bad), "section": z},
        ]
        for m, vals in sec_q.items():
            if vals:
                quality.append({"metric": m, "value": float(np.mean(vals)), "section": z})
    write_block_rows(parts_dir, "tiles", block.block_id, out_rows)
    return {"quality": quality}


def run_ingest(ws: Workspace, input_dir: Path | str) -> str:
    """L1 ingest of the tile directory ``input_dir`` into ``ws``; returns the stage run id."""
    params: IngestParams = ws.config["ingest"]
    manifest = read_manifest(input_dir)
    with stage_run(ws, "ingest", "L1", params, inputs={"tiles": Path(input_dir)}) as run:
        rows, samples = _scan(manifest, params)
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
        rows_n, cols_n = manifest.grid
        n = rows_n * cols_n
        z_total = manifest.shape[0]
        tmp = "_tiles_tmp"
        attrs = {"grid": [rows_n, cols_n], "tile_shape": list(manifest.tile_shape),
                 "nominal_yx": manifest.nominal_positions().tolist(),
                 "volume_shape": list(manifest.shape), "input_dir": str(Path(input_dir).resolve()),
                 "intensity_map": {"low": mapping[0], "high": mapping[1],
                                   "target_low": params.target_low,
                                   "target_high": params.target_high},
                 "no_data_value": 0}
        grid = BlockGrid((z_total, 1, 1), (max(1, params.sections_per_block), 1, 1))
        done = run.done_blocks()
        if len(done) == len(grid.blocks()) and not ws.has_array(tmp) and ws.has_array("tiles"):
            log.info("ingest: stage run %s already complete", run.stage_run_id)
            return run.stage_run_id
        if not (done and ws.has_array(tmp)):
            ws.create_array(tmp, (z_total, n, *manifest.tile_shape), np.uint8,
                            (1, 1, *manifest.tile_shape), manifest.voxel_size,
                            attrs=attrs | {"axes": ["z", "tile", "y", "x"]})
        parts = ws.parts_dir(run.stage_run_id)
        process = functools.partial(_ingest_block, manifest, rows, flat, mapping, params,
                                    str(ws.zarr_path / tmp), str(parts))
        run_blockwise(run, process, grid, description="ingest")
        ws.replace_array(tmp, "tiles")
        table = collect_block_rows(parts, "tiles")
        ws.write_table("tiles", table.sort_by([("z", "ascending"), ("tile_index", "ascending")]))
        shutil.rmtree(parts, ignore_errors=True)
        if flat is not None:
            ws.create_array("flatfield", flat.shape, np.float32, flat.shape,
                            manifest.voxel_size[1:], (0.0, 0.0))
            ws.array("flatfield", mode="r+")[...] = flat
        run.quality(metric="tiles_bad_total", value=float(len(bad)))
        run.output("tiles", "tiles")
        run.output("tiles_table", "tiles")
    return run.stage_run_id

