"""Rendering: tiles → a blended image of one section, through a displacement.

One interpolation from the tiles to the output: output pixel ``q`` (y, x) px
samples the section at ``p = q + d + u(q)`` where ``d`` (2,) is the section's
translation and ``u`` an optional smooth field given on mesh nodes; tile ``t``
at top-left ``T[t]`` holds the section at ``T[t] + l``. Overlapping tiles are
blended with weights that ramp up over ``blend_px`` from each tile edge.

With ``d = 0`` and no field this is the stitched mosaic of the section in its
own frame; with the registration's ``d`` and ``u`` it is the aligned section in
the nominal frame.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage


@dataclasses.dataclass(frozen=True)
class Field:
    """A displacement field on a regular mesh of nodes in the output frame.

    ``u``: (ny, nx, 2) float px, (dy, dx) at node (iy, ix); node (iy, ix) sits at
    ``origin + (iy, ix) * stride`` px (y, x). Between nodes it is bilinear,
    beyond the outer nodes it is constant.
    """

    u: np.ndarray
    origin: tuple[float, float]
    stride: float

    def at(self, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        """Field (2, *yy.shape) px at output coordinates (y, x) px."""
        iy = (yy - self.origin[0]) / self.stride
        ix = (xx - self.origin[1]) / self.stride
        return np.stack(
            [
                ndimage.map_coordinates(self.u[..., c], [iy, ix], order=1, mode="nearest")
                for c in range(2)
            ]
        )

    @property
    def max_abs(self) -> float:
        return float(np.abs(self.u).max()) if self.u.size else 0.0


def blend_weights(tile_shape: tuple[int, int], blend_px: int) -> np.ndarray:
    """(TH, TW) float32 weights: 1 inside, ramping to ~0 over ``blend_px`` at the edges."""
    th, tw = tile_shape
    ry = np.minimum(np.arange(th) + 1, np.arange(th)[::-1] + 1)
    rx = np.minimum(np.arange(tw) + 1, np.arange(tw)[::-1] + 1)
    b = max(blend_px, 1)
    return (np.minimum(np.minimum.outer(ry, rx), b) / b).astype(np.float32)


def render(
    tiles: list[np.ndarray | None],
    positions: np.ndarray,
    origin: tuple[int, int],
    shape: tuple[int, int],
    translation: np.ndarray | tuple[float, float] = (0.0, 0.0),
    field: Field | None = None,
    blend_px: int = 16,
    order: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Blend tiles into the output window ``origin + [0, shape)`` (y, x) px.

    ``tiles``: (TH, TW) arrays or None; ``positions``: (n, 2) tile top-lefts px.
    Returns (image float32 (h, w), weight float32 (h, w)); weight 0 = no data.
    """
    h, w = shape
    acc = np.zeros(shape, np.float32)
    wsum = np.zeros(shape, np.float32)
    d = np.asarray(translation, dtype=float)
    umax = field.max_abs if field is not None else 0.0
    weights_cache: dict[tuple[int, int], np.ndarray] = {}
    for tile, pos in zip(tiles, positions, strict=True):
        if tile is None:
            continue
        th, tw = tile.shape
        # output pixels that can map into this tile
        lo = np.floor(pos - d - umax - 1).astype(int) - np.asarray(origin)
        hi = np.ceil(pos - d + umax + 1).astype(int) + (th, tw) - np.asarray(origin)
        y0, x0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
        y1, x1 = min(int(hi[0]), h), min(int(hi[1]), w)
        if y1 <= y0 or x1 <= x0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        yy += origin[0]
        xx += origin[1]
        py, px = yy + d[0], xx + d[1]
        if field is not None:
            u = field.at(yy, xx)
            py, px = py + u[0], px + u[1]
        ly, lx = py - pos[0], px - pos[1]
        wt = weights_cache.get(tile.shape)
        if wt is None:
            wt = weights_cache[tile.shape] = blend_weights(tile.shape, blend_px)
        wgt = ndimage.map_coordinates(wt, [ly, lx], order=1, mode="constant", cval=0.0)
        inside = (ly >= 0) & (ly <= th - 1) & (lx >= 0) & (lx <= tw - 1)
        wgt = np.where(inside, wgt, 0.0).astype(np.float32)
        val = ndimage.map_coordinates(
            tile.astype(np.float32), [ly, lx], order=order, mode="nearest"
        )
        acc[y0:y1, x0:x1] += wgt * val
        wsum[y0:y1, x0:x1] += wgt
    img = np.divide(acc, wsum, out=np.zeros_like(acc), where=wsum > 0)
    return img, wsum
