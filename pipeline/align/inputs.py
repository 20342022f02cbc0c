"""Reading what ingest wrote, for both L2 stages: tile usage, section tiles, the frame."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import zarr


def to_uint8(img: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """A rendered float image as uint8 grey 1..255, 0 where no tile covers it."""
    out = np.clip(np.rint(img), 1, 255).astype(np.uint8)
    out[weight <= 1e-6] = 0
    return out


def section_tiles(arr: zarr.Array, z: int, used: np.ndarray) -> list[np.ndarray | None]:
    """The used tiles of section ``z`` (None for the others), from ``volumes.zarr/tiles``."""
    data = np.asarray(arr[z])
    return [data[i] if used[i] else None for i in range(len(used))]


def used_by_section(tiles_table: pa.Table, z_total: int, n: int) -> np.ndarray:
    """(Z, N) bool: tile i of section z enters alignment."""
    t = tiles_table.select(["z", "tile_index", "used"]).to_pydict()
    used = np.zeros((z_total, n), bool)
    for z, i, u in zip(t["z"], t["tile_index"], t["used"], strict=True):
        used[z, i] = u
    return used


def nominal_by_section(tiles_table: pa.Table, fallback: np.ndarray, z_total: int
                       ) -> np.ndarray:
    """(Z, N, 2) nominal top-left (y, x) px of every tile in every section, as its own
    section's manifest entry gives it (one bad position in one section then moves one
    tile of that section only); ``fallback`` (N, 2) where the table has no row."""
    t = tiles_table.select(["z", "tile_index", "nominal_y", "nominal_x"]).to_pydict()
    out = np.repeat(np.asarray(fallback, float)[None], z_total, axis=0)
    for z, i, y, x in zip(t["z"], t["tile_index"], t["nominal_y"], t["nominal_x"], strict=True):
        out[z, i] = (y, x)
    return out


def frame(tiles: zarr.Array) -> dict[str, Any]:
    """The nominal frame from the ``tiles`` array: volume shape, tile count, nominal
    top-lefts (N, 2) px, voxel size (nm)."""
    a = dict(tiles.attrs)
    return {"shape": tuple(a["volume_shape"]), "n": tiles.shape[1],
            "nominal": np.asarray(a["nominal_yx"], float), "voxel_size": a["voxel_size"]}
