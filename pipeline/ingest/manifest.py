"""The tile manifest: what the microscope (or the phantom) hands the pipeline.

``DIR/manifest.json`` (format ``cxgraph-tiles/1``)::

    {"format": "cxgraph-tiles/1",
     "shape": [Z, Y, X],                 # nominal volume, voxels (z, y, x)
     "voxel_size": [40.0, 8.0, 8.0],     # nm (z, y, x)
     "dtype": "uint8",                   # tile pixel type
     "tile_shape": [TH, TW],             # px (y, x)
     "sections": [
       {"z": 0, "status": "ok",          # "ok" or "missing" (no tiles)
        "tiles": [{"file": "tiles/z0000_r00_c00.tif", "row": 0, "col": 0,
                   "y": 0.0, "x": 900.0}]}]}   # NOMINAL top-left, px, nominal frame

Tile files are single-channel TIFF (any format imageio reads also works),
paths relative to DIR. A real microscope export is brought in by writing this
file next to its tiles with the stage's nominal positions. ``write_manifest``,
``write_tile`` and ``read_tile`` are the one writer and reader of the format
(the synthetic microscope and the tests use them too).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cxgraph.errors import InputDataError
from cxgraph.workspace import atomic_write_bytes

FORMAT = "cxgraph-tiles/1"


@dataclasses.dataclass(frozen=True)
class TileRef:
    file: str  # relative to the input directory
    row: int
    col: int
    y: float  # nominal top-left, px
    x: float


@dataclasses.dataclass(frozen=True)
class SectionRef:
    z: int
    status: str  # ok | missing
    tiles: tuple[TileRef, ...]


@dataclasses.dataclass(frozen=True)
class Manifest:
    root: Path
    shape: tuple[int, int, int]  # voxels (z, y, x)
    voxel_size: tuple[float, float, float]  # nm (z, y, x)
    dtype: np.dtype
    tile_shape: tuple[int, int]  # px (y, x)
    sections: tuple[SectionRef, ...]

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, cols) of the tile grid."""
        tiles = [t for s in self.sections for t in s.tiles]
        if not tiles:
            return (0, 0)
        return (max(t.row for t in tiles) + 1, max(t.col for t in tiles) + 1)

    def tile_index(self, row: int, col: int) -> int:
        return row * self.grid[1] + col

    def nominal_positions(self) -> np.ndarray:
        """(rows * cols, 2) nominal top-left (y, x) px per tile index (first section seen)."""
        rows, cols = self.grid
        out = np.full((rows * cols, 2), np.nan)
        for s in self.sections:
            for t in s.tiles:
                i = self.tile_index(t.row, t.col)
                if np.isnan(out[i, 0]):
                    out[i] = (t.y, t.x)
        return out


def _field(obj: dict[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise InputDataError(f"{where}: missing key {key!r}; see the manifest format in README")
    return obj[key]


def read_manifest(input_dir: Path | str) -> Manifest:
    """Parse and validate ``input_dir/manifest.json``; raise InputDataError saying what is wrong."""
    root = Path(input_dir)
    path = root / "manifest.json"
    if not path.exists():
        raise InputDataError(f"{root}: no manifest.json (expected format {FORMAT!r})")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputDataError(f"{path}: not valid JSON ({e})") from e
    if data.get("format") != FORMAT:
        raise InputDataError(f"{path}: expected format {FORMAT!r}, got {data.get('format')!r}")
    shape = tuple(int(v) for v in _field(data, "shape", str(path)))
    voxel = tuple(float(v) for v in _field(data, "voxel_size", str(path)))
    tile_shape = tuple(int(v) for v in _field(data, "tile_shape", str(path)))
    if len(shape) != 3 or len(voxel) != 3 or len(tile_shape) != 2:
        raise InputDataError(
            f"{path}: expected shape [Z, Y, X], voxel_size [z, y, x], tile_shape [TH, TW]; "
            f"got {list(shape)}, {list(voxel)}, {list(tile_shape)}"
        )
    try:
        dtype = np.dtype(_field(data, "dtype", str(path)))
    except TypeError as e:
        raise InputDataError(f"{path}: unknown dtype {data['dtype']!r}") from e
    sections = []
    seen = set()
    for k, s in enumerate(_field(data, "sections", str(path))):
        where = f"{path} sections[{k}]"
        z = int(_field(s, "z", where))
        status = str(s.get("status", "ok"))
        if status not in ("ok", "missing"):
            raise InputDataError(f"{where}: status expected 'ok' or 'missing', got {status!r}")
        if not 0 <= z < shape[0] or z in seen:
            raise InputDataError(f"{where}: z={z} out of range 0..{shape[0] - 1} or repeated")
        seen.add(z)
        tiles = tuple(
            TileRef(str(_field(t, "file", where)), int(_field(t, "row", where)),
                    int(_field(t, "col", where)), float(_field(t, "y", where)),
                    float(_field(t, "x", where)))
            for t in s.get("tiles", [])
        )
        sections.append(SectionRef(z, status, tiles))
    # sections absent from the list are missing
    for z in sorted(set(range(shape[0])) - seen):
        sections.append(SectionRef(z, "missing", ()))
    sections.sort(key=lambda s: s.z)
    return Manifest(root, shape, voxel, dtype, tile_shape, tuple(sections))  # type: ignore[arg-type]


def write_manifest(out_dir: Path | str, shape: Sequence[int], voxel_size: Sequence[float],
                   tile_shape: Sequence[int], sections: Sequence[dict[str, Any]],
                   dtype: str = "uint8", **extra: Any) -> Path:
    """Write ``out_dir/manifest.json``; ``sections`` as in the format above (``extra`` keys,
    e.g. the phantom's tile grid, are kept beside the required ones)."""
    data = {"format": FORMAT, "shape": [int(v) for v in shape],
            "voxel_size": [float(v) for v in voxel_size], "dtype": str(dtype),
            "tile_shape": [int(v) for v in tile_shape], **extra, "sections": list(sections)}
    path = Path(out_dir) / "manifest.json"
    atomic_write_bytes(path, json.dumps(data, indent=1).encode())
    return path


def write_tile(path: Path, tile: np.ndarray) -> None:
    """One tile as TIFF (.tif/.tiff) or PNG (.png)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".png":
        import imageio.v3 as iio

        iio.imwrite(path, tile)
    else:
        import tifffile

        tifffile.imwrite(path, tile)


def read_tile(path: Path) -> np.ndarray:
    """A 2-D tile image; raises InputDataError when the file cannot be read as one."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            img = tifffile.imread(path)
        else:
            import imageio.v3 as iio

            img = iio.imread(path)
    except FileNotFoundError as e:
        raise InputDataError(f"{path}: file not found") from e
    except Exception as e:  # noqa: BLE001 - any decoder error means a corrupt tile
        raise InputDataError(f"{path}: unreadable ({type(e).__name__}: {e})") from e
    return np.asarray(img)
