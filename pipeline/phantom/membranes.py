"""Membranes as thin 3-D shells integrated through each section's thickness, in nm.

The label volume is sampled every ``vz`` nm in z, far coarser than a membrane, so
the surfaces between sections come from interpolating signed distances: in each
section, ``phi`` is the in-plane distance (nm) from a pixel to the nearest boundary
of its own object (multi-label EDT, smoothed by 0.6 px so that oblique boundaries
do not stair-step). At height ``f`` (section units) towards the neighbouring section,
a pixel whose object continues there has the distance ``(1-f) phi_z + f phi_n``;
one whose object ends has ``(1-f) phi_z - f phi_n`` (a zero crossing: the surface
passes between the sections). Dividing by ``sqrt(1 + (d phi/dz)^2)`` turns that into
the 3-D distance to the surface, so a membrane cut obliquely or en face is a wide,
faint band, as a real 8 nm shell integrated through 40 nm is. ``z_subsamples``
heights per section are averaged.

The same interpolation gives the mitochondria (double envelope, cristae, a darker
matrix), the synaptic contacts (pre and post membranes 20 nm apart across a dense
cleft, a PSD band on the postsynaptic side) and the nuclear envelope.
Arrays are (z, y, x); distances nm; optical densities (OD) are section averages.
"""

from __future__ import annotations

import dataclasses
import math

import edt
import numpy as np
from scipy import ndimage as ndi

from pipeline.phantom.params import PhantomParams


def boundary_distance(labels: np.ndarray, voxel_size: tuple[float, float, float],
                      smooth_px: float = 0.6) -> np.ndarray:
    """phi (z, y, x) float32 nm: in-plane distance to the nearest boundary of a pixel's
    own object (label 0, extracellular space, counts as an object)."""
    _, vy, vx = voxel_size
    out = np.empty(labels.shape, dtype=np.float32)
    for z in range(labels.shape[0]):
        d = edt.edt(labels[z].astype(np.uint32) + 1, anisotropy=(vy, vx), black_border=False)
        d = np.minimum(d, 400.0) - 0.5 * min(vy, vx)
        out[z] = ndi.gaussian_filter(d, smooth_px) if smooth_px > 0 else d
    return out


def signed_mask_distance(mask: np.ndarray, voxel_size: tuple[float, float, float],
                         cap_nm: float = 80.0) -> np.ndarray:
    """psi (z, y, x) float32 nm: in-plane signed distance to the mask's boundary,
    positive inside, capped at +-cap_nm."""
    _, vy, vx = voxel_size
    out = np.full(mask.shape, -cap_nm, dtype=np.float32)
    h = 0.5 * min(vy, vx)
    for z in np.flatnonzero(mask.any(axis=(1, 2))):
        m = mask[z].astype(np.uint8)
        din = edt.edt(m, anisotropy=(vy, vx), black_border=False)
        dout = edt.edt(1 - m, anisotropy=(vy, vx), black_border=False)
        psi = np.where(m > 0, din - h, -(dout - h))
        out[z] = ndi.gaussian_filter(np.clip(psi, -cap_nm, cap_nm), 0.6)
    return out


@dataclasses.dataclass
class Geometry:
    """What the section renderer needs, on the padded grid (z, y, x).

    labels: body ids; phi: boundary distance (nm); zone: +synapse id on the post side,
    -id on the pre side of a synaptic contact, 0 elsewhere; mito_psi: signed distance
    to mitochondria (nm, positive inside) or None; mito_comp: mitochondrion id;
    crista_axes: (n + 1, 4) per mitochondrion unit normal (z, y, x) and phase (nm);
    nuclei: (centre_vx (3,), radius_nm).
    """

    labels: np.ndarray
    phi: np.ndarray
    zone: np.ndarray
    mito_psi: np.ndarray | None
    mito_comp: np.ndarray | None
    crista_axes: np.ndarray
    nuclei: list[tuple[np.ndarray, float]]


def shell(d: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * (d / sigma) ** 2)


