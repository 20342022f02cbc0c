"""Synapses where a presynaptic bouton touches a postsynaptic process.

For each candidate site (a bouton centre, or for user labels a sampled contact
point) the voxels of the presynaptic body within the bouton are tested for
6-neighbours of other bodies; each partner with at least ``min_contact_vx``
contact voxels is a candidate. The largest becomes the postsynaptic partner; a
``polyadic_fraction`` of sites take up to ``max_posts`` (one T-bar, several PSDs,
as in fly neuropil). The cleft is the contact within ``cleft_radius_nm`` of the
contact point; the PSD is the postsynaptic band up to 40 nm deep behind it; the
vesicle cloud fills the presynaptic body within 300 nm of the release site.

Ground-truth points: ``post`` is the postsynaptic contact voxel nearest the cleft
centre; ``pre`` the presynaptic contact voxel nearest the cleft centre moved up to
3 px into the bouton. Both lie in their bodies, within a few voxels of the contact.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage as ndi

from pipeline.phantom.morphology import KIND_CODES
from pipeline.phantom.params import PhantomParams

POST_KINDS = np.array([KIND_CODES[k] for k in ("soma", "dendrite", "neurite")])

_DIRS = [(a, s) for a in range(3) for s in (-1, 1)]


@dataclasses.dataclass
class Synapses:
    """rows: one dict per (pre, post) pair, points in voxels (z, y, x) of the given grid.
    cleft, psd: bool (z, y, x) masks for rendering; vesicles: (n, 3) int voxel centres."""

    rows: list[dict]
    cleft: np.ndarray
    psd: np.ndarray
    vesicles: np.ndarray


def sample_contact_sites(labels: np.ndarray, params: PhantomParams, rng: np.random.Generator,
                         n_sites: int) -> np.ndarray:
    """Up to ``n_sites`` contact voxels (n, 3) between two nonzero bodies, >= 0.5 um apart."""
    vs = np.asarray(params.voxel_size)
    a, b = labels[:, :, :-1], labels[:, :, 1:]
    cand = np.flatnonzero((a != b) & (a > 0) & (b > 0))
    if cand.size == 0:
        return np.zeros((0, 3), dtype=int)
    pick = rng.choice(cand, size=min(cand.size, 6 * n_sites), replace=False)
    pts = np.stack(np.unravel_index(pick, a.shape), axis=1)
    cell = np.floor(pts * vs / 500.0).astype(np.int64)
    _, first = np.unique(cell, axis=0, return_index=True)
    first = np.sort(first)[:n_sites]
    return pts[first]


def find_synapses(labels: np.ndarray, kind_of: np.ndarray, sites_vx: np.ndarray,
                  site_radius_nm: np.ndarray, params: PhantomParams,
                  rng: np.random.Generator, pre_kinds: tuple[str, ...] = ("axon",)) -> Synapses:
    """Synapses at the given sites (voxel coordinates (n, 3), radii nm (n,))."""
    vs = np.asarray(params.voxel_size, dtype=float)
    cleft = np.zeros(labels.shape, dtype=bool)
    psd = np.zeros(labels.shape, dtype=bool)
    ves: list[np.ndarray] = []
    rows: list[dict] = []
    pre_codes = [KIND_CODES[k] for k in pre_kinds]
    foot = np.zeros((1, 3, 3), dtype=bool)
    foot[0, 1, :] = foot[0, :, 1] = True
    for site_id, (c, rad) in enumerate(zip(np.round(sites_vx).astype(int), site_radius_nm,
                                           strict=True)):
        if np.any(c < 0) or np.any(c >= labels.shape):
            continue
        pre = int(labels[tuple(c)])
        if pre == 0 or int(kind_of[pre]) not in pre_codes:
            continue
        half = np.ceil((rad + 250.0) / vs).astype(int)
        lo = np.maximum(c - half, 0)
        hi = np.minimum(c + half + 1, labels.shape)
        sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        win = labels[sl]
        g = np.meshgrid(*[(np.arange(a, b) - cc) * v for a, b, cc, v in
                          zip(lo, hi, c, vs, strict=True)], indexing="ij", sparse=True)
        dist = np.sqrt(g[0] ** 2 + g[1] ** 2 + g[2] ** 2)
        pre_mask = (win == pre) & (dist < rad + 60.0)
        pre_pos, post_pos, post_lab = [], [], []
        for axis, step in _DIRS:
            src = [slice(None)] * 3
            dst = [slice(None)] * 3
            n = win.shape[axis]
            src[axis] = slice(max(0, -step), n - max(0, step))
            dst[axis] = slice(max(0, step), n - max(0, -step))
            nb = win[tuple(dst)]
            m = pre_mask[tuple(src)] & (nb != pre) & (nb != 0)
            if not m.any():
                continue
            ok = np.isin(kind_of[nb[m]], POST_KINDS)
            p = np.argwhere(m)[ok]
            off = np.zeros(3, dtype=int)
            off[axis] = max(0, -step)
            pre_pos.append(p + off)
            off2 = off.copy()
            off2[axis] += step
            post_pos.append(p + off2)
            post_lab.append(nb[m][ok])
        if not post_lab:
            continue
        pre_pos_a = np.concatenate(pre_pos)
        post_pos_a = np.concatenate(post_pos)
        post_lab_a = np.concatenate(post_lab)
        ids, counts = np.unique(post_lab_a, return_counts=True)
        ok = counts >= params.min_contact_vx
        ids, counts = ids[ok], counts[ok]
        if ids.size == 0:
            continue
        order = np.argsort(-counts, kind="stable")
        n_post = 1
        if rng.random() < params.polyadic_fraction:
            n_post = min(params.max_posts, ids.size)
        pre_pt_site = None
        for q in ids[order[:n_post]]:
            sel = post_lab_a == q
            pp, qq = pre_pos_a[sel], post_pos_a[sel]
            centre = qq.mean(axis=0)
            anchor = qq[np.argmin(np.sum(((qq - centre) * vs) ** 2, axis=1))]
            disc = np.sum(((qq - anchor) * vs) ** 2, axis=1) <= params.cleft_radius_nm ** 2
            pp, qq = pp[disc], qq[disc]
            mid = qq.mean(axis=0)
            post_pt = qq[np.argmin(np.sum(((qq - mid) * vs) ** 2, axis=1))]
            if pre_pt_site is None:
                pre_pt = pp[np.argmin(np.sum(((pp - mid) * vs) ** 2, axis=1))]
                u = (pp.mean(axis=0) - qq.mean(axis=0)) * vs
                u = u / max(np.linalg.norm(u), 1e-9)
                for k in (3, 2, 1):
                    cand = pre_pt + np.round(k * 8.0 * u / vs).astype(int)
                    if np.all(cand >= 0) and np.all(cand < win.shape) and win[tuple(cand)] == pre:
                        pre_pt = cand
                        break
                pre_pt_site = pre_pt
            cl = np.zeros(win.shape, dtype=bool)
            cl[tuple(pp.T)] = True
            cl[tuple(qq.T)] = True
            cleft[sl] |= cl
            band = np.zeros(win.shape, dtype=bool)
            band[tuple(qq.T)] = True
            band = ndi.binary_dilation(band, structure=foot, iterations=4) & (win == q)
            psd[sl] |= band
            rows.append({
                "site_id": site_id, "pre_id": pre, "post_id": int(q),
                "pre": (pre_pt_site + lo).tolist(), "post": (post_pt + lo).tolist(),
                "contact_vx": int(disc.sum()),
            })
        if pre_pt_site is not None:
            d2 = np.sqrt((g[0] - (pre_pt_site[0] + lo[0] - c[0]) * vs[0]) ** 2
                         + (g[1] - (pre_pt_site[1] + lo[1] - c[1]) * vs[1]) ** 2
                         + (g[2] - (pre_pt_site[2] + lo[2] - c[2]) * vs[2]) ** 2)
            cloud = np.argwhere((win == pre) & (d2 < 300.0) & (d2 > 30.0))
            if len(cloud):
                k = min(len(cloud), int(rng.poisson(70)))
                ves.append(cloud[rng.choice(len(cloud), size=k, replace=False)] + lo)
    vesicles = np.concatenate(ves) if ves else np.zeros((0, 3), dtype=int)
    return Synapses(rows, cleft, psd, vesicles)
