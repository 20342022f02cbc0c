"""The simulated microscope: tile grid, section displacement, tiles with their flaws.

Frames (all px = y/x voxels, arrays (y, x)):

- nominal frame: the frame of gt/labels.zarr and gt/em.zarr, and of the manifest's
  tile positions (where the stage *says* each tile is).
- section image of z: the nominal-frame EM of section z displaced by the section's
  true offset ``(dy, dx)`` from section_offsets.parquet (jitter + accumulated drift
  + any alignment-fault jump), with subpixel accuracy (cubic spline shift):
  ``section_image(p) = em(p - (dy, dx))``.
- each tile is cut, at whole pixels, from the section image at its TRUE top-left
  ``(y, x)`` = round(nominal + placement error) (+ a tile-misplacement shift); this
  is tile_offsets.parquet. The tile's pixel (i, j) therefore shows nominal-frame
  point ``(y + i - dy, x + j - dx)``, given as ``y_em, x_em`` in that table.

An aligner that recovers per-tile positions and per-section offsets recovers the
nominal frame exactly. Then each tile gets vignetting, its own gain and offset,
shot (Poisson) noise, which the camera blurs like the signal (``camera_sigma_px``;
the clean EM already holds the camera's blur of the signal), white read noise, and
is quantised to uint8.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import ndimage as ndi

from pipeline.phantom.faults import Fault
from pipeline.phantom.params import PhantomParams


@dataclasses.dataclass(frozen=True)
class TileGrid:
    """Square tiles of ``tile`` px every ``step`` px; rows x cols cover the section."""

    tile: int
    step: int
    rows: int
    cols: int

    @property
    def overlap(self) -> float:
        """Overlap fraction of neighbouring tiles (nominal)."""
        return 1.0 - self.step / self.tile

    def nominal(self, row: int, col: int) -> tuple[int, int]:
        """Nominal top-left (y, x) px."""
        return row * self.step, col * self.step

    @property
    def extent(self) -> tuple[int, int]:
        return (self.rows - 1) * self.step + self.tile, (self.cols - 1) * self.step + self.tile


def tile_grid(shape_yx: tuple[int, int], tile_size: int, overlap: float) -> TileGrid:
    """The grid of a section of ``shape_yx`` px; tile_size 0 picks about 3 tiles a row."""
    y, x = shape_yx
    tile = tile_size or max(32, int(math.ceil(max(y, x) / (3 - 2 * overlap))))
    step = max(1, int(round(tile * (1 - overlap))))
    rows = int(math.ceil(max(0, y - tile) / step)) + 1
    cols = int(math.ceil(max(0, x - tile) / step)) + 1
    return TileGrid(tile, step, rows, cols)


def section_offsets(n_sections: int, faults: list[Fault], params: PhantomParams,
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
    """True per-section displacement (px, float): drift (random walk from 0 at z=0) +
    jitter + alignment-fault jumps. Returns columns z, dy, dx and their parts."""
    steps = rng.normal(0.0, params.drift_step_px, size=(n_sections, 2))
    steps[0] = 0.0
    drift = np.cumsum(steps, axis=0)
    jitter = rng.normal(0.0, params.section_jitter_px, size=(n_sections, 2))
    jump = np.zeros((n_sections, 2))
    for f in faults:
        if f.kind == "alignment-fault":
            z0, z1 = f.z_range()
            jump[z0:z1] += (f.region["dy"], f.region["dx"])
    total = drift + jitter + jump
    return {"z": np.arange(n_sections), "dy": total[:, 0], "dx": total[:, 1],
            "drift_dy": drift[:, 0], "drift_dx": drift[:, 1],
            "jitter_dy": jitter[:, 0], "jitter_dx": jitter[:, 1],
            "fault_dy": jump[:, 0], "fault_dx": jump[:, 1]}


def tile_positions(n_sections: int, grid: TileGrid, faults: list[Fault],
                   params: PhantomParams, rng: np.random.Generator) -> np.ndarray:
    """True integer top-left positions (z, row, col, 2) px in the section image frame."""
    r, c = np.meshgrid(np.arange(grid.rows), np.arange(grid.cols), indexing="ij")
    nominal = np.stack([r * grid.step, c * grid.step], axis=-1).astype(float)
    err = rng.normal(0.0, params.placement_error_px, size=(n_sections, grid.rows, grid.cols, 2))
    true = nominal[None] + err
    for f in faults:
        if f.kind == "tile-misplacement":
            z0, z1 = f.z_range()
            true[z0:z1, f.region["row"], f.region["col"]] += (f.region["dy"], f.region["dx"])
    return np.round(true).astype(int)


def damage(section: np.ndarray, fault: Fault, origin_yx: tuple[float, float],
           params: PhantomParams) -> np.ndarray:
    """A fold or crack across a section image (y, x); ``origin_yx`` is the nominal px of
    element [0, 0] of this image (the damage line moves with the tissue)."""
    reg = fault.region
    ny, nx = reg["normal_yx"]
    py, px = reg["point_yx"]
    w = float(reg["width_px"])
    yy, xx = np.meshgrid(np.arange(section.shape[0]) + origin_yx[0],
                         np.arange(section.shape[1]) + origin_yx[1], indexing="ij")
    s = (yy - py) * ny + (xx - px) * nx
    if reg["type"] == "fold":
        shift = np.where(s > 0, w, 0.0)  # tissue beyond the line is folded under
    else:
        shift = np.where(s > w, -w, 0.0)  # tissue beyond the crack is pulled away
    coords = np.stack([yy + shift * ny - origin_yx[0], xx + shift * nx - origin_yx[1]])
    out = ndi.map_coordinates(section, coords, order=1, mode="nearest")
    if reg["type"] == "fold":
        band = np.abs(s) < 0.4 * w
        out[band] = out[band] * (1.0 - 0.6 * fault.strength)  # double layer: darker
    else:
        band = (s > 0) & (s <= w)
        out[band] = min(255.0, params.bright + 15.0)  # bare resin
    return out


def image_tile(clean: np.ndarray, noise_sd: np.ndarray | float, params: PhantomParams,
               rng: np.random.Generator) -> tuple[np.ndarray, dict[str, float]]:
    """One tile (y, x) float grey values -> uint8 with vignetting, gain/offset and noise."""
    th, tw = clean.shape
    v, u = np.meshgrid(np.linspace(-1, 1, th), np.linspace(-1, 1, tw), indexing="ij")
    depth = params.illumination * float(rng.uniform(0.6, 1.4))
    gy, gx = rng.normal(0.0, 0.3 * params.illumination, size=2)
    cy, cx = rng.normal(0.0, 0.2, size=2)
    illum = 1.0 - depth * 0.5 * ((v - cy) ** 2 + (u - cx) ** 2) + gy * v + gx * u
    gain = float(rng.normal(1.0, params.gain_sd))
    offset = float(rng.normal(0.0, params.offset_sd))
    sig = np.clip(clean * illum * gain + offset, 0.0, None)
    img = detect(sig, noise_sd, params, rng)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), {"gain": gain, "offset": offset,
                                                               "vignetting": depth}


def detect(signal: np.ndarray, read_sd: np.ndarray | float, params: PhantomParams,
           rng: np.random.Generator) -> np.ndarray:
    """What the camera records of ``signal`` (y, x) grey values: shot noise blurred by
    the camera (its signal blur is in the clean EM), then white read noise (float)."""
    epg = params.electrons_per_grey * params.voxel_size[1] * params.voxel_size[2] / 16.0
    shot = rng.poisson(signal * epg) / epg - signal
    if params.camera_sigma_px > 0:
        shot = ndi.gaussian_filter(shot, params.camera_sigma_px, mode="reflect")
    return signal + shot + rng.normal(0.0, 1.0, size=signal.shape) * read_sd


def shifted_section(em_section: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """The section image: ``em_section`` (y, x) moved by (dy, dx) px, subpixel (cubic)."""
    return ndi.shift(em_section, (dy, dx), order=3, mode="nearest")
