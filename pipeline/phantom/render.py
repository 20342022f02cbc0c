"""EM appearance of a label volume: what the microscope records before noise.

Mass-thickness contrast: each section's transmitted intensity is
``resin_grey * exp(-tau)`` with ``tau`` the optical density (OD) integrated through
the section's thickness (section averages, see membranes.py and particles.py):

- cytoplasm: one level for every cell (a small random offset per object, no level
  per kind), a granular texture (band-passed noise, 25-125 nm, positively skewed:
  dark grains) mostly new in each section, and a faint coarser texture that
  persists over a few sections;
- membranes, synaptic clefts and PSDs, mitochondria, nuclear envelopes: 3-D shells
  integrated through the section (membranes.py);
- vesicles, microtubules, ER: projected shells (particles.py, ultrastructure.py);
- extracellular space: light.

Staining faults scale tau, low-contrast faults compress the intensity, then the
optics and camera blur it (Fourier filter in nm, see ``transfer``): a Gaussian
with a weak negative lobe (a defocus fringe: the bright rim beside membranes) and
the camera's Gaussian in px. Noise is the microscope's (microscope.py).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sfft

from pipeline.phantom.faults import Fault, staining_factor
from pipeline.phantom.membranes import Geometry, make_fine, section_od
from pipeline.phantom.morphology import KIND_CODES
from pipeline.phantom.params import PhantomParams
from pipeline.phantom.particles import Shells, project_section, section_index

# granular texture: softplus of band-passed noise, i.e. dark grains on a bright floor
# (cytoplasm is never lighter than its clean level; grains only darken it)
GRAIN_K, GRAIN_B = 2.0, 0.5
_g = np.logaddexp(0.0, GRAIN_K * (np.random.default_rng(0).standard_normal(200_000) - GRAIN_B))
_GRAIN_MEAN, _GRAIN_SCALE = float(_g.mean()), 1.0 / float(_g.std())
del _g


SAT_OD, SAT_SOFT = 0.8, 0.3


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


def _kgrid(shape: tuple[int, int], vy: float, vx: float) -> np.ndarray:
    ky = np.fft.fftfreq(shape[0], d=vy)[:, None]
    kx = np.fft.rfftfreq(shape[1], d=vx)[None, :]
    return ky * ky + kx * kx  # |k|^2, cycles^2 / nm^2


def transfer(shape: tuple[int, int], params: PhantomParams) -> np.ndarray:
    """Optics x camera transfer function on the rfft2 grid of a section (y, x).

    ``psf_sigma_nm`` is the Gaussian blur of the whole system in nm (the same at every
    pixel size); the camera's ``camera_sigma_px`` is part of it, the optics the rest."""
    _, vy, vx = params.voxel_size
    k2 = _kgrid(shape, vy, vx)
    a = params.rim_strength
    c2 = 2 * math.pi ** 2
    cam_nm = params.camera_sigma_px * min(vy, vx)
    sig_o = math.sqrt(max(params.psf_sigma_nm ** 2 - cam_nm ** 2, 0.0))  # optics' share
    optics = ((1 + a) * np.exp(-c2 * sig_o ** 2 * k2)
              - a * np.exp(-c2 * params.rim_sigma_nm ** 2 * k2))
    cam = np.exp(-c2 * cam_nm ** 2 * k2)
    return (optics * cam).astype(np.float32)


def texture_filter(shape: tuple[int, int], voxel_size, lo_nm: float, hi_nm: float
                   ) -> np.ndarray:
    """Band-pass (difference of Gaussians with sigma lo/hi nm) on the rfft2 grid, scaled
    so that filtered unit white noise has unit sd."""
    _, vy, vx = voxel_size
    k2 = _kgrid(shape, vy, vx)
    c2 = 2 * math.pi ** 2
    h = np.exp(-c2 * lo_nm ** 2 * k2) - np.exp(-c2 * hi_nm ** 2 * k2)
    n = shape[0] * shape[1]
    full = np.concatenate([h, h[:, 1:-1] if shape[1] % 2 == 0 else h[:, 1:]], axis=1)
    return (h / math.sqrt(float((full ** 2).sum()) / n)).astype(np.float32)


