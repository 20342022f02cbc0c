"""EM appearance of a label volume: what a perfect microscope would record.

A darkness map D in [0, 1] (0 = unstained resin, 1 = black) is built from the
tissue: cytoplasm by kind with a smoothed texture, dark membranes (two pixels at
every boundary in y/x, a lighter smear where a boundary runs between sections),
mitochondria (dark matrix, darker double membrane), nuclei, vesicles (dark rings,
40 nm), synaptic clefts and PSDs (darkest). Staining faults scale D; grey value
= bright - D * (bright - dark); low-contrast faults compress it; an anisotropic
Gaussian PSF blurs it. Noise and the tiling belong to the microscope, not here.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from pipeline.phantom.faults import Fault, staining_factor
from pipeline.phantom.morphology import KIND_CODES
from pipeline.phantom.params import PhantomParams
from pipeline.phantom.synapses import Synapses

_BASE = {"ecs": 0.12, "soma": 0.2, "dendrite": 0.22, "axon": 0.3, "glia": 0.1,
         "neurite": 0.25}


def boundaries_yx(labels: np.ndarray) -> np.ndarray:
    """Voxels (z, y, x) whose y or x neighbour has another label: a 2-px membrane."""
    b = np.zeros(labels.shape, dtype=bool)
    dy = labels[:, 1:, :] != labels[:, :-1, :]
    b[:, 1:, :] |= dy
    b[:, :-1, :] |= dy
    dx = labels[:, :, 1:] != labels[:, :, :-1]
    b[:, :, 1:] |= dx
    b[:, :, :-1] |= dx
    return b


def _ring_stamp() -> tuple[np.ndarray, np.ndarray]:
    r = np.arange(-3, 4)
    yy, xx = np.meshgrid(r, r, indexing="ij")
    d = np.sqrt(yy ** 2 + xx ** 2)
    val = np.where((d >= 1.2) & (d <= 2.8), 0.7, np.where(d < 1.2, 0.3, 0.0))
    keep = val > 0
    offs = np.stack([np.zeros(keep.sum(), int), yy[keep], xx[keep]], axis=1)
    return offs, val[keep].astype(np.float32)


def render_specimen(labels: np.ndarray, kind_of: np.ndarray, mito: np.ndarray,
                    syn: Synapses, nuclei: list[tuple[np.ndarray, float]],
                    faults: list[Fault], origin: tuple[int, int, int],
                    params: PhantomParams, rng: np.random.Generator) -> np.ndarray:
    """Grey values (z, y, x) float32 of the specimen on the grid of ``labels``.

    ``origin`` is the nominal voxel of labels[0, 0, 0] (negative margins when padded),
    so faults given in nominal coordinates land in the right place.
    """
    vs = np.asarray(params.voxel_size, dtype=float)
    n = int(labels.max()) + 1
    base = np.array([_BASE["ecs"]] + [0.0] * (n - 1), dtype=np.float32)
    codes = {v: k for k, v in KIND_CODES.items()}
    kind_base = np.array([_BASE[codes[int(k)]] for k in kind_of[1:n]], dtype=np.float32)
    base[1:] = kind_base + rng.normal(0, 0.025, size=n - 1).astype(np.float32)
    d = base[labels]

    tex = rng.standard_normal(labels.shape, dtype=np.float32)
    tex = ndi.gaussian_filter(tex, (0.6, 1.6, 1.6))
    tex *= 0.07 / max(float(tex.std()), 1e-6)
    d += tex

    # nuclei: light nucleoplasm with chromatin clumps, a dark envelope
    for centre, rn in nuclei:
        g = np.meshgrid(*[(np.arange(s) - c) * v for s, c, v in
                          zip(labels.shape, centre, vs, strict=True)], indexing="ij", sparse=True)
        r = np.sqrt(g[0] ** 2 + g[1] ** 2 + g[2] ** 2)
        inside = r < rn
        if inside.any():
            d[inside] = 0.08 + 3.0 * np.clip(tex[inside], 0.0, None)
            d[np.abs(r - rn) < 16.0] = 0.8

    m = mito
    d[m] = 0.5 + 2.0 * tex[m]
    mb = boundaries_yx(m.view(np.uint8)) & m
    d[mb] = 0.85

    zb = np.zeros(labels.shape, dtype=bool)
    dz = labels[1:] != labels[:-1]
    zb[1:] |= dz
    zb[:-1] |= dz
    np.maximum(d, np.where(zb, np.float32(0.45), np.float32(0.0)), out=d)
    d[boundaries_yx(labels)] = 0.82

    if len(syn.vesicles):
        offs, val = _ring_stamp()
        pts = syn.vesicles[:, None, :] + offs[None, :, :]
        ok = np.all((pts >= 0) & (pts < labels.shape), axis=2)
        flat = np.ravel_multi_index(tuple(pts[ok].T), labels.shape)
        np.maximum.at(d.reshape(-1), flat, np.broadcast_to(val, ok.shape)[ok])
    d[syn.psd] = 0.9
    d[syn.cleft] = 0.95

    np.clip(d, 0.0, 1.0, out=d)
    d *= staining_factor(faults, labels.shape, origin)
    img = params.bright - d * (params.bright - params.dark)
    for f in faults:
        if f.kind != "low-contrast":
            continue
        sl = tuple(slice(max(0, f.region[ax][0] - o), max(0, f.region[ax][1] - o))
                   for ax, o in zip("zyx", origin, strict=True))
        box = img[sl]
        box[...] = box.mean() + (box - box.mean()) * (1.0 - f.strength)
    return ndi.gaussian_filter(img, params.blur_sigma_px).astype(np.float32)
