"""Skeletons and meshes of segmented bodies for the neuPrint front door.

A body's shape is made on first request from the workspace's ``segmentation`` volume, on
the body's voxels in the bounding box that holds it, with the volume's anisotropic voxel
size:

- skeleton: kimimaro (TEASAR), answered as SWC in voxel coordinates x, y, z — the units
  of neuPrint's skeletons and of synapse ``location``;
- mesh: zmesh (marching cubes, simplified to at most a voxel's error), in neuroglancer's
  legacy single-resolution format (``.ngmesh``: uint32 vertex count, float32 x, y, z
  vertices in nm, uint32 triangles) — DVID's, whose meshes are in nm; navis divides them
  by ``Meta.voxelSize`` and so lands on the skeleton's voxel coordinates.

Both are cached in ``WS/cache/shapes/<key>/<bodyId>.{swc,ngmesh}``. ``key`` names the
segmentation they were made from (its stamp's ``output_hash`` when the pipeline wrote it,
else a hash of its metadata and its chunk files' names, sizes and times) and ``SHAPES``
(the making code's parameters): a re-run of the segmentation, or new parameters, starts a
new key and the old keys are removed. Bodies the pipeline did not segment (an imported
connectome) have no shape: ``NoShape`` (404).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cxgraph.errors import CxgraphError
from cxgraph.workspace import Workspace, atomic_write_bytes

SHAPES = "kimimaro scale 1.5 const 2 voxels; zmesh reduction 10; v1"


class NoShape(CxgraphError):
    """No skeleton or mesh can be made for this body (no segmentation, or not in it)."""


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


def segmentation_key(ws: Workspace) -> str:
    """What the cache of shapes is keyed by (see the module docstring)."""
    meta = ws.zarr_path / "segmentation" / "zarr.json"
    stamp = json.loads(meta.read_text()).get("attributes", {}).get("cxgraph") or {}
    h = hashlib.sha256(SHAPES.encode())
    if stamp.get("output_hash"):
        h.update(stamp["output_hash"].encode())
    else:
        data = ws.array_path("segmentation")
        for d, _, files in sorted(os.walk(data)):
            for f in sorted(files):
                st = os.stat(os.path.join(d, f))
                h.update(f"{d[len(str(data)):]}/{f} {st.st_size} {st.st_mtime_ns} "
                         f"{st.st_ctime_ns}\n".encode())
    return h.hexdigest()[:24]


def _cached(root: Path, body_id: int, ext: str, make: Callable[..., bytes]) -> bytes:
    ws = Workspace.open(root)
    if not ws.has_array("segmentation"):
        raise NoShape(f"{root} has no segmentation volume: skeletons and meshes exist only "
                      "for bodies the pipeline segmented")
    cache = ws.root / "cache" / "shapes"
    here = cache / segmentation_key(ws)
    path = here / f"{body_id}.{ext}"
    if path.exists():
        return path.read_bytes()
    seg = ws.array("segmentation")
    box = body_box(seg, body_id)
    if box is None:
        raise NoShape(f"body {body_id} is not in the segmentation of {root}")
    res = tuple(float(v) for v in seg.attrs.get("voxel_size", (1.0, 1.0, 1.0)))  # z, y, x
    mask = (np.asarray(seg[box]) == body_id).astype(np.uint8)
    data = make(mask, np.array([s.start for s in box], np.float32), res, body_id)
    for old in cache.iterdir() if cache.exists() else ():  # older segmentations' shapes go
        if old != here:
            shutil.rmtree(old, ignore_errors=True)
    atomic_write_bytes(path, data)
    return data


def _trace(mask: np.ndarray, origin: np.ndarray, res: tuple, body_id: int) -> bytes:
    import kimimaro

    vz, vy, vx = res
    skels = kimimaro.skeletonize(  # TEASAR's invalidation radius in nm: a few coarse voxels
        mask, teasar_params={"scale": 1.5, "const": 2 * max(res), "pdrf_scale": 100000,
                             "pdrf_exponent": 4},
        anisotropy=res, dust_threshold=0, fix_branching=True, progress=False, parallel=1)
    if 1 not in skels or not len(skels[1].vertices):
        raise NoShape(f"body {body_id} is too small to skeletonise ({int(mask.sum())} voxels)")
    skel = skels[1]
    zyx = skel.vertices / np.array(res, dtype=np.float32) + origin  # voxels
    skel.vertices = zyx[:, ::-1].copy()  # x, y, z
    skel.radius = skel.radius / np.float32((vx * vy) ** 0.5)  # nm -> lateral voxels
    return skel.to_swc().encode()


def _mesh(mask: np.ndarray, origin: np.ndarray, res: tuple, body_id: int) -> bytes:
    import zmesh

    mesher = zmesh.Mesher(res[::-1])  # x, y, z
    mesher.mesh(np.pad(mask, 1).T)  # padded: the surface closes at the box's faces
    mesh = mesher.get(1, normals=False, reduction_factor=10)
    # zmesh puts voxel (i, j, k) of its array at (i, j, k) * res, as kimimaro does
    xyz = mesh.vertices + (origin[::-1] - 1) * np.array(res[::-1], dtype=np.float32)
    faces = np.asarray(mesh.faces, dtype=np.uint32)
    return (np.uint32(len(xyz)).tobytes() + xyz.astype("<f4").tobytes()
            + faces.astype("<u4").tobytes())


def skeleton_swc(root: Path, body_id: int) -> str:
    """SWC text of ``body_id``'s skeleton, from ``root``'s segmentation (cached)."""
    return _cached(root, body_id, "swc", _trace).decode()


def mesh_ngmesh(root: Path, body_id: int) -> bytes:
    """``body_id``'s mesh as ``.ngmesh`` bytes (nm), from ``root``'s segmentation (cached)."""
    return _cached(root, body_id, "ngmesh", _mesh)
