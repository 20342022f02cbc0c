"""Downsampling for the viewer's pyramids: pure functions on (z, y, x) arrays.

``level_factors`` is the policy (halve the axes within 2x of the finest voxel size, so an
anisotropic EM volume becomes isotropic before z is reduced); ``reduce`` shrinks an array
by integer factors per axis with ``mean`` (images: voxels equal to ``no_data`` are left
out), ``max`` or ``mode`` (labels: the most frequent non-zero id; ties go to the first in
(z, y, x) order). Partial groups at the volume edge count only the voxels they have.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ZYX = tuple[int, int, int]
METHODS = ("mean", "max", "mode")


def level_factors(voxel_size: Sequence[float], block_shape: Sequence[int], levels: int
                  ) -> list[ZYX]:
    """Cumulative downsampling factor (z, y, x) of levels 1..``levels`` against level 0.

    An axis is halved while its voxel size is under twice the finest one; a factor never
    grows past one that divides ``block_shape`` (each block writes whole chunks of every
    level). >>> level_factors((40, 8, 8), (32, 128, 128), 4)
    [(1, 2, 2), (1, 4, 4), (2, 8, 8), (4, 16, 16)]
    """
    f = [1, 1, 1]
    out: list[ZYX] = []
    for _ in range(levels):
        size = [v * fi for v, fi in zip(voxel_size, f, strict=True)]
        finest = min(size)
        for axis in range(3):
            step = 2 if size[axis] < 2 * finest else 1
            if block_shape[axis] % (f[axis] * step) == 0:
                f[axis] *= step
        out.append((f[0], f[1], f[2]))
    return out


def level_shape(shape: Sequence[int], factor: Sequence[int]) -> ZYX:
    return tuple(-(-s // f) for s, f in zip(shape, factor, strict=True))  # type: ignore[return-value]


def _groups(data: np.ndarray, ratio: Sequence[int], pad_value) -> np.ndarray:
    """(Z, Y, X) -> (Z/rz, Y/ry, X/rx, rz*ry*rx): each output voxel's group, padded at the
    edges with ``pad_value``."""
    pad = [(0, (-s) % r) for s, r in zip(data.shape, ratio, strict=True)]
    if any(p[1] for p in pad):
        data = np.pad(data, pad, constant_values=pad_value)
    (z, y, x), (rz, ry, rx) = data.shape, ratio
    g = data.reshape(z // rz, rz, y // ry, ry, x // rx, rx).transpose(0, 2, 4, 1, 3, 5)
    return g.reshape(z // rz, y // ry, x // rx, rz * ry * rx)


def _mode(g: np.ndarray) -> np.ndarray:
    counts = np.stack([(g == g[..., j:j + 1]).sum(-1) for j in range(g.shape[-1])], -1)
    counts[g == 0] = 0
    best = counts.argmax(-1)
    return np.take_along_axis(g, best[..., None], -1)[..., 0]


class Reducer:
    """Successive levels of one block: ``step(ratio)`` reduces the current level by ``ratio``
    and returns it in the source dtype. Means carry sums and counts, so every level is the
    exact mean of the valid level-0 voxels under it."""

    def __init__(self, data: np.ndarray, method: str, no_data: float | None):
        if method not in METHODS:
            raise ValueError(f"method {method!r}: expected one of {METHODS}")
        self.method, self.no_data, self.dtype = method, no_data, data.dtype
        if method == "mean":
            valid = np.ones(data.shape, bool) if no_data is None else data != no_data
            self.sum = np.where(valid, data, 0).astype(np.float64)
            self.count = valid.astype(np.float64)
        else:
            self.values = data

    def step(self, ratio: Sequence[int]) -> np.ndarray:
        if self.method == "mean":
            self.sum = _groups(self.sum, ratio, 0).sum(-1)
            self.count = _groups(self.count, ratio, 0).sum(-1)
            mean = np.divide(self.sum, self.count, out=np.zeros_like(self.sum),
                             where=self.count > 0)
            if self.no_data is not None:
                mean[self.count == 0] = self.no_data
            if np.issubdtype(self.dtype, np.integer):
                info = np.iinfo(self.dtype)
                mean = np.clip(np.rint(mean), info.min, info.max)
            return mean.astype(self.dtype)
        fill = 0 if self.method == "mode" else np.asarray(self.values).min(initial=0)
        g = _groups(self.values, ratio, fill)
        self.values = _mode(g) if self.method == "mode" else g.max(-1)
        return self.values.astype(self.dtype)
