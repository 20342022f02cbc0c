"""Tiny synthetic tile sets with known shifts, for the ingest/align tests (not the phantom)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from pipeline.ingest.manifest import write_manifest, write_tile


def texture(shape: tuple[int, ...], seed: int = 0, sigma: float = 2.0) -> np.ndarray:
    """Smoothed random texture, zero mean, unit sd (float64)."""
    t = ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=shape), sigma)
    return (t - t.mean()) / t.std()


def cut_tile(section: np.ndarray, top_left: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``section`` sampled at ``top_left + (y, x)`` (subpixel, cubic): tile pixel l = S(T + l)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    return ndimage.map_coordinates(section, [yy + top_left[0], xx + top_left[1]], order=3,
                                   mode="reflect")


def write_tileset(
    out: Path, n_sections: int = 4, grid: tuple[int, int] = (2, 2), tile: int = 96,
    step: int = 80, seed: int = 0, placement_sd: float = 1.5, missing: tuple[int, ...] = (),
    corrupt: tuple[tuple[int, int, int], ...] = (),
) -> dict:
    """Write tiles + manifest.json into ``out``; returns the truth (z: (d, tile positions)).

    Sections are slices of one smooth 3-D texture shifted by a random walk d_z;
    tile (r, c) of section z is cut at nominal + placement error from the
    shifted section. ``corrupt`` lists (z, row, col) whose file is garbage.
    """
    rng = np.random.default_rng(seed)
    rows, cols = grid
    h = (rows - 1) * step + tile
    w = (cols - 1) * step + tile
    margin = 24
    vol = texture((n_sections, h + 2 * margin, w + 2 * margin), seed, sigma=(2.0, 2.0, 2.0))
    d = np.cumsum(rng.normal(0, 1.0, (n_sections, 2)), axis=0)
    (out / "tiles").mkdir(parents=True, exist_ok=True)
    sections, truth = [], {}
    for z in range(n_sections):
        if z in missing:
            sections.append({"z": z, "status": "missing", "tiles": []})
            continue
        tiles, true_pos = [], {}
        for r in range(rows):
            for c in range(cols):
                nominal = np.array([r * step, c * step], float)
                t = nominal + rng.normal(0, placement_sd, 2)
                # section image S(p) = E(p - d): tile pixel l shows E(T + l - d)
                img = cut_tile(vol[z], t - d[z] + margin, (tile, tile))
                img = img * 35 + 128 + rng.normal(0, 4, img.shape)
                name = f"tiles/z{z:04d}_r{r:02d}_c{c:02d}.tif"
                if (z, r, c) in corrupt:
                    (out / name).write_bytes(b"not a tiff at all")
                else:
                    write_tile(out / name, np.clip(np.rint(img), 0, 255).astype(np.uint8))
                tiles.append({"file": name, "row": r, "col": c, "y": float(nominal[0]),
                              "x": float(nominal[1])})
                true_pos[(r, c)] = t
        sections.append({"z": z, "status": "ok", "tiles": tiles})
        truth[z] = (d[z], true_pos)
    write_manifest(out, (n_sections, h, w), (40.0, 8.0, 8.0), (tile, tile), sections)
    return truth
