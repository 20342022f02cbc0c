"""Stitching: tile positions of one section from their overlaps.

1. :func:`overlap_pairs` lists tile pairs whose nominal rectangles overlap.
2. :func:`pairwise_offsets` cross-correlates each pair's nominal overlap; the
   measured shift is the difference of the two tiles' placement errors.
3. :func:`solve_positions` solves all tile positions by least squares, drops
   the worst-fitting edge while any residual exceeds the limit, and fixes the
   gauge: the mean of (solved - nominal) over the tiles that have data is zero.

Coordinates are (y, x) px in the section's frame. A tile ``t`` at top-left
``T[t]`` holds the section image at ``T[t] + u`` for its pixel ``u``.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
from scipy import ndimage

from pipeline.align.params import StitchParams
from pipeline.align.xcorr import FAILED, Match, peak_ratio, refine
from pipeline.common.lsq import solve_differences

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Edge:
    """One overlap between tiles ``i`` and ``j``: measured e_j - e_i (px, (y, x))."""

    i: int
    j: int
    match: Match
    accepted: bool  # passed the quality thresholds
    residual_px: float = float("nan")  # |solved - measured| after the solve
    kept: bool = False  # used in the final solve


def overlap_pairs(
    nominal: np.ndarray, tile_shape: tuple[int, int], min_overlap_px: int
) -> list[tuple[int, int]]:
    """Side-by-side pairs (i < j) whose nominal overlap is >= ``min_overlap_px`` wide.

    ``nominal``: (n, 2) float, nominal top-left (y, x) px.
    """
    th, tw = tile_shape
    pairs = []
    for i in range(len(nominal)):
        for j in range(i + 1, len(nominal)):
            oy = th - abs(nominal[j, 0] - nominal[i, 0])
            ox = tw - abs(nominal[j, 1] - nominal[i, 1])
            # side-by-side neighbours only: corner overlaps are too small to match well
            if min(oy, ox) >= min_overlap_px and max(oy / th, ox / tw) >= 0.5:
                pairs.append((i, j))
    return pairs


def _overlap_crops(
    ti: np.ndarray, tj: np.ndarray, pi: np.ndarray, pj: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The nominal overlap region cut from both tiles (integer nominal positions)."""
    th, tw = ti.shape
    y0, x0 = np.maximum(pi, pj)
    y1, x1 = np.minimum(pi, pj) + (th, tw)
    ci = ti[int(y0 - pi[0]) : int(y1 - pi[0]), int(x0 - pi[1]) : int(x1 - pi[1])]
    cj = tj[int(y0 - pj[0]) : int(y1 - pj[0]), int(x0 - pj[1]) : int(x1 - pj[1])]
    return ci, cj


def pairwise_offsets(
    tiles: list[np.ndarray | None], nominal: np.ndarray, params: StitchParams
) -> list[Edge]:
    """Cross-correlate every overlapping pair of present tiles.

    ``tiles``: per tile a (TH, TW) image or None (missing/corrupt);
    ``nominal``: (n, 2) nominal top-left (y, x) px, integers expected.
    """
    shapes = {t.shape for t in tiles if t is not None}
    if not shapes:
        return []
    (tile_shape,) = shapes
    nom = np.round(nominal).astype(int)
    edges = []
    for i, j in overlap_pairs(nom, tile_shape, params.min_overlap_px):
        if tiles[i] is None or tiles[j] is None:
            continue
        m = overlap_match(tiles[i], tiles[j], nom[i], nom[j], params.tile_search_px, params)
        ok = m.good(params.min_peak_ratio, 0.0, params.tile_min_ncc)
        if not ok and params.tile_max_shift_px > params.tile_search_px:
            wide = overlap_match(tiles[i], tiles[j], nom[i], nom[j], params.tile_max_shift_px,
                                 params)
            if wide.good(params.min_peak_ratio, 0.0, params.tile_min_ncc):
                m, ok = wide, True
        edges.append(Edge(i, j, m, ok))
    return edges