def _step(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def section_od(g: Geometry, z: int, params: PhantomParams) -> np.ndarray:
    """Optical density (y, x) float32 of membranes, synapses, mitochondria and nuclear
    envelopes in section z, averaged over ``z_subsamples`` heights."""
    vz, vy, vx = params.voxel_size
    Z = g.labels.shape[0]
    n = params.z_subsamples
    px = min(vy, vx)
    sig = math.hypot(params.membrane_nm / 2.355, 0.35 * px)  # shell + pixel anti-aliasing
    sig_i = math.hypot(6.0 / 2.355, 0.35 * px)  # internal (thinner) membranes
    half_gap = 0.5 * params.cleft_width_nm + 0.5 * params.membrane_nm
    A, sA = g.labels[z], g.phi[z]
    zA = g.zone[z]
    out = np.zeros(A.shape, dtype=np.float32)
    for j in range(n):
        f = (j + 0.5) / n - 0.5
        nb = min(max(z + (1 if f > 0 else -1), 0), Z - 1)
        w = abs(f) if nb != z else 0.0
        B, sB = g.labels[nb], g.phi[nb]
        same = A == B
        u = np.where(same, (1 - w) * sA + w * sB, (1 - w) * sA - w * sB)
        dudz = np.where(same, sB - sA, -sB - sA) / vz
        d3 = np.abs(u) / np.sqrt(1.0 + dudz * dudz)
        zone = np.where(same | (u >= 0), zA, g.zone[nb])
        m = params.membrane_od * shell(d3, sig)
        syn = zone != 0
        if syn.any():
            ds = np.where(zone[syn] > 0, d3[syn], -d3[syn])
            cleft = _step(0.5 * params.cleft_width_nm - np.abs(ds), -2.0, 2.0)
            psd = (_step(ds, half_gap, half_gap + 6) *
                   (1 - _step(ds, half_gap + params.psd_nm - 6, half_gap + params.psd_nm)))
            m[syn] = (params.membrane_od * (shell(ds - half_gap, sig) + shell(ds + half_gap, sig))
                      + params.cleft_od * cleft + params.psd_od * psd)
        out += m
        if g.mito_psi is not None:
            pa, pb = g.mito_psi[z], g.mito_psi[nb]
            near = (pa > -30) | (pb > -30)
            if near.any():
                psi = ((1 - w) * pa[near] + w * pb[near])
                dm = psi / np.sqrt(1.0 + ((pb[near] - pa[near]) / vz) ** 2)
                comp = np.maximum(g.mito_comp[z][near], g.mito_comp[nb][near])
                ax = g.crista_axes[comp]
                yy, xx = np.nonzero(near)
                q = (ax[:, 0] * (z + f) * vz + ax[:, 1] * yy * vy + ax[:, 2] * xx * vx + ax[:, 3])
                lam = params.cristae_spacing_nm
                dc = np.abs(np.mod(q, lam) - 0.5 * lam)
                matrix = _step(dm, 8.0, 14.0)
                od = (params.internal_membrane_od * (shell(dm, sig_i) + shell(dm - 10.0, sig_i))
                      - math.log(params.mito_matrix) * matrix
                      + 0.8 * params.internal_membrane_od * shell(dc, sig_i)
                      * _step(dm, 16.0, 22.0))
                out[near] += od.astype(np.float32)
        for centre, rn in g.nuclei:
            c = np.asarray(centre, dtype=float) * (vz, vy, vx)
            hz = (z + f) * vz - c[0]
            if abs(hz) > rn + 30:
                continue
            y0 = max(0, int((c[1] - rn - 40) / vy))
            y1 = min(A.shape[0], int((c[1] + rn + 40) / vy) + 1)
            x0 = max(0, int((c[2] - rn - 40) / vx))
            x1 = min(A.shape[1], int((c[2] + rn + 40) / vx) + 1)
            if y1 <= y0 or x1 <= x0:
                continue
            yy = (np.arange(y0, y1) * vy - c[1])[:, None]
            xx = (np.arange(x0, x1) * vx - c[2])[None, :]
            r = np.sqrt(hz * hz + yy * yy + xx * xx)
            env = params.internal_membrane_od * (shell(r - rn, sig) + shell(r - rn + 14.0, sig))
            inside = r < rn - 14.0
            het = 0.35 * np.exp(-np.clip(rn - r, 0, None) / 80.0) * inside
            out[y0:y1, x0:x1] += (env + het - 0.08 * inside).astype(np.float32)
    out /= n
    return out


def crista_axes(n_mito: int, rng: np.random.Generator, spacing: float) -> np.ndarray:
    """(n + 1, 4): a random unit normal (z, y, x) and a phase (nm) per mitochondrion."""
    v = rng.normal(size=(n_mito + 1, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    ph = rng.uniform(0, spacing, size=(n_mito + 1, 1))
    return np.concatenate([v, ph], axis=1)
