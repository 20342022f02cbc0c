"""Pure functions on tiles: checks, flat-field, intensity normalisation, L1 quality.

Arrays are 2-D (y, x) tiles in grey values of the input dtype unless stated.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from cxgraph.errors import InputDataError
from pipeline.common.lsq import solve_differences
from pipeline.ingest.params import IngestParams

USABLE = ("ok", "saturated")  # statuses of tiles that are used


def check_tile(
    img: np.ndarray, tile_shape: tuple[int, int], dtype: np.dtype, params: IngestParams,
    grey_range: tuple[float, float] | None = None,
) -> tuple[str, str, float]:
    """(status, reason, saturated fraction) of a tile that was read.

    ``grey_range`` (low, high): the grey scale of the input, for float tiles (see
    ``grey_range``); integer tiles use their dtype's range. ``blank_std`` is in grey
    values of integer tiles and in 1/255 of the grey range of float tiles.
    """
    if img.shape != tuple(tile_shape):
        return "wrong_shape", f"shape {img.shape}, expected {tuple(tile_shape)}", 0.0
    if img.dtype != dtype:
        return "wrong_dtype", f"dtype {img.dtype}, expected {dtype}", 0.0
    if img.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(img)))
        if bad:  # NaN would pass every comparison below and spread through the flat field
            return "non_finite", f"{bad} of {img.size} pixels are NaN or infinite", 0.0
    lo, hi = grey_range if grey_range is not None else _dtype_range(dtype)
    scale = 1.0 if np.issubdtype(dtype, np.integer) else (hi - lo) / 255.0
    sat = float(np.mean((img <= lo) | (img >= hi)))
    sd = float(img.std()) / scale
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


def grey_range(dtype: np.dtype, declared: tuple[float, float] | None,
               tiles: list[np.ndarray]) -> tuple[float, float]:
    """The grey scale (low, high) of the input.

    Integer tiles: the dtype's range. Float tiles: the manifest's ``intensity_range``
    if it declares one, else the data's own: the 0.01th / 99.99th percentiles of the
    finite pixels of ``tiles`` (robust to a few hot pixels). Raises InputDataError
    when float tiles have no finite pixels or no spread.
    """
    if np.issubdtype(dtype, np.integer):
        return _dtype_range(dtype)
    if declared is not None:
        return float(declared[0]), float(declared[1])
    pooled = [t[np.isfinite(t)].ravel()[::7] for t in tiles]
    pooled = [p for p in pooled if p.size]
    if not pooled:
        raise InputDataError("float tiles: no finite pixel in any readable tile")
    lo, hi = (float(v) for v in np.percentile(np.concatenate(pooled), [0.01, 99.99]))
    if not hi > lo:
        raise InputDataError(f"float tiles: every pixel is {lo:g}; no grey range to use "
                             f"(set intensity_range [low, high] in manifest.json)")
    return lo, hi


def to_grey(img: np.ndarray, dtype: np.dtype, grey: tuple[float, float]) -> np.ndarray:
    """A tile as float32 grey values: integer tiles as they are, float tiles mapped
    linearly from ``grey`` (low, high) to 0..255 so that the flat field, gains and
    the intensity map work on one scale."""
    x = img.astype(np.float32)
    if np.issubdtype(dtype, np.integer):
        return x
    lo, hi = grey
    return (x - np.float32(lo)) * np.float32(255.0 / (hi - lo))


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

    log_g = solve_differences(
        n, [(i, j, float(np.log(sj / si)), 1.0) for i, j, _, _, si, sj in stats], prior=prior)
    g = np.exp(log_g)
    off = solve_differences(
        n, [(i, j, float(g[j] * mj - g[i] * mi), 1.0) for i, j, mi, mj, _, _ in stats],
        prior=prior)
    return g, off
