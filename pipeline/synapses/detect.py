"""Synapse targets and candidates, in the representation of synful (Buhmann et al. 2021).

The network predicts, per voxel (z, y, x):

- channel 0: the postsynaptic mask — near a synapse's postsynaptic site (a ball of
  ``POST_RADIUS`` voxels around the true post point, in y/x px and z sections);
- channels 1-3: the direction from there to the presynaptic partner, (dz, dy, dx) in
  voxels divided by ``DIRECTION_SCALE``.

``synapse_balls`` rasterises the true synapses into two label volumes (post ball and
pre ball of synapse k both carry k + 1), which the training crops and augments like
labels; ``targets`` turns an augmented pair into the mask and direction targets (the
direction to the centroid of the pre ball, so flips, transposes and elastic warps
need no bookkeeping).

``candidates`` extracts synapses from predictions: connected components of the mask
above a threshold, each split at the peaks of the smoothed probability
(``split_at_peaks``: on insect neuropil the masks of neighbouring synapses on one
dendrite touch, and one component covered several of them). Each piece gives a post
point (the most confident voxel), a pre point (the mean, weighted by probability, of
each voxel plus its predicted direction), a confidence (its maximum probability), its
size, its voxels' probabilities (``prob`` over the ``box`` slices, 0 off it) for the
partner lookup (``partners.py``) and the ``component`` it was cut from. Polyadic sites
come out as several pieces pointing to one pre point.
"""

from __future__ import annotations

import cc3d
import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

POST_RADIUS = (1, 4, 4)  # voxels (z, y, x): a post site's ball in the targets
DIRECTION_SCALE = 16.0  # voxels per unit of the predicted direction


def synapse_balls(shape: tuple[int, int, int], pre: np.ndarray, post: np.ndarray,
                  radius: tuple[int, int, int] = POST_RADIUS) -> tuple[np.ndarray, np.ndarray]:
    """(post_ids, pre_ids) uint32 volumes: synapse k (rows of the (n, 3) voxel arrays) marks
    an ellipsoid of ``radius`` around its post point and its pre point with k + 1."""
    post_ids = np.zeros(shape, np.uint32)
    pre_ids = np.zeros(shape, np.uint32)
    offs = np.stack(np.nonzero(_ellipsoid(radius)), 1) - np.array(radius)
    for k, (p, q) in enumerate(zip(np.rint(pre).astype(int), np.rint(post).astype(int),
                                   strict=True)):
        for vol, centre in ((post_ids, q), (pre_ids, p)):
            pts = offs + centre
            ok = np.all((pts >= 0) & (pts < shape), axis=1)
            vol[tuple(pts[ok].T)] = k + 1
    return post_ids, pre_ids


def targets(post_ids: np.ndarray, pre_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(4, Z, Y, X) targets [mask, dz, dy, dx] and a (4, Z, Y, X) validity: the direction
    counts only where the partner's pre ball is inside the crop."""
    y = np.zeros((4, *post_ids.shape), np.float32)
    valid = np.zeros((4, *post_ids.shape), np.float32)
    y[0] = post_ids > 0
    valid[0] = 1.0
    ids = np.unique(post_ids[post_ids > 0])
    if ids.size:
        pre_stats = cc3d.statistics(pre_ids.astype(np.uint32))
        counts, centroids = pre_stats["voxel_counts"], pre_stats["centroids"]
        grid = np.indices(post_ids.shape, dtype=np.float32)
        for k in ids.tolist():
            if k >= len(counts) or counts[k] == 0:
                continue
            here = post_ids == k
            for c in range(3):
                y[1 + c][here] = (centroids[k][c] - grid[c][here]) / DIRECTION_SCALE
                valid[1 + c][here] = 1.0
    return y, valid


def _ellipsoid(radius: tuple[int, int, int]) -> np.ndarray:
    """Boolean ellipsoid of ``radius`` voxels (z, y, x) around the centre of its box."""
    zz, yy, xx = np.mgrid[tuple(slice(-r, r + 1) for r in radius)]
    return sum((g / max(r, 0.5)) ** 2 for g, r in zip((zz, yy, xx), radius, strict=True)) <= 1


def split_at_peaks(prob: np.ndarray, labels: np.ndarray,
                   radius: tuple[int, int, int]) -> tuple[np.ndarray, int]:
    """(pieces, n): the components of ``labels`` split by a watershed of the probability
    (smoothed over a quarter of ``radius``) from its local maxima, at most one per
    ellipsoid of ``radius`` voxels (z, y, x): about a PSD's extent, so one synapse keeps
    one piece. Voxels no peak reaches keep a piece of their own component."""
    smooth = ndimage.gaussian_filter(prob, [r / 4 for r in radius], mode="nearest")
    inside = labels > 0
    peaks = inside & (smooth >= ndimage.maximum_filter(smooth, footprint=_ellipsoid(radius),
                                                      mode="nearest"))
    markers, n = cc3d.connected_components(peaks, return_N=True, connectivity=26)
    pieces = watershed(-smooth, markers, mask=inside, connectivity=3).astype(np.uint32)
    left = inside & (pieces == 0)  # a component whose peak lies under a neighbour's reach
    if left.any():
        rest = labels * left
        ids, inv = np.unique(rest[left], return_inverse=True)
        pieces[left] = n + 1 + inv.reshape(-1)
        n += len(ids)
    return pieces, n


def candidates(prob: np.ndarray, direction: np.ndarray, threshold: float = 0.5,
               min_voxels: int = 3,
               peak_radius: tuple[int, int, int] | None = None) -> list[dict]:
    """Synapse candidates (see the module docstring) from a (Z, Y, X) post probability in
    [0, 1] and a (3, Z, Y, X) direction in voxels; ``peak_radius`` (voxels) splits
    components at their peaks (``split_at_peaks``); None or (0, 0, 0) keeps them whole.
    Points are voxel coordinates of the given arrays; pre points may fall outside them."""
    components, n = cc3d.connected_components(prob > threshold, return_N=True,
                                              connectivity=26)
    if n == 0:
        return []
    labels = components
    if peak_radius is not None and any(peak_radius):
        labels, n = split_at_peaks(prob, components, peak_radius)
    stats = cc3d.statistics(labels)
    out = []
    for k in range(1, n + 1):
        size = int(stats["voxel_counts"][k])
        if size < min_voxels:
            continue
        sl = stats["bounding_boxes"][k]
        here = labels[sl] == k
        p = prob[sl] * here
        best = np.unravel_index(int(np.argmax(p)), p.shape)
        post = np.array([s.start + b for s, b in zip(sl, best, strict=True)], float)
        w = p[here]
        # every voxel votes for its partner: the mean of voxel + direction
        vote = np.array([((direction[c][sl][here] + np.nonzero(here)[c] + sl[c].start) * w)
                         .sum() / max(w.sum(), 1e-6) for c in range(3)])
        out.append({"post": post, "pre": vote, "confidence": float(p.max()),
                    "size": size, "box": sl, "prob": p,
                    "component": int(components[sl][here][0])})
    return out
