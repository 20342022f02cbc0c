"""Segmentation scores against ground truth, with scikit-image's implementations.

``score(seg, gt)``: VOI split and merge (``skimage.metrics.variation_of_information``
returns [H(seg|gt), H(gt|seg)] = [split, merge]) and the adapted Rand error
(``adapted_rand_error``), over the voxels the truth labels (gt > 0: extracellular
space and unlabelled voxels are not scored, as in CREMI). Both volumes are
renumbered first (skimage sizes its tables by the largest label, and body ids are
64-bit).
"""

from __future__ import annotations

import fastremap
import numpy as np
from skimage.metrics import adapted_rand_error, variation_of_information


def score(seg: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """{voi_split, voi_merge, voi, arand, n_seg, n_gt} over gt > 0."""
    mask = gt > 0
    s, _ = fastremap.renumber(np.ascontiguousarray(seg[mask]), in_place=False)
    g, _ = fastremap.renumber(np.ascontiguousarray(gt[mask]), in_place=False)
    split, merge = variation_of_information(g, s)
    arand = adapted_rand_error(g, s)[0]
    return {"voi_split": float(split), "voi_merge": float(merge), "voi": float(split + merge),
            "arand": float(arand), "n_seg": int(len(np.unique(s))), "n_gt": int(len(np.unique(g)))}


def section_offsets(aligned: np.ndarray, em: np.ndarray) -> np.ndarray:
    """(Z, 2) shift (dy, dx) px that takes each aligned section onto the phantom's clean
    EM section (phase correlation, 1/10 px); NaN for sections with no data."""
    from skimage.registration import phase_cross_correlation

    out = np.full((aligned.shape[0], 2), np.nan)
    for z in range(aligned.shape[0]):
        if aligned[z].any():
            out[z] = phase_cross_correlation(em[z].astype(np.float32),
                                             aligned[z].astype(np.float32),
                                             upsample_factor=10)[0]
    return out


def labels_in_aligned_frame(labels: np.ndarray, offsets: np.ndarray,
                            per_section: bool) -> np.ndarray:
    """The true labels moved into the aligned volume's frame: by each section's own offset
    (``per_section``: for training pairs, whose truth must sit on the image) or by one
    constant, the median (for scoring: the registration fixes everything but a constant,
    the gauge, and leaves its per-section errors to be counted)."""
    from scipy import ndimage

    med = np.nanmedian(offsets, axis=0)
    out = np.empty_like(labels)
    for z in range(labels.shape[0]):
        d = offsets[z] if per_section and np.isfinite(offsets[z]).all() else med
        d = np.nan_to_num(d)
        out[z] = ndimage.shift(labels[z], -np.round(d), order=0, mode="nearest")
    return out


def truth_in_aligned_frame(aligned: np.ndarray, phantom_dir) -> np.ndarray:
    """A phantom's true labels in the aligned volume's frame, the gauge constant removed."""
    from pathlib import Path

    import zarr

    gt_dir = Path(phantom_dir) / "gt"
    gt = np.asarray(zarr.open_array(str(gt_dir / "labels.zarr"), mode="r")[...])
    em = np.asarray(zarr.open_array(str(gt_dir / "em.zarr"), mode="r")[...])
    return labels_in_aligned_frame(gt, section_offsets(aligned, em), per_section=False)


def score_phantom(segmentation: np.ndarray, aligned: np.ndarray, phantom_dir) -> dict:
    """``score`` against a phantom's ground truth, with the gauge constant removed."""
    return score(segmentation, truth_in_aligned_frame(aligned, phantom_dir))
