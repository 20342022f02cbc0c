"""The tile manifest: what the microscope (or the phantom) hands the pipeline.

``DIR/manifest.json`` (format ``cxgraph-tiles/1``)::

    {"format": "cxgraph-tiles/1",
     "shape": [Z, Y, X],                 # nominal volume, voxels (z, y, x)
     "voxel_size": [40.0, 8.0, 8.0],     # nm (z, y, x)
     "dtype": "uint8",                   # tile pixel type
     "tile_shape": [TH, TW],             # px (y, x)
     "intensity_range": [0.0, 1.0],      # optional: grey [low, high] of float tiles
     "sections": [
       {"z": 0, "status": "ok",          # "ok" or "missing" (no tiles)
        "tiles": [{"file": "tiles/z0000_r00_c00.tif", "row": 0, "col": 0,
                   "y": 0.0, "x": 900.0}]}]}   # NOMINAL top-left, px, nominal frame

Tile files are single-channel TIFF (any format imageio reads also works),
paths relative to DIR and inside it. ``read_manifest`` validates the whole file
once, against one schema (``ManifestModel``), before any tile is read: every
error names the field, its value and what is expected; sizes (shape, tile grid)
are bounded by the memory a worker has before anything is allocated. A real
microscope export is brought in by writing this file next to its tiles with the
stage's nominal positions. ``write_manifest``,
``write_tile`` and ``read_tile`` are the one writer and reader of the format
(the synthetic microscope and the tests use them too).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

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
    intensity_range: tuple[float, float] | None = None  # grey [low, high] of float tiles

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
        """(rows * cols, 2) nominal top-left (y, x) px per tile index, for tile indices a
        section lacks (first section seen); each section's own tiles keep their own
        positions (``tables/tiles`` nominal_y/x)."""
        rows, cols = self.grid
        out = np.full((rows * cols, 2), np.nan)
        for s in self.sections:
            for t in s.tiles:
                i = self.tile_index(t.row, t.col)
                if np.isnan(out[i, 0]):
                    out[i] = (t.y, t.x)
        return out


# --- the schema: every field checked once, up front, before anything is read or allocated --
Finite = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[int, Field(strict=True, ge=1)]
Index = Annotated[int, Field(strict=True, ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class TileModel(_Model):
    file: Annotated[str, Field(min_length=1, max_length=4096)]
    row: Index
    col: Index
    y: Finite  # nominal top-left, px
    x: Finite

    @field_validator("file")
    @classmethod
    def _inside(cls, v: str) -> str:
        # Tile paths are relative to the input directory and stay inside it (a manifest
        # must not make ingest read /etc/hostname). Symlinks placed in the directory by
        # its owner are followed: that is a deliberate choice, not a path in the manifest.
        pure = PurePosixPath(v.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts or ":" in pure.parts[0]:
            raise ValueError("expected a path relative to the input directory, inside it "
                             "(no leading /, no '..')")
        if "\x00" in v:
            raise ValueError("expected a file name without NUL bytes")
        return v


class SectionModel(_Model):
    z: Index
    status: Literal["ok", "missing"] = "ok"
    tiles: list[TileModel] = []

    @model_validator(mode="after")
    def _unique_positions(self) -> SectionModel:
        seen: dict[tuple[int, int], int] = {}
        for k, t in enumerate(self.tiles):
            if (t.row, t.col) in seen:
                raise ValueError(f"tiles[{k}] and tiles[{seen[t.row, t.col]}] both claim "
                                 f"row {t.row}, col {t.col}; expected one tile per position")
            seen[t.row, t.col] = k
        return self


class ManifestModel(_Model):
    format: Literal["cxgraph-tiles/1"]
    shape: tuple[Count, Count, Count]  # voxels (z, y, x)
    voxel_size: tuple[Annotated[Finite, Field(gt=0)], ...]  # nm (z, y, x)
    dtype: str  # a numpy integer or float type name: uint8, uint16, float32, ...
    tile_shape: tuple[Count, Count]  # px (y, x)
    sections: list[SectionModel]
    # Grey range of float tiles ([low, high]); without it, the range of the data is used.
    intensity_range: tuple[Finite, Finite] | None = None

    @field_validator("dtype")
    @classmethod
    def _pixel_type(cls, v: str) -> str:
        try:
            dt = np.dtype(v)
        except TypeError:
            dt = None
        if dt is None or dt.kind not in "uif" or dt.itemsize > 8:
            raise ValueError("expected a numpy integer or float pixel type such as 'uint8', "
                             "'uint16' or 'float32'")
        return dt.name

    @field_validator("voxel_size")
    @classmethod
    def _three(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if len(v) != 3:
            raise ValueError(f"expected three sizes in nm (z, y, x), got {len(v)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ManifestModel:
        z_n, h, w = self.shape
        th, tw = self.tile_shape
        if self.intensity_range is not None and not (
                self.intensity_range[0] < self.intensity_range[1]):
            raise ValueError(f"intensity_range {list(self.intensity_range)}: expected "
                             "[low, high] with low < high")
        seen: dict[int, int] = {}
        for k, s in enumerate(self.sections):
            if s.z >= z_n:
                raise ValueError(f"sections[{k}].z = {s.z}: expected 0 <= z < {z_n} "
                                 f"(shape[0])")
            if s.z in seen:
                raise ValueError(f"sections[{k}].z = {s.z} repeats sections[{seen[s.z]}]; "
                                 "expected each section once")
            seen[s.z] = k
            for j, t in enumerate(s.tiles):
                # a tile must overlap the nominal volume, or it holds nothing of it
                if not (-th < t.y < h and -tw < t.x < w):
                    raise ValueError(
                        f"sections[{k}].tiles[{j}] ({t.file}) at y={t.y:g}, x={t.x:g}: "
                        f"expected a top-left within -{th} < y < {h}, -{tw} < x < {w} px "
                        f"(a {th}x{tw} tile overlapping the {h}x{w} volume)")
        return self


def _describe(err: dict[str, Any]) -> str:
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
    value = err.get("input")
    shown = repr(value) if not isinstance(value, (dict, list)) or len(repr(value)) < 80 \
        else f"{type(value).__name__} of {len(value)}"
    msg = err["msg"].removeprefix("Value error, ")
    if not loc:  # a whole-manifest rule: its message names the fields and values itself
        return msg
    return f"{loc}: {msg}, got {shown}" if "input" in err else f"{loc}: {msg}"


def memory_budget_bytes() -> int:
    """What one process may plan to hold: half of the memory available now."""
    import psutil

    return int(psutil.virtual_memory().available // 2)


# Per section, whatever its tiles: its manifest entry, table rows (tiles, transforms,
# quality) and per-stage bookkeeping, generously.
SECTION_BOOKKEEPING_BYTES = 64 * 1024


def _check_sizes(m: ManifestModel, path: Path) -> None:
    """Refuse, before allocating (or listing the missing sections), a volume no worker could
    hold: too many sections to keep track of, or a tile grid or section too large."""
    budget = memory_budget_bytes()
    z_n, h, w = m.shape
    if z_n * SECTION_BOOKKEEPING_BYTES > budget:  # [10**9, ...] must not build 10**9 entries
        raise InputDataError(
            f"{path}: shape[0] = {z_n} sections would need about "
            f"{_gib(z_n * SECTION_BOOKKEEPING_BYTES)} for their bookkeeping alone; expected "
            f"at most {budget // SECTION_BOOKKEEPING_BYTES} sections ({_gib(budget)}, half the "
            "memory available). Check the shape, or cut the volume smaller.")
    tiles = [t for s in m.sections for t in s.tiles]
    rows = max((t.row for t in tiles), default=-1) + 1
    cols = max((t.col for t in tiles), default=-1) + 1
    th, tw = m.tile_shape
    # per section: the tile stack as float32 (ingest, stitch) and ~4 float canvases (render)
    need = rows * cols * th * tw * 4 * 2 + h * w * 4 * 4
    if need > budget:
        grid = f"a {rows} x {cols} grid of {th}x{tw} tiles"
        if tiles:
            by_row, by_col = max(tiles, key=lambda t: t.row), max(tiles, key=lambda t: t.col)
            grid += (f": largest row {by_row.row} in {by_row.file}, largest col {by_col.col} "
                     f"in {by_col.file}")
        raise InputDataError(
            f"{path}: one section needs about {_gib(need)} in memory ({grid}; and a {h}x{w} "
            f"canvas); expected at most {_gib(budget)} (half the memory available). Check "
            "the tiles' row/col and the shape, or cut the volume smaller.")


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB" if n < 2**50 else f"{n / 2**50:.3g} PiB"


def read_manifest(input_dir: Path | str) -> Manifest:
    """Parse and validate ``input_dir/manifest.json`` against the schema; raise
    InputDataError naming each bad field, its value and what is expected."""
    root = Path(input_dir)
    path = root / "manifest.json"
    if not root.is_dir():
        raise InputDataError(f"{root}: input directory does not exist")
    if not path.is_file():
        raise InputDataError(f"{root}: no manifest.json (expected format {FORMAT!r})")
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, OSError) as e:
        raise InputDataError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise InputDataError(f"{path}: expected a JSON object {{\"format\": {FORMAT!r}, ...}}, "
                             f"got a JSON {type(data).__name__}")
    try:
        model = ManifestModel.model_validate(data)
    except ValidationError as e:
        lines = [_describe(err) for err in e.errors(include_url=False)]
        more = f" (and {len(lines) - 10} more)" if len(lines) > 10 else ""
        raise InputDataError(f"{path}: " + "; ".join(lines[:10]) + more
                             + "; see the manifest format in README") from None
    _check_sizes(model, path)
    seen = {s.z for s in model.sections}
    sections = [SectionRef(s.z, s.status, tuple(TileRef(t.file, t.row, t.col, t.y, t.x)
                                                 for t in s.tiles)) for s in model.sections]
    # sections absent from the list are missing
    sections += [SectionRef(z, "missing", ()) for z in range(model.shape[0]) if z not in seen]
    sections.sort(key=lambda s: s.z)
    manifest = Manifest(root, model.shape, model.voxel_size, np.dtype(model.dtype),
                        model.tile_shape, tuple(sections), model.intensity_range)
    return manifest


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
