"""ROIs a user declares (named regions), as neuPrint has them: a box or a label of a label
volume, optionally inside a parent ROI.

Declared with ``cxgraph roi add`` (``cxgraph roi list|remove``), kept in ``WS/rois.json``;
the next ``cxgraph load`` (``snapshot.from_workspace``) places every synapse's pre and
post point in them (``synapse_rois``), and the loader turns that into neuPrint's model:
``roiInfo`` counts per ROI on bodies (by each point) and on ``ConnectsTo`` (by the post
point), one boolean property per ROI on bodies and synapses, and ``:Meta``'s ``roiInfo``,
``roiHierarchy`` (the dataset > ``volume`` > the declared tree), ``primaryRois`` (the
declared leaves: neuPrint's primary ROIs do not overlap, which is the declarer's to keep)
and ``superLevelRois`` (the declared top level).

Coordinates are voxels of the synapse table (z, y, x), as everywhere in cxgraph. A box is
half-open, ``z0 <= z < z1``. A label volume (an array of ``volumes.zarr`` or a ``.npy``
file) lies over the segmentation's extent; a coarser one is scaled to it (voxel ``i`` of
an axis of ``n`` labels over ``N`` voxels covers ``[i N/n, (i+1) N/n)``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from cxgraph.errors import InputDataError
from cxgraph.graph.meta import INTERNAL, VOLUME_ROI

ROI_FILE = "rois.json"
# ROI booleans live beside these on bodies and synapses: an ROI may not take their names
TAKEN = {VOLUME_ROI, "bodyId", "pre", "post", "upstream", "downstream", "synweight", "size",
         "status", "statusLabel", "type", "instance", "name", "roiInfo", "kind", "class",
         "location", "confidence", "somaLocation", "somaRadius", "cropped", *INTERNAL}


@dataclasses.dataclass(frozen=True)
class Roi:
    name: str
    parent: str | None = None
    box: tuple[tuple[float, float], ...] | None = None  # ((z0, z1), (y0, y1), (x0, x1))
    labels: str | None = None  # an array of volumes.zarr, or a .npy path
    label: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Roi:
        box = tuple(tuple(float(v) for v in r) for r in d["box"]) if d.get("box") else None
        return cls(d["name"], d.get("parent"), box, d.get("labels"), d.get("label"))  # type: ignore[arg-type]


def parse_box(text: str) -> tuple[tuple[float, float], ...]:
    """``"z0:z1,y0:y1,x0:x1"`` (voxels) as ``((z0, z1), (y0, y1), (x0, x1))``."""
    try:
        box = tuple(tuple(float(v) for v in part.split(":")) for part in text.split(","))
    except ValueError:
        box = ()
    if len(box) != 3 or any(len(r) != 2 or r[0] >= r[1] for r in box):
        raise InputDataError(f"--box {text!r}: expected z0:z1,y0:y1,x0:x1 with z0 < z1 ...")
    return box  # type: ignore[return-value]


def read_rois(root: Path) -> list[Roi]:
    path = Path(root) / ROI_FILE
    return [Roi.from_dict(d) for d in json.loads(path.read_text())] if path.exists() else []


def write_rois(root: Path, rois: list[Roi]) -> None:
    from cxgraph.workspace import atomic_write_bytes

    atomic_write_bytes(Path(root) / ROI_FILE,
                       (json.dumps([r.to_dict() for r in rois], indent=2) + "\n").encode())


def add_roi(ws: Any, roi: Roi) -> list[Roi]:
    """Declare ``roi`` in ``ws`` (checked: a new name, a known parent, one region)."""
    rois = read_rois(ws.root)
    names = {r.name for r in rois}
    if roi.name in names:
        raise InputDataError(f"ROI {roi.name!r} exists already; `cxgraph roi remove` it first")
    if roi.name in TAKEN or not roi.name.strip():
        raise InputDataError(f"ROI name {roi.name!r} is taken ({VOLUME_ROI!r} is the whole "
                             "volume; the others are body or synapse properties)")
    if set(roi.name) & set('"\\`'):
        raise InputDataError(f"ROI name {roi.name!r}: no quotes, backslashes or backticks")
    if roi.parent is not None and roi.parent not in names:
        raise InputDataError(f"parent ROI {roi.parent!r} is not declared; declared: "
                             f"{sorted(names) or 'none'}")
    if (roi.box is None) == (roi.labels is None) or (roi.labels and roi.label is None):
        raise InputDataError("an ROI is a --box, or a --labels volume with a --label")
    if roi.labels:
        _labels(ws, roi.labels)  # it can be read
    write_rois(ws.root, [*rois, roi])
    return [*rois, roi]


def remove_roi(ws: Any, name: str) -> list[Roi]:
    rois = read_rois(ws.root)
    if name not in {r.name for r in rois}:
        raise InputDataError(f"no ROI {name!r} is declared")
    if children := [r.name for r in rois if r.parent == name]:
        raise InputDataError(f"ROI {name!r} has children {children}; remove them first")
    rest = [r for r in rois if r.name != name]
    write_rois(ws.root, rest)
    return rest


def parents(rois: list[Roi]) -> dict[str, str | None]:
    return {r.name: r.parent for r in rois}


def _labels(ws: Any, labels: str) -> np.ndarray:
    if labels.endswith(".npy"):
        path = Path(labels) if Path(labels).is_absolute() else Path(ws.root) / labels
        return np.load(path, mmap_mode="r")
    return np.asarray(ws.array(labels)[...])


def _extent(ws: Any) -> tuple[int, ...] | None:
    for name in ("segmentation", "supervoxels", "raw"):
        if ws.has_array(name):
            return tuple(ws.array(name).shape[-3:])
    return None


def contains(ws: Any, roi: Roi, zyx: np.ndarray) -> np.ndarray:
    """Which of the points ``zyx`` (n x 3 voxels) lie in ``roi``."""
    if roi.box is not None:
        lo, hi = np.array([r[0] for r in roi.box]), np.array([r[1] for r in roi.box])
        return np.all((zyx >= lo) & (zyx < hi), axis=1)
    lab = _labels(ws, roi.labels)  # type: ignore[arg-type]
    extent = np.array(_extent(ws) or lab.shape, dtype=np.float64)
    idx = np.floor(zyx * np.array(lab.shape) / extent).astype(np.int64)
    inside = np.all((idx >= 0) & (idx < np.array(lab.shape)), axis=1)
    out = np.zeros(len(zyx), bool)
    i = idx[inside]
    out[inside] = lab[i[:, 0], i[:, 1], i[:, 2]] == roi.label
    return out


def synapse_rois(ws: Any, rois: list[Roi], synapses: pl.DataFrame) -> pl.DataFrame:
    """(synapse_id, side 'pre'|'post', roi): each synapse point in each ROI it lies in."""
    parts = []
    for side in ("pre", "post"):
        zyx = synapses.select(f"{side}_z", f"{side}_y", f"{side}_x").to_numpy()
        for roi in rois:
            ids = synapses["synapse_id"].filter(pl.Series(contains(ws, roi, zyx)))
            parts.append(pl.DataFrame({"synapse_id": ids, "side": side, "roi": roi.name},
                                      schema=SYNAPSE_ROI_COLUMNS))
    return pl.concat(parts) if parts else pl.DataFrame(schema=SYNAPSE_ROI_COLUMNS)


SYNAPSE_ROI_COLUMNS = {"synapse_id": pl.Int64, "side": pl.Utf8, "roi": pl.Utf8}


def roi_mesh_obj(ws: Any, name: str) -> str | None:
    """A Wavefront OBJ of ROI ``name`` (voxels x, y, z, as neuPrint's ROI meshes), or None
    if no such ROI is declared (``volume``: the segmentation's extent)."""
    rois = {r.name: r for r in read_rois(ws.root)}
    if name == VOLUME_ROI and _extent(ws):
        rois[name] = Roi(name, box=tuple((0.0, float(n)) for n in _extent(ws)))  # type: ignore[arg-type,union-attr]
    roi = rois.get(name)
    if roi is None:
        return None
    if roi.box is not None:  # a cuboid
        (z0, z1), (y0, y1), (x0, x1) = roi.box
        verts = np.array([[x, y, z] for z in (z0, z1) for y in (y0, y1) for x in (x0, x1)])
        faces = np.array([[0, 2, 1], [1, 2, 3], [4, 5, 6], [5, 7, 6], [0, 1, 4], [1, 5, 4],
                          [2, 6, 3], [3, 6, 7], [0, 4, 2], [2, 4, 6], [1, 3, 5], [3, 7, 5]])
    else:
        import zmesh

        lab = _labels(ws, roi.labels)  # type: ignore[arg-type]
        scale = np.array(_extent(ws) or lab.shape, dtype=np.float64) / np.array(lab.shape)
        mesher = zmesh.Mesher(tuple(scale[::-1]))  # label voxel size in voxels, x, y, z
        mesher.mesh(np.pad(np.asarray(lab) == roi.label, 1).astype(np.uint8).T)
        mesh = mesher.get(1, normals=False, reduction_factor=0)  # exact: ROIs are coarse
        # label voxel i's centre is at (i + 1/2) * scale: undo the pad, shift to the centre
        verts = mesh.vertices + (0.5 - 1) * scale[::-1]
        faces = mesh.faces
    lines = [f"v {x:.3f} {y:.3f} {z:.3f}" for x, y, z in verts]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    return "\n".join(lines) + "\n"
