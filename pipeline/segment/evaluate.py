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
