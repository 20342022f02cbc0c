"""Supervoxels ("fragments") from affinities: a seeded watershed per section.

For anisotropic EM the field grows fragments in each xy section (40 nm sections are
too thick for a 3D watershed to respect thin processes) and lets agglomeration join
them across sections on the z affinities. Per section: the boundary map (1 - mean
xy affinity) is thresholded, the distance transform of its inside is computed, and
its maxima (one per ``seed_distance_px`` neighbourhood, at least ``min_seed_px`` from
a boundary) seed a watershed of the negated distance over the whole section — so
every voxel, membranes included, belongs to a fragment, as waterz expects.

Arrays are (z, y, x); local labels are 1..n per call (0 never appears).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

from pipeline.segment.affinity import boundary_xy


def fragments_xy(affs: np.ndarray, boundary_threshold: float = 0.5,
                 seed_distance_px: int = 8, min_seed_px: float = 1.0) -> np.ndarray:
    """uint64 (Z, Y, X) fragments from (C >= 3, Z, Y, X) affinities in [0, 1].

    >>> a = np.ones((3, 1, 8, 8), np.float32); a[1:, :, :, 4] = 0   # a wall at x = 4
    >>> np.unique(fragments_xy(a)[0, :, :3]).size, np.unique(fragments_xy(a)[0, :, 5:]).size
    (1, 1)
    """
    boundary = boundary_xy(affs)
    out = np.zeros(boundary.shape, np.uint64)
    offset = 0
    for z in range(boundary.shape[0]):
        inside = boundary[z] < boundary_threshold
        dist = ndimage.distance_transform_edt(inside).astype(np.float32)
        peaks = (dist == ndimage.maximum_filter(dist, size=2 * seed_distance_px + 1)) & (
            dist >= min_seed_px)
        seeds, n = ndimage.label(peaks)
        if n == 0:  # no interior at all: one fragment for the section
            out[z] = offset + 1
            offset += 1
            continue
        # ties of a flat maximum form one seed; the watershed floods from the inside out
        labels = watershed(-dist, seeds)
        out[z] = labels.astype(np.uint64) + offset
        offset += n
    return out
