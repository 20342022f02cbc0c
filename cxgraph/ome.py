"""OME-Zarr (NGFF 0.5) metadata for the workspace's volumes, so viewers and readers understand them.

A volume (an array whose axes are ``z, y, x`` or ``c, z, y, x``) is an OME-Zarr
multiscale image: the group ``volumes.zarr/<name>/`` holds level 0, ``s0``, and
any downsampled levels ``s1, s2, ...`` (written by the pyramid stages), and its
``zarr.json`` carries ``attributes.ome.multiscales`` listing the levels present,
each with its scale and translation in nm. Integer volumes of 32 bits or more
are label images (``ome["image-label"]``). Every array, volume or not, has zarr
v3 ``dimension_names`` and ``attributes.dimension_units`` (``"40 nm"``: the
convention neuroglancer and tensorstore read for a plain array), beside the
``voxel_size`` / ``offset`` attributes (nm, z, y, x) the pipeline reads.

Each level array records its own ``voxel_size`` and ``offset`` (nm: where its first
voxel begins, its corner, as the pipeline's Rois count), so the group metadata is
derived from the levels on disk (``write_image_metadata``) and never lists a level
that is absent. OME-Zarr's translation places voxel *centres* (neuroglancer reads it
so): offset + voxel_size / 2, the same corner for every level.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

NGFF_VERSION = "0.5"
SPACE = ("z", "y", "x")
LEVEL = re.compile(r"^s(\d+)$")


def level_name(k: int) -> str:
    return f"s{k}"


def default_axes(ndim: int) -> list[str]:
    """Axis names of an array of ``ndim`` dimensions: (y, x), (z, y, x) or (c, z, y, x)."""
    return {2: ["y", "x"], 3: ["z", "y", "x"], 4: ["c", "z", "y", "x"]}.get(
        ndim, [f"d{i}" for i in range(ndim)])


def is_image(axes: Sequence[str]) -> bool:
    """A volume the viewer shows: (z, y, x), or (c, z, y, x) with channels first."""
    return tuple(axes) in (SPACE, ("c", *SPACE))


def is_label_dtype(dtype: Any) -> bool:
    """Integer volumes of 32 bits or more hold object ids (EM is uint8, probabilities float)."""
    dt = np.dtype(dtype)
    return bool(np.issubdtype(dt, np.integer) and dt.itemsize >= 4)


def spatial_sizes(axes: Sequence[str], voxel_size: Sequence[float]) -> list[float | None]:
    """Per axis, the voxel size in nm for spatial axes (z, y, x, matched from the end of
    ``voxel_size``), None for others (channel, tile index)."""
    space = [a for a in axes if a in SPACE]
    vs = list(voxel_size)[-len(space):] if space else []
    by_axis = dict(zip(space, vs, strict=False))
    return [float(by_axis[a]) if a in by_axis else None for a in axes]


def dimension_units(axes: Sequence[str], voxel_size: Sequence[float]) -> list[str | None]:
    """``["40 nm", "8 nm", "8 nm"]``: zarr v3 ``attributes.dimension_units`` (neuroglancer,
    tensorstore); None for non-spatial axes."""
    return [None if s is None else f"{_num(s)} nm" for s in spatial_sizes(axes, voxel_size)]


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)


def _axis(name: str) -> dict[str, str]:
    if name in SPACE:
        return {"name": name, "type": "space", "unit": "nanometer"}
    return {"name": name, "type": "channel"}


def _level_transform(axes: Sequence[str], attrs: dict[str, Any]) -> list[dict[str, Any]]:
    sizes = spatial_sizes(axes, attrs.get("voxel_size", [1.0] * 3))
    offsets = spatial_sizes(axes, attrs.get("offset", [0.0] * 3))
    return [{"type": "scale", "scale": [1.0 if s is None else s for s in sizes]},
            {"type": "translation", "translation": [
                0.0 if o is None or s is None else o + s / 2
                for o, s in zip(offsets, sizes, strict=True)]}]


def image_attributes(name: str, levels: list[tuple[str, dict[str, Any]]], dtype: Any,
                     source_image: str | None = None) -> dict[str, Any]:
    """The ``ome`` attribute of an image group from its levels ``[(path, level attrs)]``
    (finest first). Labels get ``image-label`` naming the EM image they were made from."""
    axes = levels[0][1].get("axes") or default_axes(3)
    multiscale: dict[str, Any] = {
        "name": name,
        "axes": [_axis(a) for a in axes],
        "datasets": [{"path": p, "coordinateTransformations": _level_transform(axes, a)}
                     for p, a in levels],
    }
    method = levels[-1][1].get("downsampling") if len(levels) > 1 else None
    if method:
        multiscale["type"] = method
    ome: dict[str, Any] = {"version": NGFF_VERSION, "multiscales": [multiscale]}
    if is_label_dtype(dtype):
        ome["image-label"] = {"source": {"image": source_image}} if source_image else {}
    return ome


def write_image_metadata(group_path: Path, source_image: str | None = "../aligned") -> bool:
    """Rewrite ``group_path/zarr.json``'s ``ome`` attribute from the levels present (s0, s1,
    ... while contiguous). Other attributes (e.g. the engine's stamp) are kept. Returns False
    when the group has no level 0 (not an image)."""
    meta_path = Path(group_path) / "zarr.json"
    levels: list[tuple[str, dict[str, Any]]] = []
    dtype = None
    k = 0
    while (Path(group_path) / level_name(k) / "zarr.json").exists():
        meta = json.loads((Path(group_path) / level_name(k) / "zarr.json").read_text())
        levels.append((level_name(k), meta.get("attributes", {})))
        dtype = dtype or meta.get("data_type")
        k += 1
    if not levels or not meta_path.exists():
        return False
    group = json.loads(meta_path.read_text())
    if group.get("node_type") != "group":
        return False
    name = Path(group_path).name
    src = None if name == Path(source_image or "").name else source_image
    group.setdefault("attributes", {})["ome"] = image_attributes(name, levels, dtype, src)
    _atomic_write(meta_path, json.dumps(group, indent=2))
    return True


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text)
    tmp.replace(path)
