"""Skeletons of segmented bodies for the neuPrint front door (``/api/skeletons/...``).

A body's skeleton is traced on demand from the workspace's ``segmentation`` volume with
kimimaro (TEASAR, on the body's voxels in the bounding box that holds it, with the
volume's anisotropic voxel size) and answered as SWC in voxel coordinates x, y, z — the
units of neuPrint's skeletons and of synapse ``location`` — so navis and neuprint-python
scale both the same way. Bodies the pipeline did not segment (an imported connectome)
have none: 404.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cxgraph.errors import CxgraphError


class NoSkeleton(CxgraphError):
    """No skeleton can be made for this body (no segmentation, or the body is not in it)."""


def body_box(seg, body_id: int) -> tuple[slice, slice, slice] | None:
    """The bounding box of ``body_id`` in a (z, y, x) label array, read chunk-slab by slab."""
    lo, hi = None, None
    step = seg.chunks[0]
    for z0 in range(0, seg.shape[0], step):
        slab = np.asarray(seg[z0:z0 + step]) == body_id
        if not slab.any():
            continue
        idx = np.argwhere(slab)
        a, b = idx.min(0) + (z0, 0, 0), idx.max(0) + (z0, 0, 0)
        lo = a if lo is None else np.minimum(lo, a)
        hi = b if hi is None else np.maximum(hi, b)
    if lo is None:
        return None
    return tuple(slice(int(a), int(b) + 1) for a, b in zip(lo, hi, strict=True))  # type: ignore[return-value]


def skeleton_swc(root: Path, body_id: int) -> str:
    """SWC text of ``body_id``'s skeleton, traced from ``root``'s segmentation."""
    import kimimaro

    from cxgraph.workspace import Workspace

    ws = Workspace.open(root)
    if not ws.has_array("segmentation"):
        raise NoSkeleton(f"{root} has no segmentation volume: skeletons exist only for "
                         "bodies the pipeline segmented")
    seg = ws.array("segmentation")
    box = body_box(seg, body_id)
    if box is None:
        raise NoSkeleton(f"body {body_id} is not in the segmentation of {root}")
    vz, vy, vx = (float(v) for v in seg.attrs.get("voxel_size", (1.0, 1.0, 1.0)))
    mask = (np.asarray(seg[box]) == body_id).astype(np.uint8)
    # TEASAR's invalidation radius in nm: a few voxels of the coarsest axis
    scale = max(vz, vy, vx)
    skels = kimimaro.skeletonize(
        mask, teasar_params={"scale": 1.5, "const": 2 * scale, "pdrf_scale": 100000,
                             "pdrf_exponent": 4},
        anisotropy=(vz, vy, vx), dust_threshold=0, fix_branching=True, progress=False,
        parallel=1)
    if 1 not in skels or not len(skels[1].vertices):
        raise NoSkeleton(f"body {body_id} is too small to skeletonise ({int(mask.sum())} "
                         "voxels)")
    skel = skels[1]
    origin = np.array([s.start for s in box], dtype=np.float32)
    zyx = skel.vertices / np.array([vz, vy, vx], dtype=np.float32) + origin  # voxels
    skel.vertices = zyx[:, ::-1].copy()  # x, y, z
    skel.radius = skel.radius / np.float32((vx * vy) ** 0.5)  # nm -> lateral voxels
    return skel.to_swc()
