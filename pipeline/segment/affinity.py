"""Affinities from labels, and the boundary map from affinities (numpy, (z, y, x) voxels).

``affinities(labels, offsets)`` -> (C, Z, Y, X) float32 in {0, 1} and a (C, Z, Y, X)
mask of the voxels whose neighbour lies inside the volume. Channel k links voxel p
to p + offsets[k]; it is 1 when both carry the same non-zero label (0 = extracellular
space or unlabelled, never affine). This is the target the U-Net learns and the
convention waterz reads (``affs[0]`` links (z, y, x) to (z - 1, y, x)).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _shifted(a: np.ndarray, off: Sequence[int]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices (here, there) so that a[here] and a[there] are p and p + off."""
    here, there = [], []
    for d, n in zip(off, a.shape, strict=True):
        if d < 0:
            here.append(slice(-d, n))
            there.append(slice(0, n + d))
        else:
            here.append(slice(0, n - d))
            there.append(slice(d, n))
    return tuple(here), tuple(there)


def affinities(labels: np.ndarray, offsets: Sequence[Sequence[int]]
               ) -> tuple[np.ndarray, np.ndarray]:
    """Affinity targets and their validity mask (see the module docstring)."""
    c = len(offsets)
    affs = np.zeros((c, *labels.shape), np.float32)
    mask = np.zeros((c, *labels.shape), np.float32)
    for k, off in enumerate(offsets):
        here, there = _shifted(labels, off)
        a, b = labels[here], labels[there]
        affs[k][here] = (a == b) & (a != 0)
        mask[k][here] = 1.0
    return affs, mask


def boundary_xy(affs: np.ndarray) -> np.ndarray:
    """(Z, Y, X) float32 in [0, 1]: 1 - mean of the y and x nearest-neighbour affinities,
    each voxel's with both its neighbours (so a boundary is as wide on both sides)."""
    ay, ax = affs[1].astype(np.float32), affs[2].astype(np.float32)
    ay2 = np.concatenate([ay[:, 1:], ay[:, -1:]], axis=1)  # link to the voxel after
    ax2 = np.concatenate([ax[:, :, 1:], ax[:, :, -1:]], axis=2)
    return 1.0 - (ay + ay2 + ax + ax2) / 4.0