def overlap_match(
    ti: np.ndarray, tj: np.ndarray, pi: np.ndarray, pj: np.ndarray, radius: float,
    params: StitchParams,
) -> Match:
    """e_j - e_i (px): NCC over the true intersection for every integer shift, then LK.

    For each integer shift s with |s| <= ``radius`` the two tiles (smoothed by
    sigma 1 px against noise) are compared by normalised cross-correlation over
    the rectangle they would share; the best s is refined to subpixel by
    Lucas-Kanade (``xcorr.refine``) on that rectangle. Unlike an FFT over the
    nominal strip this needs no apodisation window and sees exactly the shared
    pixels, so it works on overlaps only a few pixels wide and on misplaced
    tiles (shifts larger than the overlap). Intersections smaller than half
    the nominal overlap are not considered. Quality: ``ncc`` = best NCC,
    ``peak_ratio`` = best / second local maximum further than 3 px,
    ``sharpness`` = (best - mean) / sd of the NCC surface.
    """
    th, tw = ti.shape
    r = int(radius)
    base = np.round(pj - pi).astype(int)  # nominal offset of tile j in tile i, px
    nominal_area = max(th - abs(base[0]), 0) * max(tw - abs(base[1]), 0)
    a = ndimage.gaussian_filter(ti.astype(np.float32), 1.0)
    b = ndimage.gaussian_filter(tj.astype(np.float32), 1.0)
    surface = np.full((2 * r + 1, 2 * r + 1), np.nan)
    for sy in range(-r, r + 1):
        for sx in range(-r, r + 1):
            cut = _intersection(base + (sy, sx), ti.shape)
            if cut is None:
                continue
            (ia, ja) = cut
            if (ia[0].stop - ia[0].start) * (ia[1].stop - ia[1].start) < 0.5 * nominal_area:
                continue
            x, y = a[ia], b[ja]
            x = x - x.mean()
            y = y - y.mean()
            den = float(np.sqrt((x * x).sum() * (y * y).sum()))
            if den > 0:
                surface[sy + r, sx + r] = float((x * y).sum() / den)
    if np.all(np.isnan(surface)):
        return FAILED
    filled = np.where(np.isnan(surface), -1.0, surface)
    iy, ix = np.unravel_index(int(np.argmax(filled)), filled.shape)
    peak = float(filled[iy, ix])
    ratio = peak_ratio(filled, (int(iy), int(ix)))
    valid = surface[~np.isnan(surface)]
    sharp = (peak - float(valid.mean())) / max(float(valid.std()), 1e-9)
    shift = np.array([iy - r, ix - r])
    ia, ja = _intersection(base + shift, ti.shape)  # type: ignore[misc]
    total = refine(ti[ia], tj[ja]) + shift
    return Match(float(total[0]), float(total[1]), ratio, sharp, peak)


def _intersection(
    offset: np.ndarray, shape: tuple[int, int]
) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """Slices of tile i and tile j over their shared rectangle when j sits at ``offset`` in i.

    Tile j's pixel l shows what tile i's pixel l + offset shows.
    """
    (th, tw), (oy, ox) = shape, (int(offset[0]), int(offset[1]))
    y0, y1 = max(0, oy), min(th, th + oy)
    x0, x1 = max(0, ox), min(tw, tw + ox)
    if y1 - y0 < 4 or x1 - x0 < 4:
        return None
    return (slice(y0, y1), slice(x0, x1)), (slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox))


def solve_positions(
    nominal: np.ndarray,
    present: np.ndarray,
    edges: list[Edge],
    max_residual_px: float,
    prior_weight: float = 1e-4,
) -> tuple[np.ndarray, list[Edge]]:
    """Tile top-lefts (n, 2) px by robust least squares over accepted edges.

    Unknowns are the placement errors e = T - nominal. Each kept edge asks
    e_j - e_i = measured shift (weight 1); a weak prior e = 0 keeps tiles with
    no edge at their nominal place. The worst edge is dropped while its
    residual exceeds ``max_residual_px``. Gauge: mean e over present tiles = 0.
    Returns the positions and the edges with residual/kept filled in.
    """
    n = len(nominal)
    kept = [k for k, e in enumerate(edges) if e.accepted]
    while True:
        # e_j - e_i = measured shift (weight 1); e = 0 with weight sqrt(prior_weight)
        e_hat = solve_differences(n, [(edges[k].j, edges[k].i, edges[k].match.shift, 1.0)
                                      for k in kept], prior=float(np.sqrt(prior_weight)), dims=2)
        res = {
            k: float(np.hypot(*(e_hat[edges[k].j] - e_hat[edges[k].i] - edges[k].match.shift)))
            for k in kept
        }
        worst = max(res, key=res.get, default=None)
        if worst is None or res[worst] <= max_residual_px:
            break
        kept.remove(worst)
    if present.any():
        e_hat = e_hat - e_hat[present].mean(axis=0)
    out = []
    for k, e in enumerate(edges):
        r = float(np.hypot(*(e_hat[e.j] - e_hat[e.i] - e.match.shift)))
        out.append(dataclasses.replace(e, residual_px=r, kept=k in kept))
    return nominal + e_hat, out


def stitch_section(
    tiles: list[np.ndarray | None], nominal: np.ndarray, params: StitchParams
) -> tuple[np.ndarray, list[Edge]]:
    """Positions (n, 2) (y, x) px of a section's tiles, and its overlap edges."""
    present = np.array([t is not None for t in tiles])
    edges = pairwise_offsets(tiles, nominal, params)
    return solve_positions(nominal, present, edges, params.tile_max_residual_px)
