"""Reading user labels and writing the phantom's ground truth and previews (tiles and the
manifest go through ``pipeline.ingest.manifest``, the one writer of the tile format)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cxgraph.errors import InputDataError


def load_labels(path: str | Path) -> np.ndarray:
    """A user label volume (z, y, x) of non-negative integers from .npy, .tif/.tiff or zarr
    (an array, or a group holding an array named ``labels``)."""
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"--labels {path}: no such file or directory")
    try:
        suffix = path.suffix.lower()
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(path)
        elif suffix == ".zarr" or path.is_dir():
            import zarr

            node = zarr.open(str(path), mode="r")
            if isinstance(node, zarr.Group):
                if "labels" not in node:
                    raise InputDataError(
                        f"--labels {path}: a zarr group without a 'labels' array; "
                        f"found {sorted(node.array_keys())}"
                    )
                node = node["labels"]
            arr = node[...]
        else:
            raise InputDataError(
                f"--labels {path}: unknown format {suffix!r}; expected .npy, .tif/.tiff or .zarr"
            )
    except InputDataError:
        raise
    except Exception as e:  # the readers raise many kinds; say which file and why
        raise InputDataError(f"--labels {path}: cannot read it ({type(e).__name__}: {e})") from e
    arr = np.asarray(arr)
    if arr.ndim != 3:
        raise InputDataError(f"--labels {path}: expected a 3-D (z, y, x) volume, got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise InputDataError(f"--labels {path}: expected integer labels, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise InputDataError(f"--labels {path}: labels must be >= 0, found {arr.min()}")
    if int(arr.max(initial=0)) == 0:
        raise InputDataError(f"--labels {path}: the volume has no labelled object")
    return arr


def write_json(path: Path, data: Any) -> None:
    """Atomic JSON write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def write_table(path: Path, columns: dict[str, Any]) -> None:
    """Parquet from a dict of columns (atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    os.close(fd)
    pq.write_table(pa.table(columns), tmp)
    os.replace(tmp, path)


def write_zarr(path: Path, data: np.ndarray, voxel_size: tuple[float, float, float],
               attrs: dict[str, Any] | None = None) -> None:
    """A zarr v3 array (z, y, x) with ``voxel_size`` (nm) and offset 0 in the attributes."""
    import zarr

    chunks = tuple(min(s, c) for s, c in zip(data.shape, (32, 256, 256), strict=True))
    arr = zarr.create_array(store=str(path), shape=data.shape, dtype=data.dtype, chunks=chunks,
                            overwrite=True)
    arr[...] = data
    arr.attrs.update({"voxel_size": list(voxel_size), "offset": [0, 0, 0],
                      "axes": ["z", "y", "x"], **(attrs or {})})


def colour_labels(labels: np.ndarray) -> np.ndarray:
    """(y, x) labels -> (y, x, 3) uint8, a fixed pseudo-random colour per id, black = 0."""
    ids = labels.astype(np.uint64)
    h = (ids * np.uint64(2654435761)) % np.uint64(2 ** 24)
    rgb = np.stack([(h >> np.uint64(s)) & np.uint64(255) for s in (0, 8, 16)], axis=-1)
    rgb = (60 + rgb.astype(np.uint16) * 195 // 255).astype(np.uint8)
    rgb[labels == 0] = 0
    return rgb


def write_previews(out: Path, em_section: np.ndarray, label_section: np.ndarray,
                   tiles: list[tuple[int, int, np.ndarray]], rows: int, cols: int) -> list[Path]:
    """DIR/preview/section.png (EM beside its labels) and tiles.png (a montage of one
    section's tiles with 4-px gaps, as the microscope delivered them)."""
    import imageio.v3 as iio

    from pipeline.phantom.render import boundaries_yx

    pdir = out / "preview"
    pdir.mkdir(parents=True, exist_ok=True)
    em = np.clip(em_section, 0, 255).astype(np.uint8)
    lab = colour_labels(label_section)
    lab[boundaries_yx(label_section[None])[0]] = 0
    gap = np.full((em.shape[0], 8, 3), 255, np.uint8)
    iio.imwrite(pdir / "section.png", np.concatenate([np.repeat(em[..., None], 3, -1), gap, lab],
                                                      axis=1))
    paths = [pdir / "section.png"]
    if tiles:
        t = tiles[0][2].shape[0]
        mont = np.full((rows * (t + 4), cols * (t + 4)), 255, np.uint8)
        for r, c, tile in tiles:
            mont[r * (t + 4): r * (t + 4) + t, c * (t + 4): c * (t + 4) + t] = tile
        iio.imwrite(pdir / "tiles.png", mont)
        paths.append(pdir / "tiles.png")
    return paths