def render_specimen(geo: Geometry, kind_of: np.ndarray, shells: Shells, faults: list[Fault],
                    origin: tuple[int, int, int], params: PhantomParams,
                    rng: np.random.Generator) -> np.ndarray:
    """Grey values (z, y, x) float32 of the specimen on the grid of ``geo.labels``.

    ``origin`` is the nominal voxel of labels[0, 0, 0] (negative margins when padded),
    so faults given in nominal coordinates land in the right place.
    """
    labels = geo.labels
    Z, Y, X = labels.shape
    n = int(labels.max()) + 1
    glia = KIND_CODES["glia"]
    base = np.full(n, params.cytoplasm_od, dtype=np.float32)
    # per-object offsets, uniform (objects differ a little, with no long tails)
    base += (rng.uniform(-1, 1, n) * math.sqrt(3) * params.object_od_sd).astype(np.float32)
    base[0] = params.ecs_od
    tex_gain = np.ones(n, dtype=np.float32)
    tex_gain[kind_of[:n] == glia] = 0.8
    tex_gain[kind_of[:n] == KIND_CODES["axon"]] = 0.85
    tex_gain[0] = 0.3
    h_psf = transfer((Y, X), params)
    h_fine = texture_filter((Y, X), params.voxel_size, 6.0, 25.0)
    h_coarse = texture_filter((Y, X), params.voxel_size, 12.0, 30.0)
    sf = staining_factor(faults, labels.shape, origin)
    idx, sec = section_index(shells, params.voxel_size[0], Z)
    bounds = np.searchsorted(sec, np.arange(Z + 1))
    lowc = [f for f in faults if f.kind == "low-contrast"]
    coarse = fine = None
    knee = params.resin_grey * math.exp(-params.cytoplasm_od) + 0.4 * params.highlight_knee
    fine_grid = make_fine(geo, params)
    out = np.empty(labels.shape, dtype=np.float32)
    for z in range(Z):
        noise = rng.standard_normal((2, Y, X), dtype=np.float32)
        new_f = sfft.irfft2(sfft.rfft2(noise[0]) * h_fine, s=(Y, X))
        fine = new_f if fine is None else 0.25 * fine + math.sqrt(1 - 0.0625) * new_f
        new_c = sfft.irfft2(sfft.rfft2(noise[1]) * h_coarse, s=(Y, X))
        coarse = new_c if coarse is None else 0.7 * coarse + math.sqrt(1 - 0.49) * new_c
        grain = (np.logaddexp(0.0, GRAIN_K * (fine - GRAIN_B)) - _GRAIN_MEAN) * _GRAIN_SCALE
        lab = labels[z]
        gain = tex_gain[lab]
        if geo.mito_psi is not None:  # the matrix is fine-grained: fewer grains there
            gain = np.where(geo.mito_psi[z] > 0, np.float32(0.35), gain)
        tau = base[lab] + params.texture_od * gain * (0.9 * grain + 0.6 * coarse)
        tau += section_od(geo, z, params, fine_grid)
        tau += project_section(shells, idx[bounds[z]:bounds[z + 1]], z, (Y, X),
                               params.voxel_size)
        if isinstance(sf, np.ndarray):
            tau *= sf[min(z, sf.shape[0] - 1)]
        tau = np.clip(tau, 0.0, None)
        hi = tau > SAT_OD  # stain binding saturates: ODs above SAT_OD are compressed
        x = tau[hi] - SAT_OD
        tau[hi] = SAT_OD + x / (1.0 + x / SAT_SOFT)
        img = params.resin_grey * np.exp(-tau)
        for f in lowc:
            if not f.region["z"][0] <= z + origin[0] < f.region["z"][1]:
                continue
            sl = tuple(slice(max(0, f.region[ax][0] - o), max(0, f.region[ax][1] - o))
                       for ax, o in zip("yx", origin[1:], strict=True))
            box = img[sl]
            box[...] = box.mean() + (box - box.mean()) * (1.0 - f.strength)
        rec = sfft.irfft2(sfft.rfft2(img) * h_psf, s=(Y, X))
        if params.highlight_knee > 0:  # the detector's soft shoulder above the knee
            hi = rec > knee
            x = rec[hi] - knee
            rec[hi] = knee + x / (1.0 + x / params.highlight_knee)
        out[z] = rec
    return out
