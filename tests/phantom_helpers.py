"""Shared helpers for the phantom tests: read outputs and compare tiles with the truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import zarr
from scipy import ndimage as ndi

from pipeline.ingest.manifest import read_tile


def load(out: Path) -> dict:
    out = Path(out)
    return {
        "manifest": json.loads((out / "manifest.json").read_text()),
        "labels": zarr.open_array(str(out / "gt" / "labels.zarr"), mode="r")[...],
        "em": zarr.open_array(str(out / "gt" / "em.zarr"), mode="r")[...],
        "synapses": pq.read_table(out / "gt" / "synapses.parquet").to_pydict(),
        "tiles": pq.read_table(out / "gt" / "tile_offsets.parquet").to_pydict(),
        "sections": pq.read_table(out / "gt" / "section_offsets.parquet").to_pydict(),
        "faults": json.loads((out / "gt" / "faults.json").read_text()),
        "bodies": pq.read_table(out / "gt" / "bodies.parquet").to_pydict(),
    }


def tile_vs_em(out: Path, d: dict, z: int, row: int, col: int, extra=(0.0, 0.0)) -> float:
    """Correlation of a tile with gt/em sampled where tile_offsets says it comes from."""
    t = d["tiles"]
    i = next(k for k in range(len(t["z"]))
             if (t["z"][k], t["row"][k], t["col"][k]) == (z, row, col))
    tile = read_tile(Path(out) / f"tiles/z{z:04d}_r{row:02d}_c{col:02d}.tif").astype(float)
    em = d["em"][z].astype(float)
    yy, xx = np.meshgrid(np.arange(tile.shape[0]) + t["y_em"][i] + extra[0],
                         np.arange(tile.shape[1]) + t["x_em"][i] + extra[1], indexing="ij")
    ok = (yy >= 0) & (yy <= em.shape[0] - 1) & (xx >= 0) & (xx <= em.shape[1] - 1)
    ref = ndi.map_coordinates(em, [yy, xx], order=1)
    return float(np.corrcoef(tile[ok], ref[ok])[0, 1])


def noise_sd(tile: np.ndarray) -> float:
    """Robust high-frequency noise estimate (grey values)."""
    t = tile.astype(float)
    hp = t - ndi.uniform_filter(t, 3)
    return float(1.4826 * np.median(np.abs(hp - np.median(hp))))
