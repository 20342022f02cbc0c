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
                      smooth_px: float = 0.9) -> np.ndarray:
    """phi (z, y, x) float32 nm: in-plane distance to the nearest boundary of a pixel's
    own object (label 0, extracellular space, counts as an object).

    Smoothed over ``smooth_px`` so that pixel staircases do not show (this also lifts
    the V-shaped minimum at a boundary a little: membranes get lighter, not wider)."""
    _, vy, vx = voxel_size
    out = np.empty(labels.shape, dtype=np.float32)
    for z in range(labels.shape[0]):
        d = edt.edt(labels[z].astype(np.uint32) + 1, anisotropy=(vy, vx), black_border=False)
        d = np.minimum(d, 400.0) - 0.5 * min(vy, vx)
        if smooth_px > 0:
            d = ndi.gaussian_filter(d, smooth_px)
        out[z] = d
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


_TAB_PER_NM = 8  # membrane profile lookup table: entries per nm of distance


def _halo(d: np.ndarray) -> np.ndarray:
    """The light zone 10-26 nm beside a membrane (stain drawn into the membrane)."""
    return np.exp(-0.5 * ((d - 17.0) / 5.5) ** 2)


def _step(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _lin(n: int, ss: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fine-grid (ss per px) nearest index, and the two linear-interpolation indices and
    weight, along an axis of n coarse px (pixel centres aligned)."""
    c = (np.arange(n * ss) + 0.5) / ss - 0.5
    i0 = np.clip(np.floor(c).astype(int), 0, n - 1)
    i1 = np.clip(i0 + 1, 0, n - 1)
    near = np.clip(np.floor((np.arange(n * ss) + 0.5) / ss).astype(int), 0, n - 1)
    return near, np.stack([i0, i1]), (c - np.floor(c)).astype(np.float32)


class _Fine:
    """Section slices on a fine grid (ss x ss per px): labels, zone, mitochondrion id by
    nearest pixel; phi interpolated bilinearly as a signed distance of each fine pixel's
    own object (a neighbour of another object counts -phi), so the zero crossing of a
    boundary between two pixel centres is kept; psi bilinearly."""

    def __init__(self, g: Geometry, ss: int):
        self.g, self.ss, self.cache = g, ss, {}
        _, Y, X = g.labels.shape
        self.ny, self.iy, self.wy = _lin(Y, ss)
        self.nx, self.ix, self.wx = _lin(X, ss)

    def _bilinear(self, a: np.ndarray, lab: np.ndarray | None, own: np.ndarray | None
                  ) -> np.ndarray:
        out = np.zeros((len(self.ny), len(self.nx)), dtype=np.float32)
        for a_y, wy in ((0, 1 - self.wy), (1, self.wy)):
            for a_x, wx in ((0, 1 - self.wx), (1, self.wx)):
                sub = np.ix_(self.iy[a_y], self.ix[a_x])
                v = a[sub]
                if lab is not None:
                    v = np.where(lab[sub] == own, v, -v)
                out += v * (wy[:, None] * wx[None, :])
        return out

    def slice(self, z: int) -> tuple:
        if z not in self.cache:
            g = self.g
            if self.ss == 1:
                psi = None if g.mito_psi is None else g.mito_psi[z]
                comp = None if g.mito_comp is None else g.mito_comp[z]
                self.cache[z] = (g.labels[z], g.phi[z], g.zone[z], psi, comp)
            else:
                nn = np.ix_(self.ny, self.nx)
                lab = g.labels[z][nn]
                phi = self._bilinear(g.phi[z], g.labels[z], lab)
                psi = None if g.mito_psi is None else self._bilinear(g.mito_psi[z], None, None)
                comp = None if g.mito_comp is None else g.mito_comp[z][nn]
                self.cache[z] = (lab, phi, g.zone[z][nn], psi, comp)
            if len(self.cache) > 3:
                self.cache.pop(min(self.cache))
        return self.cache[z]


def section_od(g: Geometry, z: int, params: PhantomParams, fine: _Fine | None = None
               ) -> np.ndarray:
    """Optical density (y, x) float32 of membranes, synapses, mitochondria and nuclear
    envelopes in section z, averaged over ``z_subsamples`` heights and, in-plane, over
    the pixel (rendered on a grid of <= 4 nm and box-averaged). Pass the same ``fine``
    (``make_fine(g, params)``) for consecutive sections to reuse the fine slices."""
    vz, vy, vx = params.voxel_size
    Z = g.labels.shape[0]
    n = params.z_subsamples
    fine = fine or make_fine(g, params)
    ss = fine.ss
    sig = params.membrane_nm / 2.355
    sig_i = 6.0 / 2.355  # internal (thinner) membranes
    half_gap = 0.5 * params.cleft_width_nm + 0.5 * params.membrane_nm
    dt = np.arange(0.0, 80.0, 1.0 / _TAB_PER_NM) + 0.5 / _TAB_PER_NM
    table = (params.membrane_od * shell(dt, sig) - params.rim_od * _halo(dt)).astype(np.float32)
    A, sA, zA, pA, cA = fine.slice(z)
    out = np.zeros(A.shape, dtype=np.float32)
    gy = ((np.arange(A.shape[0]) + 0.5) / ss - 0.5) * vy  # fine pixel centres, nm
    gx = ((np.arange(A.shape[1]) + 0.5) / ss - 0.5) * vx
    heights = [(j + 0.5) / n - 0.5 for j in range(n)]
    nbrs = {}
    for f in heights:
        nbrs.setdefault(min(max(z + (1 if f > 0 else -1), 0), Z - 1), []).append(f)
    for nb, fs in nbrs.items():
        B, sB, zB, pB, cB = fine.slice(nb)
        # only pixels a membrane, its halo or a synapse can reach (3-D distance < ~40 nm)
        near = ((np.minimum(sA, sB) < 40.0 + 0.5 * np.abs(sB - sA)) | (A != B)
                | (zA != 0) | (zB != 0))
        ix = np.flatnonzero(near)
        a_, b_ = A.ravel()[ix], B.ravel()[ix]
        sa, sb = sA.ravel()[ix], sB.ravel()[ix]
        za, zb = zA.ravel()[ix], zB.ravel()[ix]
        same = a_ == b_
        dudz = np.where(same, sb - sa, -sb - sa) / vz
        inv = 1.0 / np.sqrt(1.0 + dudz * dudz)
        sb_signed = np.where(same, sb, -sb)
        acc = np.zeros(ix.size, dtype=np.float32)
        ecs_a, ecs_b = a_ == 0, b_ == 0
        any_syn = bool((za != 0).any() or (zb != 0).any())
        for f in fs:
            w = abs(f) if nb != z else 0.0
            u = (1 - w) * sa + w * sb_signed
            d3 = np.abs(u) * inv
            mine = same | (u >= 0)
            k = np.minimum((d3 * _TAB_PER_NM).astype(np.int32), table.size - 1)
            m = table[k]
            # extracellular space is outside both membranes: its pixels stay lighter
            m[np.where(mine, ecs_a, ecs_b)] *= 0.5
            if not any_syn:
                acc += m
                continue
            zone = np.where(mine, za, zb)
            syn = zone != 0
            if syn.any():
                ds = np.where(zone[syn] > 0, d3[syn], -d3[syn])
                cleft = _step(0.5 * params.cleft_width_nm - np.abs(ds), -2.0, 2.0)
                psd = (_step(ds, half_gap, half_gap + 6) *
                       (1 - _step(ds, half_gap + params.psd_nm - 6, half_gap + params.psd_nm)))
                m[syn] = (0.85 * params.membrane_od * (shell(ds - half_gap, sig)
                                                       + shell(ds + half_gap, sig))
                          + params.cleft_od * cleft + params.psd_od * psd)
            acc += m
        out.ravel()[ix] += acc
    for j in range(n):
        f = heights[j]
        nb = min(max(z + (1 if f > 0 else -1), 0), Z - 1)
        w = abs(f) if nb != z else 0.0
        B, sB, zB, pB, cB = fine.slice(nb)
        if pA is not None:
            near = (pA > -30) | (pB > -30)
            if near.any():
                psi = ((1 - w) * pA[near] + w * pB[near])
                dm = psi / np.sqrt(1.0 + ((pB[near] - pA[near]) / vz) ** 2)
                comp = np.maximum(cA[near], cB[near])
                ax = g.crista_axes[comp]
                yy, xx = np.nonzero(near)
                pos = ((z + f) * vz, gy[yy], gx[xx])
                q = ax[:, 0] * pos[0] + ax[:, 1] * pos[1] + ax[:, 2] * pos[2] + ax[:, 3]
                q2 = ax[:, 4] * pos[0] + ax[:, 5] * pos[1] + ax[:, 6] * pos[2] + ax[:, 7]
                lam = params.cristae_spacing_nm
                q = q + 0.25 * lam * np.sin(2 * np.pi * q2 / (5.0 * lam))  # wavy sheets
                dc = np.abs(np.mod(q, lam) - 0.5 * lam)
                gaps = _step(np.sin(2 * np.pi * (q2 / (4.0 * lam) + np.floor(q / lam) * 0.37)),
                             -0.6, 0.0)  # cristae end inside the matrix
                matrix = _step(dm, 8.0, 14.0)
                od = (params.internal_membrane_od * (shell(dm, sig_i) + shell(dm - 10.0, sig_i))
                      - math.log(params.mito_matrix) * matrix
                      + 0.5 * params.internal_membrane_od * shell(dc, sig_i) * gaps
                      * _step(dm, 16.0, 22.0))
                out[near] += od.astype(np.float32)
        for centre, rn in g.nuclei:
            c = np.asarray(centre, dtype=float) * (vz, vy, vx)
            hz = (z + f) * vz - c[0]
            if abs(hz) > rn + 30:
                continue
            ys = np.flatnonzero(np.abs(gy - c[1]) < rn + 40)
            xs = np.flatnonzero(np.abs(gx - c[2]) < rn + 40)
            if ys.size == 0 or xs.size == 0:
                continue
            yy = (gy[ys] - c[1])[:, None]
            xx = (gx[xs] - c[2])[None, :]
            r = np.sqrt(hz * hz + yy * yy + xx * xx)
            env = params.internal_membrane_od * (shell(r - rn, sig) + shell(r - rn + 14.0, sig))
            inside = r < rn - 14.0
            het = 0.35 * np.exp(-np.clip(rn - r, 0, None) / 80.0) * inside
            out[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1] += (env + het - 0.08 * inside
                                                       ).astype(np.float32)
    out /= n
    if ss > 1:
        ny, nx = g.labels.shape[1:]
        out = out.reshape(ny, ss, nx, ss).mean(axis=(1, 3))
    return out


def make_fine(g: Geometry, params: PhantomParams) -> _Fine:
    """The fine-grid helper for ``section_od``: ss = ceil(px / 4 nm) per axis."""
    return _Fine(g, max(1, int(math.ceil(min(params.voxel_size[1:]) / 4.0 - 1e-6))))


def crista_axes(n_mito: int, rng: np.random.Generator, spacing: float) -> np.ndarray:
    """(n + 1, 8) per mitochondrion: a random unit normal of its cristae (z, y, x) and a
    phase (nm), then a second unit axis across it and a phase (waviness and gaps)."""
    v = rng.normal(size=(n_mito + 1, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    w = rng.normal(size=(n_mito + 1, 3))
    w -= np.sum(w * v, axis=1, keepdims=True) * v
    w /= np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-9)
    ph = rng.uniform(0, 10 * spacing, size=(n_mito + 1, 2))
    return np.concatenate([v, ph[:, :1], w, ph[:, 1:]], axis=1)
